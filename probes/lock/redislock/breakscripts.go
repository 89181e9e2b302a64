package redislock

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// scriptBreak: KEYS lock, owner, break, waiters; ARGV by, reason, key base, ms to keep
// the record, holder token ("" for any). Deletes the lease when that token holds it
// (any holder with ""), records the break, wakes the waiters. Returns the previous
// holder {1, pttl, token, fields...}, {2, pttl, token, fields...} when another token
// holds it (nothing changed), or {0} when free.
var scriptBreak = redis.NewScript(luaHolder + luaWake + `
local h = holder(1, KEYS[1], KEYS[2])
if not h then return {0} end
if ARGV[5] ~= '' and h[3] ~= ARGV[5] then
  h[1] = 2
  return h
end
local t = redis.call('TIME')
local now_ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local fence = redis.call('HGET', KEYS[2], 'fence') or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[3], 'token', h[3], 'fence', fence, 'by', ARGV[1], 'reason', ARGV[2], 'at_ms', now_ms)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
wake(KEYS[4], ARGV[3], 'broken', ` + strconv.Itoa(wakeOnBreak) + `)
return h
`)

// scriptBreakKey deletes a key if it still holds what inspect saw: KEYS key; ARGV
// type, size, head (a string's first bytes; "" for other types). It breaks the string
// locks of other libraries (compare-and-delete on the value) and, with Raw, keys that
// are not locks. Returns 1 when deleted.
var scriptBreakKey = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1])
if type(t) == 'table' then t = t.ok end
if t ~= ARGV[1] then return 0 end
if t == 'string' then
  if redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
  if #ARGV[3] > 0 and redis.call('GETRANGE', KEYS[1], 0, #ARGV[3] - 1) ~= ARGV[3] then return 0 end
end
return redis.call('DEL', KEYS[1])
`)

// scriptBreakRedisson deletes a Redisson lock if the holder field is unchanged and
// sends Redisson's unlock message (0) so its waiters retry (pcall: an ACL user that may
// not publish still breaks it; the waiters then retry on their own timers): KEYS key;
// ARGV field, channel. Returns 1 when deleted.
var scriptBreakRedisson = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.pcall('PUBLISH', ARGV[2], '0')
  return 1
end
return 0
`)
