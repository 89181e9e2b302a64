package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// HoldOptions are the inputs of Hold.
type HoldOptions struct {
	Locker lock.Locker
	// Lease is the lease to hold, fresh from Acquire.
	Lease *lock.Lease
	// For ends the hold after this long from the start of Hold; 0 holds until ctx ends.
	For time.Duration
	// OnEvent, when set, receives progress (for -v). It must not block.
	OnEvent func(Event)
}

// HoldResult is how a hold ended.
type HoldResult struct {
	Lease    *lock.Lease
	Renewals int
	// Why is "interrupted" (ctx ended) or "--for elapsed".
	Why string
	// ReleaseErr is a failure to release at the end (the lease then ends with the
	// session or at its TTL).
	ReleaseErr error
}

// Hold keeps a lease in the foreground (`lock acquire` on a backend whose leases live
// with dsctl's session, or with --for): it renews every TTL/3 (or a third of the
// bound the backend puts on the lease), until ctx ends or For elapses, then releases
// it. The lease counts as lost, an exit-4 error, when a renewal finds it gone
// (session expired, broken, taken) or when no renewal succeeded before its local
// deadline (the backend unreachable, or this process stalled, for as long as the
// backend would keep it): the same clock `lock run` stops its child by.
func Hold(ctx context.Context, o HoldOptions) (*HoldResult, error) {
	lease := o.Lease
	res := &HoldResult{Lease: lease}
	event := func(what, detail string) {
		if o.OnEvent != nil {
			o.OnEvent(Event{At: time.Now(), What: what, Detail: detail})
		}
	}
	bg := context.WithoutCancel(ctx)
	// The renewer of `lock run`, unchanged: nothing here ever waits for a renewal.
	s := &run{o: Options{Locker: o.Locker}, res: &Result{Lease: lease}, t: newTiming(Bound(lease), 0, 0)}
	rctx, stopRenewer := context.WithCancel(bg)
	defer stopRenewer()
	outcomes := make(chan renewal)
	go s.renewer(rctx, outcomes)

	var until <-chan time.Time
	if o.For > 0 {
		ft := time.NewTimer(o.For)
		defer ft.Stop()
		until = ft.C
	}
	var tick <-chan time.Time
	offset, ok := bootOffset()
	if ok { // notice a machine suspend: the lease ran on while our timers stood still
		ticker := time.NewTicker(s.t.tick)
		defer ticker.Stop()
		tick = ticker.C
	}
	deadline := lease.ExpiresAt
	confirmed := lease.AcquiredAt
	var lastErr error
	for {
		if now, ok := bootOffset(); ok && now-offset > time.Millisecond {
			deadline = deadline.Add(-(now - offset))
			offset = now
		}
		if now := time.Now(); !now.Before(deadline) {
			stopRenewer()
			why := fmt.Sprintf("no renewal succeeded since %s", clock(confirmed))
			if lastErr != nil {
				why += fmt.Sprintf(" (the last attempt: %v)", lastErr)
			}
			s.releaseWithin(bg, time.Second)
			return res, lostError(lease, now, lock.LostUnreachable, why+"; the lease's local end passed at "+clock(deadline))
		}
		lostAt := time.NewTimer(time.Until(deadline))
		var stop string
		select {
		case <-ctx.Done():
			stop = "interrupted"
		case <-until:
			stop = "--for elapsed"
		case <-lostAt.C:
		case <-tick:
		case r := <-outcomes:
			switch {
			case r.err == nil:
				res.Renewals++
				lastErr = nil
				end := r.lease.ExpiresAt
				if now, ok := bootOffset(); ok && now-r.offset > time.Millisecond { // slept during the call
					end = end.Add(-(now - r.offset))
				}
				if end.After(deadline) {
					deadline, confirmed = end, r.lease.AcquiredAt
				}
				res.Lease = r.lease
				event("renewed", fmt.Sprintf("lease ends in %s", lock.RoundDuration(time.Until(deadline))))
			default:
				if nh, ok := lock.AsNotHeld(r.err); ok {
					why := nh.Why()
					if nh.Detail != "" {
						why += " (" + nh.Detail + ")"
					}
					lostAt.Stop()
					return res, lostError(lease, time.Now(), nh.Reason, why)
				}
				lastErr = r.err
				event("renewal failed", fmt.Sprintf("%v; retrying, lease ends in %s", r.err, lock.RoundDuration(time.Until(deadline))))
			}
		}
		lostAt.Stop()
		if stop != "" {
			stopRenewer()
			res.Why = stop
			return res, release(bg, o.Locker, res, time.Now())
		}
	}
}

// releaseWithin releases the lease without waiting more than d for the answer.
func (s *run) releaseWithin(ctx context.Context, d time.Duration) {
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan struct{})
	go func() {
		_ = s.o.Locker.Release(rctx, s.res.Lease.Name, s.res.Lease.Token)
		close(done)
	}()
	select {
	case <-done:
	case <-rctx.Done():
	}
}

func release(ctx context.Context, l lock.Locker, res *HoldResult, now time.Time) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := l.Release(rctx, res.Lease.Name, res.Lease.Token)
	if err == nil {
		return nil
	}
	if nh, ok := lock.AsNotHeld(err); ok {
		return lostError(res.Lease, now, nh.Reason, "found at release: "+nh.Why())
	}
	res.ReleaseErr = err
	return nil
}

func lostError(lease *lock.Lease, at time.Time, reason lock.LostReason, why string) error {
	return &errs.Error{Kind: errs.KindLockLost,
		Msg: fmt.Sprintf("lock %q lost at %s, %s after it was taken (%s): %s", lease.Name, clock(at),
			lock.RoundDuration(at.Sub(lease.AcquiredAt)), reason, why),
		Hint: "whatever relied on this lease may overlap with the next holder's work; check DSCTL_LOCK_FENCE where it matters"}
}
