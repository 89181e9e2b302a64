package redislock

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/lock"
)

// A key is a lock only when it matches one of the formats below positively: its type,
// its value's shape and its expiry. Anything else is lock.FormatNotALock, described
// for what it is (type, size, expiry), and `break` leaves it alone unless asked with
// BreakOptions.Raw. The shapes, read from each library's source:
//
//   - dsctl: string key dsctl:lock:{NAME} = a 128-bit token in lowercase hex
//     (newToken), PX = the lease; its :owner hash names the same token.
//   - go-redsync/redsync v4 (mutex.go genValue, redis/goredis SetNX): string key = the
//     mutex name; value = 16 random bytes in standard padded base64 (24 characters
//     ending in "=="); SET NX PX = expiry. Always with a TTL.
//   - bsm/redislock (redislock.go randomToken, luaObtain): string key; value = 16 random
//     bytes in unpadded URL-safe base64 (22 characters) followed by the optional
//     metadata; SET NX PX = TTL. Always with a TTL.
//   - Redisson RLock (tryLockInnerAsync): hash key = the lock name; one field
//     "<client UUID>:<thread id>" whose value is the re-entrancy count; PEXPIRE =
//     leaseTime (the watchdog's 30 s when none is given). Always with a TTL. Waiters
//     listen on redisson_lock__channel:{name} (Redisson adds the braces unless the
//     name has some).
//
// Values made by these libraries with options that change them (redsync WithValue or
// WithGenValueFunc, redislock Options.Token) are not recognised: they are not a lock
// to dsctl, and only Raw breaks them. A random token cannot be told from a string that
// happens to have the same shape; the TTL and the checks below make that unlikely.

var (
	redissonField = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:\d+$`)
	dsctlToken    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// valueHead is how much of a string value inspect reads: enough for every token
// format and a label's worth of redislock metadata, never a whole big value.
const valueHead = 1024

// object is what a Redis key holds, as scriptDescribe reports it.
type object struct {
	key  string
	typ  string        // "none", "string", "hash", "list", ...
	ttl  time.Duration // negative: no expiry
	size int64         // bytes of a string, fields of a hash, elements, members; -1 unknown
	head string        // a string's first valueHead bytes
	// field and fieldValue are a one-field hash's only field.
	field, fieldValue string
}

// keyObject is the contract's description of a key that is not a lock.
func (o *object) keyObject() *lock.KeyObject {
	ko := &lock.KeyObject{Type: o.typ, TTLLeftMs: o.ttl.Milliseconds(), Size: o.size}
	if o.ttl < 0 {
		ko.TTLLeftMs = -1
	}
	return ko
}

func (o *object) exists() bool { return o != nil && o.typ != "none" && o.typ != "" }

// complete reports whether head is the whole string value.
func (o *object) complete() bool { return int64(len(o.head)) == o.size }

// scriptDescribe reports what each key holds: KEYS keys. For each key {type, pttl,
// size, head, field, value}: head is a string's first bytes, field and value a
// one-field hash's. One call for many keys (list) costs one round trip.
var scriptDescribe = redis.NewScript(describeLua)

var describeLua = `
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)
  if type(t) == 'table' then t = t.ok end
  if t == 'none' then
    out[i] = {'none'}
  else
    local size, head, f, v = -1, false, false, false
    if t == 'string' then
      size = redis.call('STRLEN', k)
      head = redis.call('GETRANGE', k, 0, ` + strconv.Itoa(valueHead-1) + `)
    elseif t == 'hash' then
      size = redis.call('HLEN', k)
      if size == 1 then
        local kv = redis.call('HGETALL', k)
        f, v = kv[1], kv[2]
      end
    elseif t == 'list' then size = redis.call('LLEN', k)
    elseif t == 'set' then size = redis.call('SCARD', k)
    elseif t == 'zset' then size = redis.call('ZCARD', k)
    elseif t == 'stream' then size = redis.call('XLEN', k)
    end
    out[i] = {t, redis.call('PTTL', k), size, head, f, v}
  end
