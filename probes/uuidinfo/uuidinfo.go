// Package uuidinfo recognises UUIDs by their form and decodes them per RFC 9562: version,
// variant, and for the time-based versions the timestamp, clock sequence and node.
//
// Parsing, version and variant come from github.com/gofrs/uuid/v5, which reads v6
// timestamps correctly (github.com/google/uuid has open bugs there); the few remaining
// fields are read here. Pure: no printing, no globals that change.
package uuidinfo

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/uuid/v5"

	"github.com/dsctl/dsctl/probes/errs"
)

// LooksLikeUUID reports whether s has a UUID's form rather than a number's, so a caller
// can route it here (and report a malformed UUID as such). True for: a urn:uuid: prefix,
// a leading '{', any '-' after the first character, or exactly 32 hex digits that are not
// all decimal. A leading '-' is a negative number, not a UUID.
func LooksLikeUUID(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) == 0 {
		return false
	}
	if strings.HasPrefix(strings.ToLower(s), "urn:uuid:") || s[0] == '{' || strings.IndexByte(s[1:], '-') >= 0 {
		return true
	}
	if len(s) != 32 {
		return false
	}
	letters := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			letters = true
		default:
			return false
		}
	}
	return letters
}

// Warning is one reason for attention.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Info is a decoded UUID. Optional parts are nil when the version has no such field.
type Info struct {
	UUID        string `json:"uuid"` // canonical lower-case form
	Version     int    `json:"version"`
	VersionName string `json:"version_name"`
	Variant     string `json:"variant"`
	// Special is "nil" or "max" for the two special UUIDs of RFC 9562, else "".
	Special string `json:"special,omitempty"`
	// Time is the embedded timestamp (v1, v6: 100-ns precision; v7: ms; v2: the low 32
	// bits are replaced by the local ID, so it is only good to about 7 minutes).
	Time *time.Time `json:"-"`
	// Timestamp is Time as RFC 3339 UTC (7 fraction digits for v1/v2/v6, 3 for v7).
	Timestamp string `json:"timestamp,omitempty"`
	// UnixMs is Time in Unix milliseconds (rounded down).
	UnixMs        *int64 `json:"unix_ms,omitempty"`
	TimePrecision string `json:"time_precision,omitempty"`
	// ClockSequence is the 14-bit clock sequence of v1 and v6 (6 bits for v2).
	ClockSequence *int `json:"clock_sequence,omitempty"`
	// Node is the 48-bit node of v1, v2 and v6 as xx:xx:xx:xx:xx:xx.
	Node string `json:"node,omitempty"`
	// NodeIsMAC: the node's multicast bit is clear, so per RFC 9562 §6.10 it is an IEEE
	// 802 address (random nodes must set that bit): the UUID reveals the host's NIC.
	NodeIsMAC *bool `json:"node_is_mac,omitempty"`
	// Domain and LocalID are the DCE security fields of v2.
	Domain  string  `json:"domain,omitempty"`
	LocalID *uint32 `json:"local_id,omitempty"`
	// Notes explain what the rest of the bits are (random, hash, custom).
	Notes    []string  `json:"notes"`
	Warnings []Warning `json:"warnings"`
}

var versionNames = [16]string{
	0: "unknown",
	1: "time-based (Gregorian, 100 ns)",
	2: "DCE security",
	3: "name-based (MD5)",
	4: "random",
	5: "name-based (SHA-1)",
	6: "reordered time-based (Gregorian, 100 ns)",
	7: "Unix time (ms)",
	8: "custom",
}

// Decode parses s (canonical 8-4-4-4-12, {braced}, urn:uuid:, or 32 hex digits, any
// case, surrounding spaces allowed) and decodes it. now decides the "future" warning.
// Malformed input is an errs.Usage error naming it.
func Decode(s string, now time.Time) (Info, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 9 && strings.EqualFold(t[:9], "urn:uuid:") {
		t = "urn:uuid:" + t[9:]
	}
	u, err := uuid.FromString(t)
	if err != nil {
		return Info{}, errs.Usage("uuid %s: malformed: %s", quote(s), describe(t, err)).
			WithHint("want 8-4-4-4-12 hex digits, e.g. 017f22e2-79b0-7cc3-98c4-dc0c0c07398f")
	}
	return decode(u, now), nil
}

// describe turns gofrs's parse errors into words about the input.
func describe(t string, err error) string {
	switch {
	case errors.Is(err, uuid.ErrIncorrectLength):
		return "length " + strconv.Itoa(len(t)) + " (want 36 with dashes, 32 without, 38 in braces or 45 with urn:uuid:)"
	case errors.Is(err, uuid.ErrInvalidDashes):
		return "dashes not at positions 9, 14, 19 and 24"
	case errors.Is(err, uuid.ErrInvalidBraces):
		return "unbalanced braces"
	case errors.Is(err, uuid.ErrInvalidURNPrefix):
		return "bad urn:uuid: prefix"
	case errors.Is(err, uuid.ErrInvalidFormat):
		return "not hex digits"
	}
	return "not a UUID"
}

func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "...(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return strconv.Quote(s)
}

