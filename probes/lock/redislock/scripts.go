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
//	dsctl:lock:{NAME}:waiters  zset    waiter id -> first registration (server µs): arrival order; "p:" ids poll
//	dsctl:lock:{NAME}:w:ID     hash    a waiter's request: token, ttl_ms, wid (= ID), owner fields; it expires
//	                                   at the waiter's next planned retry plus a margin, and
//	                                   while it exists the waiter counts as alive
//	dsctl:lock:{NAME}:break    hash    the last `lock break`: token, fence, by, reason, at_ms; kept a day
//	dsctl:lock:{NAME}:ch:LID   channel a Locker's private channel for this lock: "granted ID FENCE",
//	                                   "released ID TURN", "taken ID TTL", "broken ID TURN"
//
// A notified waiter's id is "LID.RANDOM", LID being its Locker's id, so a script can
// reach the waiter's Locker alone instead of every subscriber. Waiters keep their place
// in the list when they retry; scripts drop the entries whose request expired.
//
// On one server a release hands the lock over: the same script that deletes the lease
// takes the oldest live notified waiter off the list, gives it the lock under its own
// token with the next fencing token, for a short claim (claimMs; its :w: hash becomes
// the owner hash), and tells it so on its Locker's channel. No one else can barge in
// between. The message only wakes the waiter: its next try finds its token holding the
// lock, extends it to its TTL and dates its lease from there (a message may be late, so
// it is never trusted as a lease). PUBLISH counts the receivers: when nobody listens
// for the waiter (its process died), the grant is skipped and the next waiter is tried.
// A waiter that gives up leaves with a script that also passes on a grant that reached
// it too late. Poll waiters are not handed the lock; they find it free (with --fair,
// a poll waiter first in line keeps the lock free for its next poll).
//
// In quorum mode no server can hand over alone: a release wakes the first live waiter
// at once and the second one stagger later, and an acquire tells the first waiter the
// lock is "taken" again, with the new lease's TTL. On one server the first waiter is
// told so only when its timer (which follows the lease it last saw) would fire after
// the new lease ends. A break wakes up to wakeOnBreak waiters in turn (all modes).
// Messages only save time: a waiter that misses them still wakes when the holder's TTL
// runs out.
const (
	KeyPrefix    = "dsctl:lock:"
	breakKeepsMs = 24 * 60 * 60 * 1000
	// waiterMarginMs keeps a waiter's request alive this long past its next planned retry.
	waiterMarginMs = 5000
	// fairRetryMs is how soon a fair waiter retries when the lock is free but left to
	// a waiter queued earlier (who normally takes it within a round trip; a dead one
	// leaves the queue when its request expires, waiterMarginMs after its last retry).
	fairRetryMs = 50
	// claimMs is how long a handed-over lock is held for its waiter before the waiter
	// confirms it (its next try then extends it to the waiter's TTL): a waiter that
	// was handed the lock but never confirms (paused, cut off, dead with its
	// connection still open) blocks the lock this long at most, not for its TTL.
	claimMs = 2000
	// wakeOnRelease is how many live waiters a release wakes in quorum mode (the
	// second one a stagger later); wakeOnBreak how many a break wakes; wakeScan bounds
	// the list entries one wake-up or hand-over looks at.
	// nudgeSlackMs: a waiter whose timer is due within this of a new lease's end is
	// not told about the lease (see nudge).
	nudgeSlackMs  = 50
	wakeOnRelease = 2
	wakeOnBreak   = 32
	wakeScan      = 48
	// deadScan bounds the dead waiter entries one script drops while looking for live
	// ones.
	deadScan = 1024
	// modeGrant and modeWake tell the scripts whether a release hands the lock over
	// (one server) or only wakes waiters (quorum mode).
	modeGrant = "g"
	modeWake  = "w"
)

type keys struct {
	base, lock, owner, fence, waiters, brk, channel string
}

func keysFor(name string) keys { return keysForBase(KeyPrefix + "{" + name + "}") }

