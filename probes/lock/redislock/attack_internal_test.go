package redislock

// Attack tests from an independent review of the Redis lock's claims (TestAttack*).
// Each one tries to break a claim against the real servers; a failing TestAttack test
// is a finding (see its comment for the interleaving, the claim, and a suggested fix).

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

// chaosAction is what a chaosProxy does with one chunk read from the client: deliver
// it to the server after delay, and, with reset, drop the client's side of the
// connection at once (the client sees the connection reset; the server still gets the
// bytes later, as behind a middlebox or a server busy with its input buffer).
type chaosAction struct {
	delay time.Duration
	reset bool
}

// chaosProxy forwards TCP to upstream. Chunks read from clients take the scripted
// actions in order (any connection), then pass at once.
type chaosProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	actions  []chaosAction
	def      chaosAction        // once the scripted actions are used up
	gen      func() chaosAction // when set, makes the action of every unscripted chunk
	conns    []net.Conn
	wg       sync.WaitGroup
	done     chan struct{}
}

func startChaosProxy(t *testing.T, upstream string) *chaosProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{ln: ln, upstream: upstream, done: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *chaosProxy) Addr() string { return p.ln.Addr().String() }

// script sets the actions for the next chunks read.
func (p *chaosProxy) script(a ...chaosAction) {
	p.mu.Lock()
	p.actions = append([]chaosAction(nil), a...)
	p.mu.Unlock()
}

// always sets what happens to every chunk once the scripted actions are used up.
func (p *chaosProxy) always(a chaosAction) {
	p.mu.Lock()
	p.def = a
	p.mu.Unlock()
}

func (p *chaosProxy) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.actions)
}

func (p *chaosProxy) next() chaosAction {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.actions) == 0 {
		if p.gen != nil {
			return p.gen()
		}
		return p.def
	}
	a := p.actions[0]
	p.actions = p.actions[1:]
	return a
}

