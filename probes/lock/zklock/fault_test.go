package zklock_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/faultproxy"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk"
)

// faultProxy is a private TCP proxy between one Locker and a ZooKeeper server: it can
// hold every byte in both directions until healed (a partition, or a stopped holder:
// nothing is lost, as with TCP retransmission), or cut the connection right after
// forwarding a request (a create with cutCreate, any opcode with cutOp): the server
// applies it, the reply is lost. It disturbs nobody else on a shared ensemble.
type faultProxy struct {
	ln        net.Listener
	target    string
	blackhole atomic.Bool
	cutCreate atomic.Bool
	cutOp     atomic.Int32 // the opcode of the next request to cut after (0: none)
	cutSkip   atomic.Int32 // requests with cutOp to let through before the cut
	onCut     func()       // called once the cut request was applied (before the close)
	cuts      atomic.Int32
	mu        sync.Mutex
	conns     []net.Conn
	accepted  int
	gaps      []requestGap
}

// requestGap is, for one connection through the proxy, how long after the handshake
// its first request other than a ping, setWatches or auth came.
type requestGap struct {
	conn int // the connection's ordinal: 0 is the first
	op   int32
	gap  time.Duration
}

// reconnectGaps returns the gaps of the connections after the first.
func (p *faultProxy) reconnectGaps() []requestGap {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []requestGap
	for _, g := range p.gaps {
		if g.conn > 0 {
			out = append(out, g)
		}
	}
	return out
}

// checkSettledAfterReconnect fails unless every request on a reconnected connection
// came zk.ReconnectSettle (less 20ms of slack) after its handshake, or later: none met
// go-zookeeper's re-set of its watches, whose data race -race reports (zk#35).
func (p *faultProxy) checkSettledAfterReconnect(t *testing.T) {
	t.Helper()
	gaps := p.reconnectGaps()
	if len(gaps) == 0 {
		t.Fatal("no request on a reconnected connection: the test did not exercise the reconnect")
	}
	for _, g := range gaps {
		if g.gap < zk.ReconnectSettle-20*time.Millisecond {
			t.Fatalf("connection %d sent op %d %s after its handshake, before go-zookeeper's setWatches had settled (%s)", g.conn, g.op, g.gap, zk.ReconnectSettle)
		}
	}
}

func startProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

// reset closes every connection through the proxy (as a server restart or a failover
// would); new connections are accepted as before.
func (p *faultProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// waitHealed blocks while the proxy is partitioned (at most a minute).
func (p *faultProxy) waitHealed() {
	for i := 0; i < 6000 && p.blackhole.Load(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *faultProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		ordinal := p.accepted
		p.accepted++
		p.mu.Unlock()
		var mute atomic.Bool // this pair's replies are dropped (a lost reply)
		go p.upstream(c, s, &mute, ordinal)
		go p.downstream(s, c, &mute)
	}
}

// upstream forwards client frames; after the handshake each frame is xid, opcode, ....
func (p *faultProxy) upstream(c, s net.Conn, mute *atomic.Bool, ordinal int) {
	defer c.Close()
	// In a partition the server hears nothing, not even the close (ZooKeeper restarts
	// a session's timeout when its connection closes): bytes and the close are held
	// until the partition heals, as TCP retransmission would deliver them.
	defer func() {
		p.waitHealed()
		s.Close()
	}()
	head := make([]byte, 4)
	first, gapped := true, false
	var handshake time.Time
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(head))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		p.waitHealed()
		var op int32
		if !first && len(body) >= 8 {
			op = int32(binary.BigEndian.Uint32(body[4:8]))
		}
		if first {
			handshake = time.Now()
		} else if !gapped && op != opPing && op != opSetWatches && op != opSetAuth {
			gapped = true
			p.mu.Lock()
			p.gaps = append(p.gaps, requestGap{conn: ordinal, op: op, gap: time.Since(handshake)})
			p.mu.Unlock()
		}
		cut := op == 1 && p.cutCreate.CompareAndSwap(true, false)
		if op != 0 && p.cutOp.Load() == op && p.cutSkip.Add(-1) < 0 {
			cut = p.cutOp.CompareAndSwap(op, 0)
		}
		if cut {
			mute.Store(true)
		}
		if _, err := s.Write(append(append([]byte(nil), head...), body...)); err != nil {
			return
		}
		if cut {
			time.Sleep(100 * time.Millisecond) // the server applies it; the reply is lost
			if p.onCut != nil {
				p.onCut()
			}
			p.cuts.Add(1)
			return
		}
		first = false
	}
}