end
return out
`

// parseObjects reads scriptDescribe's reply for keys.
func parseObjects(keys []string, reply any) ([]*object, error) {
	arr, ok := reply.([]any)
	if !ok || len(arr) != len(keys) {
		return nil, fmt.Errorf("unexpected describe reply %T (%d keys)", reply, len(keys))
	}
	out := make([]*object, len(keys))
	for i, v := range arr {
		row, _ := v.([]any)
		o := &object{key: keys[i], typ: "none", ttl: -1, size: -1}
		if len(row) > 0 {
			o.typ = str(row[0])
		}
		if len(row) >= 3 {
			o.ttl = pttl(num(row[1]))
			o.size = num(row[2])
		}
		if len(row) >= 4 {
			o.head = str(row[3])
		}
		if len(row) >= 6 {
			o.field, o.fieldValue = str(row[4]), str(row[5])
		}
		out[i] = o
	}
	return out, nil
}

// describe says what the key holds in a few words: "string, 5 bytes, no expiry".
func (o *object) describe() string {
	var parts []string
	parts = append(parts, o.typ)
	if o.size >= 0 {
		unit := map[string]string{"string": "byte", "hash": "field", "list": "element", "set": "member",
			"zset": "member", "stream": "entry"}[o.typ]
		if unit != "" {
			parts = append(parts, plural(o.size, unit))
		}
	}
	if o.ttl < 0 {
		parts = append(parts, "no expiry")
	} else {
		parts = append(parts, "expires in "+lock.RoundDuration(o.ttl).String())
	}
	return strings.Join(parts, ", ")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	if unit == "entry" {
		return strconv.FormatInt(n, 10) + " entries"
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

// notALockDetail is FormatDetail for a key that is not a lock.
func notALockDetail(o *object) string {
	return o.describe() + "; matches no known lock format (dsctl, redsync, redislock, Redisson)"
}

// classifyDsctl recognises dsctl's own lease at its main key: a string holding
// dsctl's token, the one the owner hash names, or a dsctl-shaped token with a TTL.
func classifyDsctl(o *object, owner map[string]string) bool {
	if o.typ != "string" || o.size == 0 || !o.complete() {
		return false
	}
	if owner["token"] != "" && owner["token"] == o.head {
		return true
	}
	return o.ttl > 0 && dsctlToken.MatchString(o.head)
}

// classifyForeign recognises another library's lock. It returns the format and holder,
// or lock.FormatNotALock and notes that say why a lock-like value is not taken for one.
func classifyForeign(o *object) (lock.Format, *lock.Holder, []string) {
	switch o.typ {
	case "string":
		if !o.complete() {
			break
		}
		f, h := classifyString(o.head)
		if f == lock.FormatNotALock {
			break
		}
		if o.ttl < 0 {
			return lock.FormatNotALock, nil, []string{fmt.Sprintf("the value has the shape of a %s token, but no expiry: %s always sets one, so it is not taken for a lock", f, libraryName(f))}
		}
		h.SetTTLLeft(o.ttl)
		return f, h, nil
	case "hash":
		if o.size != 1 {
			break
		}
		f, h := classifyHash(o.field, o.fieldValue)
		if f == lock.FormatNotALock {
			break
		}
		if o.ttl < 0 {
			return lock.FormatNotALock, nil, []string{"the hash has the shape of a Redisson RLock, but no expiry: Redisson always sets one, so it is not taken for a lock"}
		}
		h.SetTTLLeft(o.ttl)
		return f, h, nil
	}
	return lock.FormatNotALock, nil, nil
}

func libraryName(f lock.Format) string {
	switch f {
	case lock.FormatRedsync:
		return "go-redsync/redsync"
	case lock.FormatRedislock:
		return "bsm/redislock"
	case lock.FormatRedisson:
		return "Redisson"
	}
	return string(f)
}

// classifyString recognises a redsync or redislock value (TTL not checked here).
func classifyString(val string) (lock.Format, *lock.Holder) {
	if len(val) == 24 && strings.HasSuffix(val, "==") {
		if b, err := base64.StdEncoding.Strict().DecodeString(val); err == nil && len(b) == 16 {
			return lock.FormatRedsync, &lock.Holder{Token: val}
		}
	}
	if len(val) >= 22 && looksRandom(val[:22]) {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(val[:22]); err == nil && len(b) == 16 {
			h := &lock.Holder{Token: val[:22]}
			if meta := val[22:]; meta != "" {
				h.Owner = &lock.Owner{Label: meta, Tool: "bsm/redislock"}
			}
			return lock.FormatRedislock, h
		}
	}
	return lock.FormatNotALock, nil
}

// looksRandom rejects the identifiers a redislock-shaped prefix (22 characters of
// [A-Za-z0-9_-], the prefix of any longer value) most often is: all lowercase or all
// uppercase. A random 16-byte token lacks one of the two cases once in about 57,000
// tries; such a lock is then "not a lock", and only --raw breaks it.
func looksRandom(s string) bool {
	upper := strings.IndexFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) >= 0
	lower := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0
	return upper && lower
}

// classifyHash recognises a Redisson RLock's only field (TTL not checked here).
func classifyHash(field, value string) (lock.Format, *lock.Holder) {
	count, err := strconv.Atoi(value)
	if !redissonField.MatchString(field) || err != nil || count < 1 {
		return lock.FormatNotALock, nil
	}
	h := &lock.Holder{Token: field, Reentrancy: count}
	client, thread, _ := strings.Cut(field, ":")
	h.Owner = &lock.Owner{Label: "Redisson client " + client + ", thread " + thread, Tool: "Redisson"}
	return lock.FormatRedisson, h
}

// redissonChannel is where Redisson's waiters listen for the unlock message.
func redissonChannel(name string) string {
	if strings.Contains(name, "{") {
		return "redisson_lock__channel:" + name
	}
	return "redisson_lock__channel:{" + name + "}"
}

// globEscape escapes SCAN MATCH metacharacters.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