func (p *chaosProxy) serve() {
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", p.upstream)
		if err != nil {
			cc.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, cc, sc)
		p.mu.Unlock()
		type chunk struct {
			b  []byte
			at time.Time
		}
		q := make(chan chunk, 1024)
		p.wg.Add(3)
		go func() { defer p.wg.Done(); _, _ = io.Copy(cc, sc); cc.Close() }()
		go func() {
			defer p.wg.Done()
			defer close(q)
			for {
				b := make([]byte, 32<<10)
				n, err := cc.Read(b)
				if n > 0 {
					a := p.next()
					q <- chunk{b[:n], time.Now().Add(a.delay)}
					if a.reset {
						if tc, ok := cc.(*net.TCPConn); ok {
							_ = tc.SetLinger(0) // RST
						}
						cc.Close()
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer p.wg.Done()
			for c := range q {
				select {
				case <-time.After(time.Until(c.at)):
				case <-p.done:
					sc.Close()
					return
				}
				if _, err := sc.Write(c.b); err != nil {
					break
				}
			}
			time.Sleep(50 * time.Millisecond) // let the last replies be read
			sc.Close()
		}()
	}
}

// attackSetup is the start of the single-server attacks: n Lockers on the first Redis
// server, a unique lock name (what) and its keys, and the first Locker's client; the
// keys are deleted when the test ends.
func attackSetup(t *testing.T, what string, n int) ([]*Locker, string, keys, *redis.Client) {
	t.Helper()
	addr := testenv.List(t, testenv.Redis)[0]
	ls := make([]*Locker, n)
	for i := range ls {
		ls[i] = internalLocker(t, addr)
	}
	name := locktest.Name(t, what)
	k := keysFor(name)
	c := ls[0].Clients()[0]
	t.Cleanup(func() { c.Del(context.Background(), k.lock, k.owner, k.fence, k.waiters) })
	return ls, name, k, c
}

// Finding 1 (claim 1, exclusion; also claim 5's "given back"): a single-server Acquire
// keeps one holder token for all its tries. When a try's reply comes back after the
// lease it took could have ended, try() releases that lease with the same token and
// ignores the release's error, and the loop tries again with that token. If that
// release is applied late (connection reset after the bytes left, a busy server), the
// next try finds its own token holding the lock ("already holds" path of
// scriptAcquire) and returns a lease; the late release then deletes it, and another
// client takes the lock while the first still believes (ExpiresAt in the future).
//
// Interleaving (TTL 1s, timeout 3s):
//
//	t=0     W try#1 EVALSHA acquire(T)            proxy holds it 1100ms
//	t=1100  server: SET lock T PX 1000            reply reaches W: 1100 > TTL-drift: "late"
//	t=1100  W releaseOn(T)                        proxy resets W's connection, holds the bytes 400ms
//	        W ignores the error, subscribes, try#2 acquire(T) on a new connection
//	t~1105  server: lock == T, "already holds"    W returns a lease, ExpiresAt ~ t+1090
//	t=1500  server: the held release(T) runs      DEL lock (and hands it on)
//	t~1505  C acquires                            two holders believe
//
// Fix: never reuse a token after a release for it was sent but not confirmed. In the
// late-reply path, either return (an error, like giveBack's paths) or start over with
// a fresh token and a fresh waiter id (leaving the old registration with its token).
func TestAttackLateReplyReleaseReusesToken(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	proxy := startChaosProxy(t, addr)
	w, err := New(endpoint.Dialer{Timeout: 3 * time.Second}, endpoint.Redis{Addrs: []string{proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	name := locktest.Name(t, "late-reply")
	k := keysFor(name)
	direct := internalLocker(t, addr)
	c := direct.Clients()[0]
	defer c.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	// Warm up: server checked, acquire and release scripts cached, one pooled connection.
	warm, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Release(ctx, name, warm.Token); err != nil {
		t.Fatal(err)
	}
	proxy.script(chaosAction{delay: 1100 * time.Millisecond}, chaosAction{delay: 400 * time.Millisecond, reset: true})
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(5 * time.Second)})
	if err != nil {
		t.Fatalf("acquire: %v (proxy actions left: %d)", err, proxy.pending())
	}
	if proxy.pending() != 0 {
		t.Fatalf("the scripted faults did not all apply (%d left): the test did not reproduce its interleaving", proxy.pending())
	}
	// Another client tries while W's lease is still valid by W's own deadline.
	var theirs *lock.Lease
	for time.Now().Before(le.ExpiresAt.Add(-50 * time.Millisecond)) {
		if got, err := direct.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second}); err == nil {
			theirs = got
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if theirs != nil {
		left := time.Until(le.ExpiresAt)
		_ = direct.Release(ctx, name, theirs.Token)
		t.Fatalf("EXCLUSION BROKEN: a second client took the lock (fence %d) while the first still believes its lease (fence %d) for %s more",
			theirs.Fence, le.Fence, left.Round(time.Millisecond))
	}
	_ = w.Release(ctx, name, le.Token)
}

// Finding 2 (claim 7, liveness): a --fair poll waiter's request lives until the
// holder's lease would end plus 5s, not until its planned retry (the poll interval)
// plus 5s. A poll waiter that dies (SIGKILL: no leave) while a long lease is held
// therefore blocks every --fair client for the rest of that lease plus 5s, even after
// the holder released early: the free lock is left to a waiter that will never come.
//
// Interleaving: H takes the lock (TTL 30s); P (--fair --wait-strategy poll) tries once,
// registering "p:ID" alive for 35s, then dies; H releases at once (no notified waiter
// to hand it to: the lock is free); N (--fair) is told "free, but left to 1 waiter
// queued earlier" every 50ms for 35s.
//
// Fix: register a poll waiter for its own retry (pass the poll interval to the script,
// as fair mode does with fairRetryMs), not for the holder's PTTL.
func TestAttackFairDeadPollWaiterBlocksPastItsRetry(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "fair-dead-poll", 3)
	h, p, n := ls[0], ls[1], ls[2]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Fair: true})
	if err != nil {
		t.Fatal(err)
	}
	// P's one try, exactly as Acquire sends it for a poll waiter, then P is killed.
	pid := "p:" + p.waiterID()
	r, err := p.acquireOn(ctx, p.nodes[0], k, append([]any{p.tokens(), int64(1000), pid, k.base, p.mode(), "1", lock.DefaultPollInterval.Milliseconds()}, ownerFields(lock.Owner{Label: "dead"})...))
	if err != nil || r.ok {
		t.Fatalf("P's try: %+v %v", r, err)
	}
	defer c.Del(ctx, k.base+":w:"+pid)
	if err := h.Release(ctx, name, held.Token); err != nil {
		t.Fatal(err)
	}
	// P's planned retry was lock.DefaultPollInterval away: by claim 7 it stops blocking
	// within that plus 5s. Allow 7s.
	start := time.Now()
	le, err := n.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Fair: true, Wait: lock.WaitFor(7 * time.Second)})
	if err != nil {
		pt, _ := c.PTTL(ctx, k.base+":w:"+pid).Result()
		t.Fatalf("LIVENESS: a free --fair lock was withheld for %s by a dead poll waiter whose planned retry was %s away (its request lives %s more): %v",
			time.Since(start).Round(time.Millisecond), lock.DefaultPollInterval, pt, err)
	}
	_ = n.Release(ctx, name, le.Token)
}