func (p *faultProxy) downstream(s, c net.Conn, mute *atomic.Bool) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		p.waitHealed()
		if n > 0 && !mute.Load() {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func newLockerVia(t *testing.T, addr string, session time.Duration) *zklock.Locker {
	t.Helper()
	l, err := zklock.New(context.Background(), endpoint.Dialer{Timeout: 3 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: []string{addr}, SessionTimeout: endpoint.Duration(session)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// The create is applied but its reply is lost with the connection: the Locker hands
// that uuid to its cleanup (which deletes the orphan node), queues again with a fresh
// uuid, holds the lock with the new node, and leaves no second node behind. (The name
// is historical: it used to go on with the node found by the old uuid, which raced
// with the cleanup; see TestReviewAttackRetriedCreateIsDeletedByItsOwnCleanup.)
func TestCreateReplyLostFindsOwnNode(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		l := newLockerVia(t, p.addr(), 4*time.Second)
		name := locktest.Name(t, "lostreply")
		// A first lease creates the parents, so the cut hits the lock node's create.
		warmUp(t, l, name)
		p.cutCreate.Store(true)
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if p.cuts.Load() != 1 {
			t.Fatalf("the proxy cut %d connections, want 1 (the test did not exercise the lost reply)", p.cuts.Load())
		}
		c := children(t, l, name)
		if len(c) != 1 || !strings.Contains(c[0], lease.Token) {
			t.Fatalf("children %v, want only the node of lease %s", c, lease.Token)
		}
		if err := l.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
		if c := children(t, l, name); len(c) != 0 {
			t.Fatalf("left behind: %v", c)
		}
	})
}

// ZooKeeper opcodes: setData is the write that confirms a grant.
const (
	opSetData    = 5
	opPing       = 11
	opSetAuth    = 100
	opSetWatches = 101
)

// The confirming write of a grant (a setData on our lowest node) is applied but its
// answer is lost with the connection: the session survives the reconnect, the
// acquirer looks at the queue again, finds its node still lowest, confirms again and
// holds the lock with that node. (It used to fail the acquire as unreachable, while
// its node held the lock until the Locker was closed.)
func TestConfirmReplyLostTakesTheLockOnReconnect(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		l := newLockerVia(t, p.addr(), 4*time.Second)
		name := locktest.Name(t, "lostconfirm")
		warmUp(t, l, name)
		session := l.Client().SessionID()
		p.cutOp.Store(opSetData)
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatalf("acquire whose confirming write lost its answer: %v", err)
		}
		if p.cuts.Load() != 1 {
			t.Fatalf("the proxy cut %d connections, want 1 (the test did not exercise the lost answer)", p.cuts.Load())
		}
		p.checkSettledAfterReconnect(t)
		if l.Client().SessionID() != session {
			t.Fatalf("session 0x%x -> 0x%x: want the same session", session, l.Client().SessionID())
		}
		c := children(t, l, name)
		if len(c) != 1 || !strings.Contains(c[0], lease.Token) {
			t.Fatalf("children %v, want only the node of lease %s", c, lease.Token)
		}
		if _, err := newLocker(t, tg).Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("another client while the lease is held: %v", err)
		}
		if err := l.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
	})
}

