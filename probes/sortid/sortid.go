// Package sortid decodes the time-sortable text IDs that carry a timestamp: ULID (48-bit
// Unix milliseconds + 80 random bits, Crockford base32, 26 characters) and KSUID (32-bit
// seconds since 2014-05-13T16:53:20Z + 128 random bits, base62, 27 characters), and
// checks a stream of ULIDs for order and monotonicity. Parsing is the libraries'
// (github.com/oklog/ulid/v2, github.com/segmentio/ksuid).
package sortid

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/segmentio/ksuid"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

// Kinds.
const (
	KindULID  = "ulid"
	KindKSUID = "ksuid"
)

// Info is one decoded ULID or KSUID.
type Info struct {
	// ID is the canonical text (ULIDs upper-case).
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Timestamp is RFC 3339 UTC with milliseconds; KSUIDs carry whole seconds.
	Timestamp     string `json:"timestamp"`
	UnixMs        int64  `json:"unix_ms"`
	Age           string `json:"age"`
	TimePrecision string `json:"time_precision"`
	// Random is the random part in hex (80 bits for a ULID, 128 for a KSUID).
	Random   string    `json:"random"`
	Warnings []Warning `json:"warnings"`
}

// Warning is a reason to doubt an ID.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Detect names the kind an ID's form says it is ("" for neither): 26 Crockford base32
// characters whose first is 0-7 is a ULID, 27 base62 characters a KSUID.
func Detect(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case len(s) == ulid.EncodedSize && isCrockford(s) && s[0] >= '0' && s[0] <= '7' && !allDigits(s):
		return KindULID
	case len(s) == 27 && isBase62(s) && !allDigits(s):
		return KindKSUID
	}
	return ""
}

// ParseKind checks a --layout value: "ulid" or "ksuid" (any case), else "".
func ParseKind(layout string) string {
	switch strings.ToLower(strings.TrimSpace(layout)) {
	case KindULID:
		return KindULID
	case KindKSUID:
		return KindKSUID
	}
	return ""
}

// Decode decodes s as kind (KindULID or KindKSUID; "" detects it), relative to now.
func Decode(s, kind string, now time.Time) (Info, error) {
	s = strings.TrimSpace(s)
	if kind == "" {
		kind = Detect(s)
	}
	switch kind {
	case KindULID:
		return decodeULID(s, now)
	case KindKSUID:
		return decodeKSUID(s, now)
	}
	return Info{}, errs.Usage("%q is neither a ULID (26 characters of Crockford base32) nor a KSUID (27 of base62)", clip(s))
}

func decodeULID(s string, now time.Time) (Info, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return Info{}, errs.Usage("%q is not a ULID: %v", clip(s), err).
			WithHint("a ULID is 26 characters of Crockford base32 (0-9, A-Z without I, L, O, U), the first 0-7")
	}
	ms := int64(id.Time())
	entropy := id.Entropy()
	info := Info{ID: id.String(), Kind: KindULID, UnixMs: ms, TimePrecision: "1ms", Random: hex.EncodeToString(entropy)}
	info.fill(now)
	return info, nil
}

func decodeKSUID(s string, now time.Time) (Info, error) {
	id, err := ksuid.Parse(s)
	if err == nil && !isBase62(s) {
		err = fmt.Errorf("it holds characters outside base62")
	}
	if err != nil {
		return Info{}, errs.Usage("%q is not a KSUID: %v", clip(s), err).
			WithHint("a KSUID is 27 base62 characters (0-9, A-Z, a-z)")
	}
	info := Info{ID: id.String(), Kind: KindKSUID, UnixMs: id.Time().UnixMilli(), TimePrecision: "1s",
		Random: hex.EncodeToString(id.Payload())}
	info.fill(now)
	return info, nil
}

func (i *Info) fill(now time.Time) {
	i.Timestamp = snowflake.Instant(i.UnixMs).String()
	age := now.UnixMilli() - i.UnixMs
	i.Age = string(snowflake.AppendAge(nil, age))
	i.Warnings = []Warning{}
	if age < -int64(snowflake.FutureSlack/time.Millisecond) {
		i.Warnings = append(i.Warnings, Warning{"future", "timestamp is in the future: the generator's clock ran fast, or this is not a " + strings.ToUpper(i.Kind)})
	}
}

func isCrockford(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lower case letters
		if !(s[i] >= '0' && s[i] <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return false
		}
	}
	return true
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 48 {
		return s[:48] + "..."
	}
	return s
}

// String is a one-line summary, for tests and logs.
func (i Info) String() string { return fmt.Sprintf("%s %s %s", i.Kind, i.ID, i.Timestamp) }
