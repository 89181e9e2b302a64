// Package snowflake decodes, generates and checks snowflake-style 64-bit IDs: a time field
// (ticks since an epoch) followed by node fields (worker, datacenter, shard ...) and a
// per-tick sequence, packed most significant first.
//
// The package is pure: no printing, no globals that change, no I/O except through the
// readers and writers a caller passes in. Bad user input comes back as errs.Usage errors
// that name the input.
//
// Hot paths (Decoder.DecodeInto, Decoder.AppendCSV, Decoder.AppendJSON, ParseIDBytes and
// Generator.Next) do not allocate.
package snowflake

import (
	"math"
	"math/bits"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// MaxFields is the most fields a layout may have. It keeps Decoded a fixed-size value so
// decoding needs no allocation.
const MaxFields = 16

// Role says what a field holds.
type Role uint8

const (
	// RoleNode identifies the generator: worker, datacenter, machine, shard, process.
	RoleNode Role = iota
	// RoleTime is the timestamp: ticks of the layout's unit since its epoch.
	RoleTime
	// RoleSequence counts IDs within one tick on one node.
	RoleSequence
)

func (r Role) String() string {
	switch r {
	case RoleTime:
		return "time"
	case RoleSequence:
		return "sequence"
	default:
		return "node"
	}
}

// MarshalText makes a Role print as its name in JSON and YAML.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Field is one bit field of a layout.
type Field struct {
	Name string `json:"name"`
	Bits int    `json:"bits"`
	Role Role   `json:"role"`
	// Shift is the position of the field's least significant bit (set by NewLayout).
	Shift int `json:"shift"`
}

// Max is the largest value the field holds.
func (f Field) Max() uint64 {
	if f.Bits >= 64 {
		return math.MaxUint64
	}
	return 1<<uint(f.Bits) - 1
}

// Layout is a validated, immutable bit layout with its time unit and epoch.
type Layout struct {
	name    string
	note    string
	fields  []Field
	unit    time.Duration
	epoch   time.Time
	total   int
	timeIdx int
	seqIdx  int // -1 when the layout has no sequence field
	epochMs int64
	unitMs  int64
	nodeMsk uint64 // all node-field bits
}

// NewLayout validates fields (most significant first) and builds a layout. Shift and the
// time field's role are filled in; the time field is the one with Role RoleTime.
// Rules: 1..MaxFields fields, unique names, exactly one time field, at most one sequence
// field, each field 1..64 bits, the total 63 (bit 63 is a sign bit left at 0) or 64, unit a
// whole number of milliseconds from 1ms to 1h, epoch from 1970 to 9999.
func NewLayout(name string, fields []Field, unit time.Duration, epoch time.Time) (*Layout, error) {
	l := &Layout{name: name, unit: unit, epoch: epoch.UTC(), timeIdx: -1, seqIdx: -1}
	if len(fields) == 0 {
		return nil, errs.Usage("layout %s: no fields", quoteName(name))
	}
	if len(fields) > MaxFields {
		return nil, errs.Usage("layout %s: %d fields; at most %d are supported", quoteName(name), len(fields), MaxFields)
	}
	seen := make(map[string]bool, len(fields))
	for i, f := range fields {
		if f.Bits < 1 || f.Bits > 64 {
			return nil, errs.Usage("layout %s: field %q has %d bits; want 1..64", quoteName(name), f.Name, f.Bits)
		}
		if seen[f.Name] {
			return nil, errs.Usage("layout %s: field name %q used twice; names must be unique", quoteName(name), f.Name)
		}
		seen[f.Name] = true
		switch f.Role {
		case RoleTime:
			if l.timeIdx >= 0 {
				return nil, errs.Usage("layout %s: two time fields (%q and %q); want exactly one", quoteName(name), fields[l.timeIdx].Name, f.Name)
			}
			l.timeIdx = i
		case RoleSequence:
			if l.seqIdx >= 0 {
				return nil, errs.Usage("layout %s: two sequence fields (%q and %q); want at most one", quoteName(name), fields[l.seqIdx].Name, f.Name)
			}
			l.seqIdx = i
		}
		l.total += f.Bits
	}
	if l.timeIdx < 0 {
		return nil, errs.Usage("layout %s: no time field; give one as name:bits:unit, e.g. time:41:1ms", quoteName(name))
	}
	if l.total != 63 && l.total != 64 {
		return nil, errs.Usage("layout %s: fields add up to %d bits; want 63 (the sign bit stays 0) or 64", quoteName(name), l.total)
	}
	if err := checkUnit(name, unit); err != nil {
		return nil, err
	}
	if err := checkEpoch(epoch); err != nil {
		return nil, errs.Usage("layout %s: %s", quoteName(name), err.(*errs.Error).Msg)
	}
	l.fields = make([]Field, len(fields))
	copy(l.fields, fields)
	shift := l.total
	for i := range l.fields {
		shift -= l.fields[i].Bits
		l.fields[i].Shift = shift
		if l.fields[i].Role == RoleNode {
			l.nodeMsk |= l.fields[i].Max() << uint(shift)
		}
	}
	l.epochMs = l.epoch.UnixMilli()
	l.unitMs = unit.Milliseconds()
	return l, nil
}

func quoteName(name string) string {
	if name == "" {
		return `""`
	}
	return name
}

func checkUnit(name string, unit time.Duration) error {
	if unit < time.Millisecond || unit > time.Hour {
		return errs.Usage("layout %s: time unit %s is out of range; want 1ms..1h", quoteName(name), unit)
	}
	if unit%time.Millisecond != 0 {
		return errs.Usage("layout %s: time unit %s is not a whole number of milliseconds", quoteName(name), unit)
	}
	return nil
}

// minEpoch and maxEpoch bound the epochs a layout accepts.
var (
	minEpoch = time.Unix(0, 0).UTC()
	maxEpoch = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC)
)