// gregorianToUnix100ns is the number of 100-ns intervals from 1582-10-15 to 1970-01-01.
const gregorianToUnix100ns = 0x01B21DD213814000

func decode(u uuid.UUID, now time.Time) Info {
	in := Info{UUID: u.String(), Notes: []string{}, Warnings: []Warning{}}
	switch u.Variant() {
	case uuid.VariantNCS:
		in.Variant = "NCS (reserved)"
	case uuid.VariantRFC9562:
		in.Variant = "RFC 9562"
	case uuid.VariantMicrosoft:
		in.Variant = "Microsoft (reserved)"
	default:
		in.Variant = "future (reserved)"
	}
	switch u {
	case uuid.Nil:
		in.Special, in.VersionName = "nil", "nil UUID"
		in.Notes = append(in.Notes, "all 128 bits zero (RFC 9562 §5.9): a placeholder, not an identifier")
		return in
	case uuid.Max:
		in.Special, in.VersionName = "max", "max UUID"
		in.Notes = append(in.Notes, "all 128 bits one (RFC 9562 §5.10): a sentinel, not an identifier")
		return in
	}
	if u.Variant() != uuid.VariantRFC9562 {
		in.VersionName = "unknown"
		in.Warnings = append(in.Warnings, Warning{"not_rfc9562_variant",
			"variant bits are not 10: version and fields are not defined by RFC 9562"})
		return in
	}
	in.Version = int(u.Version())
	in.VersionName = versionNames[in.Version]
	if in.VersionName == "" {
		in.VersionName = "unknown"
		in.Warnings = append(in.Warnings, Warning{"unknown_version",
			"version " + strconv.Itoa(in.Version) + " is not defined by RFC 9562"})
	}
	switch in.Version {
	case 1, 6:
		var ts uuid.Timestamp
		if in.Version == 1 {
			ts, _ = uuid.TimestampFromV1(u)
		} else {
			ts, _ = uuid.TimestampFromV6(u)
		}
		setGregorian(&in, uint64(ts), "100ns")
		setClockAndNode(&in, u, int(u[8]&0x3f)<<8|int(u[9]))
	case 2:
		// time_low holds the local ID and clock_seq_low the domain (DCE 1.1 §11.5.1).
		local := uint32(u[0])<<24 | uint32(u[1])<<16 | uint32(u[2])<<8 | uint32(u[3])
		in.LocalID = &local
		in.Domain = dceDomain(u[9])
		ticks := uint64(u[6]&0x0f)<<56 | uint64(u[7])<<48 | uint64(u[4])<<40 | uint64(u[5])<<32
		setGregorian(&in, ticks, "~7min")
		setClockAndNode(&in, u, int(u[8]&0x3f))
	case 3:
		in.Notes = append(in.Notes, "MD5 hash of a namespace and a name; the name cannot be recovered")
	case 4:
		in.Notes = append(in.Notes, "122 random bits; no time or node inside")
	case 5:
		in.Notes = append(in.Notes, "SHA-1 hash of a namespace and a name; the name cannot be recovered")
	case 7:
		ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
		t := time.UnixMilli(ms).UTC()
		in.Time, in.UnixMs, in.TimePrecision = &t, &ms, "1ms"
		in.Timestamp = t.Format("2006-01-02T15:04:05.000Z07:00")
		in.Notes = append(in.Notes, "48-bit Unix ms timestamp, then 74 bits that are random or a counter (RFC 9562 §5.7)")
	case 8:
		in.Notes = append(in.Notes, "122 bits laid out by the vendor (RFC 9562 §5.8); nothing standard to decode")
	}
	if in.Time != nil && in.Time.After(now.Add(time.Second)) {
		in.Warnings = append(in.Warnings, Warning{"future", "timestamp is in the future"})
	}
	return in
}

func setGregorian(in *Info, ticks uint64, precision string) {
	d := int64(ticks) - gregorianToUnix100ns // 60-bit ticks fit int64
	sec, rem := d/1e7, d%1e7
	if rem < 0 {
		sec, rem = sec-1, rem+1e7
	}
	t := time.Unix(sec, rem*100).UTC()
	ms := sec*1000 + rem/1e4
	in.Time, in.UnixMs, in.TimePrecision = &t, &ms, precision
	in.Timestamp = t.Format("2006-01-02T15:04:05.0000000Z07:00")
}

func setClockAndNode(in *Info, u uuid.UUID, clockSeq int) {
	in.ClockSequence = &clockSeq
	node := u[10:16]
	var b strings.Builder
	for i, c := range node {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	in.Node = b.String()
	isMAC := node[0]&0x01 == 0
	in.NodeIsMAC = &isMAC
	if isMAC {
		in.Warnings = append(in.Warnings, Warning{"node_is_mac",
			"node " + in.Node + " has its multicast bit clear, so it is a real MAC address: this UUID reveals the generating host's network card (and when it was made)"})
	} else {
		in.Notes = append(in.Notes, "node has the multicast bit set: a random node ID, not a MAC address")
	}
}

func dceDomain(b byte) string {
	switch b {
	case 0:
		return "person (uid)"
	case 1:
		return "group (gid)"
	case 2:
		return "org"
	}
	return "domain " + strconv.Itoa(int(b))
}
