package sqllock_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// The database is restarted (stopped, then started again) under a lease-mode holder
// and a session-mode holder:
//   - while it is down, renewals and acquisitions fail as unreachable (exit 6) within
//     the timeout, and the lease-mode lease stands until its local deadline;
//   - once it is back, the lease-mode lease is still there (rows are durable): renew
//     keeps its fence, release works;
//   - the session-mode lease is lost (its connection died with the server): renew says
//     so (exit 4), and the next holder's fence is larger (the counter row is durable).
func TestFaultDatabaseRestart(t *testing.T) {
	testenv.Faults(t)
	for _, db := range []struct{ service, env string }{{"mariadb", testenv.MySQL}, {"postgres", testenv.Postgres}} {
		t.Run(db.service, func(t *testing.T) {
			dsn := testenv.Get(t, db.env)
			ctx := context.Background()
			lease := newLocker(t, dsn, sqllock.Options{})
			session := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
			nameL, nameS := locktest.Name(t, "lease"), locktest.Name(t, "session")
			l1, err := lease.Acquire(ctx, nameL, lock.AcquireOptions{TTL: 60 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			s1, err := session.Acquire(ctx, nameS, lock.AcquireOptions{TTL: 3 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			var restore sync.Once
			start := func() { restore.Do(func() { testenv.Service(t, "start", db.service, "1") }) }
			t.Cleanup(start)
			testenv.Service(t, "stop", db.service, "1")

			begin := time.Now()
			if _, err := lease.Renew(ctx, nameL, l1.Token, 60*time.Second); errs.KindOf(err) != errs.KindUnreachable {
				t.Fatalf("renew while the database is down: %v, want unreachable", err)
			}
			// A new client cannot connect: unreachable (exit 6), before any lock I/O.
			if _, err := open(t, dsn, sqllock.Options{Table: table("locks")}); errs.KindOf(err) != errs.KindUnreachable {
				t.Fatalf("connect while the database is down: %v, want unreachable", err)
			}
			if _, err := session.Acquire(ctx, locktest.Name(t, "down"), lock.AcquireOptions{TTL: time.Second}); errs.KindOf(err) != errs.KindUnreachable {
				t.Fatalf("acquire while the database is down: %v, want unreachable", err)
			}
			if d := time.Since(begin); d > 12*time.Second {
				t.Fatalf("calls on a stopped database took %s (timeout 5s each)", d)
			}
			if time.Now().After(l1.ExpiresAt) {
				t.Fatal("the lease ran out while the database was down")
			}
			start()

			var renewed *lock.Lease
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				renewed, err = lease.Renew(ctx, nameL, l1.Token, 60*time.Second)
				if err == nil || errs.KindOf(err) != errs.KindUnreachable || time.Now().After(deadline) {
					break
				}
			}
			if err != nil || renewed.Fence != l1.Fence {
				t.Fatalf("renew after the restart: %+v %v", renewed, err)
			}
			if err := lease.Release(ctx, nameL, l1.Token); err != nil {
				t.Fatal(err)
			}
			_, err = session.Renew(ctx, nameS, s1.Token, 3*time.Second)
			if errs.KindOf(err) != errs.KindLockLost {
				t.Fatalf("session renew after the restart: %v, want lost (exit 4)", err)
			}
			t.Logf("session holder after the restart: %v", err)
			// The next holder waits for the row's lease (3s) to run out.
			s2, err := session.Acquire(ctx, nameS, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			if s2.Fence <= s1.Fence {
				t.Fatalf("fence %d after the restart, was %d", s2.Fence, s1.Fence)
			}
			_ = session.Release(ctx, nameS, s2.Token)
		})
	}
}