func checkEpoch(t time.Time) error {
	if t.Before(minEpoch) || t.After(maxEpoch) {
		return errs.Usage("epoch %s is out of range; want 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999Z", t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// WithEpoch returns a copy of the layout with another epoch (e.g. Instagram-style layouts
// whose epoch is chosen per deployment).
func (l *Layout) WithEpoch(epoch time.Time) (*Layout, error) {
	if err := checkEpoch(epoch); err != nil {
		return nil, err
	}
	c := *l
	c.epoch = epoch.UTC()
	c.epochMs = c.epoch.UnixMilli()
	return &c, nil
}

// Name is the preset name, or "custom".
func (l *Layout) Name() string { return l.name }

// Note says where the preset comes from and anything surprising about it.
func (l *Layout) Note() string { return l.note }

// Fields returns the fields, most significant first (a copy).
func (l *Layout) Fields() []Field {
	c := make([]Field, len(l.fields))
	copy(c, l.fields)
	return c
}

// NumFields is len(Fields()) without the copy.
func (l *Layout) NumFields() int { return len(l.fields) }

// FieldAt returns field i (0 is the most significant).
func (l *Layout) FieldAt(i int) Field { return l.fields[i] }

// TimeField returns the time field.
func (l *Layout) TimeField() Field { return l.fields[l.timeIdx] }

// SequenceField returns the sequence field, if the layout has one.
func (l *Layout) SequenceField() (Field, bool) {
	if l.seqIdx < 0 {
		return Field{}, false
	}
	return l.fields[l.seqIdx], true
}

// NodeFields returns the fields that identify a generator, most significant first.
func (l *Layout) NodeFields() []Field {
	var out []Field
	for _, f := range l.fields {
		if f.Role == RoleNode {
			out = append(out, f)
		}
	}
	return out
}

// WorkerFieldName is the field a generic --worker flag should set: the field named
// "worker" if there is one, else the least significant node field ("" when none).
func (l *Layout) WorkerFieldName() string {
	last := ""
	for _, f := range l.fields {
		if f.Role == RoleNode {
			if f.Name == "worker" {
				return f.Name
			}
			last = f.Name
		}
	}
	return last
}

// TotalBits is 63 (bit 63 is a sign bit that should be 0) or 64.
func (l *Layout) TotalBits() int { return l.total }

// Unit is the length of one time tick.
func (l *Layout) Unit() time.Duration { return l.unit }

// Epoch is the instant time tick 0 stands for.
func (l *Layout) Epoch() time.Time { return l.epoch }

// EpochMs is Epoch in Unix milliseconds.
func (l *Layout) EpochMs() int64 { return l.epochMs }

// RunsOutMs is the Unix millisecond at which the time field overflows (the first instant
// the layout cannot encode), saturated at math.MaxInt64.
func (l *Layout) RunsOutMs() int64 {
	tb := l.fields[l.timeIdx].Bits
	if tb >= 63 {
		return math.MaxInt64
	}
	hi, lo := bits.Mul64(uint64(1)<<uint(tb), uint64(l.unitMs))
	if hi != 0 || lo > uint64(math.MaxInt64-l.epochMs) {
		return math.MaxInt64
	}
	return l.epochMs + int64(lo)
}

// Expired reports whether the time bits have run out at now.
func (l *Layout) Expired(now time.Time) bool { return now.UnixMilli() >= l.RunsOutMs() }

// Info describes a layout's capacity.
type Info struct {
	Name                string  `json:"name"`
	Note                string  `json:"note,omitempty"`
	Fields              []Field `json:"fields"`
	TotalBits           int     `json:"total_bits"`
	SignBit             bool    `json:"sign_bit"` // bit 63 is an unused sign bit
	TimeBits            int     `json:"time_bits"`
	Unit                string  `json:"unit"`
	Epoch               Instant `json:"epoch"`
	RunsOut             Instant `json:"runs_out"`
	LifetimeYears       float64 `json:"lifetime_years"`
	Expired             bool    `json:"expired"`
	MaxPerSecondPerNode float64 `json:"max_ids_per_second_per_node"`
	Nodes               uint64  `json:"nodes"`
}

// Info reports bits, unit, epoch, the date the time bits run out, the most IDs per second
// one node can mint (sequence values per tick / tick length) and how many nodes the node
// fields address. now decides Expired.
func (l *Layout) Info(now time.Time) Info {
	runsOut := l.RunsOutMs()
	in := Info{
		Name:          l.name,
		Note:          l.note,
		Fields:        l.Fields(),
		TotalBits:     l.total,
		SignBit:       l.total == 63,
		TimeBits:      l.fields[l.timeIdx].Bits,
		Unit:          l.unit.String(),
		Epoch:         Instant(l.epochMs),
		RunsOut:       Instant(runsOut),
		LifetimeYears: float64(runsOut-l.epochMs) / float64(msPerYear),
		Expired:       now.UnixMilli() >= runsOut,
		Nodes:         1,
	}
	perTick := 1.0
	if l.seqIdx >= 0 {
		perTick = math.Ldexp(1, l.fields[l.seqIdx].Bits)
	}
	in.MaxPerSecondPerNode = perTick * 1000 / float64(l.unitMs)
	nodeBits := 0
	for _, f := range l.fields {
		if f.Role == RoleNode {
			nodeBits += f.Bits
		}
	}
	if nodeBits >= 64 {
		in.Nodes = math.MaxUint64
	} else {
		in.Nodes = 1 << uint(nodeBits)
	}
	return in
}

const msPerYear = 365.2425 * 24 * 3600 * 1000
