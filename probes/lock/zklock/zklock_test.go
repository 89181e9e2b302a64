package zklock_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

func newLocker(t *testing.T, tg zktest.Target) *zklock.Locker {
	t.Helper()
	var l *zklock.Locker
	var err error
	// A session takes a quorum write: on a loaded CI machine the shared ensemble has
	// been seen to take over 5s for one. Connecting is not what these tests test.
	for try := 0; try < 3; try++ {
		if l, err = zklock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second},
			zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}}); err == nil {
			break
		}
		t.Logf("connect (try %d): %v", try+1, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

var owner = lock.CurrentOwner(777, "zklock test", "zk", "dsctl test")

func TestContract(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		// A lease's local span is bounded by the session (10s, tickTime 500ms here):
		// 10s - 10s/3 - 0.5s less the drift, about 6.1s, under the suite's 10s TTL.
		locktest.Run(t, locktest.Caps{FencingSafe: true, Notify: true, MinSpan: 6 * time.Second}, func(t *testing.T) lock.Locker { return newLocker(t, tg) })
	})
}

// sessionSpan is the local span of a lease with a long TTL taken right after l
// connected: the session timeout less the client's ping interval (timeout/3) and one
// tick (capped at timeout/2), less the drift.
func sessionSpan(l *zklock.Locker) time.Duration {
	to := l.SessionTimeout()
	tick, _ := l.TickTime()
	b := to - to/3 - min(tick, to/2)
	return b - lock.ClockDrift(b)
}

// children lists the lock node's children as the leader sees them.
func children(t *testing.T, l *zklock.Locker, name string) []string {
	t.Helper()
	// Reads are served by the connected server, which may lag the leader: sync first.
	_, _ = l.Client().Conn().Sync(l.Root() + "/" + name)
	c, _, err := l.Client().Conn().Children(l.Root() + "/" + name)
	if err != nil && !strings.Contains(err.Error(), "node does not exist") {
		t.Fatal(err)
	}
	return c
}

func TestOneReleaseWakesExactlyOneWaiter(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "herd")
		holder := newLocker(t, tg)
		first, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		const waiters = 5
		ls := make([]*zklock.Locker, waiters)
		got := make(chan int, waiters)
		leases := make([]*lock.Lease, waiters)
		for i := range ls {
			ls[i] = newLocker(t, tg)
		}
		var wg sync.WaitGroup
		for i := range ls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				le, err := ls[i].Acquire(ctx, name, lock.AcquireOptions{TTL: 20 * time.Second, Wait: lock.WaitFor(20 * time.Second), Owner: owner})
				if err != nil {
					t.Error(err)
					return
				}
				leases[i] = le
				got <- i
			}()
		}
		// Wait until all waiters are queued.
		for deadline := time.Now().Add(10 * time.Second); len(children(t, holder, name)) < waiters+1; {
			if time.Now().After(deadline) {
				t.Fatalf("waiters not queued: %v", children(t, holder, name))
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // each waiter arms its watch after its node is queued
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
		info, err := holder.Inspect(ctx, name)
		if err != nil || !info.Held || info.Waiters != waiters || info.Holder.Token != first.Token {
			t.Fatalf("inspect of the queue: %+v %v", info, err)
		}
		// The queue in order: the holder, then each waiter with its session and owner.
		var listed int
		for i, q := range info.Queue {
			if q.Holding != (i == 0) || (i > 0 && q.Seq <= info.Queue[i-1].Seq) {
				t.Fatalf("queue out of order: %+v", info.Queue)
			}
			if i > 0 && strings.HasPrefix(q.Session, "0x") && q.Owner != nil && q.Owner.PID == 777 && q.Token != "" {
				listed++
			}
		}
		if len(info.Queue) != waiters+1 || info.Queue[0].Token != first.Token || listed != waiters {
			t.Fatalf("inspect lists %d waiters with session and owner, want %d: %+v", listed, waiters, info.Queue)
		}
		if err := holder.Release(ctx, name, first.Token); err != nil {
			t.Fatal(err)
		}
		last := first.Fence
		for round := 1; round <= waiters; round++ {
			var i int
			select {
			case i = <-got:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: no waiter took the lock", round)
			}
			time.Sleep(50 * time.Millisecond) // let any stray notification arrive
			if n := total(); n != int64(round) {
				t.Fatalf("after %d releases, %d watch notifications; want exactly one per release", round, n)
			}
			if leases[i].Fence <= last {
				t.Fatalf("fence %d after %d", leases[i].Fence, last)
			}
			last = leases[i].Fence
			if err := ls[i].Release(ctx, name, leases[i].Token); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		if c := children(t, holder, name); len(c) != 0 {
			t.Fatalf("left behind: %v", c)
		}
	})
}

