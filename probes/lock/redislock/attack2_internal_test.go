package redislock

// Second independent review of the Redis lock's claims (TestAttack2*). Each test
// tries to break one claim against real servers (private redis-server processes
// where a restart, an ACL or a config change is needed). A failing TestAttack2 test
// is a finding: its comment gives the interleaving, the claim, a fix and a severity.

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

func quorumLocker(t *testing.T, addrs []string) *Locker {
	t.Helper()
	l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Finding A1 (claim 5, EXCLUSION in quorum mode; severity: exclusion). The "young
// server does not vote" rule reads uptime_in_seconds once, at the Locker's first
// contact with a server (checkServer runs once per node: n.checked), and keeps
// upSince for the Locker's life. A long-lived Locker (lock run renewing for hours,
// lock bench, any library user holding one Locker) never notices that a master
// restarted empty afterwards: it keeps dating the server's start from the first
// INFO, so the restarted master votes at once.
//
// Interleaving (3 masters P, A, B; P private, no persistence):
//
//	t=0     P starts; C's Locker contacts every server (caches P started ~t=0)
//	t~4.5s  X holds the name on B (1.5 s). W (fresh Locker) takes P and A, TTL 3 s
//	        (P is up 4 s > 3 s: counted); B refuses. W believes for ~3 s.
//	        P crashes and restarts empty.
//	        X's key on B expires.
//	        control: a fresh Locker D is refused ("started ... ago ... not counted")
//	        C (long-lived) takes P and B: upSince is the cached ~t=0, so P counts.
//	        W and C both believe.
//
// Fix: re-read uptime (or run_id) when it matters: on every quorum round that would
// count a server, or at least whenever a connection to the server was re-established
// (go-redis OnConnect hook: run INFO server there and update upSince/run_id), and
// treat a changed run_id as "restarted now".
func TestAttack2QuorumLongLivedLockerCountsRestartedMaster(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t)
	started := time.Now()
	quorum := []string{p.Addr(), addrs[1], addrs[2]}
	c := quorumLocker(t, quorum)
	name := locktest.Name(t, "restart-cached")
	k := keysFor(name)
	a := internalLocker(t, addrs[1]).Clients()[0]
	b := internalLocker(t, addrs[2]).Clients()[0]
	defer a.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	defer b.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	// C's first contact (a lock on another name, as a long-lived process does).
	warm := name + "-warm"
	if le, err := c.Acquire(ctx, warm, lock.AcquireOptions{TTL: time.Second}); err == nil {
		_ = c.Release(ctx, warm, le.Token)
	}
	for _, n := range c.nodes {
		if n.checkedAt.Load() == 0 {
			t.Fatalf("SETUP: C did not contact %s", n.addr)
		}
	}
	const ttl = 3 * time.Second
	time.Sleep(time.Until(started.Add(ttl + 1500*time.Millisecond))) // P up longer than the TTL
	if err := b.Set(ctx, k.lock, "x-holds-b", 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	w := quorumLocker(t, quorum)
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("SETUP: W could not take P and A: %v", err)
	}
	defer w.Release(ctx, name, le.Token)
	p.restart()
	waitFor(t, "X's key on B to expire", 3*time.Second, func() bool { n, _ := b.Exists(ctx, k.lock).Result(); return n == 0 })
	if !time.Now().Before(le.ExpiresAt) {
		t.Skip("too slow: W's lease ended before the second client could try")
	}
	// Control: a fresh Locker reads P's new uptime and does not count its vote.
	d := quorumLocker(t, quorum)
	if theirs, err := d.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl}); err == nil {
		_ = d.Release(ctx, name, theirs.Token)
		t.Fatalf("CONTROL: a fresh Locker counted the restarted master's vote")
	} else if !strings.Contains(err.Error(), "not counted") {
		t.Fatalf("CONTROL: want the restarted master's vote not counted, got %v", err)
	}
	theirs, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl})
	if err == nil {
		defer c.Release(ctx, name, theirs.Token)
		if time.Now().Before(le.ExpiresAt) {
			t.Fatalf("EXCLUSION BROKEN (quorum): a long-lived Locker counted a master that restarted empty after its first contact "+
				"(it still dates P's start from the INFO read %s before the restart): C holds token %s while W believes its lease (token %s) for %s more",
				time.Since(started).Round(time.Second), lock.ShortToken(theirs.Token), lock.ShortToken(le.Token), time.Until(le.ExpiresAt).Round(time.Millisecond))
		}
	} else if errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("C's acquire: %v", err)
	}
}