// The same lost answer for a semaphore's lease: its confirming write (after the
// one that confirms the semaphore's locks mutex) is applied, its answer lost; the
// acquirer looks again, its lease node is still within the permits, and it holds it.
func TestSemaphoreConfirmReplyLostTakesThePermitOnReconnect(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		l := newLockerVia(t, p.addr(), 4*time.Second)
		name := locktest.Name(t, "semlostconfirm")
		opt := lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner, Permits: 2}
		warm, err := l.Acquire(ctx, name, opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx, name, warm.Token); err != nil {
			t.Fatal(err)
		}
		p.cutSkip.Store(1) // the mutex's confirm goes through; the lease's is cut
		p.cutOp.Store(opSetData)
		lease, err := l.Acquire(ctx, name, opt)
		if err != nil {
			t.Fatalf("semaphore acquire whose confirming write lost its answer: %v", err)
		}
		if p.cuts.Load() != 1 {
			t.Fatalf("the proxy cut %d connections, want 1", p.cuts.Load())
		}
		p.checkSettledAfterReconnect(t)
		info, err := l.Inspect(ctx, name)
		holders := 0
		for _, n := range info.Notes {
			if strings.HasPrefix(n, "holder ") {
				holders++
			}
		}
		if err != nil || !info.Held || holders != 1 || info.Holder == nil || info.Holder.Token != lease.Token {
			t.Fatalf("inspect after the lost answer: %+v %v; want our one lease", info, err)
		}
		if err := l.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
	})
}

