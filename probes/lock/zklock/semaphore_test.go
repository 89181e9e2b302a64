package zklock_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// leaseNodes lists <root>/<name>/leases as the leader sees it.
func leaseNodes(t *testing.T, l *zklock.Locker, name string) []string {
	t.Helper()
	return children(t, l, name+"/leases")
}

var leaseName = regexp.MustCompile(`^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lease-[0-9]{10}$`)

func semOpt(n int, wait lock.Wait) lock.AcquireOptions {
	return lock.AcquireOptions{TTL: 20 * time.Second, Wait: wait, Owner: owner, Permits: n}
}

// takePermits takes one permit of the n-permit semaphore name on each locker in turn,
// without waiting (the same locker twice takes two leases on one session).
func takePermits(t *testing.T, name string, n int, ls ...*zklock.Locker) []*lock.Lease {
	t.Helper()
	var leases []*lock.Lease
	for _, l := range ls {
		le, err := l.Acquire(context.Background(), name, semOpt(n, lock.NoWait))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, le)
	}
	return leases
}

// waitLeaseNodes waits (at most within) until the semaphore has n lease nodes: a
// waiter's has appeared beside the holders'.
func waitLeaseNodes(t *testing.T, l *zklock.Locker, name string, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); len(leaseNodes(t, l, name)) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the waiter's lease node never appeared: %v, want %d", leaseNodes(t, l, name), n)
		}
	}
}

// checkSemaphoreEmpty fails when lease nodes or the locks queue were left behind.
func checkSemaphoreEmpty(t *testing.T, l *zklock.Locker, name string) {
	t.Helper()
	if kids := leaseNodes(t, l, name); len(kids) != 0 {
		t.Fatalf("lease nodes left behind: %v", kids)
	}
	if kids := children(t, l, name+"/locks"); len(kids) != 0 {
		t.Fatalf("locks queue left: %v", kids)
	}
}

// Eight contenders on eight sessions, three permits: never more than three hold at
// once (counted in-process and from the leases node), and three do hold at once
// (a semaphore that degenerated into a mutex fails).
func TestSemaphoreNeverMoreThanNHolders(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		const permits, workers, rounds = 3, 8, 3
		observer := newLocker(t, tg)
		var holding, peak atomic.Int64
		var mu sync.Mutex
		tokens := map[string]bool{} // lease tokens held right now
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			l := newLocker(t, tg)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					lease, err := l.Acquire(ctx, name, semOpt(permits, lock.WaitFor(60*time.Second)))
					if err != nil {
						t.Error(err)
						return
					}
					n := holding.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					if n > permits {
						t.Errorf("%d holders at once, permits %d", n, permits)
					}
					mu.Lock()
					tokens[lease.Token] = true
					mu.Unlock()
					// Every in-process holder's lease node is in the leases node, and
					// it holds at most one more node (the acquirer waiting for a permit).
					// (mu held: no holder comes or goes while the list is read.)
					mu.Lock()
					kids := leaseNodes(t, observer, name)
					if len(kids) > permits+1 {
						t.Errorf("%d lease nodes with %d permits: %v", len(kids), permits, kids)
					}
					all := strings.Join(kids, ",")
					for tok := range tokens {
						if !strings.Contains(all, tok) {
							t.Errorf("holder %s has no lease node: %v", tok, kids)
						}
					}
					mu.Unlock()
					if lease.FencingSafe || !strings.Contains(lease.Note, "not mutual exclusion") {
						t.Errorf("semaphore lease claims safe fencing or lacks the note: %+v", lease)
					}
					// In the first round, hold until the permits are all taken (bounded:
					// a semaphore that admits fewer fails below), so the peak does not
					// depend on how fast a loaded machine hands permits over.
					for until := time.Now().Add(2 * time.Second); r == 0 && holding.Load() < permits && time.Now().Before(until); {
						time.Sleep(5 * time.Millisecond)
					}
					time.Sleep(20 * time.Millisecond)
					mu.Lock()
					delete(tokens, lease.Token)
					mu.Unlock()
					holding.Add(-1)
					if err := l.Release(ctx, name, lease.Token); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if p := peak.Load(); p != permits {
			t.Errorf("peak of %d holders at once, want %d (the permits were not shared)", p, permits)
		}
		checkSemaphoreEmpty(t, observer, name)
	})
}

