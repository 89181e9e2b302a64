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
	t := newTiming(Bound(lease), 0, 0)
	event := func(what, detail string) {
		if o.OnEvent != nil {
			o.OnEvent(Event{At: time.Now(), What: what, Detail: detail})
		}
	}
	bg := context.WithoutCancel(ctx)
	var until <-chan time.Time
	if o.For > 0 {
		ft := time.NewTimer(o.For)
		defer ft.Stop()
		until = ft.C
	}
	deadline := lease.ExpiresAt
	confirmed := lease.AcquiredAt
	next := lease.AcquiredAt.Add(t.every)
	var lastErr error
	for {
		renewAt := time.NewTimer(time.Until(next))
		lostAt := time.NewTimer(time.Until(deadline))
		var stop string
		select {
		case <-ctx.Done():
			stop = "interrupted"
		case <-until:
			stop = "--for elapsed"
		case <-lostAt.C:
		case <-renewAt.C:
		}
		renewAt.Stop()
		lostAt.Stop()
		now := time.Now()
		if stop != "" {
			res.Why = stop
			return res, release(bg, o.Locker, res, now)
		}
		if !now.Before(deadline) {
			why := fmt.Sprintf("no renewal succeeded since %s", clock(confirmed))
			if lastErr != nil {
				why += fmt.Sprintf(" (the last attempt: %v)", lastErr)
			}
			rctx, cancel := context.WithTimeout(bg, time.Second)
			_ = o.Locker.Release(rctx, lease.Name, lease.Token)
			cancel()
			return res, lostError(lease, now, lock.LostUnreachable, why+"; the lease's local end passed at "+clock(deadline))
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(bg, minTime(deadline, sent.Add(t.attempt)))
		renewed, err := o.Locker.Renew(rctx, lease.Name, lease.Token, lease.TTL)
		cancel()
		switch {
		case err == nil:
			res.Renewals++
			lastErr = nil
			if renewed.ExpiresAt.After(deadline) {
				deadline, confirmed = renewed.ExpiresAt, renewed.AcquiredAt
			}
			res.Lease = renewed
			next = renewed.AcquiredAt.Add(t.every)
			event("renewed", fmt.Sprintf("lease ends in %s", lock.RoundDuration(time.Until(deadline))))
		default:
			if nh, ok := lock.AsNotHeld(err); ok {
				why := nh.Why()
				if nh.Detail != "" {
					why += " (" + nh.Detail + ")"
				}
				return res, lostError(lease, time.Now(), nh.Reason, why)
			}
			lastErr = err
			next = time.Now().Add(t.retry)
			event("renewal failed", fmt.Sprintf("%v; retrying, lease ends in %s", err, lock.RoundDuration(time.Until(deadline))))
		}
	}
}

func release(ctx context.Context, l lock.Locker, res *HoldResult, now time.Time) error {
	err := l.Release(ctx, res.Lease.Name, res.Lease.Token)
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
