package supervisor

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// The schedule is pure: these tests drive it with made-up times, as if this process
// had been stopped, had slept, or had got renewals at odd moments.

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func testSchedule(onLost OnLost, ttl, grace time.Duration) *schedule {
	lease := &lock.Lease{Name: "x", TTL: ttl, AcquiredAt: t0, ExpiresAt: t0.Add(ttl - lock.ClockDrift(ttl))}
	return newSchedule(onLost, newTiming(ttl, grace, 0), lease)
}

func TestScheduleTimes(t *testing.T) {
	ttl := 10 * time.Second
	end := t0.Add(ttl - lock.ClockDrift(ttl)) // 9.898s
	margin := Margin(ttl)                     // 500ms
	for _, c := range []struct {
		onLost OnLost
		first  time.Time
	}{
		{OnLostTerm, end.Add(-margin - 2*time.Second)},
		{OnLostKill, end.Add(-margin)},
		{OnLostIgnore, end},
	} {
		s := testSchedule(c.onLost, ttl, 2*time.Second)
		if got := s.next(); !got.Equal(c.first) {
			t.Errorf("%s: first action at %s, want %s", c.onLost, got.Sub(t0), c.first.Sub(t0))
		}
	}
	s := testSchedule(OnLostTerm, ttl, 2*time.Second)
	if sig := s.fire(s.next(), s.next(), time.Time{}); sig != termSignal {
		t.Fatalf("first action sends %v", sig)
	}
	if got := s.next(); !got.Equal(end.Add(-margin)) {
		t.Fatalf("SIGKILL at %s, want %s", got.Sub(t0), end.Add(-margin).Sub(t0))
	}
	if sig := s.fire(s.next(), s.next(), time.Time{}); sig != os.Kill || !s.next().IsZero() {
		t.Fatalf("second action sends %v, then next %s", sig, s.next())
	}
	if s.lost.Reason != lock.LostUnreachable || !strings.Contains(s.lost.Action, "SIGTERM 2.5s before the lease's end") ||
		!strings.Contains(s.lost.Action, "still running 2s later, SIGKILL 500ms before the lease's end") {
		t.Fatalf("lost %+v", s.lost)
	}
}

// A renewal that succeeds after SIGTERM does not push SIGKILL past grace; one that
// succeeds before moves the whole schedule.
func TestRenewalMovesTheScheduleOnlyBeforeSIGTERM(t *testing.T) {
	ttl := 10 * time.Second
	s := testSchedule(OnLostTerm, ttl, 2*time.Second)
	first := s.next()
	renewedAt := t0.Add(3 * time.Second)
	s.renewed(&lock.Lease{AcquiredAt: renewedAt, ExpiresAt: renewedAt.Add(ttl - lock.ClockDrift(ttl))}, s.offset)
	if got := s.next(); got.Sub(first) != 3*time.Second {
		t.Fatalf("after a renewal 3s later the schedule moved by %s", got.Sub(first))
	}
	termAt := s.next()
	s.fire(termAt, termAt, time.Time{})
	later := termAt.Add(time.Second)
	s.renewed(&lock.Lease{AcquiredAt: later, ExpiresAt: later.Add(ttl)}, s.offset)
	if got := s.next(); !got.Equal(termAt.Add(2 * time.Second)) {
		t.Fatalf("SIGKILL at %s after SIGTERM at %s with --grace 2s", got.Sub(t0), termAt.Sub(t0))
	}
}

// Woken up past the lease's end (SIGSTOP, starvation): SIGKILL at once, no SIGTERM
// first, and the reason says this process did not run.
func TestStalledPastTheDeadlineKillsAtOnce(t *testing.T) {
	s := testSchedule(OnLostTerm, time.Second, 200*time.Millisecond)
	due := s.next()
	now := t0.Add(5 * time.Second)
	if sig := s.fire(now, due, time.Time{}); sig != os.Kill {
		t.Fatalf("sent %v, want SIGKILL", sig)
	}
	if s.lost.Reason != lock.LostStalled || !strings.Contains(s.lost.Why, "did not run from") ||
		!strings.Contains(s.lost.Action, "killed (SIGKILL) 4.012s after the lease's end") || !s.termSent.IsZero() {
		t.Fatalf("lost %+v", s.lost)
	}
	// Late but still within the lease: an ordinary loss, SIGTERM skipped once past the kill point.
	s = testSchedule(OnLostTerm, time.Second, 200*time.Millisecond)
	due = s.next()
	if sig := s.fire(due.Add(10*time.Millisecond), due, time.Time{}); sig != termSignal || s.lost.Reason != lock.LostUnreachable {
		t.Fatalf("sent %v, lost %+v", sig, s.lost)
	}
}