func keysForBase(base string) keys {
	return keys{base: base, lock: base, owner: base + ":owner", fence: base + ":fence", waiters: base + ":waiters",
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

// luaForget takes a waiter off the list and deletes its request; live_waiters lists
// up to want waiters whose request is alive, oldest first, dropping dead entries on
// the way (however many lead the list, up to deadScan per call: a crashed batch of
// waiters must not hide a live one behind it).
var luaForget = `
local function forget(k_waiters, base, id)
  redis.call('ZREM', k_waiters, id)
  redis.call('DEL', base .. ':w:' .. id)
end
local function live_waiters(k_waiters, base, want)
  local out, dead = {}, 0
  while #out < want and dead < ` + strconv.Itoa(deadScan) + ` do
    local ids = redis.call('ZRANGE', k_waiters, #out, #out + ` + strconv.Itoa(wakeScan-1) + `)
    if #ids == 0 then break end
    local removed = 0
    for _, id in ipairs(ids) do
      if redis.call('EXISTS', base .. ':w:' .. id) == 1 then
        out[#out + 1] = id
        if #out >= want then break end
      else
        redis.call('ZREM', k_waiters, id)
        dead, removed = dead + 1, removed + 1
      end
    end
    if removed == 0 and #ids < ` + strconv.Itoa(wakeScan) + ` then break end
  end
  return out
end
`

// scriptAcquire: KEYS lock, owner, fence, waiters; ARGV token, ttl_ms, waiter id (""
// when not waiting), key base, mode, fair ("1" or ""), a poll waiter's retry interval
// in ms ("" for notified waiters), owner field/value pairs.
// Returns {1, fence, acquired_ms, pttl, uptime_s} when the token holds the lock (taken now, or
// handed over while this request was on its way), else the holder {0, pttl, token,
// fields...}, or {5, retry_ms, waiters ahead} when the lock is free but fair mode
// leaves it to a live waiter queued earlier. A waiter that fails registers (keeping
// its place if it was already listed) with its request, alive until its next planned
// retry plus a margin; one that succeeds leaves the list.
var scriptAcquire = redis.NewScript(luaFence + luaHolder + luaWake + `
local id, base, mode, fair = ARGV[3], ARGV[4], ARGV[5], ARGV[6] == '1'
-- quorum mode: how long this server has run, so that a master that restarted (and may
-- have forgotten leases it backed) does not vote: -2 when INFO is refused, -1 unknown
local function uptime()
  if mode ~= '` + modeWake + `' then return -1 end
  local info = redis.pcall('INFO', 'server')
  if type(info) == 'table' then
    if info.err and string.find(info.err, 'NOPERM') then return -2 end
    return -1
  end
  return tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or -1
end
local function register(wait)
  local t = redis.call('TIME')
  local poll = tonumber(ARGV[7])
  if poll and string.sub(id, 1, 2) == 'p:' then wait = poll end
  if wait < 0 then wait = 1000 end
  if wait > 60000 then wait = 60000 end
  local alive = wait + ` + strconv.Itoa(waiterMarginMs) + `
  redis.call('ZADD', KEYS[4], 'NX', string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])), id)
  if redis.call('PTTL', KEYS[4]) < alive then redis.call('PEXPIRE', KEYS[4], alive) end
  local wk = base .. ':w:' .. id
  if redis.call('EXISTS', wk) == 0 then
    redis.call('HSET', wk, 'token', ARGV[1], 'ttl_ms', ARGV[2], 'wid', id, unpack(ARGV, 8))
    if fair then redis.call('HSET', wk, 'fair', '1') end
  end
  redis.call('PEXPIRE', wk, alive)
end
if fair and redis.call('EXISTS', KEYS[1]) == 0 then
  -- first come, first served: a free lock belongs to the oldest live waiter
  local ahead = 0
  for _, w in ipairs(live_waiters(KEYS[4], base, ` + strconv.Itoa(wakeScan) + `)) do
    if w == id then break end
    ahead = ahead + 1
  end
  if ahead > 0 then
    if id ~= '' then register(` + strconv.Itoa(fairRetryMs) + `) end
    return {5, ` + strconv.Itoa(fairRetryMs) + `, ahead}
  end
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence, now_ms = next_fence(KEYS[3])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'fence', fence, 'acquired_ms', now_ms, 'ttl_ms', ARGV[2], unpack(ARGV, 8))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  if id ~= '' then forget(KEYS[4], base, id) end
  if redis.call('EXISTS', KEYS[4]) == 1 then nudge(KEYS[4], base, tonumber(ARGV[2]), mode == '` + modeWake + `') end
  return {1, fence, now_ms, tonumber(ARGV[2]), uptime()}
end
local h = holder(0, KEYS[1], KEYS[2])
if h and h[3] == ARGV[1] then
  -- handed over to us (under a short claim): confirmed now, for our whole TTL
  if id ~= '' then forget(KEYS[4], base, id) end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, redis.call('HGET', KEYS[2], 'fence') or '0', redis.call('HGET', KEYS[2], 'acquired_ms') or '0', tonumber(ARGV[2]), uptime()}
end
if not h then h = {0, -2, ''} end
if id ~= '' then register(h[2]) end
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

// luaWake wakes up to max live notified waiters, oldest first, each on its Locker's
// channel with its turn; a waiter whose request expired or whom nobody listens for is
// dropped. Returns how many were woken.
var luaWake = luaForget + luaPublish + `
local function wake(k_waiters, base, what, max)
  local n = 0
  for _, id in ipairs(live_waiters(k_waiters, base, ` + strconv.Itoa(wakeScan) + `)) do
    local lid = string.match(id, '^(%x+)%.')
    if redis.call('EXISTS', base .. ':w:' .. id) == 0 then
      redis.call('ZREM', k_waiters, id)
    elseif lid then
      local r = publish(base .. ':ch:' .. lid, what .. ' ' .. id .. ' ' .. n)
      if r < 0 then break end
      if r > 0 then
        n = n + 1
        if n >= max then break end
      else
        forget(k_waiters, base, id)
      end
    end
  end
  return n
end

-- nudge tells the first live notified waiter that the lock was just taken for ttl ms
-- ("taken ID TTL"): it drops a planned wake-up and retries by then at the latest. Its
-- own timer follows the lease it last saw, which may end later than this one (a
-- shorter TTL, handed over or taken after an expiry). always: send it even when the
-- waiter's timer is due first (quorum mode, where it also cancels the wake-up).
local function nudge(k_waiters, base, ttl, always)
  for _, id in ipairs(live_waiters(k_waiters, base, ` + strconv.Itoa(wakeScan) + `)) do
    local lid = string.match(id, '^(%x+)%.')
    local wk = base .. ':w:' .. id
    local left = redis.call('PTTL', wk)
    if left < 0 then
      redis.call('ZREM', k_waiters, id)
    elseif lid then
      if not always and left - ` + strconv.Itoa(waiterMarginMs) + ` <= ttl + ` + strconv.Itoa(nudgeSlackMs) + ` then return end
      local r = publish(base .. ':ch:' .. lid, 'taken ' .. id .. ' ' .. ttl)
      if r < 0 then return end
      if r > 0 then return end
      forget(k_waiters, base, id)
    end
  end
end
`

// luaPublish PUBLISHes and returns the receiver count, or -1 when this user may not
// publish on the channel (an ACL user without channel rights, Redis 7's default for
// new users): the script must not fail half-way, and the waiters then find the lock
// by their own timers.
const luaPublish = `
local function publish(ch, msg)
  local r = redis.pcall('PUBLISH', ch, msg)
  if type(r) ~= 'number' then return -1 end
  return r
end
`

// luaGrant hands a free lock to the oldest live notified waiter (see the key layout).
// Returns true when one took it.
// The message goes out before the writes: nobody sees either before the script ends,
// and a waiter nobody listens for (or a user who may not publish) then costs no undo.
// It uses forget and publish: put luaWake before it.
var luaGrant = luaFence + `
local function grant(k_lock, k_owner, k_fence, k_waiters, base)
  for _, id in ipairs(live_waiters(k_waiters, base, ` + strconv.Itoa(wakeScan) + `)) do
    local lid = string.match(id, '^(%x+)%.')
    local wk = base .. ':w:' .. id
    local tok = redis.call('HGET', wk, 'token')
    if not tok then
      redis.call('ZREM', k_waiters, id)
    elseif not lid and redis.call('HGET', wk, 'fair') == '1' then
      return false -- a --fair poll waiter is first: the lock stays free for its next poll
    elseif lid then
      local fence, at_ms = next_fence(k_fence)
      local r = publish(base .. ':ch:' .. lid, 'granted ' .. id .. ' ' .. fence)
      if r < 0 then return false end
      if r > 0 then
        local claim = math.min(tonumber(redis.call('HGET', wk, 'ttl_ms')), ` + strconv.Itoa(claimMs) + `)
        redis.call('ZREM', k_waiters, id)
        redis.call('SET', k_lock, tok, 'PX', claim)
        redis.call('RENAME', wk, k_owner)
        redis.call('HSET', k_owner, 'fence', fence, 'acquired_ms', at_ms)
        redis.call('PEXPIRE', k_owner, claim)
        nudge(k_waiters, base, claim, false)
        return true
      end
      forget(k_waiters, base, id)
    end
  end
  return false
end
`

// luaFree deletes a lease and passes the lock on: in grant mode handed to the oldest
// live notified waiter (left free when there is none: poll waiters find it on their
// next try), in quorum mode by waking the first waiters.
var luaFree = luaWake + luaGrant + `
local function free(k_lock, k_owner, k_fence, k_waiters, base, mode)
  redis.call('DEL', k_lock, k_owner)
  if mode == '` + modeGrant + `' then
    grant(k_lock, k_owner, k_fence, k_waiters, base)
  else
    wake(k_waiters, base, 'released', ` + strconv.Itoa(wakeOnRelease) + `)
  end
end
`

// scriptRelease: KEYS lock, owner, fence, break, waiters; ARGV token, key base, mode.
// Compare-and-DEL, then pass the lock on: {1} or not_held.
var scriptRelease = redis.NewScript(luaHolder + luaNotHeld + luaFree + `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  free(KEYS[1], KEYS[2], KEYS[3], KEYS[5], ARGV[2], ARGV[3])
  return {1}
end
return not_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
`)

// scriptLeave takes a waiter that gives up off the list: KEYS lock, owner, fence,
// waiters; ARGV token, key base, mode, waiter id. Should the lock have been handed to
// it meanwhile, it passes it on. Returns {1} when it had been handed the lock.
var scriptLeave = redis.NewScript(luaFree + `
forget(KEYS[4], ARGV[2], ARGV[4])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  free(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3])
  return {1}
end
return {0}
`)

// scriptForget takes a waiter off the list: KEYS waiters; ARGV key base, waiter id.
// A quorum acquire that won on a majority uses it on the servers it lost, where its
// try registered it.
var scriptForget = redis.NewScript(luaForget + `
forget(KEYS[1], ARGV[1], ARGV[2])
return {1}
`)

// scriptPassOn hands on a wake-up that reached a Locker for a waiter it no longer has
// (the waiter won on other servers, or gave up and its leave has not run yet): KEYS
// waiters; ARGV key base, waiter id, what ("released" or "broken"). It forgets that
// waiter and wakes the first ones left. Returns how many were woken.
var scriptPassOn = redis.NewScript(luaWake + `
forget(KEYS[1], ARGV[1], ARGV[2])
return {wake(KEYS[1], ARGV[1], ARGV[3], ` + strconv.Itoa(wakeOnRelease) + `)}
`)

// scriptDisown passes on a lock that a release handed to a waiter that gave up (and
// whose leave did not get through): KEYS lock, owner, fence, waiters; ARGV key base,
// mode, waiter id, the waiter's token. Only while that token holds the lock under that
// grant (the owner hash of a handed-over lock keeps the waiter's id, wid) is it undone.
// Returns {1} when it was.
var scriptDisown = redis.NewScript(luaFree + `
forget(KEYS[4], ARGV[1], ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[4] and redis.call('HGET', KEYS[2], 'wid') == ARGV[3] then
  free(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
  return {1}
end
return {0}
`)

// scriptPurge deletes every key of a free lock: KEYS lock, owner, fence, waiters,
// break. Returns 0 (and deletes nothing) while the lock is held.
var scriptPurge = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {1}
`)

// scriptCountWaiters counts the live waiters: KEYS waiters; ARGV key base.
const scriptCountWaiters = `
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 999)) do
  if redis.call('EXISTS', ARGV[1] .. ':w:' .. id) == 1 then n = n + 1 end
end
return n
`
