package redislock

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
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

// On one server a release hands the lock to the oldest waiter. If that waiter gave up
// and its leave did not get through, its Locker passes the lock on when the grant
// reaches it, instead of letting it sit with a token nobody has until its TTL.
func TestGrantToAWaiterThatGaveUpIsPassedOn(t *testing.T) {
	ctx := context.Background()
	m := miniredis.RunT(t)
	h, a, b := internalLocker(t, m.Addr()), internalLocker(t, m.Addr()), internalLocker(t, m.Addr())
	opt := lock.AcquireOptions{TTL: 10 * time.Second}
	held, err := h.Acquire(ctx, "ghost", opt)
	if err != nil {
		t.Fatal(err)
	}
	o := opt
	o.Wait = lock.WaitFor(50 * time.Millisecond)
	if _, err := a.Acquire(ctx, "ghost", o); errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("a: %v", err) // a waited and gave up: it stays subscribed
	}
	chs := m.PubSubChannels("dsctl:lock:{ghost}:ch:*")
	if len(chs) != 1 {
		t.Fatalf("channels %v, want a's", chs)
	}
	// A give-up whose leave was lost: a knows it gave up, the server still lists it.
	gone := chs[0][strings.LastIndex(chs[0], ":")+1:] + ".00000001"
	a.gaveUp(gone, "ghost-token")
	m.ZAdd("dsctl:lock:{ghost}:waiters", 0, gone)
	m.HSet("dsctl:lock:{ghost}:w:"+gone, "token", "ghost-token", "ttl_ms", "10000", "wid", gone)
	m.SetTTL("dsctl:lock:{ghost}:w:"+gone, time.Minute)

	o.Wait = lock.WaitFor(5 * time.Second)
	bGot := make(chan error, 1)
	go func() { _, err := b.Acquire(ctx, "ghost", o); bGot <- err }()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ids, _ := m.ZMembers("dsctl:lock:{ghost}:waiters"); len(ids) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b did not queue")
		}
	}
	start := time.Now()
	if err := h.Release(ctx, "ghost", held.Token); err != nil {
		t.Fatal(err)
	}
	if err := <-bGot; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("b got the lock %s after the release: the grant to the gone waiter was not passed on", waited)
	}
}