// The layout is Curator's; a waiter is woken by a release, gets a larger fence, can
// renew; Inspect shows the holders and the waiter.
func TestSemaphoreLayoutWakeAndInspect(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		a, b, c := newLocker(t, tg), newLocker(t, tg), newLocker(t, tg)
		held := takePermits(t, name, 2, a, b)
		la, lb := held[0], held[1]
		kids := leaseNodes(t, a, name)
		if len(kids) != 2 || !leaseName.MatchString(kids[0]) || !leaseName.MatchString(kids[1]) {
			t.Fatalf("lease nodes %v, want two _c_<uuid>-lease-<seq>", kids)
		}
		top := children(t, a, name)
		if strings.Join(top, ",") != "leases,locks" && strings.Join(top, ",") != "locks,leases" {
			t.Fatalf("children of the semaphore node: %v, want locks and leases", top)
		}
		// Full: --wait 0 fails at once with the holders named, nothing left behind.
		if _, err := c.Acquire(ctx, name, semOpt(2, lock.NoWait)); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("third acquire of 2 permits: %v, want not acquired", err)
		}
		waiter := locktest.AcquireInBackground(t, c, name, semOpt(2, lock.WaitFor(20*time.Second)))
		// The waiter holds the locks mutex and has its lease node queued.
		waitLeaseNodes(t, a, name, 3, 10*time.Second)
		info, err := a.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		holders, waiting := 0, 0
		for _, n := range info.Notes {
			switch {
			case strings.HasPrefix(n, "holder "):
				holders++
			case strings.HasPrefix(n, "waiting for a permit"):
				waiting++
			}
		}
		if !info.Held || info.Format != zklock.FormatSemaphore || holders != 2 || waiting != 1 || info.Waiters != 1 ||
			info.Holder.Token != la.Token || info.LastFence != lb.Fence {
			t.Fatalf("inspect: held %v format %s holders %d waiting %d waiters %d holder %v last fence %d (b %d): %q",
				info.Held, info.Format, holders, waiting, info.Waiters, info.Holder, info.LastFence, lb.Fence, info.Notes)
		}
		// List shows the semaphore once, under its own name (not its leases or locks
		// nodes), with its holders.
		listed, err := a.List(ctx, lock.ListOptions{Prefix: name})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0].Name != name || listed[0].Format != zklock.FormatSemaphore || !listed[0].Held || listed[0].Holder.Token != la.Token {
			var got []string
			for _, i := range listed {
				got = append(got, i.Name+" "+string(i.Format))
			}
			t.Fatalf("list: %v, want the semaphore %s once", got, name)
		}
		waiter.StillWaiting(t, 200*time.Millisecond, "a third holder with 2 permits")
		if err := a.Release(ctx, name, la.Token); err != nil {
			t.Fatal(err)
		}
		lc := waiter.Lease(t, 10*time.Second, "the waiter was not woken by the release")
		if lc.Fence <= lb.Fence || lb.Fence <= la.Fence {
			t.Fatalf("fences %d, %d, %d do not increase", la.Fence, lb.Fence, lc.Fence)
		}
		if c.Notifications() < 1 {
			t.Fatal("the waiter was not woken by a watch")
		}
		renewed, err := c.Renew(ctx, name, lc.Token, 30*time.Second)
		if err != nil || renewed.Fence != lc.Fence || renewed.FencingSafe || !strings.Contains(renewed.Note, "not mutual exclusion") {
			t.Fatalf("renew: %+v %v", renewed, err)
		}
		// A released lease is not held any more.
		if _, err := a.Renew(ctx, name, la.Token, 30*time.Second); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("renew of a released lease: %v", err)
		}
		for _, x := range []struct {
			l *zklock.Locker
			t string
		}{{b, lb.Token}, {c, lc.Token}} {
			if err := x.l.Release(ctx, name, x.t); err != nil {
				t.Fatal(err)
			}
		}
		checkSemaphoreEmpty(t, a, name)
	})
}

