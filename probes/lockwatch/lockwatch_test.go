package lockwatch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/testenv"
)

func info(name, token string, fence lock.FencingToken, ttlLeft time.Duration) lock.Info {
	h := &lock.Holder{Token: token, Fence: fence}
	h.SetTTLLeft(ttlLeft)
	return lock.Info{Name: name, Held: true, Holder: h}
}

func kinds(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Name+":"+string(e.Kind))
	}
	return strings.Join(s, " ")
}

func TestDiff(t *testing.T) {
	at := time.Unix(100, 0)
	free := lock.Info{Name: "f", Held: false}
	brk := info("b", "t-b", 7, 5*time.Second)
	brokenNow := lock.Info{Name: "b", LastBreak: &lock.Break{Token: "t-b", Fence: 7, By: "ops@h"}}
	cases := []struct {
		name      string
		prev, cur []lock.Info
		want      string
	}{
		{"nothing", nil, []lock.Info{free}, ""},
		{"acquired", nil, []lock.Info{info("a", "t1", 1, 5*time.Second)}, "a:acquired"},
		{"still held, renewed", []lock.Info{info("a", "t1", 1, 2*time.Second)}, []lock.Info{info("a", "t1", 1, 5*time.Second)}, ""},
		{"released", []lock.Info{info("a", "t1", 1, 5*time.Second)}, nil, "a:released"},
		{"released, key kept", []lock.Info{info("a", "t1", 1, 5*time.Second)}, []lock.Info{{Name: "a"}}, "a:released"},
		{"expired", []lock.Info{info("a", "t1", 1, 800*time.Millisecond)}, nil, "a:expired"},
		{"no expiry never expires", []lock.Info{info("a", "t1", 1, -1)}, nil, "a:released"},
		{"handed over", []lock.Info{info("a", "t1", 1, 5*time.Second)}, []lock.Info{info("a", "t2", 2, 5*time.Second)}, "a:handed_over"},
		{"expired, then taken", []lock.Info{info("a", "t1", 1, 500*time.Millisecond)}, []lock.Info{info("a", "t2", 2, 5*time.Second)}, "a:expired a:acquired"},
		{"broken", []lock.Info{brk}, []lock.Info{brokenNow}, "b:broken"},
		{"an older break is not this one", []lock.Info{brk}, []lock.Info{{Name: "b", LastBreak: &lock.Break{Token: "t-old"}}}, "b:released"},
		{"name order", nil, []lock.Info{info("z", "1", 0, time.Second), info("m", "2", 0, time.Second)}, "m:acquired z:acquired"},
	}
	for _, c := range cases {
		evs := Diff(c.prev, c.cur, time.Second, at)
		if got := kinds(evs); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	evs := Diff([]lock.Info{info("a", "t1", 4, 5*time.Second)}, []lock.Info{info("a", "t2", 5, 5*time.Second)}, time.Second, at)
	if e := evs[0]; e.OldFence != 4 || e.NewFence != 5 || e.Old.Token != "t1" || e.New.Token != "t2" || !e.At.Equal(at) {
		t.Errorf("hand-over event %+v", e)
	}
	evs = Diff([]lock.Info{brk}, []lock.Info{brokenNow}, time.Second, at)
	if e := evs[0]; e.Break == nil || e.Break.By != "ops@h" || e.OldFence != 7 {
		t.Errorf("broken event %+v", e)
	}
}

// failingLocker's List fails: the watch keeps the last good list and reports no events.
type failingLocker struct {
	lock.Locker
	calls int
}

func (f *failingLocker) List(context.Context, lock.ListOptions) ([]lock.Info, error) {
	f.calls++
	if f.calls == 1 {
		return []lock.Info{info("a", "t1", 1, time.Minute)}, nil
	}
	return nil, errors.New("redis: cannot reach 127.0.0.1:1")
}

func TestWatchKeepsTheLastListOnErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := Watch(ctx, &failingLocker{}, Options{Interval: time.Millisecond})
	first, second := <-ch, <-ch
	if first.Err != nil || kinds(first.Events) != "a:acquired" {
		t.Fatalf("first poll %+v", first)
	}
	if second.Err == nil || len(second.Locks) != 1 || len(second.Events) != 0 {
		t.Fatalf("failed poll %+v", second)
	}
	if second.At.Sub(first.At) < MinInterval {
		t.Fatalf("polls %s apart, under the %s floor", second.At.Sub(first.At), MinInterval)
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}

// expect reads updates until one has an event of kind for name, failing after within.
func expect(t *testing.T, ch <-chan Update, name string, kind Kind, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatalf("watch ended waiting for %s %s", name, kind)
			}
			if u.Err != nil {
				t.Fatalf("poll: %v", u.Err)
			}
			for _, e := range u.Events {
				if e.Name == name && e.Kind == kind {
					return e
				}
				if e.Name == name {
					t.Fatalf("want %s %s, got %s %+v", name, kind, e.Kind, e)
				}
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %s", kind, name, within)
		}
	}
}

// Against a real Redis: every kind of change, as a locks pane would see it.
func TestWatchRealRedis(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	newLocker := func() lock.Locker {
		l, err := redislock.New(endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.Redis{Addrs: []string{addr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b, watcher := newLocker(), newLocker(), newLocker()
	prefix := locktest.Name(t, "w") + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := Watch(ctx, watcher, Options{Interval: 100 * time.Millisecond, List: lock.ListOptions{Prefix: prefix}})
	opts := func(ttl time.Duration, w lock.Wait) lock.AcquireOptions {
		return lock.AcquireOptions{TTL: ttl, Wait: w, Owner: lock.Owner{Label: "lockwatch test"}}
	}

	// acquired, then released
	name := prefix + "job"
	lease, err := a.Acquire(ctx, name, opts(10*time.Second, lock.NoWait))
	if err != nil {
		t.Fatal(err)
	}
	if e := expect(t, ch, name, Acquired, 10*time.Second); e.New.Token != lease.Token || e.NewFence != lease.Fence {
		t.Fatalf("acquired %+v, lease %+v", e, lease)
	}
	if err := a.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, name, Released, 10*time.Second)

	// handed over to a waiter, with both fencing tokens
	first, err := a.Acquire(ctx, name, opts(10*time.Second, lock.NoWait))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, ch, name, Acquired, 10*time.Second)
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := b.Acquire(ctx, name, opts(10*time.Second, lock.WaitFor(20*time.Second)))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(300 * time.Millisecond) // b is waiting
	if err := a.Release(ctx, name, first.Token); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		t.FailNow()
	}
	e := expect(t, ch, name, HandedOver, 10*time.Second)
	if e.OldFence != first.Fence || e.NewFence != second.Fence || e.NewFence <= e.OldFence {
		t.Fatalf("hand-over fences %d -> %d, leases %d -> %d", e.OldFence, e.NewFence, first.Fence, second.Fence)
	}

	// broken
	if _, err := a.Break(ctx, name, lock.BreakOptions{Reason: "test", By: "lockwatch@test"}); err != nil {
		t.Fatal(err)
	}
	if e := expect(t, ch, name, Broken, 10*time.Second); e.OldFence != second.Fence || e.Break == nil {
		t.Fatalf("broken %+v", e)
	}

	// expired: a holder that "crashed" (never renews, never releases)
	crash := prefix + "crash"
	if _, err := a.Acquire(ctx, crash, opts(700*time.Millisecond, lock.NoWait)); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, crash, Acquired, 10*time.Second)
	expect(t, ch, crash, Expired, 10*time.Second)
}