// The session expires as the grant is confirmed (the write applied, its answer lost,
// the session gone with our node): an acquirer that may still wait queues again with
// a new session and holds the lock with a new node, whose fence is above the lost
// node's; one that may not wait is told its node went away. Nothing is left behind.
func TestSessionExpiredAsTheLockIsTakenQueuesAgain(t *testing.T) {
	tg := reviewServer(t)
	for _, waits := range []bool{true, false} {
		t.Run(fmt.Sprintf("wait=%v", waits), func(t *testing.T) {
			ctx := context.Background()
			p := startProxy(t, tg.Servers[0])
			l := newLockerVia(t, p.addr(), 4*time.Second)
			name := locktest.Name(t, "expiredconfirm")
			warmUp(t, l, name)
			old := l.Client().SessionID()
			obs := newLocker(t, tg).Client().Conn()
			var lostFence atomic.Int64
			p.onCut = func() {
				// The applied write made our node the holder's: note its fence, then
				// expire the session (the server deletes the node).
				dir := l.Root() + "/" + name
				kids, _, _ := obs.Children(dir)
				for _, k := range kids {
					if _, st, err := obs.Get(dir + "/" + k); err == nil && st.Version > 0 {
						lostFence.Store(st.Czxid)
					}
				}
				tg.Embedded.ExpireSession(old)
			}
			p.cutOp.Store(opSetData)
			opt := lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner}
			if waits {
				opt.Wait = lock.WaitFor(10 * time.Second)
			}
			lease, err := l.Acquire(ctx, name, opt)
			if p.cuts.Load() != 1 {
				t.Fatalf("the proxy cut %d connections, want 1", p.cuts.Load())
			}
			if !waits {
				if err == nil || !strings.Contains(err.Error(), "disappeared") {
					t.Fatalf("no-wait acquire whose session expired as it took the lock: %v, want its node gone", err)
				}
				if c := children(t, l, name); len(c) != 0 {
					t.Fatalf("left behind: %v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("acquire whose session expired as it took the lock: %v", err)
			}
			if l.Client().SessionID() == old {
				t.Fatal("still the expired session")
			}
			if lostFence.Load() == 0 || int64(lease.Fence) <= lostFence.Load() {
				t.Fatalf("fence %d, the lost node's %d: want a new node above it", lease.Fence, lostFence.Load())
			}
			if c := children(t, l, name); len(c) != 1 || !strings.Contains(c[0], lease.Token) {
				t.Fatalf("children %v, want only the node of lease %s", c, lease.Token)
			}
			if err := l.Release(ctx, name, lease.Token); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A renewal that finds its lease broken says so (who, why) even when the call's own
// deadline is short next to the link's round trip (`lock run` bounds each renewal by
// a fraction of the TTL): reading why gets its own time. (It used to say "free: the
// lease expired or was released" once the deadline ran out during those reads.)
func TestRenewOfABrokenLeaseSaysBrokenOnASlowLink(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		px, holder, name, lease := brokenBehindProxy(t, tg, "slowwhy")
		px.SetLatency(100*time.Millisecond, 0) // 200ms a round trip
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := holder.Renew(rctx, name, lease.Token, 10*time.Second)
		cancel()
		nh, ok := lock.AsNotHeld(err)
		if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.Reason != "INC-7" {
			t.Fatalf("renew of a broken lease over a slow link with a short deadline: %v, want broken (INC-7)", err)
		}
	})
}

// brokenBehindProxy takes a lease through a private fault proxy (a 4s session) and has
// another client break it (by "ops", reason "INC-7"): the holder does not know yet.
func brokenBehindProxy(t *testing.T, tg zktest.Target, label string) (*faultproxy.Proxy, *zklock.Locker, string, *lock.Lease) {
	t.Helper()
	ctx := context.Background()
	px, err := faultproxy.New(tg.Servers[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() })
	holder := newLockerVia(t, px.Addr(), 4*time.Second)
	name := locktest.Name(t, label)
	lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newLocker(t, tg).Break(ctx, name, lock.BreakOptions{By: "ops", Reason: "INC-7"}); err != nil {
		t.Fatal(err)
	}
	return px, holder, name, lease
}

// A holder cut off from the ensemble (a partition, or SIGSTOP) keeps believing only
// until its local deadline, which comes before the server expires its session; the
// next waiter holds within the session timeout (+ a tick of expiry checking + 200ms);
// the cut-off holder, back, is told it lost the lock.
func TestCutOffHolderLosesItAfterTheSessionTimeout(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		const session = 2 * time.Second
		holder := newLockerVia(t, p.addr(), session)
		if got := holder.SessionTimeout(); got != session {
			t.Fatalf("negotiated session timeout %s, want %s", got, session)
		}
		waiter := newLocker(t, tg)
		name := locktest.Name(t, "cutoff")
		lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if left, want := time.Until(lease.ExpiresAt), sessionSpan(holder); left > want || left < want-200*time.Millisecond {
			t.Fatalf("a 30s lease on a %s session ends in %s; want just under %s (timeout - timeout/3 - one tick)", session, left, want)
		}
		cut := time.Now()
		p.blackhole.Store(true)
		got, err := waiter.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Now()
		if took.Before(lease.ExpiresAt) {
			t.Fatalf("the waiter held at %s, before the cut-off holder's local deadline %s", took.Format("15:04:05.000"), lease.ExpiresAt.Format("15:04:05.000"))
		}
		// ZooKeeper expires sessions on tick boundaries (tickTime 500ms here): the
		// expiry comes up to a tick after the timeout, and the leader's session tracker
		// can add one more.
		if d := took.Sub(cut); d > session+2*500*time.Millisecond+200*time.Millisecond {
			t.Fatalf("the waiter held %s after the holder was cut off; want within the %s session timeout + 2 ticks + 200ms", d, session)
		}
		if got.Fence <= lease.Fence {
			t.Fatalf("fence %d after %d", got.Fence, lease.Fence)
		}
		// While cut off, renewals cannot succeed.
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = holder.Renew(rctx, name, lease.Token, 30*time.Second)
		cancel()
		if err == nil {
			t.Fatal("renewed through a partition")
		}
		p.blackhole.Store(false)
		var rerr error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			_, rerr = holder.Renew(ctx, name, lease.Token, 30*time.Second)
			if errs.KindOf(rerr) != errs.KindUnreachable {
				break
			}
		}
		if nh, ok := lock.AsNotHeld(rerr); !ok || nh.Reason != lock.LostTaken || nh.Current.Token != got.Token {
			t.Fatalf("renew after the partition healed: %v", rerr)
		}
		_ = waiter.Release(ctx, name, got.Token)
	})
}

