package snowflake

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// fakeClock is a hand-driven clock: Now returns t (then advances it by step), Sleep
// advances t by d and records it.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	step   time.Duration
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.step)
	return now
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.t = c.t.Add(d)
	c.sleeps = append(c.sleeps, d)
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s time.Duration
	for _, d := range c.sleeps {
		s += d
	}
	return s
}

var genStart = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

func newGen(t *testing.T, layout string, clk Clock, nodes map[string]int64, policy RollbackPolicy, max time.Duration) *Generator {
	t.Helper()
	g, err := NewGenerator(GeneratorConfig{Layout: mustPreset(t, layout), Nodes: nodes, Clock: clk, OnRollback: policy, MaxRollback: max})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestSequenceExhaustionWaitsForNextTick(t *testing.T) {
	clk := &fakeClock{t: genStart.Add(300 * time.Microsecond)} // frozen inside one ms
	g := newGen(t, "twitter", clk, map[string]int64{"worker": 2}, RollbackWait, 0)
	d := NewDecoder(g.Layout(), genStart)
	var prev uint64
	for i := 0; i < 4096; i++ {
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id <= prev {
			t.Fatalf("id %d not above %d", id, prev)
		}
		prev = id
		v := d.Decode(id)
		if seq, _ := d.Field(&v, "sequence"); seq != uint64(i) || v.UnixMs != genStart.UnixMilli() {
			t.Fatalf("id %d: seq %d at %s", i, seq, v.Instant())
		}
	}
	if clk.slept() != 0 {
		t.Fatalf("slept %s before the sequence ran out", clk.slept())
	}
	id, err := g.Next() // the 4097th: must wait for the next millisecond
	if err != nil {
		t.Fatal(err)
	}
	v := d.Decode(id)
	if seq, _ := d.Field(&v, "sequence"); seq != 0 || v.UnixMs != genStart.UnixMilli()+1 {
		t.Errorf("after exhaustion: seq %d at %s, want 0 at next ms", seq, v.Instant())
	}
	if s := clk.slept(); s != 700*time.Microsecond {
		t.Errorf("slept %s, want the 700µs to the next tick", s)
	}
	if id <= prev {
		t.Error("not increasing across the tick")
	}
}

func TestClockRollback(t *testing.T) {
	tests := []struct {
		name    string
		policy  RollbackPolicy
		max     time.Duration
		back    time.Duration
		wantErr string
		minWait time.Duration
	}{
		{"wait within the default 1s", RollbackWait, 0, 500 * time.Millisecond, "", 500 * time.Millisecond},
		{"wait, just at 1s", RollbackWait, 0, time.Second, "", time.Second},
		{"wait, beyond 1s fails", RollbackWait, 0, 2 * time.Second, "moved backwards (2s behind the last ID after waiting 0s); more than the 1s", 0},
		{"wait with a larger max", RollbackWait, 3 * time.Second, 2 * time.Second, "", 2 * time.Second},
		{"fail at once", RollbackFail, 0, time.Millisecond, "moved backwards (1ms behind the last ID); refusing to generate (rollback policy fail)", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: genStart}
			g := newGen(t, "twitter", clk, nil, tt.policy, tt.max)
			first, err := g.Next()
			if err != nil {
				t.Fatal(err)
			}
			clk.set(genStart.Add(-tt.back))
			id, err := g.Next()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				var re *ClockRollbackError
				if !errors.As(err, &re) || re.Behind != tt.back || re.Policy != tt.policy {
					t.Errorf("errors.As: %+v", re)
				}
				if errs.KindOf(err) != errs.KindRuntime {
					t.Errorf("kind %v, want runtime", errs.KindOf(err))
				}
				if clk.slept() != 0 {
					t.Errorf("slept %s before failing", clk.slept())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id <= first {
				t.Errorf("id %d not above %d after rollback", id, first)
			}
			if clk.slept() < tt.minWait {
				t.Errorf("slept %s, want at least %s", clk.slept(), tt.minWait)
			}
		})
	}
}

