package tui

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/health"
)

func TestGoldenOverview(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			fm := runSteps(t, New(fakeConfig(newFake(), PaneOverview)), sz.w, sz.h, step{want: "ensemble HEALTHY"})
			// Every source has answered once the counts show.
			fm = waitCounts(t, fm)
			checkGolden(t, fm.View())
		})
	}
}

// waitCounts checks the frame has every count (the final model holds them all once
// the last refresh arrived).
func waitCounts(t *testing.T, m *Model) *Model {
	t.Helper()
	v := m.View()
	for _, want := range []string{"3 held of 3", "12 topics", "ensemble HEALTHY", "connected"} {
		if !strings.Contains(v, want) {
			t.Fatalf("overview lacks %q:\n%s", want, v)
		}
	}
	return m
}

func TestBackendStates(t *testing.T) {
	ok := health.Result{OK: true, LatencyMs: 2, Detail: "v"}
	bad := health.Result{OK: false}
	unwell := health.Result{OK: true, State: health.Degraded, Warning: "member 3 is down"}
	for _, c := range []struct {
		rs   []health.Result
		want string
	}{
		{[]health.Result{ok, ok}, stateConnected},
		{[]health.Result{ok, bad}, stateDegraded},
		{[]health.Result{unwell}, stateDegraded},
		{[]health.Result{bad, bad}, stateUnreachable},
	} {
		if got, _, _ := backendState(c.rs); got != c.want {
			t.Errorf("%v: %s, want %s", c.rs, got, c.want)
		}
	}
}

// A backend that goes down gets a banner and is retried with backoff, never more
// than one refresh at a time; when it answers again the banner goes.
func TestBannerBackoffAndRecovery(t *testing.T) {
	var now atomic.Int64
	now.Store(fixedNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	f := newFake()
	cfg := fakeConfig(f, PaneKafka)
	cfg.Refresh, cfg.Now = time.Second, clock
	m := New(cfg)
	// Run one refresh of every source synchronously.
	drain := func(cmd func() []any) {}
	_ = drain
	refresh := func(force bool) int {
		n := 0
		for _, name := range sourceOrder {
			s := m.sources[name]
			if s == nil || s.inflight || (!force && m.now.Before(s.next)) {
				continue
			}
			s.inflight = true
			msg := m.fetch(name)()
			m.fetched(msg.(fetchedMsg))
			n++
		}
		return n
	}
	refresh(true)
	if strings.Contains(m.View(), "UNREACHABLE") {
		t.Fatal("a banner while everything answers")
	}
	f.setDown("kafka", true)
	waits := []time.Duration{}
	for i := 0; i < 6; i++ {
		s := m.sources[srcKafka]
		now.Store(s.next.UnixNano())
		m.now = clock()
		refresh(false)
		waits = append(waits, s.next.Sub(m.now))
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("backoff after %d failures: %v, want %v (all %v)", i+1, waits[i], want[i], waits)
		}
	}
	v := m.View()
	if !strings.Contains(v, "! kafka UNREACHABLE: cannot reach") {
		t.Fatalf("no kafka banner:\n%s", v)
	}
	if m.kafka.data == nil || !strings.Contains(v, "orders.v0") {
		t.Fatal("the last good data was dropped while kafka is down")
	}
	if !strings.Contains(v, "STALE") {
		t.Fatalf("the old data is not marked stale:\n%s", v)
	}
	// Overlapping refreshes are skipped: a source in flight is not started again.
	m.sources[srcKafka].inflight = true
	before := m.refreshes
	m.refreshDue(true)
	for _, name := range sourceOrder {
		if s := m.sources[name]; s != nil {
			s.inflight = false
		}
	}
	if got := m.refreshes - before; got != len(m.sources)-1 {
		t.Fatalf("forced refresh started %d sources, want %d (kafka was in flight)", got, len(m.sources)-1)
	}
	f.setDown("kafka", false)
	now.Store(m.sources[srcKafka].next.UnixNano())
	m.now = clock()
	refresh(false)
	if v := m.View(); strings.Contains(v, "UNREACHABLE") {
		t.Fatalf("the banner stayed after kafka recovered:\n%s", v)
	}
}

func TestGoldenBanner(t *testing.T) {
	f := newFake()
	f.setDown("kafka", true)
	f.setDown("redis", true)
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			fm := runSteps(t, New(fakeConfig(f, PaneOverview)), sz.w, sz.h, step{want: "redis UNREACHABLE"})
			fm = runUntil(t, fm, func(v string) bool { return strings.Contains(v, "kafka UNREACHABLE") })
			checkGolden(t, fm.View())
		})
	}
}

// runUntil checks a condition on the final frame.
func runUntil(t *testing.T, m *Model, ok func(string) bool) *Model {
	t.Helper()
	if !ok(m.View()) {
		t.Fatalf("frame:\n%s", m.View())
	}
	return m
}