// Finding A2 (claim 5's eviction refusal; severity: exclusion on one server). The
// "servers that may evict keys are refused for acquire" check reads maxmemory and
// maxmemory-policy once, at the Locker's first contact. A CONFIG SET afterwards (an
// operator turning a Redis into a cache, a config management run, a managed service
// applying a parameter group without restart) is never seen by a long-lived Locker:
// it keeps acquiring, the server evicts the held lease under memory pressure, and a
// second long-lived Locker takes the lock while the first still believes.
//
// Interleaving (one private server, noeviction at start):
//
//	W and C contact the server (a warm-up lock each)
//	CONFIG SET maxmemory 4mb, maxmemory-policy volatile-ttl
//	W.Acquire (TTL 20 s) succeeds: the claim says it must be refused
//	the application writes cache entries with a 1 h TTL; Redis evicts the lock key
//	C.Acquire succeeds while W believes
//
// Fix: re-read INFO memory (maxmemory, maxmemory_policy) on each Acquire (one cheap
// round trip; or cache it for a few seconds), or have the acquire script itself
// refuse: Lua cannot read CONFIG, but the client can send CONFIG GET / INFO memory
// with the script in one pipeline. Documenting "checked at first contact only" is the
// minimum.
func TestAttack2EvictionPolicySetAfterFirstContact(t *testing.T) {
	ctx := context.Background()
	p := startPrivateRedis(t)
	w, c := internalLocker(t, p.Addr()), internalLocker(t, p.Addr())
	// Fixed: a Locker asks its servers again every recheckEvery (10 s); shortened here.
	w.recheck, c.recheck = 100*time.Millisecond, 100*time.Millisecond
	name := locktest.Name(t, "evict-late")
	for _, l := range []*Locker{w, c} {
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second})
		if err != nil {
			t.Fatalf("SETUP: warm-up acquire on a noeviction server: %v", err)
		}
		if err := l.Release(ctx, name, le.Token); err != nil {
			t.Fatal(err)
		}
	}
	admin := w.Clients()[0]
	for _, kv := range [][2]string{{"maxmemory", "4mb"}, {"maxmemory-policy", "volatile-ttl"}} {
		if err := admin.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // past the recheck interval
	// Control: a fresh Locker is refused.
	if _, err := internalLocker(t, p.Addr()).Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second}); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "may evict keys") {
		t.Fatalf("CONTROL: a fresh Locker on the evicting server: %v, want 'may evict keys'", err)
	}
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 20 * time.Second})
	if err != nil {
		if strings.Contains(err.Error(), "may evict keys") {
			return // refused: the claim holds
		}
		t.Fatal(err)
	}
	defer w.Release(ctx, name, le.Token)
	t.Errorf("CLAIM BROKEN: a Locker that first met the server before CONFIG SET maxmemory-policy volatile-ttl took a lock on it (the refusal only applies to fresh Lockers)")
	// The consequence: the application's cache writes evict the lease.
	k := keysFor(name)
	val := strings.Repeat("x", 64<<10)
	evicted := false
	for i := 0; i < 400 && !evicted; i++ {
		_ = admin.Set(ctx, "attack2:cache:"+strconv.Itoa(i), val, time.Hour).Err()
		n, _ := admin.Exists(ctx, k.lock).Result()
		evicted = n == 0
	}
	if !evicted {
		t.Log("the lease was not evicted within 400 writes (the claim is broken anyway)")
		return
	}
	theirs, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second})
	if err == nil {
		defer c.Release(ctx, name, theirs.Token)
		if time.Now().Before(le.ExpiresAt) {
			t.Fatalf("EXCLUSION BROKEN: the evicted lease's holder believes for %s more while C holds token %s",
				time.Until(le.ExpiresAt).Round(time.Millisecond), lock.ShortToken(theirs.Token))
		}
	}
}

