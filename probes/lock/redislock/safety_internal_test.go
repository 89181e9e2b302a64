package redislock

// Adversarial tests for the exclusion holes an outside review found (issue 10): each
// one reproduces its hole against real Redis, with late messages held back by the
// Locker's message hook or requests delayed by a TCP proxy, and fails on the code
// before its fix.

import (
	"bufio"
	"context"
	"errors"
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
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

// gate holds back a Locker's pub/sub messages whose payload starts with one of the
// prefixes until opened, as a paused process or a slow connection would.
type gate struct {
	open chan struct{}
	once sync.Once
	held atomic.Int64
}

func holdMessages(l *Locker, prefixes ...string) *gate {
	g := &gate{open: make(chan struct{})}
	l.beforeMessage = func(payload string) {
		for _, p := range prefixes {
			if strings.HasPrefix(payload, p) {
				g.held.Add(1)
				<-g.open
				return
			}
		}
	}
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Hole 1: a waiter's timed retry succeeds while the release's grant to that same
// waiter is still on its way. When the grant arrives after Acquire returned, it must
// not be taken for a grant to a waiter that left: that disowned (freed) the lease the
// caller now holds and handed it to the next waiter.
func TestLateGrantDoesNotFreeTheLeaseItsWaiterHolds(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	h, w := internalLocker(t, addr), internalLocker(t, addr)
	name := locktest.Name(t, "late-grant")
	k := keysFor(name)
	c := h.Clients()[0]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := holdMessages(w, "granted")
	defer g.release()
	got := make(chan *lock.Lease, 1)
	go func() {
		le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(5 * time.Second)})
		if err != nil {
			t.Error(err)
		}
		got <- le
	}()
	waitFor(t, "the waiter to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == 1 })
	if err := h.Release(ctx, name, held.Token); err != nil { // hands the lock to w; the message is held back
		t.Fatal(err)
	}
	le := <-got // w's timer fires when h's lease would have ended; its try finds its own token
	if le == nil {
		t.FailNow()
	}
	waitFor(t, "the grant message to be held", time.Second, func() bool { return g.held.Load() == 1 })
	g.release() // the grant arrives after Acquire returned
	time.Sleep(300 * time.Millisecond)
	if v, _ := c.Get(ctx, k.lock).Result(); v != le.Token {
		t.Fatalf("the late grant freed the lease its waiter holds: lock value %q, want %q", v, le.Token)
	}
	if _, err := w.Renew(ctx, name, le.Token, 10*time.Second); err != nil {
		t.Fatalf("renew after the late grant: %v", err)
	}
	if err := w.Release(ctx, name, le.Token); err != nil {
		t.Fatal(err)
	}
}

// Hole 2: a waiter is paused, is granted the lock while paused, the grant's TTL runs
// out and another client takes the lock. When the waiter resumes, its overdue retry
// fails, and the grant it then reads must not be accepted: no lease on the strength of
// a message.
func TestStaleGrantAfterAPauseIsNotALease(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	h, w, other := internalLocker(t, addr), internalLocker(t, addr), internalLocker(t, addr)
	name := locktest.Name(t, "stale-grant")
	k := keysFor(name)
	c := h.Clients()[0]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 700 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := holdMessages(w, "granted", "taken") // w hears nothing while "paused"
	defer g.release()
	type result struct {
		le  *lock.Lease
		err error
	}
	got := make(chan result, 1)
	go func() {
		le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 400 * time.Millisecond, Wait: lock.WaitFor(3 * time.Second)})
		got <- result{le, err}
	}()
	var wid string
	waitFor(t, "the waiter to queue", 3*time.Second, func() bool {
		ids, _ := c.ZRange(ctx, k.waiters, 0, -1).Result()
		if len(ids) == 1 {
			wid = ids[0]
		}
		return wid != ""
	})
	if err := h.Release(ctx, name, held.Token); err != nil { // granted to w for 400ms; w does not hear it
		t.Fatal(err)
	}
	waitFor(t, "the grant to expire", 2*time.Second, func() bool { n, _ := c.Exists(ctx, k.lock).Result(); return n == 0 })
	theirs, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// w's overdue retry (at the end of h's lease) fails and re-registers it until the
	// new holder's lease ends: its request's TTL jumps past 10s.
	waitFor(t, "the waiter's retry", 3*time.Second, func() bool {
		pt, _ := c.PTTL(ctx, k.base+":w:"+wid).Result()
		return pt > 10*time.Second
	})
	g.release() // the stale grant arrives now
	r := <-got
	if r.err == nil {
		v, _ := c.Get(ctx, k.lock).Result()
		t.Fatalf("a stale grant became a lease (ends in %s) while %s holds the lock (value %s)",
			time.Until(r.le.ExpiresAt).Round(time.Millisecond), lock.ShortToken(theirs.Token), lock.ShortToken(v))
	}
	if errs.KindOf(r.err) != errs.KindLockNotAcquired {
		t.Fatalf("want not acquired, got %v", r.err)
	}
	if v, _ := c.Get(ctx, k.lock).Result(); v != theirs.Token {
		t.Fatalf("the holder's lease was disturbed: lock value %q", v)
	}
	_ = other.Release(ctx, name, theirs.Token)
}

