package zklock

// Regression tests (internal: they drive the Locker's own hooks) for findings 7, 8 and
// 9 of the adversarial review (issue 12).

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
)

var testOwner = lock.CurrentOwner(778, "zklock internal test", "zk", "dsctl test")

func internalLocker(t *testing.T) *Locker {
	t.Helper()
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l, err := New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second},
		Options{Endpoint: endpoint.ZooKeeper{Servers: []string{srv.Addr()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func (l *Locker) heldOf(t *testing.T, token string) *held {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.held[token]
	if h == nil {
		t.Fatalf("lease %s is not held", token)
	}
	return h
}

func nodeExists(t *testing.T, l *Locker, p string) bool {
	t.Helper()
	ok, _, err := l.conn.Exists(p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// Finding 7: the grant is confirmed by a write through the leader (the node's data
// version is 1 after Acquire: created, then written once), the lease counts from that
// write's send time, and its session bound leaves out a tick (timeout/20) besides the
// drift.
func TestReviewFixGrantIsConfirmedByAWrite(t *testing.T) {
	l := internalLocker(t)
	ctx := context.Background()
	name := "review/grant"
	before := time.Now()
	lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Minute, Owner: testOwner})
	if err != nil {
		t.Fatal(err)
	}
	h := l.heldOf(t, lease.Token)
	_, st, err := l.conn.Get(h.node)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 1 || st.EphemeralOwner != l.conn.SessionID() {
		t.Fatalf("holder node version %d owner 0x%x (session 0x%x): want version 1 (the confirming write) on our session", st.Version, st.EphemeralOwner, l.conn.SessionID())
	}
	if lease.AcquiredAt.Before(before) {
		t.Fatalf("lease counted from %s, before the acquire started (%s)", lease.AcquiredAt, before)
	}
	// Review 2: the session part is the timeout less the client's ping interval
	// (timeout/3) and one tick (the leader learns of a forwarded write from the
	// follower's ping answers); it may be lower still when this process wrote
	// nothing for longer than the ping interval (never the case here but for
	// scheduling jitter).
	tick, _ := l.TickTime()
	to := l.SessionTimeout()
	bound := min(time.Minute, to-to/3-min(tick, to/2))
	want := bound - lock.ClockDrift(bound)
	if got := lease.ExpiresAt.Sub(lease.AcquiredAt); got > want || got < want-100*time.Millisecond || to >= time.Minute {
		t.Fatalf("lease span %s, want %s (the session timeout %s less timeout/3 and one tick %s, less the drift)", got, want, to, tick)
	}
	if err := l.Release(ctx, name, lease.Token); err != nil {
		t.Fatal(err)
	}
}

// Finding 8: an expiry handled late drops only the leases of ended sessions, not one
// taken on the current session meanwhile.
func TestReviewFixLateExpiryDropsOnlyTheEndedSessionsLeases(t *testing.T) {
	l := internalLocker(t)
	ctx := context.Background()
	cur, err := l.Acquire(ctx, "review/late-expiry-current", lock.AcquireOptions{TTL: time.Minute, Owner: testOwner})
	if err != nil {
		t.Fatal(err)
	}
	// A lease of the session that expired (as if taken before the expiry).
	old := &held{name: "review/late-expiry-old", dir: l.root + "/review/late-expiry-old", node: l.root + "/review/late-expiry-old/_c_x-lock-0000000000",
		token: newUUID(), session: l.conn.SessionID() + 1, ttl: time.Minute, ttlEnd: time.Now().Add(time.Minute), timer: time.NewTimer(time.Hour)}
	l.mu.Lock()
	l.held[old.token] = old
	l.mu.Unlock()
	l.sessionLost() // the StateExpired event, handled after the current session was made
	l.mu.Lock()
	_, oldHeld := l.held[old.token]
	oldExpired := l.expired[old.token]
	_, curHeld := l.held[cur.Token]
	l.mu.Unlock()
	if oldHeld || !oldExpired {
		t.Fatalf("the ended session's lease: held %v, expired %v; want dropped as expired", oldHeld, oldExpired)
	}
	if !curHeld {
		t.Fatal("the lease of the current session was dropped by a late expiry of an older session")
	}
	if _, err := l.Renew(ctx, cur.Name, cur.Token, time.Minute); err != nil {
		t.Fatalf("renew of the current session's lease: %v", err)
	}
	// With no session (go-zookeeper zeroes it when it reports the expiry) every lease goes.
	l.sessionLostExcept(0)
	if _, err := l.Renew(ctx, cur.Name, cur.Token, time.Minute); errs.KindOf(err) != errs.KindLockLost {
		t.Fatalf("renew after the expiry of its session: %v, want lost", err)
	}
}

// Finding 9: a TTL timer that fires late (this process did not run) gives the lease up
// locally but keeps the node until the caller releases it (lock run's supervisor, once
// the child is stopped); a timer on time deletes the node at once; a stale node the
// caller never releases goes after staleHold.
func TestReviewFixLateTTLTimerKeepsTheNodeUntilRelease(t *testing.T) {
	l := internalLocker(t)
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		late    bool
		release bool
	}{{"review/ttl-late", true, true}, {"review/ttl-ontime", false, false}, {"review/ttl-late-abandoned", true, false}} {
		lease, err := l.Acquire(ctx, c.name, lock.AcquireOptions{TTL: time.Minute, Owner: testOwner})
		if err != nil {
			t.Fatal(err)
		}
		h := l.heldOf(t, lease.Token)
		h.mu.Lock()
		if c.late {
			h.ttlEnd = time.Now().Add(-time.Second) // the timer fires a second after the TTL ran out
		} else {
			h.ttlEnd = time.Now().Add(-time.Millisecond)
		}
		h.mu.Unlock()
		if c.release {
			// The caller's renewal after the pause comes first (before the timer's
			// goroutine ran): it must not delete the node either.
			if _, err := l.Renew(ctx, c.name, lease.Token, time.Minute); errs.KindOf(err) != errs.KindLockLost {
				t.Fatalf("%s: renew after the TTL ran out: %v, want lost", c.name, err)
			}
		}
		l.expire(h)
		if _, err := l.Renew(ctx, c.name, lease.Token, time.Minute); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("%s: renew after the TTL timer: %v, want lost", c.name, err)
		}
		exists := nodeExists(t, l, h.node)
		if exists != c.late {
			t.Fatalf("%s: node exists %v after the timer fired (late %v): want kept only when late", c.name, exists, c.late)
		}
		switch {
		case c.late && c.release:
			if err := l.Release(ctx, c.name, lease.Token); errs.KindOf(err) != errs.KindLockLost {
				t.Fatalf("%s: release of the stale lease: %v, want lost (expired)", c.name, err)
			}
			if nodeExists(t, l, h.node) {
				t.Fatalf("%s: release of a stale lease left its node", c.name)
			}
		case c.late:
			deadline := time.Now().Add(staleHold + 3*time.Second)
			for nodeExists(t, l, h.node) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the stale node was not deleted within staleHold", c.name)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}
