package redislock

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Key layout of a dsctl lock NAME. The {NAME} hash tag keeps every key of one lock in
// one Redis Cluster slot, so the scripts below may touch them together.
//
//	dsctl:lock:{NAME}          string  holder token; PX = the lease (SET NX PX)
//	dsctl:lock:{NAME}:owner    hash    token, fence, acquired_ms, ttl_ms, host, pid, user, cmd, label, tool; same PX
//	dsctl:lock:{NAME}:fence    string  fencing counter, no TTL (it must outlive every lease)
//	dsctl:lock:{NAME}:waiters  zset    waiter id -> alive-until (server ms); "p:" ids poll
//	dsctl:lock:{NAME}:break    hash    the last `lock break`: token, fence, by, reason, at_ms; kept a day
//	dsctl:lock:{NAME}:ch       channel "released ID..." / "broken ID..." (live notified waiters, in
//	                                   order) and "taken PTTL" messages
//
// A release wakes the waiters in order: the first named tries at once, the k-th after
// k staggers, and a "taken" message (sent by an acquire while others wait) cancels the
// rest. So a handoff costs one round trip, not one per waiter, and a dead waiter delays
// the next by one stagger. Messages only save time: a waiter that misses them still
// wakes when the holder's TTL runs out.
const (
	KeyPrefix    = "dsctl:lock:"
	breakKeepsMs = 24 * 60 * 60 * 1000
	// waiterMarginMs keeps a waiter registered this long past its next planned retry.
	waiterMarginMs = 5000
	// wakeListMax bounds the waiter ids in one "released" message.
	wakeListMax = 32
)

type keys struct {
	lock, owner, fence, waiters, brk, channel string
}

func keysFor(name string) keys {
	base := KeyPrefix + "{" + name + "}"
	return keys{lock: base, owner: base + ":owner", fence: base + ":fence", waiters: base + ":waiters",
		brk: base + ":break", channel: base + ":ch"}
}

// nameFromKey maps a main lock key back to its name ("" if key is not one).
func nameFromKey(key string) string {
	if !strings.HasPrefix(key, KeyPrefix+"{") || !strings.HasSuffix(key, "}") {
		return ""
	}
	name := key[len(KeyPrefix)+1 : len(key)-1]
	if name == "" || strings.ContainsAny(name, "{}") {
		return ""
	}
	return name
}

// Fencing tokens are max(counter + 1, server clock in microseconds). The counter alone
// restarts at 1 when Redis loses its data (restart without persistence, FLUSHALL,
// failover to a replica that lagged), and a holder that survived the loss would then
// carry a larger token than the new holder. Tying the token to the server clock keeps
// it increasing across such a loss, as long as the server's clock does not step back
// and fewer than a million locks per second are taken on one name.
const luaFence = `
local function next_fence(fence_key)
  local t = redis.call('TIME')
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local f = redis.call('INCR', fence_key)
  if f < now_us then
    f = now_us
    redis.call('SET', fence_key, string.format('%d', f))
  end
  return string.format('%d', f), string.format('%d', math.floor(now_us / 1000))
end
`

// luaHolder returns the current holder as {status, pttl, token, owner fields...}.
const luaHolder = `
local function holder(status, k_lock, k_owner)
  local cur = redis.call('GET', k_lock)
  if not cur then return nil end
  local out = {status, redis.call('PTTL', k_lock), cur}
  local meta = redis.call('HGETALL', k_owner)
  for i = 1, #meta do out[#out + 1] = meta[i] end
  return out
end
`

// luaNotHeld explains why ARGV[1] does not hold the lock: {2, holder...} taken,
// {3} data lost (no fencing counter either), {4, break fields...} broken, {0} free.
const luaNotHeld = `
local function not_held(k_lock, k_owner, k_fence, k_break, token)
  local h = holder(2, k_lock, k_owner)
  if h then return h end
  if redis.call('EXISTS', k_fence) == 0 then return {3} end
  if redis.call('HGET', k_break, 'token') == token then
    local out = {4}
    local b = redis.call('HGETALL', k_break)
    for i = 1, #b do out[#out + 1] = b[i] end
    return out
  end
  return {0}
end
`

// scriptAcquire: KEYS lock, owner, fence, waiters; ARGV token, ttl_ms, waiter id ("" when
// not waiting), channel, owner field/value pairs. Returns {1, fence, server_ms} when
// taken, else the holder {0, pttl, token, fields...}. A waiter that fails (re)registers
// until its next planned retry plus a margin; one that succeeds leaves the list, and
// tells the others the lock is taken.
var scriptAcquire = redis.NewScript(luaFence + luaHolder + `
local id = ARGV[3]
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence, now_ms = next_fence(KEYS[3])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'fence', fence, 'acquired_ms', now_ms, 'ttl_ms', ARGV[2], unpack(ARGV, 5))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  if id ~= '' then redis.call('ZREM', KEYS[4], id) end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[4]) > 0 then redis.call('PUBLISH', ARGV[4], 'taken ' .. ARGV[2]) end
  return {1, fence, now_ms}
end
local h = holder(0, KEYS[1], KEYS[2])
if not h then h = {0, -2, ''} end
if id ~= '' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local wait = h[2]
  if wait < 0 then wait = 1000 end
  if wait > 60000 then wait = 60000 end
  local alive = wait + ` + strconv.Itoa(waiterMarginMs) + `
  redis.call('ZADD', KEYS[4], string.format('%d', now_ms + alive), id)
  if redis.call('PTTL', KEYS[4]) < alive then redis.call('PEXPIRE', KEYS[4], alive) end
end
return h
`)

// scriptRenew: KEYS lock, owner, fence, break; ARGV token, ttl_ms.
// Compare-and-PEXPIRE: {1, fence, acquired_ms, server_ms} when renewed, else not_held.
var scriptRenew = redis.NewScript(luaHolder + luaNotHeld + `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[2], 'ttl_ms', ARGV[2])
  return {1, redis.call('HGET', KEYS[2], 'fence') or '', redis.call('HGET', KEYS[2], 'acquired_ms') or ''}
end
return not_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
`)

// luaWake publishes what happened and the live notified waiters, oldest first.
var luaWake = `
local function wake(k_waiters, channel, what)
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', k_waiters, '-inf', now_ms)
  local msg = what
  local n = 0
  for _, id in ipairs(redis.call('ZRANGE', k_waiters, 0, -1)) do
    if string.sub(id, 1, 2) ~= 'p:' then
      msg = msg .. ' ' .. id
      n = n + 1
      if n >= ` + strconv.Itoa(wakeListMax) + ` then break end
    end
  end
  redis.call('PUBLISH', channel, msg)
end
`

// scriptRelease: KEYS lock, owner, fence, break, waiters; ARGV token, channel.
// Compare-and-DEL, then wake the waiters: {1} or not_held.
var scriptRelease = redis.NewScript(luaHolder + luaNotHeld + luaWake + `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  wake(KEYS[5], ARGV[2], 'released')
  return {1}
end
return not_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
`)

// scriptBreak: KEYS lock, owner, break, waiters; ARGV by, reason, channel, ms to keep
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
wake(KEYS[4], ARGV[3], 'broken')
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
