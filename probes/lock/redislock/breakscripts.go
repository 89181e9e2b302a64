package redislock

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// scriptBreak: KEYS lock, owner, break, waiters; ARGV by, reason, key base, ms to keep
// the record. Deletes whatever holds the lock, records the break, wakes the waiters.
// Returns the previous holder {1, pttl, token, fields...} or {0} when free.
var scriptBreak = redis.NewScript(luaHolder + luaWake + `
local h = holder(1, KEYS[1], KEYS[2])
if not h then return {0} end
local t = redis.call('TIME')
local now_ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local fence = redis.call('HGET', KEYS[2], 'fence') or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[3], 'token', h[3], 'fence', fence, 'by', ARGV[1], 'reason', ARGV[2], 'at_ms', now_ms)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
wake(KEYS[4], ARGV[3], 'broken', ` + strconv.Itoa(wakeOnBreak) + `)
return h
`)

// scriptBreakString deletes a foreign string lock if it still has the value seen by
// inspect: KEYS key; ARGV value. Returns 1 when deleted.
var scriptBreakString = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// scriptBreakRedisson deletes a Redisson lock if the holder field is unchanged and
// sends Redisson's unlock message (0) so its waiters retry: KEYS key; ARGV field,
// channel. Returns 1 when deleted.
var scriptBreakRedisson = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '0')
  return 1
end
return 0
`)