func TestGeneratorErrors(t *testing.T) {
	tw := mustPreset(t, "twitter")
	for _, tt := range []struct {
		name  string
		l     *Layout
		nodes map[string]int64
		want  string
	}{
		{"worker too big", tw, map[string]int64{"worker": 32}, "worker 32 is out of range 0..31 for layout twitter (5 bits)"},
		{"negative", tw, map[string]int64{"datacenter": -1}, "datacenter -1 is out of range 0..31"},
		{"unknown field", tw, map[string]int64{"shard": 1}, `layout twitter has no node field "shard"`},
		{"sequence is not a node", tw, map[string]int64{"sequence": 1}, `no node field "sequence"`},
		{"baidu worker", mustPreset(t, "baidu"), map[string]int64{"worker": 1 << 22}, "worker 4194304 is out of range 0..4194303"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGenerator(GeneratorConfig{Layout: tt.l, Nodes: tt.nodes})
			if err == nil || !strings.Contains(err.Error(), tt.want) || errs.KindOf(err) != errs.KindUsage {
				t.Errorf("err %v, want usage error %q", err, tt.want)
			}
		})
	}
	_, err := NewGenerator(GeneratorConfig{Layout: tw, Nodes: map[string]int64{"shard": 1}})
	if !strings.Contains(err.Error(), "datacenter (0..31), worker (0..31)") {
		t.Errorf("hint should list node fields: %v", err)
	}

	// Baidu's default layout ran out in November 2024.
	g, _ := NewGenerator(GeneratorConfig{Layout: mustPreset(t, "baidu"), Clock: &fakeClock{t: genStart.AddDate(1, 0, 0)}})
	if _, err := g.Next(); err == nil || !strings.Contains(err.Error(), "ran out on 2024-11-20T13:24:16.000Z") {
		t.Errorf("expired baidu: %v", err)
	}
	// A clock before the epoch.
	g, _ = NewGenerator(GeneratorConfig{Layout: mustPreset(t, "sonyflake-v2"), Clock: &fakeClock{t: genStart}})
	if _, err := g.Next(); err == nil || !strings.Contains(err.Error(), "before the layout's epoch") {
		t.Errorf("before epoch: %v", err)
	}
	if _, err := ParseRollbackPolicy("later"); err == nil || !strings.Contains(err.Error(), `"later"`) {
		t.Errorf("policy: %v", err)
	}
	if p, err := ParseRollbackPolicy(" FAIL "); err != nil || p != RollbackFail || p.String() != "fail" {
		t.Errorf("policy fail: %v %v", p, err)
	}
}

// Round trip for every preset: the decoder reads back the node values, the clock's time
// (truncated to the unit) and a sequence that counts up; IDs strictly increase across a
// sequence rollover.
func TestRoundTripEveryPreset(t *testing.T) {
	for _, l := range Presets() {
		t.Run(l.Name(), func(t *testing.T) {
			at := time.Date(2025, 7, 9, 8, 7, 6, 543_210_000, time.UTC)
			if l.Expired(at) {
				at = time.UnixMilli(l.RunsOutMs()).Add(-365 * 24 * time.Hour)
			}
			nodes := map[string]int64{}
			for i, f := range l.NodeFields() {
				nodes[f.Name] = int64(f.Max()) - int64(i) // distinctive: max, max-1, ...
			}
			clk := &fakeClock{t: at, step: time.Microsecond}
			g, err := NewGenerator(GeneratorConfig{Layout: l, Nodes: nodes, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(l, at)
			sq, _ := l.SequenceField()
			n := int(sq.Max()) + 10 // cross one rollover
			if n > 20000 {
				n = 20000
			}
			var prev uint64
			for i := 0; i < n; i++ {
				before := clk.t
				id, err := g.Next()
				if err != nil {
					t.Fatal(err)
				}
				if i > 0 && id <= prev {
					t.Fatalf("id %d: %d not above %d", i, id, prev)
				}
				prev = id
				v := d.Decode(id)
				for name, want := range nodes {
					if got, _ := d.Field(&v, name); got != uint64(want) {
						t.Fatalf("%s = %d, want %d", name, got, want)
					}
				}
				unit := l.Unit().Milliseconds()
				floor := (before.UnixMilli()-l.EpochMs())/unit*unit + l.EpochMs()
				if v.UnixMs < floor || v.UnixMs > clk.t.UnixMilli() {
					t.Fatalf("id %d: time %s outside [%s, %s]", i, v.Instant(), Instant(floor), Instant(clk.t.UnixMilli()))
				}
				if v.Warnings&^(WarnUnsafeInJS|WarnSignBit|WarnLayoutExpired) != 0 {
					t.Fatalf("warnings %v", v.Warnings.Codes())
				}
			}
		})
	}
}

func TestNoDuplicatesRealClock(t *testing.T) {
	g := newGen(t, "twitter", nil, map[string]int64{"worker": 1}, RollbackWait, 0)
	const n = 200_000
	var prev uint64
	for i := 0; i < n; i++ {
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id <= prev {
			t.Fatalf("id %d: %d not above %d", i, id, prev)
		}
		prev = id
	}
	// Concurrent callers share one generator: still no duplicates.
	const workers, each = 4, 25_000
	ids := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id, err := g.Next()
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := make(map[uint64]bool, workers*each)
	for id := range ids {
		if seen[id] || id <= prev {
			t.Fatalf("duplicate or stale id %d", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d ids, want %d", len(seen), workers*each)
	}
}

func TestHumanDurationAndRollbackMessage(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second / 3:        "1.667s",
		1234567 * time.Nanosecond:  "1.235ms",
		850*time.Microsecond + 123: "850µs",
		90*time.Second + 123456789: "1m30.123s",
		-(5 * time.Second / 3):     "-1.667s",
		0:                          "0s",
	} {
		if got := HumanDuration(d).String(); got != want {
			t.Errorf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
	e := &ClockRollbackError{Layout: "twitter", Behind: 5 * time.Second / 3, Waited: 1000000001, Max: time.Second, Policy: RollbackWait}
	if want := "layout twitter: the clock moved backwards (1.667s behind the last ID after waiting 1s); more than the 1s the wait policy allows"; e.Error() != want {
		t.Errorf("%s\nwant %s", e, want)
	}
}
