package snowflake

import (
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// CustomName is the name custom layouts carry.
const CustomName = "custom"

// sequenceNames are the field names a custom spec treats as the per-tick sequence.
var sequenceNames = map[string]bool{"sequence": true, "seq": true, "increment": true, "step": true, "counter": true}

// timeNames are field names that make a field the time field even without a unit (1ms).
var timeNames = map[string]bool{"time": true, "timestamp": true, "ts": true}

// reservedNames are output columns a field may not shadow.
var reservedNames = map[string]bool{"id": true, "layout": true, "timestamp": true, "unix_ms": true, "age": true, "warnings": true, "fields": true}

// ParseSpec parses a custom layout spec such as "time:41:1ms,datacenter:5,worker:5,sequence:12":
// comma-separated name:bits[:unit] fields, most significant first. The field with a unit
// (or named time, timestamp or ts, unit 1ms) is the time field; a field named sequence,
// seq, increment, step or counter is the sequence; the others are node fields. Names are
// lower-cased letters, digits and underscores.
func ParseSpec(spec string, epoch time.Time) (*Layout, error) {
	in := spec
	bad := func(format string, args ...any) error {
		return errs.Usage("layout %s: %s", quote(in), sprintf(format, args...)).
			WithHint("want name:bits[:unit],... most significant first, e.g. time:41:1ms,datacenter:5,worker:5,sequence:12")
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, bad("empty")
	}
	parts := strings.Split(spec, ",")
	if len(parts) > MaxFields {
		return nil, bad("%d fields; at most %d are supported", len(parts), MaxFields)
	}
	fields := make([]Field, 0, len(parts))
	var unit time.Duration
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, bad("field %d is empty", i+1)
		}
		tok := strings.Split(p, ":")
		if len(tok) < 2 || len(tok) > 3 {
			return nil, bad("field %s: want name:bits or name:bits:unit", quote(p))
		}
		name := strings.ToLower(strings.TrimSpace(tok[0]))
		if !validName(name) {
			return nil, bad("field %s: name %s must start with a letter and hold only a-z, 0-9 and _ (at most 32)", quote(p), quote(tok[0]))
		}
		nb, err := strconv.Atoi(strings.TrimSpace(tok[1]))
		if err != nil || nb < 1 || nb > 64 {
			return nil, bad("field %s: bits %s is not a number 1..64", quote(p), quote(tok[1]))
		}
		f := Field{Name: name, Bits: nb, Role: RoleNode}
		switch {
		case len(tok) == 3:
			u, err := parseUnit(strings.TrimSpace(tok[2]))
			if err != nil {
				return nil, bad("field %s: %s", quote(p), err.Error())
			}
			unit, f.Role = u, RoleTime
		case timeNames[name]:
			unit, f.Role = time.Millisecond, RoleTime
		case sequenceNames[name]:
			f.Role = RoleSequence
		}
		if f.Role != RoleTime && reservedNames[name] {
			return nil, bad("field %s: %q is an output column name; pick another", quote(p), name)
		}
		fields = append(fields, f)
	}
	// NewLayout checks counts, uniqueness and totals; re-wrap its message to name the spec.
	times := 0
	for _, f := range fields {
		if f.Role == RoleTime {
			times++
		}
	}
	if times == 0 {
		return nil, bad("no time field; give one as name:bits:unit, e.g. time:41:1ms")
	}
	l, err := NewLayout(CustomName, fields, unit, epoch)
	if err != nil {
		msg := err.(*errs.Error).Msg
		msg = strings.TrimPrefix(msg, "layout "+CustomName+": ")
		return nil, bad("%s", msg)
	}
	return l, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func parseUnit(s string) (time.Duration, error) {
	u, err := time.ParseDuration(s)
	if err != nil {
		return 0, errs.Usage("unit %s is not a duration like 1ms, 10ms, 1s", quote(s))
	}
	if u < time.Millisecond || u > time.Hour {
		return 0, errs.Usage("unit %s is out of range; want 1ms..1h", quote(s))
	}
	if u%time.Millisecond != 0 {
		return 0, errs.Usage("unit %s is not a whole number of milliseconds", quote(s))
	}
	return u, nil
}

// ParseEpoch parses an epoch given as RFC 3339 ("2020-01-01T00:00:00Z", any offset), a
// date ("2020-01-01", UTC midnight) or Unix milliseconds ("1288834974657"). The result is
// UTC and lies in 1970..9999.
func ParseEpoch(s string) (time.Time, error) {
	in := s
	s = strings.TrimSpace(s)
	bad := func(why string) error {
		return errs.Usage("epoch %s: %s", quote(in), why).
			WithHint("want RFC 3339 (2020-01-01T00:00:00Z), a date (2020-01-01) or Unix milliseconds (1288834974657)")
	}
	if s == "" {
		return time.Time{}, bad("empty")
	}
	var t time.Time
	if allDigits(s) {
		if len(s) > 15 {
			return time.Time{}, bad("too large for Unix milliseconds")
		}
		ms, _ := strconv.ParseInt(s, 10, 64)
		if ms >= 1e9 && ms < 1e11 {
			return time.Time{}, bad("looks like Unix seconds; give milliseconds (append 000)")
		}
		t = time.UnixMilli(ms).UTC()
	} else if strings.HasPrefix(s, "-") && allDigits(s[1:]) && len(s) > 1 {
		return time.Time{}, bad("before 1970")
	} else if tt, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = tt.UTC()
	} else if tt, err := time.Parse("2006-01-02", s); err == nil {
		t = tt
	} else {
		return time.Time{}, bad("not a timestamp")
	}
	if t.Before(minEpoch) {
		return time.Time{}, bad("before 1970")
	}
	if t.After(maxEpoch) {
		return time.Time{}, bad("after 9999")
	}
	return t, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Resolve turns --layout and --epoch values into a layout. layout is a preset name
// (case-insensitive) or a custom spec (anything containing ':'). epoch is optional for
// presets (it replaces the preset's epoch) and required for custom specs. "auto" is not
// a layout: rank with Rank instead.
func Resolve(layout, epoch string) (*Layout, error) {
	if strings.Contains(layout, ":") {
		if strings.TrimSpace(epoch) == "" {
			return nil, errs.Usage("layout %s: a custom layout needs an epoch", quote(layout)).
				WithHint("give --epoch as RFC 3339 or Unix milliseconds")
		}
		e, err := ParseEpoch(epoch)
		if err != nil {
			return nil, err
		}
		return ParseSpec(layout, e)
	}
	l, err := Preset(layout)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(epoch) == "" {
		return l, nil
	}
	e, err := ParseEpoch(epoch)
	if err != nil {
		return nil, err
	}
	return l.WithEpoch(e)
}