// Finding 3 (claim 7 / AcquireOptions.Fair "strict first-come-first-served order among
// waiters", fairness): a release hands the lock to the oldest *notified* waiter and
// skips poll waiters, so a --fair poll waiter queued first is overtaken by every
// notified waiter that queued after it.
//
// Fix: in fair mode, when the oldest live waiter is a poll waiter, leave the lock free
// (its next poll takes it; the fair check holds the others back) instead of granting
// past it.
func TestAttackFairGrantSkipsEarlierPollWaiter(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "fair-poll-first", 3)
	h, p, n := ls[0], ls[1], ls[2]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Fair: true})
	if err != nil {
		t.Fatal(err)
	}
	type win struct {
		who string
		le  *lock.Lease
	}
	wins := make(chan win, 2)
	run := func(who string, l *Locker, opt lock.AcquireOptions) {
		le, err := l.Acquire(ctx, name, opt)
		if err != nil {
			t.Error(who, err)
			wins <- win{who: who}
			return
		}
		wins <- win{who, le}
		time.Sleep(100 * time.Millisecond)
		_ = l.Release(ctx, name, le.Token)
	}
	go run("poll waiter queued first", p, lock.AcquireOptions{TTL: time.Second, Fair: true, Wait: lock.WaitFor(8 * time.Second),
		Strategy: lock.WaitPoll, PollInterval: 200 * time.Millisecond})
	waitFor(t, "the poll waiter to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == 1 })
	go run("notified waiter queued second", n, lock.AcquireOptions{TTL: time.Second, Fair: true, Wait: lock.WaitFor(8 * time.Second)})
	waitFor(t, "the notified waiter to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == 2 })
	if err := h.Release(ctx, name, held.Token); err != nil {
		t.Fatal(err)
	}
	first := <-wins
	second := <-wins
	if first.who != "poll waiter queued first" {
		t.Errorf("FAIRNESS: the %s got the lock first (fence %d), ahead of the %s (fence %d)", first.who, first.le.Fence, second.who, second.le.Fence)
	}
}

// Finding 4 (claim 7, liveness): a head waiter that is cut off (its host partitioned
// or hung; the server still counts its pub/sub connection as a receiver) is handed the
// lock by a release, under its own TTL. Every --fair client is then blocked for that
// waiter's whole TTL, far beyond "until its request key expires (its planned retry +
// 5s)". (The README mentions a paused waiter keeping a handed-over lock until its TTL;
// claim 7 promises a bound for a dead head waiter that the hand-over does not keep.)
//
// Interleaving: H holds (TTL 1s). W (--fair, --ttl 20s) queues; its request lives
// ~1s+5s. W's host loses its route to Redis (its requests are held 60s; the server
// side of its subscription stays open). H releases: the script hands the lock to W
// (PUBLISH counts W's connection) for 20s. W's confirming try, give-back, leave and
// disown all sit in the partition. N (--fair) cannot take the lock for 20s.
//
// Fix: hand over under a short claim TTL (e.g. min(waiter TTL, a few seconds)), and
// let the waiter's confirming try (the "already holds" path) extend it to the
// waiter's TTL and date the lease from there; a grantee that never confirms then
// blocks only for the claim TTL.
func TestAttackFairPartitionedGranteeBlocksForItsTTL(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	proxy := startChaosProxy(t, addr)
	w, err := New(endpoint.Dialer{Timeout: 500 * time.Millisecond}, endpoint.Redis{Addrs: []string{proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	h, n := internalLocker(t, addr), internalLocker(t, addr)
	name := locktest.Name(t, "fair-partitioned")
	k := keysFor(name)
	c := h.Clients()[0]
	defer c.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Fair: true})
	if err != nil {
		t.Fatal(err)
	}
	wdone := make(chan error, 1)
	go func() {
		_, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 20 * time.Second, Fair: true, Wait: lock.WaitFor(30 * time.Second)})
		wdone <- err
	}()
	waitFor(t, "W to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == 1 })
	time.Sleep(20 * time.Millisecond)                        // W's registering try has been answered
	proxy.always(chaosAction{delay: time.Minute})            // W's host is cut off from Redis
	if err := h.Release(ctx, name, held.Token); err != nil { // handed to W
		t.Fatal(err)
	}
	pt, _ := c.PTTL(ctx, k.lock).Result()
	t.Logf("after the release the lock is held for %s more (W's request would have expired ~6s after it queued)", pt)
	start := time.Now()
	le, err := n.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Fair: true, Wait: lock.WaitFor(8 * time.Second)})
	if err != nil {
		t.Fatalf("LIVENESS: a --fair newcomer was blocked for %s by a head waiter cut off from Redis (claim 7 bounds a dead head waiter by its request's expiry, ~6s): %v",
			time.Since(start).Round(time.Millisecond), err)
	}
	_ = n.Release(ctx, name, le.Token)
	if err := <-wdone; err == nil {
		t.Log("W got a lease")
	}
}

