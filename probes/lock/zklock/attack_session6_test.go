package zklock_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// Session-6 attack tests on the semaphore path shared by list and inspect.

// Finding 3 (fixed in session 7): "a user's mutex named X/locks must not make X a
// semaphore" held only when X had no child named leases. With a held mutex X/locks and any node X/leases (here
// the parent of another user lock, X/leases/y), isSemaphore takes the X/locks queue for
// semaphore acquirers: Inspect X says "semaphore" with one acquirer, not "not a lock",
// while List shows the two mutexes under their own names.
func TestAttackSession6MutexLocksBesideLeasesParent(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	a, b := newLocker(t, tg), newLocker(t, tg)
	x := locktest.Name(t, "x")
	opt := lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner}
	l1, err := a.Acquire(ctx, x+"/locks", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Release(context.Background(), x+"/locks", l1.Token) }()
	l2, err := a.Acquire(ctx, x+"/leases/y", opt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Release(context.Background(), x+"/leases/y", l2.Token) }()
	info, err := b.Inspect(ctx, x)
	if err != nil || info.Format == zklock.FormatSemaphore {
		t.Fatalf("inspect %s beside the mutexes %s/locks and %s/leases/y: format %s, waiters %d, notes %v, err %v; want no semaphore",
			x, x, x, info.Format, info.Waiters, info.Notes, err)
	}
}

// Finding 4: a semaphore acquirer holds the semaphore's internal mutex (locks/) before
// it creates its lease node (dsctl's semaphoreRound and Curator both do). In that
// moment, and for as long as such an acquirer stalls there, Inspect X describes the
// semaphore (semaphore.go), but List reports a held mutex named X/locks: foldSemaphores
// folds X/locks into X only when X/leases has a lease node. (Before this change the
// formats_foreign walk listed X, never X/locks.) Built here as the state of an idle
// dsctl semaphore (permit record on leases/, no lease) plus a holder of locks/.
func TestAttackSession6ListDuringSemaphoreMutexWindow(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	a, b := newLocker(t, tg), newLocker(t, tg)
	x := locktest.Name(t, "sem")
	le, err := a.Acquire(ctx, x, semOpt(2, lock.NoWait))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, x, le.Token); err != nil {
		t.Fatal(err)
	}
	// An acquirer between its two steps: it holds locks/ and has no lease node yet.
	m, err := b.Acquire(ctx, x+"/locks", lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Release(context.Background(), x+"/locks", m.Token) }()
	info, err := a.Inspect(ctx, x)
	if err != nil || info.Format != zklock.FormatSemaphore {
		t.Fatalf("inspect %s: %+v %v; want the semaphore", x, info, err)
	}
	listed, err := a.List(ctx, lock.ListOptions{Prefix: x})
	if err != nil {
		t.Fatal(err)
	}
	for _, li := range listed {
		if li.Name != x {
			t.Fatalf("list %s while an acquirer holds the semaphore's locks mutex: %q (%s, held %v); inspect %s says %s with %d waiter(s)",
				x, li.Name, li.Format, li.Held, x, info.Format, info.Waiters)
		}
	}
}

// Claim: list tolerates nodes deleted concurrently (getChildren ErrNoNode, a semaphore
// whose last lease goes between foldSemaphores and inspectListed) and never names a
// semaphore's leases/ child as a lock. Contenders cycle on a 1-permit semaphore and on
// mutexes while List runs (bounded: 150 lists).
func TestAttackSession6ListWhileNodesComeAndGo(t *testing.T) {
	tg := reviewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lister := newLocker(t, tg)
	base := locktest.Name(t, "churn")
	sem := base + "/sem"
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		l := newLocker(t, tg)
		mutex := base + "/m" + string(rune('a'+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if le, err := l.Acquire(ctx, sem, semOpt(1, lock.WaitFor(200*time.Millisecond))); err == nil {
					_ = l.Release(context.Background(), sem, le.Token)
				}
				if le, err := l.Acquire(ctx, mutex, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner}); err == nil {
					_ = l.Release(context.Background(), mutex, le.Token)
				}
			}
		}()
	}
	var problems []string
	for i := 0; i < 150 && len(problems) < 5; i++ {
		listed, err := lister.List(context.Background(), lock.ListOptions{Prefix: base})
		if err != nil {
			problems = append(problems, "list: "+err.Error())
			continue
		}
		for _, li := range listed {
			if strings.HasPrefix(li.Name, sem+"/leases") {
				problems = append(problems, "listed "+li.Name+" ("+string(li.Format)+")")
			}
		}
	}
	cancel()
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d problem(s): %v", len(problems), problems)
	}
}

// Claim: List and Inspect describe a Curator semaphore (no permit record; lease nodes
// holding the client's IP, as Curator writes) the same way: one entry named X, with
// Inspect's holder, waiters, notes and queue. Built by hand with go-zookeeper as
// Curator lays it out: two leases and one acquirer queued on locks/.
func TestAttackSession6CuratorSemaphoreListMatchesInspect(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	l := newLocker(t, tg)
	conn := goZKConn(t, tg)
	x := locktest.Name(t, "cursem")
	dir := "/dsctl/locks/" + x
	createParents(conn, dir+"/leases/a")
	createParents(conn, dir+"/locks/a")
	acl := gozk.WorldACL(gozk.PermAll)
	var made []string
	for i, sub := range []string{"leases/_c_%s-lease-", "leases/_c_%s-lease-", "locks/_c_%s-lock-"} {
		id := fmt.Sprintf("1234567%d-89ab-cdef-0123-456789abcdef", i)
		p, err := conn.Create(dir+"/"+fmt.Sprintf(sub, id), []byte("127.0.0.1"), gozk.FlagEphemeral|gozk.FlagSequence, acl)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, p)
	}
	info, err := l.Inspect(ctx, x)
	if err != nil || info.Format != zklock.FormatSemaphore || !info.Held {
		t.Fatalf("inspect the Curator semaphore %s (%v): %+v %v", x, made, info, err)
	}
	listed, err := l.List(ctx, lock.ListOptions{Prefix: x})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 {
		t.Fatalf("list %s: %d entries %+v; want the semaphore once", x, len(listed), listed)
	}
	got := listed[0]
	if got.Name != x || got.Format != info.Format || got.FormatDetail != info.FormatDetail || got.Holder == nil ||
		got.Holder.Token != info.Holder.Token || got.Waiters != info.Waiters || len(got.Notes) != len(info.Notes) ||
		len(got.Queue) != len(info.Queue) {
		t.Fatalf("list %+v\ndiffers from inspect %+v", got, *info)
	}
}
