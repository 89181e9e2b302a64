package snowflake

import (
	"math"
	"time"
)

// Warnings is a set of reasons to doubt a decoded ID.
type Warnings uint8

const (
	// WarnFuture: the timestamp is more than FutureSlack after now.
	WarnFuture Warnings = 1 << iota
	// WarnBeforeEpoch: bit 63 is set on a 63-bit layout whose top field is the time.
	// Generators compute (now - epoch) << shift in signed 64-bit arithmetic, so this is
	// what a generator whose clock was before the epoch produces; the time is decoded as
	// that negative offset, the other fields as usual.
	WarnBeforeEpoch
	// WarnSignBit: bit 63 is set, so Java longs, SQL BIGINT and Go int64 see a negative ID.
	WarnSignBit
	// WarnLayoutExpired: the layout's time bits have run out at now; no new IDs of this
	// layout can exist (Baidu's default layout ran out on 2024-11-20).
	WarnLayoutExpired
	// WarnUnsafeInJS: the ID is above 2^53-1, so JavaScript numbers (and JSON parsers that
	// use them) silently change it; keep it a string.
	WarnUnsafeInJS
)

// FutureSlack is how far past now a timestamp may lie before it counts as future
// (clocks of different hosts disagree by a little).
const FutureSlack = time.Second

var warningCodes = [...]struct{ code, msg string }{
	{"future", "timestamp is in the future: wrong layout or epoch, or the generator's clock ran fast"},
	{"before_epoch", "sign bit set on a 63-bit layout: made by a clock before the epoch (time decoded as negative offset)"},
	{"sign_bit", "bit 63 set: negative as a signed 64-bit integer (Java long, SQL BIGINT)"},
	{"layout_expired", "this layout's time bits have run out; it cannot mint new IDs"},
	{"js_unsafe", "above 2^53-1: JavaScript numbers change it; keep it a string"},
}

// Has reports whether all of x are set.
func (w Warnings) Has(x Warnings) bool { return w&x == x }

// Codes lists the warnings as stable snake_case codes (allocates).
func (w Warnings) Codes() []string {
	var out []string
	for i, c := range warningCodes {
		if w&(1<<uint(i)) != 0 {
			out = append(out, c.code)
		}
	}
	return out
}

// Messages lists the warnings as sentences for people (allocates).
func (w Warnings) Messages() []string {
	var out []string
	for i, c := range warningCodes {
		if w&(1<<uint(i)) != 0 {
			out = append(out, c.msg)
		}
	}
	return out
}

// MarshalJSON writes the warning codes as a JSON array.
func (w Warnings) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	b = w.appendCodes(b, ',', true)
	return append(b, ']'), nil
}

// AppendCodes appends the codes joined by sep (nothing for no warnings).
func (w Warnings) AppendCodes(dst []byte, sep byte) []byte { return w.appendCodes(dst, sep, false) }

func (w Warnings) appendCodes(dst []byte, sep byte, quoted bool) []byte {
	if w == 0 {
		return dst
	}
	first := true
	for i, c := range warningCodes {
		if w&(1<<uint(i)) == 0 {
			continue
		}
		if !first {
			dst = append(dst, sep)
		}
		first = false
		if quoted {
			dst = append(dst, '"')
		}
		dst = append(dst, c.code...)
		if quoted {
			dst = append(dst, '"')
		}
	}
	return dst
}

// Decoded is one decoded ID. It is a plain value with no pointers to fill, so
// DecodeInto can reuse one for millions of IDs.
type Decoded struct {
	ID uint64
	// Values holds each field's raw value, indexed like Layout.Fields (the time field holds
	// its raw ticks).
	Values [MaxFields]uint64
	// Ticks is the time field as a signed count of units since the epoch (negative only
	// with WarnBeforeEpoch).
	Ticks int64
	// UnixMs is the timestamp in Unix milliseconds (saturated at the int64 range).
	UnixMs int64
	// AgeMs is now minus the timestamp (negative for future IDs).
	AgeMs    int64
	Warnings Warnings
}

// Time is the timestamp as a time.Time in UTC.
func (d *Decoded) Time() time.Time { return time.UnixMilli(d.UnixMs).UTC() }

// Age is AgeMs in the compact form of AppendAge ("9y142d", "3s in the future").
func (d *Decoded) Age() string { return string(AppendAge(nil, d.AgeMs)) }

// Instant is the timestamp as an Instant.
func (d *Decoded) Instant() Instant { return Instant(d.UnixMs) }