// switchProxy forwards TCP to upstream while up; while down it accepts and closes
// connections at once (the client sees a network error, as with a server that is
// down or a partition).
type switchProxy struct {
	ln       net.Listener
	upstream string
	up       atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
}

func startSwitchProxy(t *testing.T, upstream string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, upstream: upstream}
	go func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				cc.Close()
				continue
			}
			sc, err := net.Dial("tcp", upstream)
			if err != nil {
				cc.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, cc, sc)
			p.mu.Unlock()
			go func() { _, _ = copyConn(sc, cc); sc.Close() }()
			go func() { _, _ = copyConn(cc, sc); cc.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *switchProxy) Addr() string { return p.ln.Addr().String() }

func copyConn(dst, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		r, err := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if err != nil {
			return n, err
		}
	}
}

// Finding A3 (claim 5's duplicate refusal, probe-key path; severity: exclusion under
// a setup error). When the user may not run INFO, duplicates are found by the probe
// key, which checkServers runs only for the servers it reached; a server unreachable
// at that moment is checked later by runScript -> checkServer, which (INFO refused)
// marks it checked without any probe. So a quorum [P, P', B] where P' is a second
// address of P (a proxy, a DNS alias, a load balancer VIP) that happens to be down at
// the first contact is accepted for the rest of the Locker's life, and P then carries
// two of three votes: a waiting Acquire takes the lock on P alone while B is held by
// someone else.
//
// Interleaving: X holds the name on P (700 ms) and on B (10 s). W (INFO denied on P,
// P' down) waits: checkServers probes P and B only. P' comes up. X's key on P expires;
// W's next round takes P and P' (the same key, the token-match path) and returns a
// lease backed by one server while B's holder still holds B.
//
// Fix: run the identity probe (or the run_id comparison) in checkServer itself, for
// every server checked after the others, not only in checkServers' first batch; or
// refuse to count a server whose identity is unknown until a probe covering it ran.
func TestAttack2QuorumDuplicateDownAtFirstContactIsCountedTwice(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t, "--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info")
	alias := startSwitchProxy(t, p.Addr())
	direct := redis.NewClient(&redis.Options{Addr: p.Addr()})
	defer direct.Close()
	b := internalLocker(t, addrs[1]).Clients()[0]
	name := locktest.Name(t, "dup-late")
	k := keysFor(name)
	defer direct.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	defer b.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	if err := direct.Set(ctx, k.lock, "x", 700*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx, k.lock, "x", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	w := quorumLocker(t, []string{p.Addr(), alias.Addr(), addrs[1]})
	go func() {
		time.Sleep(300 * time.Millisecond)
		alias.up.Store(true)
	}()
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: 2 * time.Second, Wait: lock.WaitFor(3 * time.Second)})
	if err == nil {
		defer w.Release(ctx, name, le.Token)
		held, _ := b.Get(ctx, k.lock).Result()
		t.Fatalf("CLAIM BROKEN (duplicates refused): a quorum listing %s twice (as %s, down at the first contact) took the lock on that one server; B is held by %q meanwhile",
			p.Addr(), alias.Addr(), held)
	}
	if errs.KindOf(err) == errs.KindUsage && (strings.Contains(err.Error(), "same server") || strings.Contains(err.Error(), "refuses INFO")) {
		return // refused (fixed: quorum mode needs INFO, and compares run_ids): the claim holds
	}
	t.Fatalf("want a usage error naming the same server or the refused INFO (or no lease), got %v", err)
}