// privateRedis runs a throwaway redis-server of this test's own on a free port (no
// persistence, like the shared ones), with extra config arguments. restart kills it
// and starts it again on the same port: an empty server, as after a crash or a reboot
// without persistence.
type privateRedis struct {
	t    *testing.T
	port int
	args []string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T, args ...string) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server on PATH for a private server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &privateRedis{t: t, port: port, args: args}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", ""}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", r.Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("private redis-server on %s did not start", r.Addr())
		}
	}
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *privateRedis) restart() { r.stop(); r.start() }

// Finding 5 (claim 4, exclusion in quorum mode): a master that restarts without
// persistence forgets the leases it backed, and the lease's "majority of servers that
// hold its token until its local deadline" is gone. (This is the known Redlock
// weakness; Redlock asks for restarts delayed by the longest TTL. dsctl neither
// enforces nor detects it, although checkServer already reads each server's INFO:
// run_id changes and uptime_in_seconds tell a restarted master.)
//
// Interleaving: X holds the name on server B for 800ms. W takes the quorum on P and A
// (B refuses), TTL 10s. P crashes and comes back empty. X's key on B expires. C takes
// the quorum on P and B (A refuses): W and C both believe they hold the lock.
//
// Fix: do not count the vote of a server whose uptime is shorter than the longest
// lease TTL (dsctl's MaxTTL, or a per-name max kept with the lock), or whose run_id
// changed while a lease this Locker granted is alive; or document that quorum members
// must run with appendfsync always or restart no sooner than the longest TTL.
func TestAttackQuorumMasterRestartLosesMajority(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t)
	quorum := []string{p.Addr(), addrs[1], addrs[2]}
	newQ := func() *Locker {
		l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: quorum})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	w, c := newQ(), newQ()
	name := locktest.Name(t, "restart")
	k := keysFor(name)
	a := internalLocker(t, addrs[1]).Clients()[0]
	b := internalLocker(t, addrs[2]).Clients()[0]
	defer a.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	defer b.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	if err := b.Set(ctx, k.lock, "x-holds-b", 800*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	// Fixed: P started less than a TTL ago, so its vote does not count; W waits for X's
	// key on B to expire and holds A and B.
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	p.restart()
	waitFor(t, "X's key on B to expire", 3*time.Second, func() bool { n, _ := b.Exists(ctx, k.lock).Result(); return n == 0 || n == 1 })
	theirs, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second})
	if err != nil && !strings.Contains(err.Error(), "not counted") {
		t.Errorf("the refusal does not say the restarted server's vote was not counted: %v", err)
	}
	if err == nil && time.Now().Before(le.ExpiresAt) {
		t.Fatalf("EXCLUSION BROKEN (quorum): after one master restarted empty, a second client took the quorum (token %s) while the first believes its lease (token %s) for %s more",
			lock.ShortToken(theirs.Token), lock.ShortToken(le.Token), time.Until(le.ExpiresAt).Round(time.Millisecond))
	}
	if err != nil && errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("second acquire: %v", err)
	}
	_ = w.Release(ctx, name, le.Token)
}

