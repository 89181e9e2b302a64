package snowflake

import (
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CheckOptions bounds what a Checker lists (it always counts everything).
type CheckOptions struct {
	// MaxListed caps each list in the report: duplicates, out-of-order pairs, clock steps
	// per worker, lines per duplicate (0 means 100).
	MaxListed int
	// Now is the reference time for warnings (zero means time.Now()).
	Now time.Time
}

// Checker diagnoses a stream of IDs of one layout: duplicates, ordering, per-worker clock
// trouble and rates.
//
// Memory: finding duplicates needs every distinct ID. They live in an open-addressing
// hash set of uint64 (8 bytes a slot, at most 3/4 full, doubling when it fills): 10.7 to
// 21.3 bytes per distinct ID, and 1.5 times that for a moment while it doubles
// (TestCheckerMemory measures it; a Go map costs 25 to 38). So 10 million IDs take about
// 110 to 215 MB. On top of that: about 150 bytes per distinct worker (node-field
// combination) and the capped example lists. Nothing else grows with the input.
type Checker struct {
	l        *Layout
	d        *Decoder
	max      int
	seen     idSet
	dups     map[uint64]*Duplicate
	dupOrder []uint64
	nDupOcc  int
	workers  map[uint64]*workerState
	count    int
	minMs    int64
	maxMs    int64
	prevID   uint64
	prevLine int
	ooo      int
	oooList  []OrderPair
	warned   [8]int
	v        Decoded
}

type workerState struct {
	rep      WorkerReport
	prevID   uint64
	prevMs   int64
	prevLine int
	minMs    int64
	maxMs    int64
}

// NewChecker starts a check of IDs of layout l.
func NewChecker(l *Layout, opt CheckOptions) *Checker {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	max := opt.MaxListed
	if max <= 0 {
		max = 100
	}
	return &Checker{l: l, d: NewDecoder(l, now), max: max,
		dups: make(map[uint64]*Duplicate), workers: make(map[uint64]*workerState),
		minMs: math.MaxInt64, maxMs: math.MinInt64}
}

// Add records the next ID of the stream; line is where it came from (for the report).
func (c *Checker) Add(id uint64, line int) {
	c.count++
	c.d.DecodeInto(id, &c.v)
	ms := c.v.UnixMs
	for i := range c.warned {
		if c.v.Warnings&(1<<uint(i)) != 0 {
			c.warned[i]++
		}
	}
	if ms < c.minMs {
		c.minMs = ms
	}
	if ms > c.maxMs {
		c.maxMs = ms
	}
	if !c.seen.add(id) {
		c.nDupOcc++
		d := c.dups[id]
		if d == nil {
			d = &Duplicate{ID: id, Count: 1}
			c.dups[id] = d
			c.dupOrder = append(c.dupOrder, id)
		}
		d.Count++
		if len(d.RepeatLines) < c.max {
			d.RepeatLines = append(d.RepeatLines, line)
		}
	}
	if c.count > 1 && id < c.prevID {
		c.ooo++
		if len(c.oooList) < c.max {
			c.oooList = append(c.oooList, OrderPair{PrevLine: c.prevLine, PrevID: c.prevID, Line: line, ID: id})
		}
	}
	c.prevID, c.prevLine = id, line

	key := id & c.l.nodeMsk
	w := c.workers[key]
	if w == nil {
		w = &workerState{minMs: ms, maxMs: ms, rep: WorkerReport{Worker: c.workerLabel(), Steps: []ClockStep{}}}
		w.rep.Fields = c.workerFields()
		c.workers[key] = w
	} else {
		if id < w.prevID {
			w.rep.OutOfOrder++
		}
		if ms < w.prevMs {
			step := w.prevMs - ms
			w.rep.ClockSteps++
			if step > w.rep.MaxStepMs {
				w.rep.MaxStepMs = step
			}
			if len(w.rep.Steps) < c.max {
				w.rep.Steps = append(w.rep.Steps, ClockStep{PrevLine: w.prevLine, Line: line,
					From: Instant(w.prevMs), To: Instant(ms), StepMs: step})
			}
		}
		if ms < w.minMs {
			w.minMs = ms
		}
		if ms > w.maxMs {
			w.maxMs = ms
		}
	}
	w.rep.Count++
	w.prevID, w.prevMs, w.prevLine = id, ms, line
}

func (c *Checker) workerLabel() string {
	var b []byte
	for i, f := range c.l.fields {
		if f.Role != RoleNode {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, f.Name...)
		b = append(b, '=')
		b = strconv.AppendUint(b, c.v.Values[i], 10)
	}
	if len(b) == 0 {
		return "all"
	}
	return string(b)
}

func (c *Checker) workerFields() []NamedValue {
	out := []NamedValue{}
	for i, f := range c.l.fields {
		if f.Role == RoleNode {
			out = append(out, NamedValue{f.Name, c.v.Values[i]})
		}
	}
	return out
}

// Duplicate is an ID seen more than once.
type Duplicate struct {
	ID    uint64 `json:"id,string"`
	Count int    `json:"count"`
	// RepeatLines are the lines of the second and later occurrences (the first one's line
	// is not kept: that would double the memory per ID).
	RepeatLines []int `json:"repeat_lines"`
}

// OrderPair is an ID that is smaller than the one before it.
type OrderPair struct {
	PrevLine int    `json:"prev_line"`
	PrevID   uint64 `json:"prev_id,string"`
	Line     int    `json:"line"`
	ID       uint64 `json:"id,string"`
}

// ClockStep is a worker's time going backwards between two of its IDs.
type ClockStep struct {
	PrevLine int     `json:"prev_line"`
	Line     int     `json:"line"`
	From     Instant `json:"from"`
	To       Instant `json:"to"`
	StepMs   int64   `json:"step_ms"`
}

// WorkerReport is one generator's share of the stream.
type WorkerReport struct {
	Worker string       `json:"worker"` // e.g. "datacenter=1,worker=3"; "all" when the layout has no node fields
	Fields []NamedValue `json:"fields"`
	Count  int          `json:"count"`
	First  Instant      `json:"first"`
	Last   Instant      `json:"last"`
	// IDsPerSecond is Count over the time from First to Last; nil (JSON null) when they
	// are the same instant, where a rate means nothing.
	IDsPerSecond *float64 `json:"ids_per_second"`
	OutOfOrder   int      `json:"out_of_order"`
	// ClockSkewSuspect: this worker's time went backwards at least once.
	ClockSkewSuspect bool        `json:"clock_skew_suspect"`
	ClockSteps       int         `json:"clock_steps"`
	MaxStepMs        int64       `json:"max_step_ms"`
	Steps            []ClockStep `json:"steps"`
}

// CheckReport is the result of a check.
type CheckReport struct {
	Layout         string         `json:"layout"`
	Count          int            `json:"count"`
	Distinct       int            `json:"distinct"`
	First          Instant        `json:"first"`
	Last           Instant        `json:"last"`
	SpanMs         int64          `json:"span_ms"`
	Duplicates     []Duplicate    `json:"duplicates"`
	DuplicateIDs   int            `json:"duplicate_ids"`   // distinct IDs seen more than once
	DuplicateExtra int            `json:"duplicate_extra"` // occurrences beyond the first
	OutOfOrder     int            `json:"out_of_order"`    // adjacent pairs where the ID decreases
	OutOfOrderList []OrderPair    `json:"out_of_order_pairs"`
	Workers        []WorkerReport `json:"workers"`
	SkewSuspects   []string       `json:"clock_skew_suspects"`
	Warnings       map[string]int `json:"warnings"` // warning code -> number of IDs
	Truncated      bool           `json:"truncated"`
}

// Report summarises what was added so far. It can be called more than once.
func (c *Checker) Report() CheckReport {
	r := CheckReport{Layout: c.l.name, Count: c.count, Distinct: c.seen.len(), Duplicates: []Duplicate{},
		OutOfOrder: c.ooo, OutOfOrderList: append([]OrderPair{}, c.oooList...), Workers: []WorkerReport{},
		SkewSuspects: []string{}, Warnings: map[string]int{}, DuplicateIDs: len(c.dups), DuplicateExtra: c.nDupOcc}
	if c.count > 0 {
		r.First, r.Last, r.SpanMs = Instant(c.minMs), Instant(c.maxMs), subSat(c.maxMs, c.minMs)
	}
	for i, id := range c.dupOrder {
		if i >= c.max {
			r.Truncated = true
			break
		}
		d := *c.dups[id]
		d.RepeatLines = append([]int{}, d.RepeatLines...)
		r.Duplicates = append(r.Duplicates, d)
	}
	if c.ooo > len(c.oooList) {
		r.Truncated = true
	}
	for i, n := range c.warned {
		if n > 0 && i < len(warningCodes) {
			r.Warnings[warningCodes[i].code] = n
		}
	}
	for _, w := range c.workers {
		rep := w.rep
		rep.Steps = append([]ClockStep{}, rep.Steps...)
		rep.First, rep.Last = Instant(w.minMs), Instant(w.maxMs)
		if span := subSat(w.maxMs, w.minMs); span > 0 {
			rate := float64(rep.Count) * 1000 / float64(span)
			rep.IDsPerSecond = &rate
		}
		rep.ClockSkewSuspect = rep.ClockSteps > 0
		if rep.ClockSteps > len(rep.Steps) {
			r.Truncated = true
		}
		r.Workers = append(r.Workers, rep)
	}
	sort.Slice(r.Workers, func(i, j int) bool { return lessFields(r.Workers[i].Fields, r.Workers[j].Fields) })
	for _, w := range r.Workers {
		if w.ClockSkewSuspect {
			r.SkewSuspects = append(r.SkewSuspects, w.Worker)
		}
	}
	return r
}

func lessFields(a, b []NamedValue) bool {
	for i := range a {
		if i >= len(b) {
			return false
		}
		if a[i].Value != b[i].Value {
			return a[i].Value < b[i].Value
		}
	}
	return len(a) < len(b)
}

// String is a one-line summary, for logs and test failures.
func (r CheckReport) String() string {
	var b strings.Builder
	b.WriteString(r.Layout)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(r.Count))
	b.WriteString(" ids, ")
	b.WriteString(strconv.Itoa(r.DuplicateIDs))
	b.WriteString(" duplicated, ")
	b.WriteString(strconv.Itoa(r.OutOfOrder))
	b.WriteString(" out of order, ")
	b.WriteString(strconv.Itoa(len(r.SkewSuspects)))
	b.WriteString(" skew suspects")
	return b.String()
}

// idSet is a set of uint64 with linear probing. Slot value 0 means empty; the ID 0 is
// tracked on the side.
type idSet struct {
	slots   []uint64
	n       int // IDs in slots
	hasZero bool
	shift   uint // 64 - log2(len(slots))
}

func (s *idSet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

// add inserts id and reports whether it was new.
func (s *idSet) add(id uint64) bool {
	if id == 0 {
		if s.hasZero {
			return false
		}
		s.hasZero = true
		return true
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := (id * 0x9E3779B97F4A7C15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = id
			s.n++
			return true
		case id:
			return false
		}
	}
}

func (s *idSet) grow() {
	size := 2 * len(s.slots)
	if size == 0 {
		size = 1024
	}
	old := s.slots
	s.slots = make([]uint64, size)
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	s.n = 0
	mask := uint64(size - 1)
	for _, id := range old {
		if id == 0 {
			continue
		}
		i := (id * 0x9E3779B97F4A7C15) >> s.shift
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = id
		s.n++
	}
}