// A connection lost and regained within the session timeout (a server restart, a
// leader failover): the session survives, so does the lease; while disconnected the
// Locker is suspended, and nobody else takes the lock.
func TestLeaseSurvivesAReconnectWithinTheSession(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		holder := newLockerVia(t, p.addr(), 4*time.Second)
		other := newLocker(t, tg)
		name := locktest.Name(t, "reconnect")
		lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		session := holder.Client().SessionID()
		p.reset()
		sawSuspended := false
		var renewed *lock.Lease
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			sawSuspended = sawSuspended || holder.Suspended()
			if renewed, err = holder.Renew(ctx, name, lease.Token, 10*time.Second); err == nil {
				break
			}
			if errs.KindOf(err) != errs.KindUnreachable {
				t.Fatalf("renew after a reconnect: %v", err)
			}
		}
		if renewed == nil {
			t.Fatalf("no renewal within 3s of the reset: %v", err)
		}
		if holder.Client().SessionID() != session || renewed.Fence != lease.Fence {
			t.Fatalf("session 0x%x -> 0x%x, fence %d -> %d: want the same session and lease", session, holder.Client().SessionID(), lease.Fence, renewed.Fence)
		}
		if _, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("another client after the reconnect: %v", err)
		}
		t.Logf("suspended seen: %v", sawSuspended)
		if err := holder.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
	})
}

// ---- faults of the shared ensemble (DSCTL_TEST_FAULTS=1; scripts/test runs them alone) ----

// healthyEnsemble waits (bounded) until the shared ensemble has all members up and a
// leader, and returns its servers and the leader's member number (1-based, the
// services script's numbering).
func healthyEnsemble(t *testing.T, within time.Duration) ([]string, int) {
	t.Helper()
	servers := testenv.List(t, testenv.ZK)
	var st *zk.Status
	for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
		st = zk.EnsembleStatus(context.Background(), zk.StatusOptions{Servers: servers, Timeout: 2 * time.Second})
		if st.Verdict == zk.VerdictHealthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ensemble not healthy within %s: %s %v", within, st.Verdict, st.Problems)
		}
	}
	for i, m := range st.Members {
		if m.Mode == "leader" {
			return servers, i + 1
		}
	}
	t.Fatalf("healthy ensemble without a leader: %+v", st.Members)
	return nil, 0
}

// restore starts the members (start is a no-op for a running one) and waits until
// the ensemble is healthy again, so the next test finds it whole.
func restore(t *testing.T, members ...int) {
	for _, n := range members {
		testenv.Service(t, "start", "zookeeper", strconv.Itoa(n))
	}
	healthyEnsemble(t, 60*time.Second)
}

// lockerOn opens a Locker on the ensemble whose connection is to server addr (go-
// zookeeper picks a server at random: reopen until it is the one wanted).
func lockerOn(t *testing.T, servers []string, addr string, session time.Duration) *zklock.Locker {
	t.Helper()
	for attempt := 0; attempt < 30; attempt++ {
		l, err := zklock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second},
			zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: servers, SessionTimeout: endpoint.Duration(session)}})
		if err != nil {
			t.Fatal(err)
		}
		if l.Client().Conn().Server() == addr {
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
		_ = l.Close()
	}
	t.Fatalf("no session connected to %s in 30 attempts", addr)
	return nil
}