// Hole 4: in quorum mode, a SET that timed out here but was applied there later holds
// that server under the round's token. The next round must not count it as a fresh
// vote, nor lend it the full TTL: every lease needs a majority of servers that hold
// its token at least until the lease's local deadline.
func TestQuorumDoesNotCountALeftoverVote(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	proxy := startChaosProxy(t, addrs[2])
	q, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{addrs[0], addrs[1], proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	name := locktest.Name(t, "leftover")
	k := keysFor(name)
	// Warm up: connections, server checks, and the scripts cached on every server (a
	// NOSCRIPT answer that comes too late would mean nothing was applied).
	warm, err := q.Acquire(ctx, name+"-warm", lock.AcquireOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, name+"-warm", warm.Token); err != nil {
		t.Fatal(err)
	}
	direct := internalLocker(t, addrs[2]).Clients()[0]
	s2 := internalLocker(t, addrs[1]).Clients()[0]
	if err := s2.Set(ctx, k.lock, "someone-else", 10*time.Second).Err(); err != nil { // held on one server by another client
		t.Fatal(err)
	}
	defer s2.Del(ctx, k.lock)
	proxy.always(chaosAction{delay: 350 * time.Millisecond}) // server 3's answers come after the 300ms per-call limit
	go func() { time.Sleep(320 * time.Millisecond); proxy.always(chaosAction{}) }()
	le, err := q.Acquire(ctx, name, lock.AcquireOptions{TTL: 900 * time.Millisecond, Wait: lock.WaitFor(3 * time.Second),
		Strategy: lock.WaitPoll, PollInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	backing := 0
	var seen []string
	for i, c := range append(q.Clients()[:2], direct) {
		v, _ := c.Get(ctx, k.lock).Result()
		pt, _ := c.PTTL(ctx, k.lock).Result()
		ends := time.Now().Add(pt)
		seen = append(seen, fmt.Sprintf("server %d: %s ends in %s", i+1, lock.ShortToken(v), pt))
		if v == le.Token && !ends.Before(le.ExpiresAt) {
			backing++
		}
	}
	if backing < 2 {
		t.Fatalf("lease until %s is backed by %d server(s): %s", time.Until(le.ExpiresAt).Round(time.Millisecond), backing, strings.Join(seen, "; "))
	}
	_ = q.Release(ctx, name, le.Token)
}

// Item 6: a first try that times out (not cancelled) may still be applied by the
// server: it is given back, not left as a lease nobody holds until its TTL.
func TestTimedOutTryIsGivenBack(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	proxy := startChaosProxy(t, addr)
	l, err := New(endpoint.Dialer{Timeout: 200 * time.Millisecond}, endpoint.Redis{Addrs: []string{proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	name := locktest.Name(t, "orphan")
	warm, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second}) // scripts cached, server checked
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, name, warm.Token); err != nil {
		t.Fatal(err)
	}
	// A slow network for 250ms: the try (and the first give-back, whose connection
	// handshake is just as slow) time out at 200ms; the try is applied at 300ms.
	proxy.always(chaosAction{delay: 300 * time.Millisecond})
	go func() { time.Sleep(250 * time.Millisecond); proxy.always(chaosAction{}) }()
	_, err = l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second})
	if errs.KindOf(err) != errs.KindUnreachable {
		t.Fatalf("want unreachable (timed out), got %v", err)
	}
	direct := internalLocker(t, addr).Clients()[0]
	k := keysFor(name)
	time.Sleep(time.Second) // the late SET, then the late release, have arrived
	if n, _ := direct.Exists(ctx, k.lock).Result(); n != 0 {
		pt, _ := direct.PTTL(ctx, k.lock).Result()
		t.Fatalf("the timed-out try left a lease nobody holds (%s left)", pt)
	}
}

// fakeRedis answers like an old Redis: HELLO unknown, INFO with the given version and
// run_id, anything else an error.
func fakeRedis(t *testing.T, version string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cmd, err := readRESP(r)
					if err != nil {
						return
					}
					switch strings.ToUpper(cmd[0]) {
					case "INFO":
						body := "# Server\r\nredis_version:" + version + "\r\nrun_id:0123456789abcdef\r\n"
						fmt.Fprintf(c, "$%d\r\n%s\r\n", len(body), body)
					case "PING":
						io.WriteString(c, "+PONG\r\n")
					default:
						fmt.Fprintf(c, "-ERR unknown command '%s'\r\n", cmd[0])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func readRESP(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	out := make([]string, 0, n)
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		arg, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		out = append(out, strings.TrimRight(arg, "\r\n"))
	}
	return out, nil
}

// Item 6: Redis before 5 rejects a write after TIME half-way through a script, which
// would leave a lock without owner data or fence: refused before any script runs.
func TestRedisOlderThan5IsRefused(t *testing.T) {
	l := internalLocker(t, fakeRedis(t, "4.0.14"))
	_, err := l.Acquire(context.Background(), "old", lock.AcquireOptions{TTL: time.Second})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "Redis 4.0.14") || !strings.Contains(err.Error(), "5.0 or newer") {
		t.Fatalf("got %v", err)
	}
	l5 := internalLocker(t, fakeRedis(t, "5.0.0"))
	_, err = l5.Acquire(context.Background(), "new", lock.AcquireOptions{TTL: time.Second})
	if err == nil || strings.Contains(err.Error(), "5.0 or newer") { // passes the check, then the fake refuses EVALSHA
		t.Fatalf("5.0 refused by the version check: %v", err)
	}
}

// Item 6: a quorum must be independent masters: one server listed twice (same address,
// or another name for it) is refused; an even count works, with a warning.
func TestQuorumOfDuplicatesIsRefused(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	_, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{addrs[0], addrs[0], addrs[1]}})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("same address twice: %v", err)
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	alias := "localhost:" + port
	l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{addrs[0], alias, addrs[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	name := locktest.Name(t, "dup")
	_, err = l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: time.Second})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "same server") {
		t.Fatalf("one server under two names: %v", err)
	}
	even, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs[:2]})
	if err != nil {
		t.Fatal(err)
	}
	defer even.Close()
	if w := even.Backend().Warnings; len(w) != 1 || !strings.Contains(w[0], "odd number of masters") {
		t.Fatalf("2 masters: warnings %q", w)
	}
}

