package redislock

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

func internalLocker(t *testing.T, addr string) *Locker {
	t.Helper()
	l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// A waiter that gives up just as a release hands it the lock passes the lock on to
// the next waiter instead of leaving it held until the TTL runs out.
func TestLeavePassesOnALateGrant(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	a, b := internalLocker(t, addr), internalLocker(t, addr)
	name := locktest.Name(t, "late")
	k := keysFor(name)
	opt := lock.AcquireOptions{TTL: 30 * time.Second}
	gone, err := a.Acquire(ctx, name, opt) // stands for the lock just handed to a waiter that gave up
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *lock.Lease, 1)
	go func() {
		o := opt
		o.Wait = lock.WaitFor(10 * time.Second)
		le, err := b.Acquire(ctx, name, o)
		if err != nil {
			t.Error(err)
		}
		got <- le
	}()
	c := a.Clients()[0]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := c.ZCard(ctx, k.waiters).Result(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second waiter never registered")
		}
	}
	start := time.Now()
	a.leave(ctx, k, gone.Token, a.waiterID())
	select {
	case le := <-got:
		if le == nil {
			t.FailNow()
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("handed on after %s", d)
		}
		if v, _ := c.Get(ctx, k.lock).Result(); v != le.Token {
			t.Fatalf("lock value %q, want the next waiter's token", v)
		}
		if le.Fence <= gone.Fence {
			t.Fatalf("fence %d after %d", le.Fence, gone.Fence)
		}
		_ = b.Release(ctx, name, le.Token)
	case <-time.After(5 * time.Second):
		t.Fatal("leave kept the lock it had been handed")
	}
	// Leaving with a token that does not hold the lock changes nothing.
	held, err := a.Acquire(ctx, name, opt)
	if err != nil {
		t.Fatal(err)
	}
	a.leave(ctx, k, "not-the-holder", a.waiterID())
	if v, _ := c.Get(ctx, k.lock).Result(); v != held.Token {
		t.Fatalf("leave with another token touched the lock: %q", v)
	}
	_ = a.Release(ctx, name, held.Token)
}

// A grant's lease is dated from the try that registered the waiter. When that leaves
// too little of the TTL (a long wait, a pause), granted renews first; when the lease
// is gone by then, it says so with nil and the waiter waits on.
func TestGrantedLeaseIsSafeAfterAPause(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	l := internalLocker(t, addr)
	name := locktest.Name(t, "stale")
	opt := lock.AcquireOptions{TTL: 3 * time.Second}
	le, err := l.Acquire(ctx, name, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Registered a moment ago: the lease is trusted as it is.
	fresh, err := l.granted(ctx, name, le.Token, le.Fence, opt, time.Now().Add(-50*time.Millisecond))
	if err != nil || fresh == nil {
		t.Fatalf("fresh grant: %v %v", fresh, err)
	}
	if left := time.Until(fresh.ExpiresAt); left > 3*time.Second || left < 2*time.Second {
		t.Fatalf("fresh grant ends in %s", left)
	}
	// Registered 2.5s ago (the waiter was paused): renewed to a full TTL from now.
	stale, err := l.granted(ctx, name, le.Token, le.Fence, opt, time.Now().Add(-2500*time.Millisecond))
	if err != nil || stale == nil {
		t.Fatalf("stale grant: %v %v", stale, err)
	}
	if left := time.Until(stale.ExpiresAt); left < 2500*time.Millisecond {
		t.Fatalf("stale grant not renewed: ends in %s", left)
	}
	if pt, _ := l.Clients()[0].PTTL(ctx, keysFor(name).lock).Result(); pt < 2500*time.Millisecond {
		t.Fatalf("server lease %s, want renewed", pt)
	}
	// The lease is gone by the time the waiter looks: nil, no error.
	if err := l.Release(ctx, name, le.Token); err != nil {
		t.Fatal(err)
	}
	lost, err := l.granted(ctx, name, le.Token, le.Fence, opt, time.Now().Add(-10*time.Second))
	if err != nil || lost != nil {
		t.Fatalf("grant of a lost lease: %v %v", lost, err)
	}
}