// Finding A4 (claim 6; severity: liveness/fairness). "A poll waiter's request lives
// until its next poll + 5 s": the acquire script caps the wait it registers at 60 s
// (register: if wait > 60000 then wait = 60000), while --poll-interval has no upper
// bound (ValidatePollInterval checks only >= 1ms). A poll waiter with
// --poll-interval 90s has a request that expires 65 s after its try, 30 s before its
// next poll: it drops out of the queue, and a --fair newcomer in that window takes
// the free lock ahead of it (and inspect stops counting it).
//
// Related (same claim, by design but worth a line in the docs): a poll waiter's first
// failed try does not register it (only a notified waiter retries at once after
// subscribing), so it joins the queue one whole --poll-interval after it started
// waiting; a --fair newcomer arriving in between is served first.
//
// Fix: bound --poll-interval (e.g. <= 60s, with a usage error naming the flag), or
// drop the 60 s cap for poll waiters (cap at MaxTTL-like bound instead).
func TestAttack2PollWaiterRequestOutlivesLongPollInterval(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "longpoll", 2)
	h, w := ls[0], ls[1]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx, name, held.Token)
	const poll = 90 * time.Second
	if err := lock.ValidatePollInterval(poll); err != nil {
		return // bounded: the claim holds for every accepted interval
	}
	// What the Acquire loop sends from a poll waiter's second try on (its first try
	// does not register it, and the second comes a whole --poll-interval later):
	// waiter id "p:...", ARGV[7] = the poll interval in ms.
	id := "p:" + w.waiterID()
	args := append([]any{newToken(), int64(1000), id, k.base, w.mode(), "1", poll.Milliseconds()}, ownerFields(lock.Owner{Label: "attack2"})...)
	r, err := w.acquireOn(ctx, w.nodes[0], k, args)
	if err != nil || r.ok {
		t.Fatalf("SETUP: the poll waiter's try: ok=%v err=%v", r.ok, err)
	}
	left, err := c.PTTL(ctx, k.base+":w:"+id).Result()
	if err != nil || left <= 0 {
		t.Fatalf("SETUP: the poll waiter did not register (PTTL %v, %v)", left, err)
	}
	if left < poll {
		t.Fatalf("CLAIM BROKEN (--fair queue): a poll waiter with --poll-interval %s has a request that lives %s, so it leaves the queue %s before its next poll",
			poll, left.Round(time.Second), (poll - left).Round(time.Second))
	}
}