// --fair: a free lock goes to the oldest live waiter, never to a newcomer, even when
// each hand-over happens by expiry (no release to hand it over).
func TestFairNewcomerNeverBargesIn(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	name := locktest.Name(t, "fair")
	first := internalLocker(t, addr)
	if _, err := first.Acquire(ctx, name, lock.AcquireOptions{TTL: 300 * time.Millisecond, Fair: true}); err != nil {
		t.Fatal(err)
	}
	const queued = 3
	order := make(chan int, queued+1)
	c := first.Clients()[0]
	k := keysFor(name)
	for i := range queued {
		l := internalLocker(t, addr)
		go func() {
			// Each holds until its lease runs out: the next hand-over is by expiry.
			_, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 250 * time.Millisecond, Wait: lock.WaitFor(10 * time.Second), Fair: true})
			if err != nil {
				t.Error(err)
			}
			order <- i
		}()
		waitFor(t, "the waiter to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == int64(i+1) })
	}
	// A newcomer tries hard all along, as a --fair client that arrived last.
	barger := internalLocker(t, addr)
	stop := time.Now().Add(5 * time.Second)
	for took := 0; took < queued && time.Now().Before(stop); {
		le, err := barger.Acquire(ctx, name, lock.AcquireOptions{TTL: 100 * time.Millisecond, Fair: true})
		if err == nil {
			select {
			case i := <-order:
				t.Fatalf("the newcomer took the lock while waiter %d of %d had not", i+1, queued)
			default:
				t.Fatalf("the newcomer took the lock (fence %d) ahead of %d queued waiters", le.Fence, queued-took)
			}
		}
		for len(order) > 0 {
			if i := <-order; i != took {
				t.Fatalf("waiter %d got the lock, want %d (arrival order)", i, took)
			}
			took++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n, _ := c.ZCard(ctx, k.waiters).Result(); n != 0 {
		t.Fatalf("%d waiters left queued", n)
	}
}
