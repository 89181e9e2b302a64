package snowflake

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// Clock is the generator's time source. Tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits about d. It may return early: callers re-read Now.
	Sleep(d time.Duration)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Sleep sleeps for waits over 2ms (less a millisecond of timer slack) and otherwise only
// yields, so a caller polling for the next millisecond wakes within microseconds of it.
func (systemClock) Sleep(d time.Duration) {
	if d > 2*time.Millisecond {
		time.Sleep(d - time.Millisecond)
		return
	}
	runtime.Gosched()
}

// SystemClock is the real wall clock.
func SystemClock() Clock { return systemClock{} }

// RollbackPolicy says what the generator does when the clock moves backwards.
type RollbackPolicy int

const (
	// RollbackWait waits for the clock to catch up, at most MaxRollback, then fails.
	RollbackWait RollbackPolicy = iota
	// RollbackFail fails at once.
	RollbackFail
)

func (p RollbackPolicy) String() string {
	if p == RollbackFail {
		return "fail"
	}
	return "wait"
}

// ParseRollbackPolicy parses "wait" or "fail".
func ParseRollbackPolicy(s string) (RollbackPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "wait":
		return RollbackWait, nil
	case "fail":
		return RollbackFail, nil
	}
	return 0, errs.Usage("clock rollback policy %s: unknown; want wait or fail", quote(s))
}

// DefaultMaxRollback is how long RollbackWait waits for a clock that went backwards.
const DefaultMaxRollback = time.Second

// GeneratorConfig configures a Generator.
type GeneratorConfig struct {
	Layout *Layout
	// Nodes sets node fields by name, e.g. {"datacenter": 1, "worker": 3}. Missing node
	// fields are 0. Values are int64 so negative flag values get a range error.
	Nodes map[string]int64
	// OnRollback is the policy when the clock goes backwards (default RollbackWait).
	OnRollback RollbackPolicy
	// MaxRollback bounds the wait under RollbackWait (0 means DefaultMaxRollback).
	MaxRollback time.Duration
	// Clock is the time source (nil means SystemClock()).
	Clock Clock
}

// Generator mints IDs of one layout for one node: strictly increasing, never repeated.
// When a tick's sequence is used up it waits for the next tick. It is safe for
// concurrent use.
type Generator struct {
	mu          sync.Mutex
	l           *Layout
	clock       Clock
	policy      RollbackPolicy
	maxRollback time.Duration
	base        uint64 // the node fields, already shifted
	timeShift   uint
	seqShift    uint
	seqMax      uint64
	timeMax     int64
	epochMs     int64
	unitMs      int64
	last        int64 // tick of the last ID; -1 before the first
	seq         uint64
}

// NewGenerator checks the node values against the layout and builds a generator.
// Errors are errs.Usage and name the field and its range.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	l := cfg.Layout
	if l == nil {
		return nil, errs.Usage("generate: no layout")
	}
	g := &Generator{l: l, clock: cfg.Clock, policy: cfg.OnRollback, maxRollback: cfg.MaxRollback,
		epochMs: l.epochMs, unitMs: l.unitMs, last: -1}
	if g.clock == nil {
		g.clock = SystemClock()
	}
	if g.maxRollback <= 0 {
		g.maxRollback = DefaultMaxRollback
	}
	if g.policy != RollbackWait && g.policy != RollbackFail {
		return nil, errs.Usage("generate: unknown clock rollback policy %d", int(g.policy))
	}
	tf := l.fields[l.timeIdx]
	g.timeShift = uint(tf.Shift)
	g.timeMax = int64(tf.Max() >> 1) // keep ticks in int64; a 64-bit time field is not a use case
	if tf.Bits < 64 {
		g.timeMax = int64(tf.Max())
	}
	if sq, ok := l.SequenceField(); ok {
		g.seqShift = uint(sq.Shift)
		g.seqMax = sq.Max()
	}
	names := make([]string, 0, len(cfg.Nodes))
	for name := range cfg.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := cfg.Nodes[name]
		f, ok := l.fieldByName(name)
		if !ok || f.Role != RoleNode {
			return nil, errs.Usage("layout %s has no node field %q", l.name, name).
				WithHint("its node fields: %s", nodeList(l))
		}
		if v < 0 || uint64(v) > f.Max() {
			return nil, errs.Usage("%s %d is out of range 0..%d for layout %s (%d bits)", name, v, f.Max(), l.name, f.Bits)
		}
		g.base |= uint64(v) << uint(f.Shift)
	}
	return g, nil
}

