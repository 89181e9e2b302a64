package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// NotAcquiredError means the lock stayed held by someone else for the whole wait
// (exit 3). It names the holder and its TTL left.
type NotAcquiredError struct {
	Name   string
	Holder *Holder
	Wait   Wait
	Waited time.Duration
	// Detail adds what a quorum attempt saw on each server.
	Detail string
}

func (e *NotAcquiredError) Error() string {
	var msg string
	if e.Holder != nil {
		msg = fmt.Sprintf("lock %q is held by %s; not acquired %s", e.Name, e.Holder, e.Wait.Describe())
	} else {
		msg = fmt.Sprintf("lock %q not acquired %s", e.Name, e.Wait.Describe())
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// NotAcquired wraps e as an exit-3 error.
func NotAcquired(e *NotAcquiredError) error {
	hint := "wait longer with --wait 30s or --wait forever, or see `dsctl lock inspect " + e.Name + "`"
	return &errs.Error{Kind: errs.KindLockNotAcquired, Msg: e.Error(), Hint: hint, Err: e}
}

// LostReason says why a lease is no longer held.
type LostReason string

// Reasons.
const (
	// LostExpired: the key is gone (TTL ran out, or it was released) and nobody holds it.
	LostExpired LostReason = "expired"
	// LostTaken: someone else holds the lock now.
	LostTaken LostReason = "taken"
	// LostBroken: `dsctl lock break` removed it.
	LostBroken LostReason = "broken"
	// LostDataLoss: the backend forgot the lock and its fencing counter (restart
	// without persistence, flush, failover to a replica that had not caught up).
	LostDataLoss LostReason = "data-lost"
	// LostUnreachable: renewal could not reach the backend before the lease ran out.
	LostUnreachable LostReason = "unreachable"
	// LostStalled: the holder did not run (paused, suspended, starved) until after
	// its lease had run out, so someone else may have held the lock meanwhile.
	LostStalled LostReason = "stalled"
)

// NotHeldError means a token does not hold the lock: Renew or Release by a holder
// whose lease is gone, or a wrong token (exit 4). Nothing was changed.
type NotHeldError struct {
	Name   string
	Token  string
	Reason LostReason
	// Current is the holder now, when Reason is LostTaken.
	Current *Holder
	// Break is the record of the break that ended this lease, when Reason is LostBroken.
	Break *Break
	// Detail adds per-server outcomes in quorum mode.
	Detail string
}

func (e *NotHeldError) Error() string {
	msg := fmt.Sprintf("lock %q is not held by token %s: %s", e.Name, ShortToken(e.Token), e.Why())
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Why explains the reason in words.
func (e *NotHeldError) Why() string {
	switch e.Reason {
	case LostTaken:
		return "it is held by " + e.Current.String()
	case LostBroken:
		if e.Break != nil {
			s := fmt.Sprintf("it was broken by %s at %s", e.Break.By, e.Break.At.Local().Format(time.RFC3339))
			if e.Break.Reason != "" {
				s += fmt.Sprintf(" (reason: %s)", e.Break.Reason)
			}
			return s
		}
		return "it was broken with `dsctl lock break`"
	case LostDataLoss:
		return "the server has no record of the lock or its fencing counter (restarted without persistence, flushed, or failed over?)"
	case LostUnreachable:
		return "the server could not be reached before the lease ran out"
	case LostStalled:
		return "this process did not run until after its lease had run out"
	}
	return "it is free (the lease expired or was released)"
}

// NotHeld wraps e as an exit-4 error.
func NotHeld(e *NotHeldError) error {
	return &errs.Error{Kind: errs.KindLockLost, Msg: e.Error(), Err: e,
		Hint: "see `dsctl lock inspect " + e.Name + "`"}
}

// AsNotHeld finds a NotHeldError in err's chain.
func AsNotHeld(err error) (*NotHeldError, bool) {
	var e *NotHeldError
	ok := errors.As(err, &e)
	return e, ok
}

// AsNotAcquired finds a NotAcquiredError in err's chain.
func AsNotAcquired(err error) (*NotAcquiredError, bool) {
	var e *NotAcquiredError
	ok := errors.As(err, &e)
	return e, ok
}

// ErrFencingUnavailable is returned by Acquire with RequireFencing on a backend whose
// fencing tokens are not safe.
func ErrFencingUnavailable(b Backend) error {
	return errs.Usage("--require-fencing: %s cannot give safe fencing tokens", b).
		WithHint("Redlock over independent servers has no common counter; use a single Redis server (one --redis address) for fenced work")
}

// WhyTimeout bounds the reads that tell a caller why its lease is gone.
const WhyTimeout = 2 * time.Second

// WhyContext is the context for those reads: the lease is gone whatever happens next,
// so they get their own WhyTimeout, not what is left of the caller's deadline (`lock
// run` bounds each renewal call by a fraction of the TTL); the caller's cancellation
// (ctrl-C) still ends them at once.
func WhyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WhyTimeout)
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	return wctx, func() { stop(); cancel() }
}
