package tui

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/lock"
)

func TestGoldenLocks(t *testing.T) {
	for _, sz := range sizes {
		t.Run("list+history/"+sz.name, func(t *testing.T) {
			f := newFake()
			m := New(fakeConfig(f, PaneLocks))
			fm := runSteps(t, m, sz.w, sz.h,
				step{want: "jobs/nightly-0002"},
				step{do: func() { handOver(f) }, keys: []tea.Msg{keyRunes("r")}, want: "handed over"},
			)
			if n := len(fm.locks.history); n != 2 {
				t.Fatalf("%d hand-overs recorded, want 2 (one handed over, one released)", n)
			}
			checkGolden(t, fm.View())
		})
		t.Run("inspect/"+sz.name, func(t *testing.T) {
			fm := runSteps(t, New(fakeConfig(newFake(), PaneLocks)), sz.w, sz.h,
				step{want: "jobs/nightly-0002"},
				step{keys: []tea.Msg{keyType(tea.KeyDown), keyType(tea.KeyEnter)}, want: "inspected"},
			)
			checkGolden(t, fm.View())
		})
		t.Run("break/"+sz.name, func(t *testing.T) {
			f := newFake()
			fm := runSteps(t, New(fakeConfig(f, PaneLocks)), sz.w, sz.h,
				step{want: "jobs/nightly-0002"},
				step{keys: []tea.Msg{keyRunes("b"), keyRunes("jobs/nightly-0000"), keyType(tea.KeyEnter)}, want: "broke jobs/nightly-0000"},
			)
			if len(f.broke) != 1 || f.broke[0] != "jobs/nightly-0000" {
				t.Fatalf("broke %v", f.broke)
			}
			checkGolden(t, fm.View())
		})
	}
}

// handOver changes the fake's locks (lock 1 gets a new holder, lock 2 is released)
// (the next refresh sees it).
func handOver(f *fakeBackend) {
	f.mu.Lock()
	next := fakeLocks(2)
	h := *next[1].Info.Holder
	h.Token, h.Fence = "tok-new", 200
	h.Owner = &lock.Owner{Host: "worker-9", PID: 777, User: "app"}
	next[1].Info.Holder = &h
	f.locks = next
	f.mu.Unlock()
}

func TestLocksBreakNeedsTheName(t *testing.T) {
	f := newFake()
	m := New(fakeConfig(f, PaneLocks))
	m.locks.setRows(fakeLocks(3), fixedNow)
	m.key(keyRunes("b"))
	if !m.locks.confirming {
		t.Fatal("b does not ask for confirmation")
	}
	for _, r := range "jobs/wrong" {
		m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	if cmd := m.key(keyType(tea.KeyEnter)); cmd != nil {
		t.Fatal("a wrong name started a break")
	}
	if !strings.Contains(m.locks.status, "not broken") {
		t.Fatalf("status %q", m.locks.status)
	}
	// q while confirming is text, not quit.
	m.key(keyRunes("b"))
	if cmd := m.key(keyRunes("q")); cmd != nil || m.locks.confirm.String() != "q" {
		t.Fatal("q while typing the confirmation quit")
	}
}

func TestLocksReadOnlyHidesBreak(t *testing.T) {
	cfg := fakeConfig(newFake(), PaneLocks)
	cfg.ReadOnly = true
	m := New(cfg)
	m.locks.setRows(fakeLocks(3), fixedNow)
	m.key(keyRunes("b"))
	if m.locks.confirming {
		t.Fatal("--read-only still offers a break")
	}
	if strings.Contains(KeysHelp(true), "break the selected lock") || !strings.Contains(KeysHelp(false), "break the selected lock") {
		t.Fatal("the help does not follow --read-only")
	}
	if !strings.Contains(m.View(), "read-only") {
		t.Fatal("the frame does not say read-only")
	}
}

func TestLocksTTLCountsDownAndExpires(t *testing.T) {
	var now atomic.Int64
	now.Store(fixedNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	p := newLocksPane(true, false)
	rows := fakeLocks(1) // 10 s left at fixedNow
	p.setRows(rows, fixedNow)
	if got := ttlText(rows[0].Info.Holder, rows[0].FetchedAt, clock()); got != "10s" {
		t.Fatalf("ttl %q, want 10s", got)
	}
	now.Add(int64(2500 * time.Millisecond))
	if got := ttlText(rows[0].Info.Holder, rows[0].FetchedAt, clock()); got != "7.5s" {
		t.Fatalf("ttl %q after 2.5 s, want 7.5s", got)
	}
	now.Add(int64(10 * time.Second))
	// The lease ran out and the next list no longer has it: an expiry, not a release.
	p.setRows(nil, clock())
	if len(p.history) != 1 || p.history[0].what != "expired" {
		t.Fatalf("history %+v, want one expiry", p.history)
	}
}

// When one lock backend fails, its locks stay listed (stale) instead of being
// reported as released.
func TestLocksPartialFailureKeepsRows(t *testing.T) {
	m := New(fakeConfig(newFake(), PaneLocks))
	rows := fakeLocks(2)
	zkRow := rows[1]
	zkRow.Backend = "zookeeper 127.0.0.1:12181"
	m.fetched(fetchedMsg{source: srcLocks, data: []LockRow{rows[0], zkRow}})
	m.sources[srcLocks].inflight = true
	m.fetched(fetchedMsg{source: srcLocks, data: []LockRow{zkRow}, err: &BackendError{Backend: "redis", Err: errors.New("redis: cannot reach")}})
	if len(m.locks.rows) != 2 || len(m.locks.history) != 0 {
		t.Fatalf("rows %d, history %+v: the failed backend's lock was dropped", len(m.locks.rows), m.locks.history)
	}
	if v := m.View(); !strings.Contains(v, "! redis UNREACHABLE") || !strings.Contains(v, "STALE") {
		t.Fatalf("frame:\n%s", v)
	}
}