func (l *Layout) fieldByName(name string) (Field, bool) {
	for _, f := range l.fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func nodeList(l *Layout) string {
	var s []string
	for _, f := range l.fields {
		if f.Role == RoleNode {
			s = append(s, fmt.Sprintf("%s (0..%d)", f.Name, f.Max()))
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Layout is the generator's layout.
func (g *Generator) Layout() *Layout { return g.l }

// Next returns the next ID. Errors: the clock went backwards (see ClockRollbackError),
// the clock is before the layout's epoch, or the layout's time bits have run out.
func (g *Generator) Next() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	t, err := g.tick(now)
	if err != nil {
		return 0, err
	}
	if t < g.last {
		if t, err = g.recover(now); err != nil {
			return 0, err
		}
	}
	if t == g.last {
		g.seq++
		if g.seq > g.seqMax {
			if t, err = g.waitFor(g.last + 1); err != nil {
				return 0, err
			}
			g.seq = 0
		}
	} else {
		g.seq = 0
	}
	if t > g.timeMax {
		return 0, errs.New(errs.KindRuntime, "layout %s: its %d time bits ran out on %s; it cannot mint IDs after that",
			g.l.name, g.l.fields[g.l.timeIdx].Bits, Instant(g.l.RunsOutMs())).
			WithHint("pick a layout with a later epoch or more time bits")
	}
	g.last = t
	return uint64(t)<<g.timeShift | g.base | g.seq<<g.seqShift, nil
}

func (g *Generator) tick(now time.Time) (int64, error) {
	ms := now.UnixMilli()
	if ms < g.epochMs {
		return 0, errs.New(errs.KindRuntime, "layout %s: the clock (%s) is before the layout's epoch (%s)",
			g.l.name, Instant(ms), Instant(g.epochMs)).WithHint("check the host clock, or the epoch")
	}
	return (ms - g.epochMs) / g.unitMs, nil
}

// startNs is the Unix nanosecond at which tick t begins.
func (g *Generator) startNs(t int64) int64 { return (g.epochMs + t*g.unitMs) * int64(time.Millisecond) }

// waitFor waits until the clock reaches tick target and returns the tick it reached.
func (g *Generator) waitFor(target int64) (int64, error) {
	for {
		now := g.clock.Now()
		t, err := g.tick(now)
		if err != nil {
			return 0, err
		}
		if t >= target {
			return t, nil
		}
		if t < g.last {
			return g.recover(now)
		}
		g.clock.Sleep(time.Duration(g.startNs(target) - now.UnixNano()))
	}
}

// recover handles a clock that is behind the last ID's tick, per the rollback policy.
func (g *Generator) recover(now time.Time) (int64, error) {
	var waited time.Duration
	for {
		behind := time.Duration(g.startNs(g.last) - now.UnixNano())
		if behind <= 0 {
			return g.tick(now)
		}
		if g.policy == RollbackFail || waited+behind > g.maxRollback {
			e := &ClockRollbackError{Layout: g.l.name, Behind: behind, Waited: waited, Policy: g.policy, Max: g.maxRollback}
			return 0, errs.New(errs.KindRuntime, "%s", e.Error()).Wrap(e).
				WithHint("check the host clock (NTP); under the wait policy a larger max rollback waits longer")
		}
		g.clock.Sleep(behind)
		waited += behind
		now = g.clock.Now()
		t, err := g.tick(now)
		if err != nil {
			return 0, err
		}
		if t >= g.last {
			return t, nil
		}
	}
}

// ClockRollbackError reports a clock that went backwards past what the policy allows.
type ClockRollbackError struct {
	Layout string
	Behind time.Duration // how far the clock is behind the last ID's tick
	Waited time.Duration // how long the generator already waited
	Policy RollbackPolicy
	Max    time.Duration
}

func (e *ClockRollbackError) Error() string {
	if e.Policy == RollbackFail {
		return fmt.Sprintf("layout %s: the clock moved backwards (%s behind the last ID); refusing to generate (rollback policy fail)",
			e.Layout, HumanDuration(e.Behind))
	}
	return fmt.Sprintf("layout %s: the clock moved backwards (%s behind the last ID after waiting %s); more than the %s the wait policy allows",
		e.Layout, HumanDuration(e.Behind), HumanDuration(e.Waited), HumanDuration(e.Max))
}

// HumanDuration rounds a measured duration for people: to the millisecond from a second
// up ("1.667s", not "1.666666666s"), to the microsecond below.
func HumanDuration(d time.Duration) time.Duration {
	if d >= time.Second || d <= -time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