// A holder's session ends (closed, or expired on the embedded server): its lease node
// goes, and a waiter takes the permit.
func TestSemaphoreSessionLossFreesTheLease(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		a, b, c := newLocker(t, tg), newLocker(t, tg), newLocker(t, tg)
		held := takePermits(t, name, 2, a, b)
		la, lb := held[0], held[1]
		waiter := locktest.AcquireInBackground(t, c, name, semOpt(2, lock.WaitFor(30*time.Second)))
		waitLeaseNodes(t, b, name, 3, 10*time.Second)
		if tg.Embedded != nil {
			if !tg.Embedded.ExpireSession(a.Client().SessionID()) {
				t.Fatal("no such session")
			}
		} else {
			_ = a.Close()
		}
		lc := waiter.Lease(t, 20*time.Second, "the permit of the lost session was not freed")
		if lc.Fence <= lb.Fence {
			t.Fatalf("lease %+v after %d", lc, lb.Fence)
		}
		if err := c.Release(ctx, name, lc.Token); err != nil {
			t.Fatal(err)
		}
		if tg.Embedded != nil {
			// The expired holder learns it: its lease is not held any more.
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := a.Renew(ctx, name, la.Token, 20*time.Second)
				if errs.KindOf(err) == errs.KindLockLost {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("renew after the session expired: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err := b.Release(ctx, name, lb.Token); err != nil {
			t.Fatal(err)
		}
		checkSemaphoreEmpty(t, b, name)
	})
}

// Every failure path leaves no lease node and no locks node behind.
func TestSemaphoreNoOrphansOnFailure(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		a, c := newLocker(t, tg), newLocker(t, tg)
		held := takePermits(t, name, 2, a, a) // two leases on one session
		la, lb := held[0], held[1]
		clean := func(step string) {
			t.Helper()
			if kids := leaseNodes(t, a, name); len(kids) != 2 {
				t.Fatalf("%s: lease nodes %v, want only the two holders'", step, kids)
			}
			if kids := children(t, a, name+"/locks"); len(kids) != 0 {
				t.Fatalf("%s: locks queue left: %v", step, kids)
			}
		}
		start := time.Now()
		_, err := c.Acquire(ctx, name, semOpt(2, lock.WaitFor(300*time.Millisecond)))
		var na *lock.NotAcquiredError
		if !errors.As(err, &na) || na.Holder == nil || na.Holder.Token != la.Token {
			t.Fatalf("timed-out wait: %v", err)
		}
		if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
			t.Fatalf("timed-out wait took %s for --wait 300ms", took)
		}
		clean("timed out")
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		if _, err := c.Acquire(cctx, name, semOpt(2, lock.WaitForever)); errs.KindOf(err) != errs.KindInterrupted {
			t.Fatalf("cancelled wait: %v", err)
		}
		clean("cancelled")
		for _, opt := range []lock.AcquireOptions{
			{TTL: 20 * time.Second, Permits: -1},
			{TTL: 20 * time.Second, Permits: zklock.MaxPermits + 1},
			{TTL: 20 * time.Second, Permits: 3, RequireFencing: true},
			{TTL: 0, Permits: 3},
		} {
			if _, err := c.Acquire(ctx, name, opt); errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("acquire %+v: %v, want a usage error", opt, err)
			}
			clean("bad input")
		}
		for _, tok := range []string{la.Token, lb.Token} {
			if err := a.Release(ctx, name, tok); err != nil {
				t.Fatal(err)
			}
		}
		checkSemaphoreEmpty(t, a, name)
		if c.PendingCleanup() != 0 || a.PendingCleanup() != 0 {
			t.Fatalf("cleanup pending: %d %d", c.PendingCleanup(), a.PendingCleanup())
		}
	})
}

// Break takes one lease, named by --if-token; without a token it refuses and deletes
// nothing; the broken holder is told who broke it; the other lease stands.
func TestSemaphoreBreakOneLease(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		a, b, op := newLocker(t, tg), newLocker(t, tg), newLocker(t, tg)
		held := takePermits(t, name, 2, a, b)
		la, lb := held[0], held[1]
		_, err := op.Break(ctx, name, lock.BreakOptions{By: "oncall@host"})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), la.Token) || !strings.Contains(err.Error(), lb.Token) {
			t.Fatalf("break without a token: %v, want a usage error naming both leases", err)
		}
		if kids := leaseNodes(t, op, name); len(kids) != 2 {
			t.Fatalf("break without a token deleted something: %v", kids)
		}
		if _, err := op.Break(ctx, name, lock.BreakOptions{By: "oncall@host", IfToken: "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"}); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("break of an unknown lease: %v, want not held", err)
		}
		info, err := op.Break(ctx, name, lock.BreakOptions{By: "oncall@host", Reason: "stuck", IfToken: la.Token})
		if err != nil || info.Holder == nil || info.Holder.Token != la.Token || info.Holder.Fence != la.Fence {
			t.Fatalf("break of lease a: %+v %v", info, err)
		}
		kids := leaseNodes(t, op, name)
		if len(kids) != 1 || !strings.Contains(kids[0], lb.Token) {
			t.Fatalf("after breaking a: %v, want only b's lease", kids)
		}
		_, err = a.Renew(ctx, name, la.Token, 20*time.Second)
		if nh, ok := lock.AsNotHeld(err); !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.By != "oncall@host" {
			t.Fatalf("renew of the broken lease: %v", err)
		}
		if _, err := b.Renew(ctx, name, lb.Token, 20*time.Second); err != nil {
			t.Fatalf("the other lease: %v", err)
		}
		if err := b.Release(ctx, name, lb.Token); err != nil {
			t.Fatal(err)
		}
	})
}