func TestNoOrphanNodesOnFailurePaths(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		name := locktest.Name(t, "orphans")
		holder, other := newLocker(t, tg), newLocker(t, tg)
		lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		// No wait: refused at once.
		if _, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("no-wait acquire of a held lock: %v", err)
		}
		// A wait that runs out.
		if _, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(150 * time.Millisecond), Owner: owner}); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("timed-out acquire: %v", err)
		}
		// Cancelled at many moments, mid-request included.
		for i := range 20 {
			cctx, cancel := context.WithTimeout(ctx, time.Duration(i)*time.Millisecond/2)
			_, err := other.Acquire(cctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitForever, Owner: owner})
			cancel()
			if err == nil {
				t.Fatal("acquired a held lock")
			}
		}
		// Bad input.
		for _, bad := range []string{name + "/", name + "//x", name + "/../y", name + "/./z"} {
			if _, err := other.Acquire(ctx, bad, lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindUsage {
				t.Errorf("acquire %q: %v, want a usage error", bad, err)
			}
		}
		// A wrong token changes nothing.
		if err := other.Release(ctx, name, "00000000-0000-4000-8000-000000000000"); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("release with a wrong token: %v", err)
		}
		c := children(t, holder, name)
		if len(c) != 1 || !strings.Contains(c[0], lease.Token) || other.PendingCleanup() != 0 {
			t.Fatalf("children after the failures: %v (pending cleanup %d); want only the holder's node", c, other.PendingCleanup())
		}
		if err := holder.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNodeLayoutIsCuratorCompatible(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		l := newLocker(t, tg)
		name := locktest.Name(t, "layout")
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		c := children(t, l, name)
		if len(c) != 1 || !strings.HasPrefix(c[0], "_c_"+lease.Token+"-lock-") || len(c[0]) != len("_c_")+36+len("-lock-")+10 {
			t.Fatalf("node %v, want _c_<uuid>-lock-<10 digits>", c)
		}
		_, st, err := l.Client().Conn().Get(l.Root() + "/" + name + "/" + c[0])
		if err != nil || lock.FencingToken(st.Czxid) != lease.Fence || st.EphemeralOwner != l.Client().SessionID() {
			t.Fatalf("fence %d, node czxid %d, owner 0x%x (session 0x%x): %v", lease.Fence, st.Czxid, st.EphemeralOwner, l.Client().SessionID(), err)
		}
		q, err := l.Queue(ctx, name)
		if err != nil || len(q) != 1 || q[0].Token != lease.Token || q[0].Owner == nil || q[0].Owner.PID != 777 {
			t.Fatalf("queue %+v %v", q, err)
		}
		// The node's path works as the token too.
		if _, err := l.Renew(ctx, name, q[0].Node, 5*time.Second); err != nil {
			t.Fatalf("renew by node path: %v", err)
		}
		if err := l.Release(ctx, name, q[0].Node); err != nil {
			t.Fatalf("release by node path: %v", err)
		}
		if c := children(t, l, name); len(c) != 0 {
			t.Fatalf("left behind: %v", c)
		}
	})
}

func TestSessionExpiryLosesTheLease(t *testing.T) {
	tg := reviewServer(t)
	srv := tg.Embedded
	ctx := context.Background()
	a, b := newLocker(t, tg), newLocker(t, tg)
	name := locktest.Name(t, "expiry")
	lease, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if !srv.ExpireSession(a.Client().SessionID()) {
		t.Fatal("no such session")
	}
	next, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(5 * time.Second), Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if next.Fence <= lease.Fence {
		t.Fatalf("fence %d after %d", next.Fence, lease.Fence)
	}
	var rerr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, rerr = a.Renew(ctx, name, lease.Token, 5*time.Second)
		if errs.KindOf(rerr) != errs.KindUnreachable {
			break
		}
	}
	if nh, ok := lock.AsNotHeld(rerr); !ok || nh.Reason != lock.LostTaken || nh.Current.Token != next.Token {
		t.Fatalf("renew after the session expired: %v", rerr)
	}
	_ = b.Release(ctx, name, next.Token)
}

