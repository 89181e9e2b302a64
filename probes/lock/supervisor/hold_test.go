//go:build unix

package supervisor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// bounded holds leases for less than their TTL, as the ZooKeeper backend does when the
// session timeout is shorter than the TTL: the local deadline is the request's send
// time plus the bound, less drift.
type bounded struct {
	lock.Locker
	bound time.Duration
}

func (b *bounded) cut(l *lock.Lease) *lock.Lease {
	if l != nil {
		l.ExpiresAt = l.AcquiredAt.Add(b.bound - lock.ClockDrift(b.bound))
	}
	return l
}

func (b *bounded) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	l, err := b.Locker.Acquire(ctx, name, opt)
	return b.cut(l), err
}

func (b *bounded) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	l, err := b.Locker.Renew(ctx, name, token, ttl)
	return b.cut(l), err
}

func TestBoundIsTheTTLOrTheBackendsShorterBound(t *testing.T) {
	t0 := time.Now()
	for _, c := range []struct {
		ttl, held, want time.Duration
	}{
		{30 * time.Second, 30 * time.Second, 30 * time.Second},
		{30 * time.Second, 10 * time.Second, 10 * time.Second},
		{3 * time.Second, 600 * time.Millisecond, 600 * time.Millisecond},
		{time.Second, 980 * time.Millisecond, time.Second}, // a quorum's round trips: not a bound
	} {
		l := &lock.Lease{TTL: c.ttl, AcquiredAt: t0, ExpiresAt: t0.Add(c.held - lock.ClockDrift(c.held))}
		if got := supervisor.Bound(l); got < c.want-time.Millisecond || got > c.want+time.Millisecond {
			t.Errorf("ttl %s held %s: bound %s, want %s", c.ttl, c.held, got, c.want)
		}
	}
}

// A lease bounded below its TTL is renewed at the bound's rhythm: with TTL 3s and a
// bound of 600ms the renewals every TTL/3 would come too late; they come every 200ms.
func TestRunFollowsALeaseBoundedBelowItsTTL(t *testing.T) {
	_, newLocker := backend(t)
	l := &bounded{Locker: newLocker(), bound: 600 * time.Millisecond}
	o, _ := options(l, "bounded", 3*time.Second, "sleep", "1.5")
	var events []string
	o.OnEvent = func(e supervisor.Event) { events = append(events, e.What) }
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Err() != nil || res.Lost != nil || res.Renewals < 4 {
		t.Fatalf("result %+v (%v), want >= 4 renewals and no loss", res, res.Err())
	}
	if len(events) == 0 || events[0] != "bounded" {
		t.Fatalf("events %v: want the bound said", events)
	}
	// An explicit grace that fits the TTL but not the bound is refused, the lock given back.
	o, _ = options(l, "bounded", 3*time.Second, "true")
	o.Grace = time.Second
	_, err = supervisor.Run(ctx, o)
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "bounds it to 600ms") {
		t.Fatalf("grace 1s with a 600ms bound: %v", err)
	}
	if info, err := newLocker().Inspect(ctx, "bounded"); err != nil || info.Held {
		t.Fatalf("the lock is still held after the refusal: %+v %v", info, err)
	}
}

func TestHoldRenewsUntilForThenReleases(t *testing.T) {
	_, newLocker := backend(t)
	l, other := newLocker(), newLocker()
	lease, err := l.Acquire(ctx, "hold", lock.AcquireOptions{TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res, err := supervisor.Hold(ctx, supervisor.HoldOptions{Locker: l, Lease: lease, For: time.Second})
	if err != nil || res.Why != "--for elapsed" || res.Renewals < 3 || res.ReleaseErr != nil {
		t.Fatalf("hold: %+v %v, want >= 3 renewals over three TTLs", res, err)
	}
	if info, err := other.Inspect(ctx, "hold"); err != nil || info.Held {
		t.Fatalf("still held after the hold: %+v %v", info, err)
	}
}

func TestHoldEndsOnInterruptAndReleases(t *testing.T) {
	_, newLocker := backend(t)
	l, other := newLocker(), newLocker()
	lease, err := l.Acquire(ctx, "hold", lock.AcquireOptions{TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	res, err := supervisor.Hold(c, supervisor.HoldOptions{Locker: l, Lease: lease})
	if err != nil || res.Why != "interrupted" {
		t.Fatalf("hold: %+v %v", res, err)
	}
	if info, err := other.Inspect(ctx, "hold"); err != nil || info.Held {
		t.Fatalf("still held after the hold: %+v %v", info, err)
	}
}

func TestHoldLostWhenBroken(t *testing.T) {
	_, newLocker := backend(t)
	l, other := newLocker(), newLocker()
	lease, err := l.Acquire(ctx, "hold", lock.AcquireOptions{TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = other.Break(ctx, "hold", lock.BreakOptions{By: "test", Reason: "INC-7"})
	}()
	_, err = supervisor.Hold(ctx, supervisor.HoldOptions{Locker: l, Lease: lease, For: 5 * time.Second})
	if errs.KindOf(err) != errs.KindLockLost || !strings.Contains(err.Error(), "INC-7") || !strings.Contains(err.Error(), "(broken)") {
		t.Fatalf("hold of a broken lease: %v", err)
	}
}

// Renewals that hang (a partition) end the hold as lost at the lease's local deadline,
// not later: by then the backend may have let someone else in.
func TestHoldLostAtTheLocalDeadlineWhenRenewalsHang(t *testing.T) {
	_, newLocker := backend(t)
	h := newHung(newLocker())
	defer h.unblock()
	lease, err := h.Acquire(ctx, "hold", lock.AcquireOptions{TTL: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := supervisor.Hold(ctx, supervisor.HoldOptions{Locker: h, Lease: lease, For: 10 * time.Second})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("hold still running 5s after its lease's end")
	}
	ended := time.Now()
	if errs.KindOf(err) != errs.KindLockLost || !strings.Contains(err.Error(), "no renewal succeeded") {
		t.Fatalf("hold with hung renewals: %v", err)
	}
	if ended.Before(lease.ExpiresAt) {
		t.Fatalf("declared lost %s before the lease's local end", lease.ExpiresAt.Sub(ended))
	}
}
