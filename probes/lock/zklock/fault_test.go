package zklock_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// faultProxy is a private TCP proxy between one Locker and a ZooKeeper server: it can
// hold every byte in both directions until healed (a partition, or a stopped holder:
// nothing is lost, as with TCP retransmission), or cut the
// connection right after forwarding a create request (the reply is lost, the create
// is applied). It disturbs nobody else on a shared ensemble.
type faultProxy struct {
	ln        net.Listener
	target    string
	blackhole atomic.Bool
	cutCreate atomic.Bool
	cuts      atomic.Int32
	mu        sync.Mutex
	conns     []net.Conn
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
		p.mu.Unlock()
		var mute atomic.Bool // this pair's replies are dropped (a lost reply)
		go p.upstream(c, s, &mute)
		go p.downstream(s, c, &mute)
	}
}

// upstream forwards client frames; after the handshake each frame is xid, opcode, ....
func (p *faultProxy) upstream(c, s net.Conn, mute *atomic.Bool) {
	defer c.Close()
	// In a partition the server hears nothing, not even the close (ZooKeeper restarts
	// a session's timeout when its connection closes): bytes and the close are held
	// until the partition heals, as TCP retransmission would deliver them.
	defer func() {
		p.waitHealed()
		s.Close()
	}()
	head := make([]byte, 4)
	first := true
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(head))
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		p.waitHealed()
		cut := !first && len(body) >= 8 && binary.BigEndian.Uint32(body[4:8]) == 1 && p.cutCreate.CompareAndSwap(true, false)
		if cut {
			mute.Store(true)
		}
		if _, err := s.Write(append(append([]byte(nil), head...), body...)); err != nil {
			return
		}
		if cut {
			time.Sleep(100 * time.Millisecond) // the server applies it; the reply is lost
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

// The create is applied but its reply is lost with the connection: the Locker finds
// its node by the uuid, holds the lock with it, and leaves no second node behind.
func TestCreateReplyLostFindsOwnNode(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		p := startProxy(t, tg.Servers[0])
		l := newLockerVia(t, p.addr(), 4*time.Second)
		name := locktest.Name(t, "lostreply")
		// A first lease creates the parents, so the cut hits the lock node's create.
		warm, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx, name, warm.Token); err != nil {
			t.Fatal(err)
		}
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
		if left := time.Until(lease.ExpiresAt); left > session || left < session-200*time.Millisecond {
			t.Fatalf("a 30s lease on a %s session ends in %s; want just under the session timeout", session, left)
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