// The local deadline must use the session timeout the server granted, not the one
// asked for: a server capping it (maxSessionTimeout) expires the session sooner.
func TestDeadlineUsesTheNegotiatedSessionTimeout(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{MaxSessionTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l := newLockerVia(t, srv.Addr(), 30*time.Second)
	if got := l.SessionTimeout(); got != 3*time.Second {
		t.Fatalf("session timeout %s, want the server's cap of 3s", got)
	}
	name := locktest.Name(t, "cap")
	lease, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: 20 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if left, want := time.Until(lease.ExpiresAt), sessionSpan(l); left > want || left < want-300*time.Millisecond {
		t.Fatalf("a 20s lease on a 3s session ends in %s, want just under %s (3s - 1s - one tick)", left, want)
	}
	_ = l.Release(context.Background(), name, lease.Token)
}

// A lock path that cannot hold a queue (no permission, an ephemeral node) fails with a
// clear error and leaves nothing behind; Inspect and Break refuse to treat application
// nodes as a lock.
func TestBadLockPaths(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		l := newLocker(t, tg)
		conn := l.Client().Conn()
		base := locktest.Name(t, "bad")
		// Parents exist: take and release a lock below base first.
		warm, err := l.Acquire(ctx, base+"/warm", lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Release(ctx, base+"/warm", warm.Token)
		dir := l.Root() + "/" + base
		// Read-only for everyone.
		ro := dir + "/readonly"
		if _, err := conn.Create(ro, nil, 0, gozk.WorldACL(gozk.PermRead)); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Delete(ro, -1) }()
		_, err = l.Acquire(ctx, base+"/readonly", lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err == nil || !strings.Contains(err.Error(), "ACL") || errs.KindOf(err) == errs.KindUnreachable {
			t.Fatalf("acquire under a read-only node: %v", err)
		}
		// An ephemeral node cannot have children.
		eph := dir + "/ephemeral"
		if _, err := conn.Create(eph, []byte("app"), gozk.FlagEphemeral, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
		_, err = l.Acquire(ctx, base+"/ephemeral", lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "not a lock") {
			t.Fatalf("acquire on an ephemeral node: %v", err)
		}
		// Application children are not a queue: not held, and break deletes nothing.
		app := dir + "/app"
		if _, err := conn.Create(app, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Delete(app+"/config", -1); _ = conn.Delete(app, -1) }()
		if _, err := conn.Create(app+"/config", []byte("x"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
		info, err := l.Inspect(ctx, base+"/app")
		if err != nil || info.Held || info.Format != lock.FormatNotALock || info.Object == nil || info.Object.Size != 1 {
			t.Fatalf("inspect of application nodes: %+v %v", info, err)
		}
		for _, raw := range []bool{false, true} {
			_, err := l.Break(ctx, base+"/app", lock.BreakOptions{By: "test", Raw: raw})
			if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "not a lock") {
				t.Fatalf("break (raw %v) of application nodes: %v, want a usage error", raw, err)
			}
		}
		if ok, _, _ := conn.Exists(app + "/config"); !ok {
			t.Fatal("break deleted an application node")
		}
		for _, p := range []string{ro, eph} {
			if kids, _, err := conn.Children(p); err == nil && len(kids) != 0 {
				t.Fatalf("left behind under %s: %v", p, kids)
			}
		}
	})
}

// A waiter whose session expires while it waits queues again and still gets the lock.
func TestWaiterRequeuesAfterItsSessionExpired(t *testing.T) {
	tg := reviewServer(t)
	srv := tg.Embedded
	ctx := context.Background()
	holder, waiter := newLocker(t, tg), newLocker(t, tg)
	name := locktest.Name(t, "requeue")
	lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		le, err := waiter.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
		if err == nil {
			err = waiter.Release(ctx, name, le.Token)
		}
		got <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); len(children(t, holder, name)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("waiter not queued")
		}
	}
	if !srv.ExpireSession(waiter.Client().SessionID()) {
		t.Fatal("no such session")
	}
	time.Sleep(300 * time.Millisecond)
	if err := holder.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter after its session expired: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter never got the lock")
	}
}