// Decoder decodes IDs of one layout relative to one "now" (for age and warnings). It is
// immutable after NewDecoder and safe for concurrent use.
type Decoder struct {
	l          *Layout
	nowMs      int64
	base       Warnings // warnings that hold for every ID (layout expired)
	n          int
	shift      [MaxFields]uint8
	mask       [MaxFields]uint64
	timeIdx    int
	timeShift  uint
	unitMs     int64
	epochMs    int64
	maxTicks   uint64 // largest tick count whose UnixMs does not overflow
	signed63   bool
	csvHeader  []byte
	jsonKeys   [MaxFields][]byte // `"name":` for each field
	layoutKeys [MaxFields][]byte // each field's name
	layoutCSV  []byte
	layoutJS   []byte
	bigField   [MaxFields]bool // field wider than 53 bits: JSON string, not number
}

// NewDecoder prepares decoding for layout l at time now.
func NewDecoder(l *Layout, now time.Time) *Decoder {
	d := &Decoder{l: l, nowMs: now.UnixMilli(), n: len(l.fields), timeIdx: l.timeIdx,
		unitMs: l.unitMs, epochMs: l.epochMs, signed63: l.total == 63 && l.timeIdx == 0}
	if d.nowMs >= l.RunsOutMs() {
		d.base |= WarnLayoutExpired
	}
	for i, f := range l.fields {
		d.shift[i] = uint8(f.Shift)
		d.mask[i] = f.Max()
		d.jsonKeys[i] = append(append([]byte{'"'}, f.Name...), '"', ':')
		d.layoutKeys[i] = []byte(f.Name)
		d.bigField[i] = f.Bits > 53
	}
	d.timeShift = uint(l.fields[l.timeIdx].Shift)
	d.maxTicks = uint64(math.MaxInt64-l.epochMs) / uint64(l.unitMs)
	h := []byte("id,layout,timestamp,unix_ms,age")
	for _, f := range l.fields {
		if f.Role != RoleTime {
			h = append(append(h, ','), f.Name...)
		}
	}
	d.csvHeader = append(h, ",warnings"...)
	d.layoutCSV = []byte(l.name)
	d.layoutJS = append(append([]byte(`,"layout":"`), l.name...), '"')
	return d
}

// Layout is the decoder's layout.
func (d *Decoder) Layout() *Layout { return d.l }

// NowMs is the decoder's reference time in Unix ms.
func (d *Decoder) NowMs() int64 { return d.nowMs }

// Decode decodes one ID.
func (d *Decoder) Decode(id uint64) Decoded {
	var out Decoded
	d.DecodeInto(id, &out)
	return out
}

// DecodeInto decodes id into out without allocating.
func (d *Decoder) DecodeInto(id uint64, out *Decoded) {
	out.ID = id
	for i := 0; i < d.n; i++ {
		out.Values[i] = id >> d.shift[i] & d.mask[i]
	}
	w := d.base
	if id>>63 != 0 {
		w |= WarnSignBit
	}
	if id > 1<<53-1 {
		w |= WarnUnsafeInJS
	}
	raw := out.Values[d.timeIdx]
	if d.signed63 && id>>63 != 0 {
		// A signed generator with its clock before the epoch: arithmetic shift recovers the
		// negative offset; the lower fields are intact.
		w |= WarnBeforeEpoch
		t := int64(id) >> d.timeShift
		out.Ticks = t
		neg := uint64(-t)
		if neg > uint64(math.MaxInt64)/uint64(d.unitMs) {
			out.UnixMs = math.MinInt64
		} else {
			out.UnixMs = d.epochMs - int64(neg)*d.unitMs
		}
	} else {
		if raw > math.MaxInt64 {
			out.Ticks = math.MaxInt64
		} else {
			out.Ticks = int64(raw)
		}
		if raw > d.maxTicks {
			out.UnixMs = math.MaxInt64
		} else {
			out.UnixMs = d.epochMs + int64(raw)*d.unitMs
		}
	}
	out.AgeMs = subSat(d.nowMs, out.UnixMs)
	if out.UnixMs > d.nowMs+int64(FutureSlack/time.Millisecond) {
		w |= WarnFuture
	}
	out.Warnings = w
}

func subSat(a, b int64) int64 {
	r := a - b
	if (b < 0 && r < a) || (b > 0 && r > a) {
		if b < 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return r
}

// Field returns the value of the named field of a decoded ID.
func (d *Decoder) Field(v *Decoded, name string) (uint64, bool) {
	for i, f := range d.l.fields {
		if f.Name == name {
			return v.Values[i], true
		}
	}
	return 0, false
}

// NamedValue is one field of a decoded ID, for table output.
type NamedValue struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Fields lists the non-time fields of a decoded ID in layout order (allocates).
func (d *Decoder) Fields(v *Decoded) []NamedValue {
	out := make([]NamedValue, 0, d.n-1)
	for i, f := range d.l.fields {
		if f.Role != RoleTime {
			out = append(out, NamedValue{f.Name, v.Values[i]})
		}
	}
	return out
}
