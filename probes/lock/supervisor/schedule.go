package supervisor

import (
	"fmt"
	"os"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// The stop schedule. The child must not outlive the lease, and the only clock this
// process can trust for that is its own: the lease's local deadline (send time of the
// last successful acquire or renewal + TTL - clock drift, on the monotonic clock). So
// the deadline alone drives the signals, whatever the network does:
//
//	SIGTERM at deadline - grace - margin   (--on-lost term)
//	SIGKILL at deadline - margin           (term and kill)
//	loss declared at the deadline          (ignore: the child runs on)
//
// unless a renewal succeeded first (which moves the deadline). A renewal in flight
// delays nothing, and asking the backend what happened (inspect) comes after the
// signals. A renewal that finds the lease gone (broken, taken, expired) acts at once.

// Margin is how long before the lease's local end SIGKILL goes out. It absorbs this
// process's timer and scheduling delays and the signal's delivery: TTL/20, at least
// 20ms, at most 1s. (The deadline itself is already short of the server's expiry by
// the round trip's send-to-arrival time and the clock-drift allowance.)
func Margin(ttl time.Duration) time.Duration {
	return min(max(ttl/20, 20*time.Millisecond), time.Second)
}

// DefaultGrace is the time between SIGTERM and SIGKILL when none is given: 5s, but at
// most a quarter of the TTL, so the default always fits the lease.
func DefaultGrace(ttl time.Duration) time.Duration {
	return min(5*time.Second, ttl/4)
}

// CheckGrace refuses a grace of half the TTL or more: SIGTERM goes out grace + margin
// before the lease's end, so a longer grace would stop the child before the renewals
// had a fair chance, on every run with one slow renewal.
func CheckGrace(grace, ttl time.Duration) error {
	if grace <= 0 {
		return errs.Usage("--grace must be positive, got %s", grace)
	}
	if grace >= ttl/2 {
		return errs.Usage("--grace %s is too long for --ttl %s: it must be less than half the TTL", grace, ttl).
			WithHint("SIGTERM goes out --grace before the lease ends, so that the command stops while the lock is still held; use a --grace under %s (the default for --ttl %s is %s), or a longer --ttl", ttl/2, ttl, DefaultGrace(ttl))
	}
	return nil
}

// timing is the renewal rhythm, derived from the TTL, the grace and the margin.
type timing struct {
	ttl, grace, margin time.Duration
	// every is the period between a successful renewal and the next: TTL/3, less when
	// the grace leaves a short window before SIGTERM (two renewals fit in it).
	every time.Duration
	// attempt bounds one renewal call, so a hung connection leaves time for more.
	attempt time.Duration
	// retry is the pause after a failed renewal.
	retry time.Duration
	// tick is how often the clocks are compared to notice a suspended machine.
	tick time.Duration
}

func newTiming(ttl, grace, every time.Duration) timing {
	t := timing{ttl: ttl, grace: grace, margin: Margin(ttl)}
	window := ttl - lock.ClockDrift(ttl) - grace - t.margin // from a renewal's send to SIGTERM
	t.every = min(ttl/3, window/2)
	if every > 0 && every < t.every {
		t.every = every
	}
	t.attempt = max(min(ttl/6, window/4), time.Millisecond)
	t.retry = min(max(ttl/10, 20*time.Millisecond), 500*time.Millisecond, window/4)
	t.tick = min(max(t.margin/2, 5*time.Millisecond), 50*time.Millisecond)
	return t
}

// schedule is the lease's deadline and what has been done to the child. Only the
// supervisor's loop touches it.
type schedule struct {
	onLost OnLost
	timing
	acquired time.Time
	// deadline is the lease's local end; confirmed is the send time of the request
	// that set it.
	deadline, confirmed time.Time
	// offset is bootOffset when the deadline was set; suspended is the machine sleep
	// seen since the lease was taken (already taken off the deadline).
	offset    time.Duration
	suspended time.Duration
	lastErr   error
	lastErrAt time.Time
	// gone: a renewal found the lease no longer held.
	gone               bool
	termSent, killSent time.Time
	lateRenewal        bool
	lost               *Lost
}

func newSchedule(onLost OnLost, t timing, lease *lock.Lease) *schedule {
	s := &schedule{onLost: onLost, timing: t, acquired: lease.AcquiredAt, deadline: lease.ExpiresAt, confirmed: lease.AcquiredAt}
	s.offset, _ = bootOffset()
	return s
}

// next is when the schedule acts next; zero when it never will.
func (s *schedule) next() time.Time {
	if !s.killSent.IsZero() {
		return time.Time{}
	}
	killAt := s.deadline.Add(-s.margin)
	switch s.onLost {
	case OnLostIgnore:
		if s.lost == nil {
			return s.deadline
		}
		return time.Time{}
	case OnLostKill:
		return killAt
	}
	if s.termSent.IsZero() {
		return killAt.Add(-s.grace)
	}
	return minTime(s.termSent.Add(s.grace), killAt)
}

// fire acts on the schedule at now (the action was due at at) and returns the signal
// to send, if any. inflight is the send time of a renewal still unanswered.
func (s *schedule) fire(now, at, inflight time.Time) os.Signal {
	if s.lost == nil {
		s.lost = s.unconfirmed(now, at, inflight)
	}
	switch {
	case s.onLost == OnLostIgnore:
		s.lost.Action = "the child was left running (--on-lost ignore)"
		return nil
	case s.onLost == OnLostKill || !s.termSent.IsZero() || !now.Before(s.deadline.Add(-s.margin)):
		return s.kill(now)
	}
	s.termSent, s.lost.TermSent = now, now
	s.lost.Action = "the child was sent SIGTERM " + s.relative(now)
	return termSignal
}

func (s *schedule) kill(now time.Time) os.Signal {
	s.killSent, s.lost.KillSent = now, now
	if !s.termSent.IsZero() {
		s.lost.Action += fmt.Sprintf(" and, still running %s later, SIGKILL", lock.RoundDuration(now.Sub(s.termSent)))
		if !s.gone {
			s.lost.Action += " " + s.relative(now)
		}
		return os.Kill
	}
	s.lost.Action = "the child was killed (SIGKILL) " + s.relative(now)
	return os.Kill
}

// relative places now against the lease's local end, for messages.
func (s *schedule) relative(now time.Time) string {
	if s.gone {
		return "at once"
	}
	if d := s.deadline.Sub(now); d > 0 {
		return lock.RoundDuration(d).String() + " before the lease's end"
	}
	return lock.RoundDuration(now.Sub(s.deadline)).String() + " after the lease's end"
}

// unconfirmed describes a lease that no renewal confirmed in time, or that ran out
// while this process was not running.
func (s *schedule) unconfirmed(now, at, inflight time.Time) *Lost {
	l := &Lost{At: now, HeldFor: now.Sub(s.acquired), Deadline: s.deadline}
	if !now.Before(s.deadline) && now.Sub(at) > s.margin {
		// Due before the lease's end, acting after it: this process was not running.
		l.Reason = lock.LostStalled
		if s.suspended > 0 {
			l.Why = fmt.Sprintf("this machine was suspended for %s, past the lease's end at %s", lock.RoundDuration(s.suspended), clock(s.deadline))
		} else {
			l.Why = fmt.Sprintf("this process did not run from %s to %s, past the lease's end at %s", clock(at), clock(now), clock(s.deadline))
		}
		return l
	}
	l.Reason = lock.LostUnreachable
	l.Why = "no renewal succeeded since " + clock(s.confirmed)
	switch {
	case s.lastErr != nil:
		l.Why += fmt.Sprintf(" (the last attempt failed at %s: %v)", clock(s.lastErrAt), s.lastErr)
	case !inflight.IsZero():
		l.Why += fmt.Sprintf(" (the renewal sent at %s has not answered)", clock(inflight))
	}
	l.Why += "; the lease ends at " + clock(s.deadline)
	return l
}

// renewed takes a successful renewal sent when bootOffset was offset.
func (s *schedule) renewed(lease *lock.Lease, offset time.Duration) {
	if !s.killSent.IsZero() {
		return
	}
	s.lastErr = nil
	now, _ := bootOffset()
	end := lease.ExpiresAt
	if slept := now - offset; slept > time.Millisecond { // the machine slept during the call
		end = end.Add(-slept)
	}
	if end.After(s.deadline) {
		s.deadline, s.confirmed, s.offset = end, lease.AcquiredAt, now
	}
	if s.lost != nil {
		s.lateRenewal = true
	}
}

// failed records a renewal error that does not say the lease is gone.
func (s *schedule) failed(now time.Time, err error) {
	s.lastErr, s.lastErrAt = err, now
}

// notHeld acts on a renewal that found the lease gone and returns the signal to send.
func (s *schedule) notHeld(now time.Time, nh *lock.NotHeldError) os.Signal {
	why := nh.Why()
	if nh.Detail != "" {
		why += " (" + nh.Detail + ")"
	}
	s.gone = true
	if s.lost != nil { // the schedule acted already
		s.lost.Why += "; a renewal then found: " + why
		return nil
	}
	s.lost = &Lost{At: now, HeldFor: now.Sub(s.acquired), Reason: nh.Reason, Why: why, Deadline: s.deadline}
	switch s.onLost {
	case OnLostIgnore:
		s.lost.Action = "the child was left running (--on-lost ignore)"
		return nil
	case OnLostKill:
		return s.kill(now)
	}
	s.termSent, s.lost.TermSent = now, now
	s.lost.Action = "the child was sent SIGTERM at once"
	return termSignal
}

// checkSuspend takes any machine sleep since the deadline was set off the deadline:
// the server's clock ran meanwhile, the monotonic clock did not.
func (s *schedule) checkSuspend() {
	now, ok := bootOffset()
	if !ok {
		return
	}
	if slept := now - s.offset; slept > time.Millisecond {
		s.deadline = s.deadline.Add(-slept)
		s.suspended += slept
		s.offset = now
	}
}
