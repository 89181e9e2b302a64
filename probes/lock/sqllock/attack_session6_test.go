package sqllock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// Session-6 attack tests on the stamp grace (inspect.go) and connectionLost (session.go).

// Finding 1 (session 7: dsctl's session-mode connections carry a client marker, so
// such a holder is named a dsctl client; break still needs --raw, as a session lock
// may be a dsctl client's of another table or database): a dsctl holder paused between its session-lock grant and its row stamp for
// longer than stampGrace (250 ms: a GC pause, a descheduled process on a busy host, a
// slow round trip) is named "another program's session lock": Inspect misnames it and
// `lock break` refuses to break a dsctl lock (asks for --raw).
func TestAttackSession6BreakAfterLongStampPause(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "longpause")
		conn, sid, err := sqllock.TakeSessionLock(ctx, holder, name)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var lease *lock.Lease
		var gerr error
		go func() {
			defer close(done)
			time.Sleep(600 * time.Millisecond) // the holder is paused between its two steps
			lease, gerr = sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		}()
		info, ierr := l.Inspect(ctx, name)
		var berr error
		if ierr == nil && info.Format != lock.FormatDsctl {
			// What `lock break` (session mode) does with it: refuse, as another program's.
			_, berr = l.Break(ctx, name, lock.BreakOptions{By: "test"})
		}
		<-done
		if lease != nil {
			defer func() { _ = holder.Release(ctx, name, lease.Token) }()
		}
		if gerr != nil || lease == nil {
			t.Fatalf("stamp: %v %v", lease, gerr)
		}
		// (Session 7: its connection's marker names it a dsctl client; session locks are
		// keyed by name only, so nothing ties it to this table, and break needs --raw.)
		if ierr != nil || info.Holder == nil || info.Holder.Owner == nil || !strings.Contains(info.Holder.Owner.Tool, "dsctl") ||
			!strings.Contains(strings.Join(info.Notes, " "), "dsctl session-mode client") || berr == nil {
			t.Fatalf("inspect of a dsctl holder paused 600 ms before its stamp: format %s (%s), holder %+v, notes %v, err %v; break without --raw: %v",
				info.Format, info.FormatDetail, info.Holder, info.Notes, ierr, berr)
		}
	})
}

// Claim: `lock break --raw` of a session lock whose dsctl holder has not stamped yet
// (named foreign after the grace) ends that connection; the paused holder's stamp must
// then fail (never two holders) and the lock must be free, not stranded by a row.
func TestAttackSession6RawBreakDuringStampPause(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		breaker := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		other := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "rawpause")
		conn, sid, err := sqllock.TakeSessionLock(ctx, holder, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := breaker.Break(ctx, name, lock.BreakOptions{By: "test", Raw: true}); err != nil {
			t.Fatalf("raw break: %v", err)
		}
		lease, err := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err == nil && lease != nil {
			defer func() { _ = holder.Release(ctx, name, lease.Token) }()
		}
		next, nerr := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner, Wait: lock.WaitFor(2 * time.Second)})
		if nerr == nil {
			defer func() { _ = other.Release(ctx, name, next.Token) }()
		}
		if err == nil && lease != nil && nerr == nil {
			t.Fatalf("two holders after a raw break during the stamp: %s (fence %d) and %s (fence %d)", lease.Token, lease.Fence, next.Token, next.Fence)
		}
		if err == nil && lease != nil {
			t.Fatalf("the paused holder stamped a row on a connection the break ended: %+v", lease)
		}
		if nerr != nil {
			t.Fatalf("lock stranded after a raw break of a paused holder: %v", nerr)
		}
	})
}

// Finding 2 (claim: "the old holder is told it was broken"): after `lock break` of a
// session-mode holder, a waiter takes the lock at once (it is woken by the break); the
// broken holder's next renew/release then says LostTaken ("another holder has it"),
// not LostBroken with who broke it and why, although the row still carries the break
// record naming its token.
func TestAttackSession6BrokenThenTakenIsToldBroken(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		other := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		breaker := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "brokentaken")
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := breaker.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck deploy", IfToken: lease.Token}); err != nil {
			t.Fatal(err)
		}
		next, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner, Wait: lock.WaitFor(5 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = other.Release(ctx, name, next.Token) }()
		_, err = l.Renew(ctx, name, lease.Token, 30*time.Second)
		nh, ok := lock.AsNotHeld(err)
		if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.By != "oncall" {
			t.Fatalf("renew of a broken holder whose lock was taken since: reason %v, err %v", func() any {
				if ok {
					return nh.Reason
				}
				return nil
			}(), err)
		}
	})
}