// A renewal that finds the lease gone: SIGTERM at once, SIGKILL at most grace later
// and never after the old deadline - margin.
func TestLeaseFoundGone(t *testing.T) {
	ttl := 10 * time.Second
	s := testSchedule(OnLostTerm, ttl, 2*time.Second)
	now := t0.Add(time.Second)
	if sig := s.notHeld(now, &lock.NotHeldError{Name: "x", Reason: lock.LostExpired}); sig != termSignal {
		t.Fatalf("sent %v", sig)
	}
	if got := s.next(); !got.Equal(now.Add(2 * time.Second)) {
		t.Fatalf("SIGKILL at %s", got.Sub(t0))
	}
	s = testSchedule(OnLostTerm, ttl, 2*time.Second)
	now = s.deadline.Add(-time.Second) // 1s before the end: margin 500ms leaves 500ms
	s.notHeld(now, &lock.NotHeldError{Name: "x", Reason: lock.LostExpired})
	if got := s.next(); !got.Equal(s.deadline.Add(-Margin(ttl))) {
		t.Fatalf("SIGKILL at %s, want deadline - margin", got.Sub(t0))
	}
	s = testSchedule(OnLostKill, ttl, 2*time.Second)
	if sig := s.notHeld(now, &lock.NotHeldError{Name: "x", Reason: lock.LostExpired}); sig != os.Kill || !strings.Contains(s.lost.Action, "at once") {
		t.Fatalf("kill: sent %v, %+v", sig, s.lost)
	}
}

// A suspended machine: CLOCK_BOOTTIME ran, the monotonic clock did not. The
// deadline moves back by the sleep, so the schedule acts at once on resume.
func TestSuspendMovesTheDeadline(t *testing.T) {
	s := testSchedule(OnLostKill, time.Second, 200*time.Millisecond)
	before := s.deadline
	s.offset -= 3 * time.Second // as if bootOffset had grown by 3s since the lease
	s.checkSuspend()
	if _, ok := bootOffset(); !ok {
		t.Skip("no CLOCK_BOOTTIME here")
	}
	if d := before.Sub(s.deadline); d < 3*time.Second-time.Millisecond || d > 3*time.Second+time.Millisecond {
		t.Fatalf("deadline moved by %s, want 3s", d)
	}
	now := t0.Add(100 * time.Millisecond) // monotonic time barely moved
	if sig := s.fire(now, s.next(), time.Time{}); sig != os.Kill || s.lost.Reason != lock.LostStalled || !strings.Contains(s.lost.Why, "suspended for 3s") {
		t.Fatalf("sent %v, lost %+v", sig, s.lost)
	}
}

func TestTimingFitsTheWindow(t *testing.T) {
	for _, ttl := range []time.Duration{lock.MinTTL, time.Second, 30 * time.Second, time.Hour} {
		for _, grace := range []time.Duration{time.Millisecond, DefaultGrace(ttl), ttl/2 - time.Millisecond} {
			tm := newTiming(ttl, grace, 0)
			termAfter := ttl - lock.ClockDrift(ttl) - grace - tm.margin
			if tm.every <= 0 || tm.every > ttl/3 || 2*tm.every > termAfter || tm.attempt <= 0 || tm.retry <= 0 {
				t.Errorf("ttl %s grace %s: %+v (SIGTERM %s after a renewal)", ttl, grace, tm, termAfter)
			}
			if CheckGrace(grace, ttl) != nil {
				t.Errorf("ttl %s: grace %s refused", ttl, grace)
			}
		}
		if CheckGrace(ttl/2, ttl) == nil {
			t.Errorf("ttl %s: grace of half the TTL accepted", ttl)
		}
	}
}