// No herd: waiters queue on the locks mutex (each watching its predecessor) and only
// the first watches the leases, so a release costs two notifications (the leases
// watcher, then the mutex handoff to the next acquirer), whatever the number waiting.
func TestSemaphoreReleaseWakesNoHerd(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "sem")
		a := newLocker(t, tg)
		first := takePermits(t, name, 2, a, a)
		const waiters = 5
		ls := make([]*zklock.Locker, waiters)
		leases := make([]*lock.Lease, waiters)
		got := make(chan int, waiters)
		for i := range ls {
			ls[i] = newLocker(t, tg)
		}
		for i := range ls {
			go func() {
				le, err := ls[i].Acquire(ctx, name, semOpt(2, lock.WaitFor(30*time.Second)))
				if err != nil {
					t.Error(err)
				}
				leases[i] = le
				got <- i
			}()
		}
		for deadline := time.Now().Add(10 * time.Second); len(children(t, a, name+"/locks")) < waiters || len(leaseNodes(t, a, name)) < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("waiters not queued: locks %v leases %v", children(t, a, name+"/locks"), leaseNodes(t, a, name))
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // each waiter arms its watch after queueing
		total := func() int64 {
			var n int64
			for _, l := range ls {
				n += l.Notifications()
			}
			return n
		}
		if n := total(); n != 0 {
			t.Fatalf("%d notifications before any release", n)
		}
		if err := a.Release(ctx, name, first[0].Token); err != nil {
			t.Fatal(err)
		}
		for round := 1; round <= waiters; round++ {
			var i int
			select {
			case i = <-got:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: no waiter took the permit", round)
			}
			time.Sleep(200 * time.Millisecond) // the mutex handoff, and any stray notification
			if n := total(); n > int64(2*round) || n < int64(round) {
				t.Fatalf("after %d releases, %d notifications among %d waiters; want one or two per release", round, n, waiters)
			}
			if leases[i] == nil {
				t.Fatal("no lease")
			}
			if err := ls[i].Release(ctx, name, leases[i].Token); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d notifications for %d releases with %d waiting", total(), waiters, waiters)
		if err := a.Release(ctx, name, first[1].Token); err != nil {
			t.Fatal(err)
		}
		checkSemaphoreEmpty(t, a, name)
	})
}

// An acquirer waiting for a permit loses its session (embedded server: expired on
// purpose): its lease node and the locks mutex go with it; it starts again from the
// mutex on the new session and takes the permit once one is free, leaving nothing of
// the old session behind.
func TestSemaphoreWaiterRequeuesAfterItsSessionExpired(t *testing.T) {
	tg := reviewServer(t)
	srv := tg.Embedded
	ctx := context.Background()
	holder, waiter := newLocker(t, tg), newLocker(t, tg)
	name := locktest.Name(t, "sem")
	held := takePermits(t, name, 2, holder, holder)
	lease, second := held[0], held[1]
	queued := locktest.AcquireInBackground(t, waiter, name, semOpt(2, lock.WaitFor(15*time.Second)))
	waitLeaseNodes(t, holder, name, 3, 5*time.Second)
	old := waiter.Client().SessionID()
	if !srv.ExpireSession(old) {
		t.Fatal("no such session")
	}
	time.Sleep(300 * time.Millisecond)
	if err := holder.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	le := queued.Lease(t, 15*time.Second, "the waiter never got a permit")
	if sid := waiter.Client().SessionID(); sid == old {
		t.Fatal("the waiter's session did not change")
	}
	kids := leaseNodes(t, holder, name)
	if len(kids) != 2 {
		t.Fatalf("lease nodes %v, want the holder's second and the waiter's new one", kids)
	}
	for _, tok := range []struct {
		l *zklock.Locker
		t string
	}{{waiter, le.Token}, {holder, second.Token}} {
		if err := tok.l.Release(ctx, name, tok.t); err != nil {
			t.Fatal(err)
		}
	}
	checkSemaphoreEmpty(t, holder, name)
}
