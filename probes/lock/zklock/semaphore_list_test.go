package zklock_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// List reports a semaphore as Inspect does (one reader of the leases/ and locks/
// layout, semaphore.go): same description, holder, waiters and queue.
func TestSemaphoreListMatchesInspect(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	a, b := newLocker(t, tg), newLocker(t, tg)
	name := locktest.Name(t, "semlist")
	la, err := a.Acquire(ctx, name, semOpt(2, lock.WaitFor(5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Release(context.Background(), name, la.Token) }()
	lb, err := b.Acquire(ctx, name, semOpt(2, lock.WaitFor(5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Release(context.Background(), name, lb.Token) }()
	info, err := a.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := a.List(ctx, lock.ListOptions{Prefix: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 {
		t.Fatalf("list: %+v, want the semaphore %s once", listed, name)
	}
	got := listed[0]
	if got.Name != name || got.Format != zklock.FormatSemaphore || got.FormatDetail != info.FormatDetail ||
		!got.Held || got.Holder.Token != la.Token || info.Holder.Token != la.Token || got.Waiters != info.Waiters ||
		len(got.Notes) != len(info.Notes) || len(got.Queue) != 2 || len(info.Queue) != 2 {
		t.Fatalf("list %+v\ndiffers from inspect %+v", got, *info)
	}
	for i := range info.Queue {
		if got.Queue[i].Node != info.Queue[i].Node || got.Queue[i].Holding != info.Queue[i].Holding || !got.Queue[i].Holding {
			t.Fatalf("queue entry %d: list %+v, inspect %+v", i, got.Queue[i], info.Queue[i])
		}
	}
}

// Lock names are slash-separated: a mutex X/leases or X/locks does not make X a
// semaphore. Inspect X says X is no lock; List shows the mutex under its own name.
func TestMutexNamedLikeASemaphoreChild(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	a, b := newLocker(t, tg), newLocker(t, tg)
	for _, child := range []string{"leases", "locks"} {
		parent := locktest.Name(t, "parent-"+child)
		mutex := parent + "/" + child
		l, err := a.Acquire(ctx, mutex, lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		info, err := b.Inspect(ctx, parent)
		if err != nil || info.Format != lock.FormatNotALock || info.Held {
			t.Fatalf("inspect %s beside the mutex %s: %+v, %v; want %s", parent, mutex, info, err, lock.FormatNotALock)
		}
		listed, err := b.List(ctx, lock.ListOptions{Prefix: parent})
		if err != nil || len(listed) != 1 || listed[0].Name != mutex || !listed[0].Held || listed[0].Holder.Token != l.Token {
			t.Fatalf("list %s: %+v, %v; want the mutex %s held by %s", parent, listed, err, mutex, l.Token)
		}
		if err := a.Release(ctx, mutex, l.Token); err != nil {
			t.Fatal(err)
		}
	}
}