// The ensemble's leader is killed while a client connected to it holds a lock: the
// session moves to another member and survives the election, so the lease does: Renew
// works again after the election with the same fence and session, Inspect shows the
// same holder, and a contender never takes the lock meanwhile.
func TestFaultLeaderKilledWhileHolding(t *testing.T) {
	testenv.Faults(t)
	servers, leader := healthyEnsemble(t, 30*time.Second)
	const session = 10 * time.Second
	holder := lockerOn(t, servers, servers[leader-1], session)
	// The contender waits on a follower that stays up: what is tested is the holder's
	// failover.
	contender := lockerOn(t, servers, servers[leader%3], session)
	ctx := context.Background()
	name := locktest.Name(t, "leaderkill")
	lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	sid := holder.Client().SessionID()
	// The contender waits through the whole failover: it must not get the lock.
	contended := make(chan error, 1)
	go func() {
		le, err := contender.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(8 * time.Second), Owner: owner})
		if err == nil {
			_ = contender.Release(ctx, name, le.Token)
			err = fmt.Errorf("the contender took the lock (fence %d) while the holder's session lived", le.Fence)
		}
		contended <- err
	}()
	time.Sleep(300 * time.Millisecond) // the contender is queued
	killed := time.Now()
	testenv.Service(t, "kill", "zookeeper", strconv.Itoa(leader))
	defer restore(t, leader)
	sawSuspended := false
	var renewed *lock.Lease
	var lastErr error
	for deadline := killed.Add(session); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		sawSuspended = sawSuspended || holder.Suspended()
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		renewed, lastErr = holder.Renew(rctx, name, lease.Token, 30*time.Second)
		cancel()
		if lastErr == nil {
			break
		}
		if _, lost := lock.AsNotHeld(lastErr); lost {
			t.Fatalf("the lease was lost across the leader's death: %v", lastErr)
		}
	}
	if renewed == nil {
		t.Fatalf("no renewal within the %s session timeout after the leader was killed: %v", session, lastErr)
	}
	back := time.Since(killed)
	if renewed.Fence != lease.Fence || holder.Client().SessionID() != sid {
		t.Fatalf("fence %d -> %d, session 0x%x -> 0x%x: want the same lease on the same session", lease.Fence, renewed.Fence, sid, holder.Client().SessionID())
	}
	if !sawSuspended {
		t.Error("the holder was never suspended although its server died")
	}
	info, err := contender.Inspect(ctx, name)
	if err != nil || !info.Held || info.Holder.Token != lease.Token || info.Holder.Fence != lease.Fence {
		t.Fatalf("inspect after the election: %+v %v", info, err)
	}
	if err := <-contended; errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("contender: %v, want not acquired", err)
	}
	if err := holder.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	t.Logf("leader %d killed: first renewal on the same session %s later (via %s)", leader, back.Round(time.Millisecond), holder.Client().Conn().Server())
}