// Finding A5 (claim 5's uptime rule; severity: exclusion in quorum mode under a
// hardened ACL). A server whose user may not run INFO has no known start time
// (upSince zero), and startedAt's "zero: unknown" counts its vote as if it had been up
// forever. So with "+@all -info" (or -@dangerous, which includes INFO) the delayed-
// restart rule is off entirely, even for a fresh Locker: the interleaving of
// TestAttackQuorumMasterRestartLosesMajority breaks exclusion again.
//
// Interleaving: X holds B (1.5 s); W takes P and A (TTL 3 s); P restarts empty; X's
// key on B expires; C (a fresh Locker) takes P and B: both believe.
//
// Fix: detect a restart in-band, without INFO and without caching: each server keeps
// an epoch key with no TTL (e.g. dsctl:lock:{dsctl.epoch} = server TIME when first
// written, SET NX); the acquire script reads it (creating it when missing: a server
// that lost its data writes a new epoch) and returns its age; a vote whose epoch is
// younger than the TTL is not counted. It needs no INFO right, works through proxies
// and is checked on every round (also closing TestAttack2QuorumLongLivedLocker...).
// (The epoch key must live in the lock's hash slot on a cluster: one per name,
// {NAME}:epoch, works too.) At the least, refuse quorum mode, or warn, when a
// server's uptime cannot be read.
func TestAttack2QuorumRestartUndetectedWithoutInfo(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t, "--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info")
	started := time.Now()
	quorum := []string{p.Addr(), addrs[1], addrs[2]}
	name := locktest.Name(t, "restart-noinfo")
	k := keysFor(name)
	a := internalLocker(t, addrs[1]).Clients()[0]
	b := internalLocker(t, addrs[2]).Clients()[0]
	defer a.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	defer b.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	const ttl = 3 * time.Second
	time.Sleep(time.Until(started.Add(ttl + 1500*time.Millisecond))) // as in A1: P up longer than the TTL
	if err := b.Set(ctx, k.lock, "x-holds-b", 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	w := quorumLocker(t, quorum)
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl})
	if errs.KindOf(err) == errs.KindUsage && strings.Contains(err.Error(), "refuses INFO") {
		return // fixed: quorum mode refuses a member that will not run INFO
	}
	if err != nil {
		t.Fatalf("SETUP: W could not take P and A: %v", err)
	}
	defer w.Release(ctx, name, le.Token)
	p.restart()
	waitFor(t, "X's key on B to expire", 3*time.Second, func() bool { n, _ := b.Exists(ctx, k.lock).Result(); return n == 0 })
	if !time.Now().Before(le.ExpiresAt) {
		t.Skip("too slow: W's lease ended before the second client could try")
	}
	c := quorumLocker(t, quorum) // fresh: reads INFO now, and is refused
	theirs, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl})
	if err == nil {
		defer c.Release(ctx, name, theirs.Token)
		if time.Now().Before(le.ExpiresAt) {
			t.Fatalf("EXCLUSION BROKEN (quorum, INFO denied): a fresh Locker counted a master that restarted empty a moment ago (its uptime is unknown, so it votes): C holds token %s while W believes its lease (token %s) for %s more",
				lock.ShortToken(theirs.Token), lock.ShortToken(le.Token), time.Until(le.ExpiresAt).Round(time.Millisecond))
		}
	} else if errs.KindOf(err) != errs.KindLockNotAcquired && errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("C's acquire: %v", err)
	}
}

// addDeadWaiters lists wakeScan waiters (prefix0, prefix1, ...) at the head of the
// waiter list, scores 1..wakeScan, with no request behind them: waiters that died.
func addDeadWaiters(t *testing.T, c *redis.Client, k keys, prefix string) {
	t.Helper()
	for i := 0; i < wakeScan; i++ {
		if err := c.ZAdd(context.Background(), k.waiters, redis.Z{Score: float64(i + 1), Member: prefix + strconv.Itoa(i)}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Finding A6 (claim 6; severity: fairness). "A --fair newcomer never takes a free
// lock while a live waiter queued earlier exists": the fair check scans only the
// first wakeScan (48) entries of the waiter list and drops the dead ones it meets;
// when those 48 are all dead it counts nobody ahead and takes the lock, although a
// live waiter sits at position 49. Dead entries at the head are what a crashed
// batch leaves (48 waiters killed with SIGKILL or by an OOM kill: no leave runs, and
// since the holder also died no release script cleans the list before the lease
// expires).
//
// Interleaving: H takes the lock (300 ms) and dies; 48 waiters queued before P died;
// P (a live --fair poll waiter) is queued 49th; H's key expires; N (--fair, no wait)
// finds the lock free, scans 48 dead entries, and takes the lock ahead of P.
//
// Fix: keep scanning past dead entries (they are removed as they are met, so the
// loop's cost is paid once), bounding only the number of LIVE entries looked at; or
// loop ZRANGE in pages until a live entry or the end of the list.
func TestAttack2FairNewcomerBargesPastDeadHead(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "deadhead", 3)
	h, pw, n := ls[0], ls[1], ls[2]
	if _, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	addDeadWaiters(t, c, k, "p:dead") // earlier waiters that died: listed, request expired
	id := "p:" + pw.waiterID()
	args := append([]any{newToken(), int64(1000), id, k.base, pw.mode(), "1", int64(5000)}, ownerFields(lock.Owner{Label: "attack2-live"})...)
	if r, err := pw.acquireOn(ctx, pw.nodes[0], k, args); err != nil || r.ok {
		t.Fatalf("SETUP: the live poll waiter's try: ok=%v err=%v", r.ok, err)
	}
	defer c.Del(ctx, k.base+":w:"+id)
	if left, _ := c.PTTL(ctx, k.base+":w:"+id).Result(); left <= 0 {
		t.Fatal("SETUP: the live poll waiter is not registered")
	}
	waitFor(t, "H's lease to expire", 3*time.Second, func() bool { e, _ := c.Exists(ctx, k.lock).Result(); return e == 0 })
	if rank, err := c.ZRank(ctx, k.waiters, id).Result(); err != nil || rank != wakeScan {
		t.Fatalf("SETUP: the live waiter is at rank %d (%v), want %d", rank, err, wakeScan)
	}
	le, err := n.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Fair: true})
	if err == nil {
		defer n.Release(ctx, name, le.Token)
		t.Fatalf("CLAIM BROKEN (--fair): a newcomer took the free lock while a live poll waiter queued earlier (rank %d, behind %d dead entries) waits", wakeScan, wakeScan)
	}
	if errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("newcomer: %v", err)
	}
}