// Finding 6 (claim 6, setup): a quorum that lists one server twice under two names is
// refused only when the server answers INFO. A user whose ACL denies INFO (common on
// hardened or managed servers: "+@all -info", or "-@dangerous" which includes INFO)
// gets no version check and no run_id check: checkServer takes the NOPERM as "a proxy
// or fake" and lets the duplicate count twice. One server then carries two of three
// votes: the quorum does not survive that server's loss, and a restart of it loses a
// majority at once.
//
// Fix: on a refused INFO, fall back to a probe the user may run (e.g. a random key
// SET on one name and read through the other, or HELLO's "id"/"server" fields plus a
// CLIENT ID / ROLE check), or refuse quorum mode unless every member's identity is
// known.
func TestAttackQuorumDuplicateWithoutInfoIsAccepted(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t, "--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info")
	direct := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer direct.Close()
	if err := direct.Info(context.Background(), "server").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the private server should refuse INFO, got %v", err)
	}
	alias := "localhost:" + strconv.Itoa(p.port)
	l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{p.Addr(), alias, addrs[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	name := locktest.Name(t, "dup-noinfo")
	le, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: time.Second})
	if err == nil {
		_ = l.Release(context.Background(), name, le.Token)
		t.Fatalf("SETUP: a quorum listing %s twice (as %s) took a lock instead of being refused", p.Addr(), alias)
	}
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "refuses INFO") {
		t.Fatalf("want a usage error: quorum mode needs INFO (to compare run_ids and uptimes), got %v", err)
	}
}

// A randomized search for claim 1 on one server: clients behind their own chaos
// proxies (random request delays, some connection resets whose bytes still arrive
// later), with pub/sub messages randomly delayed and holders sometimes overstaying
// their deadline (a pause), each recording the interval it believes it holds the lock
// (Acquire returned .. min(Release called, ExpiresAt)). Any two intervals that overlap
// break exclusion. The run is bounded (about 20s) and seeded from the clock; the seed
// is logged.
func TestAttackRandomChaosExclusion(t *testing.T) {
	runChaos(t, testenv.List(t, testenv.Redis)[:1])
}

// The same search in quorum mode (Redlock over the 3 masters), each client reaching
// each master through its own chaos proxy.
func TestAttackRandomChaosQuorum(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	runChaos(t, addrs[:3])
}

