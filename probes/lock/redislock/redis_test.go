package redislock_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	bsm "github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/testenv"
)

var ctx = context.Background()

func ownerOpts(ttl time.Duration) lock.AcquireOptions {
	return lock.AcquireOptions{TTL: ttl, Owner: lock.CurrentOwner(7, "job", "", "dsctl test")}
}

func TestKeysShareOneHashTagAndFenceOutlivesTheLease(t *testing.T) {
	m := startMiniredis(t)
	l := newLocker(t, m.Addr())
	lease, err := l.Acquire(ctx, "jobs/nightly", ownerOpts(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	keys := m.Keys()
	if len(keys) != 3 {
		t.Fatalf("keys = %v, want lock, owner and fence", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "dsctl:lock:{jobs/nightly}") {
			t.Errorf("key %q lacks the {jobs/nightly} hash tag", k)
		}
	}
	if ttl := m.TTL("dsctl:lock:{jobs/nightly}:fence"); ttl != 0 {
		t.Errorf("fencing counter has TTL %s; it must outlive every lease", ttl)
	}
	if got, _ := m.Get("dsctl:lock:{jobs/nightly}"); got != lease.Token {
		t.Errorf("lock key holds %q, want the token", got)
	}
	if err := l.Release(ctx, "jobs/nightly", lease.Token); err != nil {
		t.Fatal(err)
	}
	if keys := m.Keys(); len(keys) != 1 || !strings.HasSuffix(keys[0], ":fence") {
		t.Fatalf("after release keys = %v, want only the fencing counter", keys)
	}
}

// The fencing token is max(counter+1, server clock in µs): it keeps increasing even
// when Redis loses the counter (restart without persistence, flush, failover).
func TestFenceKeepsIncreasingAfterDataLoss(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	name := locktest.Name(t, "loss")
	first, err := l.Acquire(ctx, name, ownerOpts(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMicro()
	if f := int64(first.Fence); f < now-60_000_000 || f > now+60_000_000 {
		t.Fatalf("fence %d is not near the server clock %d µs", f, now)
	}
	// The server forgets everything about the lock.
	if err := c.Del(ctx, "dsctl:lock:{"+name+"}", "dsctl:lock:{"+name+"}:owner", "dsctl:lock:{"+name+"}:fence").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = l.Renew(ctx, name, first.Token, 5*time.Second)
	if nh, ok := lock.AsNotHeld(err); !ok || nh.Reason != lock.LostDataLoss || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("renew after data loss: %v, want data-lost", err)
	}
	second, err := l.Acquire(ctx, name, ownerOpts(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if second.Fence <= first.Fence {
		t.Fatalf("fence after data loss %d is not above the lost holder's %d", second.Fence, first.Fence)
	}
	_ = l.Release(ctx, name, second.Token)
	c.Del(ctx, "dsctl:lock:{"+name+"}:fence")
}

// Uncontended acquire and release are one round trip each (once the scripts are
// cached on the server).
func TestUncontendedAcquireAndReleaseAreOneRoundTripEach(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	var calls atomic.Int64
	l.Clients()[0].AddHook(countHook{&calls})
	name := locktest.Name(t, "rtt")
	warm, err := l.Acquire(ctx, name, ownerOpts(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, name, warm.Token); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	lease, err := l.Acquire(ctx, name, ownerOpts(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Swap(0); n != 1 {
		t.Fatalf("acquire took %d round trips", n)
	}
	if err := l.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("release took %d round trips", n)
	}
	l.Clients()[0].Del(ctx, "dsctl:lock:{"+name+"}:fence")
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// Locks made by other libraries, with those libraries, are recognised, listed and
// broken; dsctl never renews or releases them.
func TestForeignLocksFromRealLibraries(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	base := locktest.Name(t, "foreign")

	rs := redsync.New(goredis.NewPool(c))
	mutex := rs.NewMutex(base+"/redsync", redsync.WithExpiry(30*time.Second), redsync.WithTries(1))
	if err := mutex.Lock(); err != nil {
		t.Fatal(err)
	}
	defer mutex.Unlock()

	bl, err := bsm.New(c).Obtain(ctx, base+"/redislock", 30*time.Second, &bsm.Options{Metadata: "worker-7"})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Release(ctx)

	// Redisson RLock, written exactly as its tryLockInnerAsync script does (there is no
	// Java here): HSET name "<client uuid>:<thread id>" 1, PEXPIRE name leaseTime.
	redisson := base + "/redisson"
	field := "8f14e45f-ceea-467f-a0e5-7ea9c1a2f3d1:57"
	c.HSet(ctx, redisson, field, 2)
	c.PExpire(ctx, redisson, 30*time.Second)
	defer c.Del(ctx, redisson)
	// A Redisson waiter listens on its channel.
	sub := c.Subscribe(ctx, "redisson_lock__channel:{"+redisson+"}")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	// A cache entry with a TTL is not a lock.
	c.Set(ctx, base+"/cache", "some cached html", time.Minute)
	defer c.Del(ctx, base+"/cache")

	for _, want := range []struct {
		key    string
		format lock.Format
		token  string
		label  string
	}{
		{base + "/redsync", lock.FormatRedsync, mutex.Value(), ""},
		{base + "/redislock", lock.FormatRedislock, strings.TrimSuffix(c.Get(ctx, base+"/redislock").Val(), "worker-7"), "worker-7"},
		{redisson, lock.FormatRedisson, field, "Redisson client 8f14e45f-ceea-467f-a0e5-7ea9c1a2f3d1, thread 57"},
	} {
		info, err := l.Inspect(ctx, want.key)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Held || info.Format != want.format || info.Holder == nil || info.Holder.Token != want.token ||
			info.Holder.TTLLeft <= 25*time.Second || info.FencingSafe {
			t.Errorf("inspect %s: %+v holder %+v", want.format, info, info.Holder)
			continue
		}
		if want.label != "" && (info.Holder.Owner == nil || info.Holder.Owner.Label != want.label) {
			t.Errorf("inspect %s: owner %+v, want label %q", want.format, info.Holder.Owner, want.label)
		}
		if want.format == lock.FormatRedisson && (info.Holder.Reentrancy != 2 || info.Waiters != 1) {
			t.Errorf("redisson: reentrancy %d waiters %d, want 2 and 1", info.Holder.Reentrancy, info.Waiters)
		}
	}

	listed, err := l.List(ctx, lock.ListOptions{Prefix: base, Foreign: true})
	if err != nil {
		t.Fatal(err)
	}
	var formats []string
	for _, i := range listed {
		formats = append(formats, string(i.Format))
	}
	if strings.Join(formats, ",") != "redislock,redisson,redsync" {
		t.Fatalf("list --foreign found %v, want the three locks and not the cache entry", formats)
	}
	if own, _ := l.List(ctx, lock.ListOptions{Prefix: base}); len(own) != 0 {
		t.Fatalf("list without --foreign shows other libraries' locks: %+v", own)
	}

	// dsctl cannot release another library's lock with its token...
	if err := l.Release(ctx, base+"/redsync", mutex.Value()); errs.KindOf(err) != errs.KindLockLost {
		t.Fatalf("release of a redsync lock: %v", err)
	}
	// ...but break removes it, and wakes Redisson's waiters with its unlock message.
	// (Locks recognised by their value's shape alone need the token inspect showed.)
	for _, key := range []string{base + "/redsync", base + "/redislock", redisson} {
		opt := lock.BreakOptions{By: "test", Reason: "test"}
		if key != redisson {
			if _, err := l.Break(ctx, key, opt); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "--if-token") {
				t.Fatalf("break %s without --if-token: %v", key, err)
			}
			info, err := l.Inspect(ctx, key)
			if err != nil || info.Holder == nil {
				t.Fatalf("inspect %s: %+v %v", key, info, err)
			}
			opt.IfToken = info.Holder.Token
		}
		prev, err := l.Break(ctx, key, opt)
		if err != nil || !prev.Held {
			t.Fatalf("break %s: %+v %v", key, prev, err)
		}
		if n := c.Exists(ctx, key).Val(); n != 0 {
			t.Fatalf("break %s left the key", key)
		}
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "0" {
		t.Fatalf("redisson waiter got %v %v, want the unlock message 0", msg, err)
	}
	if _, err := mutex.Extend(); err == nil {
		t.Fatal("redsync still extends a broken lock")
	}
}

func TestBreakRefusesAKeyThatIsNotALock(t *testing.T) {
	m := startMiniredis(t)
	l := newLocker(t, m.Addr())
	m.Lpush("queue", "job")
	info, err := l.Inspect(ctx, "queue")
	if err != nil || info.Held || info.Format != lock.FormatNotALock {
		t.Fatalf("inspect a list: %+v %v", info, err)
	}
	if _, err := l.Break(ctx, "queue", lock.BreakOptions{}); errs.KindOf(err) != errs.KindUsage || !m.Exists("queue") {
		t.Fatalf("break of a list: %v (exists %v)", err, m.Exists("queue"))
	}
}

func TestUnreachableIsExit6WithinTimeout(t *testing.T) {
	l := newLocker(t, "127.0.0.1:1")
	start := time.Now()
	_, err := l.Acquire(ctx, "x", ownerOpts(time.Second))
	if errs.KindOf(err) != errs.KindUnreachable || time.Since(start) > 3*time.Second {
		t.Fatalf("acquire on a closed port: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error does not name the server: %v", err)
	}
}

func TestQuorumNeedsAMajorityOfReachableServers(t *testing.T) {
	a, b := startMiniredis(t), startMiniredis(t)
	// Two live servers and one closed port: 2 of 3 is a majority.
	l := newLocker(t, a.Addr(), b.Addr(), "127.0.0.1:1")
	if l.Backend().Mode != lock.ModeQuorum || l.Backend().FencingSafe {
		t.Fatalf("backend = %+v", l.Backend())
	}
	lease, err := l.Acquire(ctx, "q", ownerOpts(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if lease.Fence != 0 || !strings.Contains(lease.Note, "no safe fencing token") {
		t.Fatalf("quorum lease = %+v", lease)
	}
	info, err := l.Inspect(ctx, "q")
	if err != nil || !info.Held || len(info.Instances) != 3 || info.Instances[2].Error == "" {
		t.Fatalf("inspect = %+v %v", info, err)
	}
	if _, err := l.Renew(ctx, "q", lease.Token, 2*time.Second); err != nil {
		t.Fatalf("renew with 2 of 3: %v", err)
	}
	if err := l.Release(ctx, "q", lease.Token); err != nil {
		t.Fatal(err)
	}

	// One live server of three: not a majority; exit 3, and nothing left behind.
	b.Close()
	start := time.Now()
	_, err = l.Acquire(ctx, "q", ownerOpts(2*time.Second))
	if errs.KindOf(err) != errs.KindLockNotAcquired || !strings.Contains(err.Error(), "1 of 3 servers, need 2") {
		t.Fatalf("acquire with 1 of 3: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	if a.Exists("dsctl:lock:{q}") {
		t.Fatal("failed quorum attempt left the lock held on the live server")
	}
	// No server at all: unreachable.
	a.Close()
	if _, err := l.Acquire(ctx, "q", ownerOpts(2*time.Second)); errs.KindOf(err) != errs.KindUnreachable {
		t.Fatalf("acquire with 0 of 3: %v, want unreachable", err)
	}
}

func TestPollStrategyAlsoWaits(t *testing.T) {
	m := startMiniredis(t)
	a, b := newLocker(t, m.Addr()), newLocker(t, m.Addr())
	lease, err := a.Acquire(ctx, "p", ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(150*time.Millisecond, func() { a.Release(ctx, "p", lease.Token) })
	o := ownerOpts(time.Second)
	o.Wait, o.Strategy, o.PollInterval = lock.WaitFor(5*time.Second), lock.WaitPoll, 20*time.Millisecond
	if _, err := b.Acquire(ctx, "p", o); err != nil {
		t.Fatal(err)
	}
	if chs := m.PubSubChannels("dsctl:lock:{p}:ch*"); len(chs) != 0 {
		t.Fatalf("poll strategy subscribed to %v", chs)
	}
}

// A Locker that waits again reuses its subscription: no new connection, no second
// SUBSCRIBE, and it still wakes on the release. Close drops the subscription.
func TestWaitingAgainReusesTheSubscription(t *testing.T) {
	m := startMiniredis(t)
	a, b := newLocker(t, m.Addr()), newLocker(t, m.Addr())
	// Each Locker listens on a channel of its own for the lock.
	subscribers := func() int {
		n := 0
		for _, c := range m.PubSubChannels("dsctl:lock:{s}:ch:*") {
			n += m.PubSubNumSub(c)[c]
		}
		return n
	}
	o := ownerOpts(10 * time.Second)
	o.Wait = lock.WaitFor(5 * time.Second)
	conns := 0
	for round := range 2 {
		lease, err := a.Acquire(ctx, "s", ownerOpts(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		released := make(chan error, 1)
		time.AfterFunc(100*time.Millisecond, func() { released <- a.Release(ctx, "s", lease.Token) })
		start := time.Now()
		got, err := b.Acquire(ctx, "s", o)
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited > time.Second {
			t.Fatalf("round %d: woke after %s, not on the release", round, waited)
		}
		if err := b.Release(ctx, "s", got.Token); err != nil {
			t.Fatal(err)
		}
		// The release script hands the lock to b before a's Release call has
		// read its reply: wait for it, or a's next Acquire may find a's only
		// connection still busy and rightly open a second one.
		if err := <-released; err != nil {
			t.Fatal(err)
		}
		if n := subscribers(); n != 1 {
			t.Fatalf("round %d: %d subscribers, want 1", round, n)
		}
		if round == 0 {
			conns = m.TotalConnectionCount()
		} else if n := m.TotalConnectionCount(); n != conns {
			t.Fatalf("waiting again opened %d connections", n-conns)
		}
	}
	b.Close()
	deadline := time.Now().Add(2 * time.Second)
	for subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Close left the subscription open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInspectShowsWaitersAndLastBreak(t *testing.T) {
	m := startMiniredis(t)
	a, b := newLocker(t, m.Addr()), newLocker(t, m.Addr())
	lease, err := a.Acquire(ctx, "w", ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		o := ownerOpts(time.Second)
		o.Wait = lock.WaitFor(5 * time.Second)
		le, err := b.Acquire(ctx, "w", o)
		if err == nil {
			err = b.Release(ctx, "w", le.Token)
		}
		done <- err
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		info, err := a.Inspect(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		if info.Waiters == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiters = %d, want 1", info.Waiters)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Break(ctx, "w", lock.BreakOptions{By: "ops@box", Reason: "stuck"}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, _ := a.Inspect(ctx, "w")
	if info.LastBreak == nil || info.LastBreak.By != "ops@box" || info.LastBreak.Reason != "stuck" || info.LastBreak.Token != lease.Token {
		t.Fatalf("last break = %+v", info.LastBreak)
	}
	if d := time.Since(info.LastBreak.At); d < 0 || d > time.Minute {
		t.Fatalf("break time %s", info.LastBreak.At)
	}
}

// A release hands the lock to the waiters in the order they came, one at a time: the
// new holder needs no acquire attempt of its own, and no other waiter stirs.
func TestReleaseHandsTheLockOverInOrder(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	holder := newLocker(t, addr)
	name := locktest.Name(t, "fifo")
	lease, err := holder.Acquire(ctx, name, ownerOpts(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 6
	var attempts atomic.Int64
	type got struct {
		i     int
		lease *lock.Lease
	}
	gotc := make(chan got, waiters)
	lockers := make([]*redislock.Locker, waiters)
	for i := range waiters {
		l := newLocker(t, addr)
		l.Clients()[0].AddHook(countHook{&attempts})
		lockers[i] = l
		go func() {
			o := ownerOpts(30 * time.Second)
			o.Wait = lock.WaitFor(20 * time.Second)
			le, err := l.Acquire(ctx, name, o)
			if err != nil {
				t.Error(err)
			}
			gotc <- got{i, le}
		}()
		// Let each one register before the next arrives, so the order is known.
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := holder.Inspect(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Waiters == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("inspect counts %d waiters, want %d", info.Waiters, i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	attempts.Store(0)
	owner, ownerLocker := lease, holder
	lastFence := lease.Fence
	for want := range waiters {
		if err := ownerLocker.Release(ctx, name, owner.Token); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-gotc:
			if g.i != want {
				t.Fatalf("handover %d went to waiter %d, want %d (arrival order)", want, g.i, want)
			}
			if g.lease.Fence <= lastFence {
				t.Fatalf("fence %d after %d", g.lease.Fence, lastFence)
			}
			if left := time.Until(g.lease.ExpiresAt); left < 25*time.Second || left > 30*time.Second {
				t.Fatalf("handed-over lease ends in %s, want about its 30s TTL", left)
			}
			info, _ := holder.Inspect(ctx, name)
			if info.Holder == nil || info.Holder.Token != g.lease.Token || info.Holder.Fence != g.lease.Fence {
				t.Fatalf("server holder %+v, lease %+v", info.Holder, g.lease)
			}
			if info.Holder.Owner == nil || info.Holder.Owner.Command != "job" || info.Holder.Owner.PID != 7 {
				t.Fatalf("the waiter's owner data did not follow the lock: %+v", info.Holder.Owner)
			}
			if info.Waiters != waiters-1-want {
				t.Fatalf("after handover %d: %d waiters listed, want %d", want, info.Waiters, waiters-1-want)
			}
			owner, ownerLocker, lastFence = g.lease, lockers[g.i], g.lease.Fence
		case <-time.After(5 * time.Second):
			t.Fatalf("handover %d: nobody got the lock", want)
		}
	}
	// Each waiter made one call to confirm its grant (no lease on the strength of a
	// message), and each but the last its release: no retries, no polling.
	if n := attempts.Load(); n != 2*waiters-1 {
		t.Fatalf("%d handovers made %d calls from the waiters' clients, want %d (a confirmation each, and their releases)", waiters, n, 2*waiters-1)
	}
	if err := ownerLocker.Release(ctx, name, owner.Token); err != nil {
		t.Fatal(err)
	}
	if info, _ := holder.Inspect(ctx, name); info.Held || info.Waiters != 0 {
		t.Fatalf("after the last release: held %v, %d waiters", info.Held, info.Waiters)
	}
}

// A waiter whose process died (nobody listens on its channel any more) is skipped: the
// release hands the lock to the next live waiter, and the dead one is dropped.
func TestReleaseSkipsADeadWaiter(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	a, b := newLocker(t, addr), newLocker(t, addr)
	c := a.Clients()[0]
	name := locktest.Name(t, "deadwaiter")
	lease, err := a.Acquire(ctx, name, ownerOpts(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A waiter registered first, whose Locker is gone: in the list, with its request,
	// and nobody subscribed to its channel.
	base := "dsctl:lock:{" + name + "}"
	dead := "0123456789abcdef.deadbeef"
	if err := c.ZAdd(ctx, base+":waiters", redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMicro()), Member: dead}).Err(); err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, base+":w:"+dead, "token", "ghost", "ttl_ms", "30000")
	c.PExpire(ctx, base+":w:"+dead, time.Minute)
	got := make(chan *lock.Lease, 1)
	go func() {
		o := ownerOpts(30 * time.Second)
		o.Wait = lock.WaitFor(10 * time.Second)
		le, err := b.Acquire(ctx, name, o)
		if err != nil {
			t.Error(err)
		}
		got <- le
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := c.ZCard(ctx, base+":waiters").Result(); n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the live waiter never registered")
		}
	}
	start := time.Now()
	if err := a.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
	le := <-got
	if le == nil {
		t.FailNow()
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the live waiter got the lock %s after the release", d)
	}
	if v, _ := c.Get(ctx, base).Result(); v != le.Token {
		t.Fatalf("lock value %q, want the live waiter's token", v)
	}
	if n, _ := c.Exists(ctx, base+":w:"+dead).Result(); n != 0 {
		t.Fatal("the dead waiter's request was left behind")
	}
	if s, _ := c.ZScore(ctx, base+":waiters", dead).Result(); s != 0 {
		t.Fatal("the dead waiter is still listed")
	}
	_ = b.Release(ctx, name, le.Token)
}

// Quorum waiters must be woken by releases, never left to their TTL timer: a client
// that wins on a majority was registered as a waiter on the servers it lost, and a
// release there must not spend its wake-up on that client's Locker (still subscribed,
// so PUBLISH counts it) while the real waiters sleep until the lease would have ended.
func TestQuorumContentionIsWokenByReleasesNotTTLs(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs three Redis servers")
	}
	name := locktest.Name(t, "qwake")
	const clients, cycles, ttl = 4, 200, 3 * time.Second
	var worst atomic.Int64
	var holders atomic.Int32
	errc := make(chan error, clients)
	for range clients {
		l := newLocker(t, addrs[:3]...)
		go func() {
			o := ownerOpts(ttl)
			o.Wait = lock.WaitFor(4 * ttl)
			for range cycles {
				start := time.Now()
				lease, err := l.Acquire(ctx, name, o)
				if err != nil {
					errc <- err
					return
				}
				for d := int64(time.Since(start)); ; {
					if w := worst.Load(); d <= w || worst.CompareAndSwap(w, d) {
						break
					}
				}
				if holders.Add(1) != 1 {
					errc <- errors.New("two holders at once")
					return
				}
				time.Sleep(50 * time.Microsecond) // a critical section another holder could overlap
				holders.Add(-1)
				if err := l.Release(ctx, name, lease.Token); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if w := time.Duration(worst.Load()); w > ttl/3 {
		t.Fatalf("an acquire waited %s (TTL %s): a release did not wake the waiters", w, ttl)
	}
}

// A wake-up that reaches a Locker for a waiter it no longer has is handed on: here two
// stale entries of Locker a head every server's list (PUBLISH counts a as a receiver),
// so the release's two wake-ups both land on a, and only a's pass-on reaches b.
func TestQuorumWakeForAGoneWaiterIsPassedOn(t *testing.T) {
	ms := []*miniredis.Miniredis{startMiniredis(t), startMiniredis(t), startMiniredis(t)}
	addrs := []string{ms[0].Addr(), ms[1].Addr(), ms[2].Addr()}
	h, a, b := newLocker(t, addrs...), newLocker(t, addrs...), newLocker(t, addrs...)
	held, err := h.Acquire(ctx, "gone", ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// a waits once (and gives up), so it stays subscribed to its channel for "gone".
	o := ownerOpts(10 * time.Second)
	o.Wait = lock.WaitFor(50 * time.Millisecond)
	if _, err := a.Acquire(ctx, "gone", o); errs.KindOf(err) != errs.KindLockNotAcquired {
		t.Fatalf("a: %v", err)
	}
	chs := ms[0].PubSubChannels("dsctl:lock:{gone}:ch:*")
	if len(chs) != 1 {
		t.Fatalf("channels %v, want a's", chs)
	}
	lid := chs[0][strings.LastIndex(chs[0], ":")+1:]
	for _, m := range ms {
		for i, id := range []string{lid + ".00000001", lid + ".00000002"} {
			m.ZAdd("dsctl:lock:{gone}:waiters", float64(i), id)
			m.HSet("dsctl:lock:{gone}:w:"+id, "token", "stale", "ttl_ms", "10000")
			m.SetTTL("dsctl:lock:{gone}:w:"+id, time.Minute)
		}
	}
	o.Wait = lock.WaitFor(5 * time.Second)
	bGot := make(chan error, 1)
	start := time.Now()
	go func() { _, err := b.Acquire(ctx, "gone", o); bGot <- err }()
	// Release once b queued behind the two stale entries on every server.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		queued := 0
		for _, m := range ms {
			if ids, _ := m.ZMembers("dsctl:lock:{gone}:waiters"); len(ids) == 3 {
				queued++
			}
		}
		if queued == len(ms) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b did not queue on every server")
		}
	}
	if err := h.Release(ctx, "gone", held.Token); err != nil {
		t.Fatal(err)
	}
	if err := <-bGot; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("b waited %s: the wake-ups spent on a's gone waiters were not passed on", waited)
	}
	// b may win on two servers before a's pass-on reached the third: eventually.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := 0
		for _, m := range ms {
			if m.Exists("dsctl:lock:{gone}:w:"+lid+".00000001") || m.Exists("dsctl:lock:{gone}:w:"+lid+".00000002") {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gone waiters' requests are still on %d servers", left)
		}
	}
}

// Redis 7 gives new ACL users no channel rights (acl-pubsub-default resetchannels).
// Such a user cannot SUBSCRIBE or PUBLISH: its waiters must fall back to polling at
// once (not after --timeout), and a release by such a user, with waiters that may
// listen queued, must still release cleanly (its script must not fail half-way).
func TestACLUserWithoutChannelRights(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	user := "dsctl-nochan-" + newSuffix()
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw-"+user, "~*", "+@all", "resetchannels").Err(); err != nil {
		if strings.Contains(err.Error(), "resetchannels") || strings.Contains(err.Error(), "Syntax") {
			t.Skipf("this Redis has no channel ACLs (6.2+): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	t.Setenv("DSCTL_TEST_ACL_PW", "pw-"+user)
	restricted := func() *redislock.Locker {
		l, err := redislock.New(endpoint.Dialer{Timeout: 5 * time.Second},
			endpoint.Redis{Addrs: []string{addr}, Username: user, Password: endpoint.Secret{Env: "DSCTL_TEST_ACL_PW"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	name := locktest.Name(t, "acl")

	// A restricted waiter polls, and gets the lock soon after the release.
	h, w := restricted(), restricted()
	lease, err := h.Acquire(ctx, name, ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, func() { h.Release(ctx, name, lease.Token) })
	o := ownerOpts(2 * time.Second) // short: the next waiter's timer follows it
	o.Wait, o.PollInterval = lock.WaitFor(8*time.Second), 50*time.Millisecond
	start := time.Now()
	got, err := w.Acquire(ctx, name, o)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 1500*time.Millisecond {
		t.Fatalf("restricted waiter took %s (release after 200ms): it waited for the SUBSCRIBE to time out", waited)
	}

	// A restricted holder releases while a notified waiter (full rights) is queued:
	// the release works (the script cannot publish, so it must not fail half-way) and
	// the waiter still gets the lock, by its timer (at most the 2s TTL it saw).
	full := newLocker(t, addr)
	done := make(chan error, 1)
	go func() {
		o := ownerOpts(10 * time.Second)
		o.Wait = lock.WaitFor(8 * time.Second)
		_, err := full.Acquire(ctx, name, o)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := w.Release(ctx, name, got.Token); err != nil {
		t.Fatalf("release by a user without channel rights: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("queued waiter: %v", err)
	}
}

func newSuffix() string { return strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") }

// A waiter's timer follows the lease it last saw. When the lock is handed to a waiter
// with a shorter TTL and that one dies holding it, the next waiter must be told the
// new end, or it sleeps until the old holder's lease would have ended.
func TestNextWaiterFollowsAShorterGrantedLease(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	name := locktest.Name(t, "shorter")
	a, b, c := newLocker(t, addr), newLocker(t, addr), newLocker(t, addr)
	held, err := a.Acquire(ctx, name, ownerOpts(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	short := ownerOpts(time.Second)
	short.Wait = lock.WaitFor(15 * time.Second)
	waitFor := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := a.Inspect(ctx, name)
			if err == nil && info.Waiters >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiters did not register: %+v %v", info, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	bGot := make(chan error, 1)
	go func() { _, err := b.Acquire(ctx, name, short); bGot <- err }() // b will die holding it
	waitFor(1)
	type result struct {
		at  time.Time
		err error
	}
	cGot := make(chan result, 1)
	go func() {
		_, err := c.Acquire(ctx, name, short)
		cGot <- result{time.Now(), err}
	}()
	waitFor(2)
	if err := a.Release(ctx, name, held.Token); err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	if err := <-bGot; err != nil {
		t.Fatal(err)
	}
	// b never releases nor renews: its 1s lease runs out and c should take over.
	select {
	case r := <-cGot:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if d := r.at.Sub(granted); d > 1500*time.Millisecond {
			t.Fatalf("c took the lock %s after b's 1s lease began", d)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("c still waits 6s after b's 1s lease began: it follows a's 20s lease")
	}
}

// In quorum mode each server has its own fencing counter: messages about the holder
// must not show one server's counter as if it were the lock's fencing token.
func TestQuorumMessagesShowNoFence(t *testing.T) {
	addrs := []string{startMiniredis(t).Addr(), startMiniredis(t).Addr(), startMiniredis(t).Addr()}
	a, b := newLocker(t, addrs...), newLocker(t, addrs...)
	lease, err := a.Acquire(ctx, "qf", ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Acquire(ctx, "qf", ownerOpts(10*time.Second))
	if errs.KindOf(err) != errs.KindLockNotAcquired || strings.Contains(err.Error(), "fence") {
		t.Fatalf("not acquired: %v", err)
	}
	err = b.Release(ctx, "qf", "not-the-token")
	if errs.KindOf(err) != errs.KindLockLost || strings.Contains(err.Error(), "fence") {
		t.Fatalf("release with a wrong token: %v", err)
	}
	_, err = b.Renew(ctx, "qf", "not-the-token", 10*time.Second)
	if errs.KindOf(err) != errs.KindLockLost || strings.Contains(err.Error(), "fence") {
		t.Fatalf("renew with a wrong token: %v", err)
	}
	if err := a.Release(ctx, "qf", lease.Token); err != nil {
		t.Fatal(err)
	}
}