// Finding A7 (claim 2; severity: liveness). "A release hands the lock to the oldest
// live notified waiter": grant() looks at the first wakeScan (48) entries only; when
// they are all dead it removes them and leaves the lock free without telling anyone.
// The live waiter behind them sleeps until the timer of the lease it last saw (up to
// safetyRecheck, a minute) or its --wait deadline, whichever comes first: the lock
// stands free and unused until then.
//
// Interleaving: H holds (TTL 10 s); W waits (--wait 1.5 s, notified); 48 waiters
// queued before W died (their requests expired); H releases at once: grant drops the
// 48, returns false, the lock stays free; W is never told, and only the last try at
// the end of its wait (1.5 s later) finds the lock free.
//
// Fix: as for A6, scan past dead entries (bound the live ones looked at, not the
// dead ones); or, when the scan ended on dead entries only, run it again.
func TestAttack2ReleaseSkipsLiveWaiterBehindDeadHead(t *testing.T) {
	ctx := context.Background()
	ls, name, k, c := attackSetup(t, "deadhead-grant", 2)
	h, w := ls[0], ls[1]
	held, err := h.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
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
	waitFor(t, "W to queue", 3*time.Second, func() bool { n, _ := c.ZCard(ctx, k.waiters).Result(); return n == 1 })
	addDeadWaiters(t, c, k, "dead")
	if err := h.Release(ctx, name, held.Token); err != nil {
		t.Fatal(err)
	}
	// The release script either handed the lock to W (the key now holds W's token
	// under a claim) or left it free: nothing else runs in between.
	granted, _ := c.Exists(ctx, k.lock).Result()
	r := <-got
	if r.err == nil {
		_ = w.Release(ctx, name, r.le.Token)
	}
	if granted == 0 {
		t.Fatalf("CLAIM BROKEN (hand-over): the release left the lock free instead of handing it to the live waiter behind %d dead entries; W was not told and got it only when its own wait ran out (err=%v)",
			wakeScan, r.err)
	}
}