func runChaos(t *testing.T, addrs []string) {
	if testing.Short() {
		t.Skip("randomized search; skipped with -short")
	}
	ctx := context.Background()
	name := locktest.Name(t, "chaos")
	k := keysFor(name)
	for _, a := range addrs {
		c := internalLocker(t, a).Clients()[0]
		defer c.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	type interval struct {
		who        int
		token      string
		start, end time.Time
	}
	var mu sync.Mutex
	var got []interval
	const clients = 3 // Lockers, each with two goroutines acquiring at once
	stop := time.Now().Add(18 * time.Second)
	var wg sync.WaitGroup
	for i := range clients {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		var rmu sync.Mutex
		r := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(n) }
		var via []string
		for _, a := range addrs {
			proxy := startChaosProxy(t, a)
			proxy.gen = func() chaosAction {
				switch x := r(100); {
				case x < 8:
					return chaosAction{delay: time.Duration(r(300)) * time.Millisecond, reset: true}
				case x < 25:
					return chaosAction{delay: time.Duration(100+r(250)) * time.Millisecond}
				default:
					return chaosAction{}
				}
			}
			via = append(via, proxy.Addr())
		}
		l, err := New(endpoint.Dialer{Timeout: 400 * time.Millisecond}, endpoint.Redis{Addrs: via})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		l.beforeMessage = func(string) {
			if r(10) == 0 {
				time.Sleep(time.Duration(r(200)) * time.Millisecond)
			}
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					ttl := time.Duration(150+r(200)) * time.Millisecond
					actx, cancel := context.WithCancel(ctx)
					if r(5) == 0 { // cancelled at a random moment
						time.AfterFunc(time.Duration(r(300))*time.Millisecond, cancel)
					}
					le, err := l.Acquire(actx, name, lock.AcquireOptions{TTL: ttl, Wait: lock.WaitFor(time.Second)})
					cancel()
					if err != nil {
						continue
					}
					start := time.Now()
					hold := time.Duration(r(int(ttl/time.Millisecond))) * time.Millisecond
					if r(5) == 0 {
						hold = ttl + 50*time.Millisecond // paused past its deadline
					}
					time.Sleep(hold)
					end := time.Now()
					if le.ExpiresAt.Before(end) {
						end = le.ExpiresAt
					}
					mu.Lock()
					got = append(got, interval{i, le.Token, start, end})
					mu.Unlock()
					_ = l.Release(ctx, name, le.Token)
				}
			}()
		}
	}
	wg.Wait()
	// Liveness: whatever the faults left behind ends within a TTL (plus the give-back).
	final, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer final.Close()
	if le, err := final.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(5 * time.Second)}); err != nil {
		t.Errorf("LIVENESS: the lock could not be taken 5s after the chaos ended: %v", err)
	} else {
		_ = final.Release(ctx, name, le.Token)
	}
	sort.Slice(got, func(a, b int) bool { return got[a].start.Before(got[b].start) })
	t.Logf("%d leases", len(got))
	if len(got) < 10 {
		t.Errorf("only %d leases in the run: the search did not exercise the lock", len(got))
	}
	for a := range got {
		for b := a + 1; b < len(got) && got[b].start.Before(got[a].end); b++ {
			if got[b].token != got[a].token {
				t.Errorf("EXCLUSION BROKEN: client %d (token %s) and client %d (token %s) both believed for %s (seed %d)",
					got[a].who, lock.ShortToken(got[a].token), got[b].who, lock.ShortToken(got[b].token), got[a].end.Sub(got[b].start).Round(time.Millisecond), seed)
			}
		}
	}
}

// Finding 7 (claim 8, cosmetic / operator safety): bsm/redislock recognition accepts
// any string with a TTL whose first 22 characters are mixed-case URL-safe base64 with
// zero trailing bits. That is one in 16 of the random URL-safe tokens applications keep
// with a TTL (Python's secrets.token_urlsafe(32), Ruby's SecureRandom.urlsafe_base64:
// password-reset, CSRF or refresh tokens), so `lock break KEY --force` deletes such an
// application key without --raw, reporting it as a bsm/redislock lock.
//
// Fix: require redislock's exact shape (22 characters, or 22 + metadata only when the
// metadata was written by redislock's Options.Metadata, which cannot be told apart) or
// treat "22 + anything" as not-a-lock unless the total length is 22; at least say in
// the break's confirmation that the format was guessed from the value's shape.
func TestAttackBreakDeletesTokenLikeApplicationKey(t *testing.T) {
	ctx := context.Background()
	addr := testenv.List(t, testenv.Redis)[0]
	l := internalLocker(t, addr)
	c := l.Clients()[0]
	name := locktest.Name(t, "password-reset")
	// 43 characters, as secrets.token_urlsafe(32) makes; its 22nd character happens to
	// be one of the 4 in 64 with zero low bits.
	value := "Xk3pL9vQ2mN8rT5wY7zB1AcD4eF6gH8iJ0kL2mN4oP6"
	if err := c.Set(ctx, name, value, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Del(ctx, name)
	info, err := l.Break(ctx, name, lock.BreakOptions{Reason: "stale", By: "attack"})
	if n, _ := c.Exists(ctx, name).Result(); n == 0 {
		format := lock.Format("?")
		if info != nil {
			format = info.Format
		}
		t.Fatalf("OPERATOR SAFETY: break without --raw deleted an application's token key (taken for a %q lock)", format)
	}
	if errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("want a usage error (not a lock), got %v", err)
	}
}

