package redislock

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// Other libraries' locks, recognised by the shape of their key's value. These are
// heuristics (a random string can look like a token), so `inspect` names the format
// it matched and what that format is.
//
//   - go-redsync/redsync: string key = the mutex name; value = 16 random bytes in
//     standard base64 (24 characters ending in "=="); PX = expiry.
//   - bsm/redislock: string key; value = 16 random bytes in unpadded URL-safe base64
//     (22 characters) followed by the optional metadata; PX = TTL.
//   - Redisson RLock: hash key = the lock name; one field "<client UUID>:<thread id>"
//     whose value is the re-entrancy count; waiters listen on
//     redisson_lock__channel:{name} (Redisson adds the braces unless the name has some).

var redissonField = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:\d+$`)

// classifyString recognises a string-valued lock.
func classifyString(val string, ttl time.Duration) (lock.Format, *lock.Holder) {
	h := &lock.Holder{Token: val}
	h.SetTTLLeft(ttl)
	if len(val) == 24 && strings.HasSuffix(val, "==") {
		if b, err := base64.StdEncoding.Strict().DecodeString(val); err == nil && len(b) == 16 {
			return lock.FormatRedsync, h
		}
	}
	if len(val) >= 22 {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(val[:22]); err == nil && len(b) == 16 {
			h.Token = val[:22]
			if meta := val[22:]; meta != "" {
				h.Owner = &lock.Owner{Label: meta, Tool: "bsm/redislock"}
			}
			return lock.FormatRedislock, h
		}
	}
	return lock.FormatString, h
}

// classifyHash recognises a hash-valued lock (Redisson RLock).
func classifyHash(fields map[string]string, ttl time.Duration) (lock.Format, *lock.Holder) {
	if len(fields) != 1 {
		return lock.FormatNotALock, nil
	}
	for f, v := range fields {
		count, err := strconv.Atoi(v)
		if !redissonField.MatchString(f) || err != nil || count < 1 {
			return lock.FormatNotALock, nil
		}
		h := &lock.Holder{Token: f, Reentrancy: count}
		client, thread, _ := strings.Cut(f, ":")
		h.Owner = &lock.Owner{Label: "Redisson client " + client + ", thread " + thread, Tool: "Redisson"}
		h.SetTTLLeft(ttl)
		return lock.FormatRedisson, h
	}
	return lock.FormatNotALock, nil
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