// Finding A8 (claim 5's uptime rule and claim 1 in quorum mode; severity: exclusion,
// with fresh Lockers and INFO allowed). Two errors in the young-server rule:
//
//  1. It compares the server's uptime with the TTL the NEW request asks for, but what
//     a restarted server may have forgotten is a lease taken with the OTHER client's
//     TTL. Redlock's delayed restart is "the longest TTL in use"; a client asking for
//     a short TTL counts a server that restarted in the middle of a long lease.
//  2. The start time is padded the wrong way: upSince = asked - (uptime_in_seconds+1)s
//     makes the server look up to a second OLDER than it is (uptime is rounded down
//     already), so a server that restarted 0.1 s ago votes for any TTL under ~1 s:
//     the claim "uptime below the requested TTL does not vote" is broken literally.
//
// Interleaving (3 masters P, A, B; fresh Lockers everywhere):
//
//	P has been up 5.5 s. X holds B (1 s). W takes P and A, TTL 4 s. X's key expires.
//	P crashes and restarts empty. At once (P up ~0.1 s), C asks for TTL 500 ms: INFO
//	says uptime 0, upSince = now - 1 s, "older than 500 ms": P votes; C takes P and B.
//	W believes for ~2.5 s more.
//
// Fix: (2) upSince = asked - uptime_in_seconds (rounding down already errs on the
// young side; INFO has no millisecond uptime). (1) compare the uptime with the longest TTL any client may use on
// this name: lock.MaxTTL is 7 days, so in practice store the longest TTL granted on
// the name (a "max_ttl_ms" field next to the fencing counter, no expiry) and refuse a
// server younger than that; or document that quorum members must not restart sooner
// than the longest TTL and that the client-side check only covers equal TTLs.
func TestAttack2QuorumShortTTLCountsJustRestartedMaster(t *testing.T) {
	ctx := context.Background()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis masters")
	}
	p := startPrivateRedis(t)
	started := time.Now()
	quorum := []string{p.Addr(), addrs[1], addrs[2]}
	name := locktest.Name(t, "restart-short")
	k := keysFor(name)
	a := internalLocker(t, addrs[1]).Clients()[0]
	b := internalLocker(t, addrs[2]).Clients()[0]
	defer a.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	defer b.Del(ctx, k.lock, k.owner, k.fence, k.waiters)
	const ttl = 4 * time.Second
	time.Sleep(time.Until(started.Add(ttl + 1500*time.Millisecond)))
	if err := b.Set(ctx, k.lock, "x-holds-b", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	w := quorumLocker(t, quorum)
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl})
	if err != nil {
		t.Fatalf("SETUP: W could not take P and A: %v", err)
	}
	defer w.Release(ctx, name, le.Token)
	waitFor(t, "X's key on B to expire", 3*time.Second, func() bool { n, _ := b.Exists(ctx, k.lock).Result(); return n == 0 })
	p.restart()
	restarted := time.Now()
	c := quorumLocker(t, quorum)
	theirs, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: 500 * time.Millisecond})
	if err == nil {
		defer c.Release(ctx, name, theirs.Token)
		if time.Now().Before(le.ExpiresAt) {
			t.Fatalf("EXCLUSION BROKEN (quorum): a fresh Locker asking for a 500ms TTL counted a master restarted about %s ago (less than that TTL, and in the middle of W's 4s lease): C holds token %s while W believes its lease (token %s) for %s more",
				time.Since(restarted).Round(time.Millisecond), lock.ShortToken(theirs.Token), lock.ShortToken(le.Token), time.Until(le.ExpiresAt).Round(time.Millisecond))
		}
	} else if errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("C's acquire: %v", err)
	}
}

// Finding A9 (claim 5's eviction refusal; severity: exclusion on one server under a
// hardened ACL). The eviction check reads maxmemory and maxmemory-policy from INFO;
// a user that may not run INFO skips it silently (checkServer takes the NOPERM as "a
// proxy or fake"), so a Redis used as a cache (maxmemory + volatile-ttl, which evicts
// the shortest TTLs first: the locks) takes locks as if it never evicted.
//
// Fix: when INFO is refused, try CONFIG GET maxmemory-policy / maxmemory (often also
// refused), and when neither answers refuse with a usage error naming the missing
// right (or require an explicit --allow-unknown-eviction / a Backend warning).
func TestAttack2EvictionCheckSkippedWithoutInfo(t *testing.T) {
	ctx := context.Background()
	p := startPrivateRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", "volatile-ttl",
		"--user", "default", "on", "nopass", "~*", "&*", "+@all", "-info")
	w := internalLocker(t, p.Addr())
	name := locktest.Name(t, "evict-noinfo")
	le, err := w.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second})
	if err == nil {
		_ = w.Release(ctx, name, le.Token)
		t.Fatalf("CLAIM BROKEN: a server with maxmemory 4mb and maxmemory-policy volatile-ttl took a lock because the user may not run INFO")
	}
	if errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("want a usage error (eviction unknown or possible), got %v", err)
	}
}