// Finding 8 (claim 1 on one server, exclusion under a common server setting): a Redis
// that evicts keys under memory pressure (maxmemory with any policy but noeviction:
// allkeys-lru is the usual cache setup, volatile-ttl picks the shortest TTLs first,
// which are the locks) drops a held lease early. The holder still believes until its
// deadline, and the next client takes the lock. dsctl reads each server's INFO before
// its first script but does not look at maxmemory_policy.
//
// Interleaving: W takes the lock (TTL 10s) on a server with maxmemory 4mb and
// maxmemory-policy volatile-ttl; the application writes cache entries with a TTL of an
// hour; Redis evicts the lock key (shortest TTL); C takes the lock while W believes.
//
// Fix: checkServer reads INFO memory too and, when maxmemory > 0 and maxmemory_policy
// is not noeviction, refuses (or at least adds a Backend warning shown on stderr:
// "this server may evict held locks").
func TestAttackEvictionDropsHeldLease(t *testing.T) {
	ctx := context.Background()
	p := startPrivateRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "volatile-ttl")
	w := internalLocker(t, p.Addr())
	name := locktest.Name(t, "evicted")
	// Fixed: a server that may evict keys is refused before anything is written.
	_, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "may evict keys") {
		t.Fatalf("acquire on an evicting server: %v, want a usage error saying it may evict keys", err)
	}
	if n, _ := w.Clients()[0].Exists(ctx, keysFor(name).lock).Result(); n != 0 {
		t.Fatal("the refused acquire wrote the lock key")
	}
	if _, err := w.Inspect(ctx, name); err != nil { // reading is still allowed
		t.Fatalf("inspect on an evicting server: %v", err)
	}
	// With noeviction the same server is fine.
	if err := w.Clients()[0].ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	ok := internalLocker(t, p.Addr())
	le, err := ok.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second})
	if err != nil {
		t.Fatalf("acquire with noeviction: %v", err)
	}
	_ = ok.Release(ctx, name, le.Token)
}

// Tried and held (claim 2): forged and duplicated "granted" messages (published on the
// waiter's Locker channel by anyone with channel rights, or replayed by a proxy) only
// wake the waiter: its confirming try finds the holder and it keeps waiting. A forged
// grant for a waiter that gave up makes disown run, which frees nothing because that
// waiter's token does not hold the lock.
func TestAttackForgedGrantIsNotALease(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "forged", 2)
	h, w := ls[0], ls[1]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// A first wait that gives up, so W's Locker has a gone waiter to be fooled about.
	if _, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(100 * time.Millisecond)}); err == nil {
		t.Fatal("acquired a held lock")
	}
	w.goneMu.Lock()
	var goneID string
	for id := range w.gone {
		goneID = id
	}
	w.goneMu.Unlock()
	if goneID == "" {
		t.Fatal("the first wait did not record a waiter that gave up")
	}
	type result struct {
		le  *lock.Lease
		err error
	}
	got := make(chan result, 1)
	go func() {
		le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(1500 * time.Millisecond)})
		got <- result{le, err}
	}()
	var wid string
	waitFor(t, "the waiter to queue", 3*time.Second, func() bool {
		ids, _ := c.ZRange(ctx, k.waiters, 0, -1).Result()
		for _, id := range ids {
			if id != goneID {
				wid = id
			}
		}
		return wid != ""
	})
	ch := w.waitChannel(k)
	for i := 0; i < 20; i++ { // forged and duplicated grants, to the waiter and to the one that left
		_ = c.Publish(ctx, ch, "granted "+wid+" 99999999999999999").Err()
		_ = c.Publish(ctx, ch, "granted "+goneID+" 1").Err()
		_ = c.Publish(ctx, ch, "released "+wid+" 0").Err()
		time.Sleep(20 * time.Millisecond)
	}
	if v, _ := c.Get(ctx, k.lock).Result(); v != held.Token {
		t.Fatalf("forged grants changed the holder: %q", v)
	}
	r := <-got
	if r.err == nil && r.le.ExpiresAt.After(time.Now()) && time.Now().Before(held.ExpiresAt) {
		t.Fatalf("EXCLUSION BROKEN: a forged grant became a lease while the holder's lease runs")
	}
	_ = h.Release(ctx, name, held.Token)
}