// Quorum lost (2 of 3 members stopped): a holder under `lock run` is suspended and
// its child keeps running until the lease's local deadline (the session timeout by the
// local clock since the last answered renewal), then is killed as lost (exit 4);
// acquiring fails with a clear message within the timeout, on an open session and on
// a new one; once quorum is back, acquiring works.
func TestFaultQuorumLost(t *testing.T) {
	testenv.Faults(t)
	servers, leader := healthyEnsemble(t, 30*time.Second)
	const session = 4 * time.Second
	ctx := context.Background()
	name := locktest.Name(t, "quorum")
	hl, err := zklock.New(ctx, endpoint.Dialer{Timeout: 3 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: servers, SessionTimeout: endpoint.Duration(session)}})
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	other, err := zklock.New(ctx, endpoint.Dialer{Timeout: 3 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: servers}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Stop two members, the leader among them.
	stopped := []int{leader, leader%3 + 1}
	var mu sync.Mutex
	var events []supervisor.Event
	started := make(chan struct{})
	var once sync.Once
	type runOut struct {
		res *supervisor.Result
		err error
	}
	done := make(chan runOut, 1)
	go func() {
		res, err := supervisor.Run(ctx, supervisor.Options{Locker: hl, Name: name,
			Acquire: lock.AcquireOptions{TTL: 6 * time.Second, Owner: owner}, Command: []string{"sleep", "60"},
			OnLost: supervisor.OnLostKill, Stdout: io.Discard, Stderr: io.Discard,
			OnEvent: func(e supervisor.Event) {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
				if e.What == "acquired" {
					once.Do(func() { close(started) })
				}
			}})
		done <- runOut{res, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("lock run did not acquire")
	}
	time.Sleep(2500 * time.Millisecond) // at least one renewal
	stoppedAt := time.Now()
	for _, n := range stopped {
		testenv.Service(t, "stop", "zookeeper", strconv.Itoa(n))
	}
	defer restore(t, stopped...)
	// The survivor stops serving without a quorum: the holder is suspended (Curator's
	// SUSPENDED) well before its lease's local deadline.
	for deadline := stoppedAt.Add(session); !hl.Suspended(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the holder was not suspended within the session timeout of the quorum loss")
		}
	}
	t.Logf("holder suspended %s after the quorum went", time.Since(stoppedAt).Round(time.Millisecond))

	// Acquire on an open session: a clear error within the timeout.
	start := time.Now()
	_, err = other.Acquire(ctx, locktest.Name(t, "quorum-other"), lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(time.Second), Owner: owner})
	took := time.Since(start)
	if errs.KindOf(err) != errs.KindUnreachable || took > 3*time.Second+time.Second {
		t.Fatalf("acquire without quorum: %v after %s; want unreachable within the 3s timeout", err, took.Round(time.Millisecond))
	}
	t.Logf("acquire on an open session without quorum: %s: %v", took.Round(time.Millisecond), err)
	// A new session cannot even start.
	start = time.Now()
	_, err = zklock.New(ctx, endpoint.Dialer{Timeout: 3 * time.Second}, zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: servers}})
	took = time.Since(start)
	if errs.KindOf(err) != errs.KindUnreachable || took > 3*time.Second+time.Second {
		t.Fatalf("new session without quorum: %v after %s; want unreachable within the 3s timeout", err, took.Round(time.Millisecond))
	}
	t.Logf("new session without quorum: %s: %v", took.Round(time.Millisecond), err)

	var out runOut
	select {
	case out = <-done:
	case <-time.After(3 * session):
		t.Fatal("lock run still running 3 session timeouts after quorum was lost")
	}
	if out.err != nil {
		t.Fatal(out.err)
	}
	res := out.res
	mu.Lock()
	evs := append([]supervisor.Event(nil), events...)
	mu.Unlock()
	if res.Lost == nil || res.Lost.Reason != lock.LostUnreachable || errs.KindOf(res.Err()) != errs.KindLockLost {
		t.Fatalf("lock run after quorum loss: lost %+v, err %v; events %+v", res.Lost, res.Err(), evs)
	}
	// The child ran on while suspended and was stopped by the local clock: no later
	// than the session timeout after the quorum went (the last answered renewal came
	// before), and not before the last renewal + the session timeout - drift.
	lostAfter := res.Lost.At.Sub(stoppedAt)
	if lostAfter > session || res.Ended.Before(res.Lost.At.Add(-time.Second)) {
		t.Fatalf("lost %s after the quorum went (session %s); child ended %s", lostAfter, session, res.Ended.Format("15:04:05.000"))
	}
	failed := 0
	for _, e := range evs {
		if e.What == "renewal failed" {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no failed renewal reported before the loss: %+v", evs)
	}
	t.Logf("quorum lost: the child was killed %s later (%s), exit %d, after %d failed renewals", lostAfter.Round(time.Millisecond), res.Lost.Why, res.ExitCode, failed)

	// Quorum back: new acquisitions work.
	restore(t, stopped...)
	l := newLocker(t, zktest.Target{Servers: servers})
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(15 * time.Second), Owner: owner})
	if err != nil {
		t.Fatalf("acquire after quorum came back: %v", err)
	}
	if err := l.Release(ctx, name, le.Token); err != nil {
		t.Fatal(err)
	}
}
