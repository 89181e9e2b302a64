package sqllock_test

// Regression tests for the fixes of the adversarial review (issue 13) that the
// review's own TestReviewAttack* tests do not reach.

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// A session-mode lease whose row expired by the database clock is never renewed, even
// by the connection that still holds the session lock.
func TestFixSessionRenewExpiredByDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
		ctx := context.Background()
		name := "fix-renew-" + randHex(4)
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		past := "UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
		if !isMySQL(dsn) {
			past = "clock_timestamp() - interval '1 second'"
		}
		if _, err := admin.DB().Exec("UPDATE "+tbl+" SET expires_at = "+past+" WHERE name = "+ph(admin, 1), name); err != nil {
			t.Fatal(err)
		}
		_, err = l.Renew(ctx, name, le.Token, 30*time.Second)
		var nh *lock.NotHeldError
		if !errors.As(err, &nh) {
			t.Fatalf("renew of a session lease expired by the database clock: want NotHeld, got %v", err)
		}
		// Given up: another holder gets it at once.
		other := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		lo, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatalf("after the expired renew: %v", err)
		}
		if lo.Fence <= le.Fence {
			t.Errorf("fence %d after %d", lo.Fence, le.Fence)
		}
		_ = other.Release(ctx, name, lo.Token)
	})
}

// The time columns must have the types dsctl's statements assume.
func TestFixTableTimeColumnTypes(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := misshapenTable(t, dsn, "fix_types_", func(ddl string) string {
			bad := strings.Replace(ddl, "expires_at   DATETIME(6)", "expires_at   TIMESTAMP(6)", 1)
			bad = strings.Replace(bad, "expires_at   TIMESTAMPTZ(6)", "expires_at   TIMESTAMP(6)", 1)
			if bad == ddl {
				t.Fatalf("could not change the type of expires_at in %s", ddl)
			}
			return bad
		})
		l := rawLocker(t, dsn, sqllock.Options{Table: tbl}, false)
		ctx := context.Background()
		_, err := l.Init(ctx)
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "expires_at is TIMESTAMP") {
			t.Fatalf("Init of a table whose expires_at is TIMESTAMP: %v", err)
		}
		if _, err := l.Acquire(ctx, "fix-types", lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("Acquire on a misshapen table: %v", err)
		}
	})
}

// The ShedLock statement, too, decides the same whatever the assignment order
// (MariaDB's SIMULTANEOUS_ASSIGNMENT): a takeover moves lock_until with locked_by.
func TestFixShedLockSimultaneousAssignment(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	plain := shedLocker(t, dsn)
	var version string
	_ = plain.DB().QueryRow("SELECT VERSION()").Scan(&version)
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		t.Skip("SIMULTANEOUS_ASSIGNMENT is MariaDB-only; server is " + version)
	}
	var mode string
	if err := plain.DB().QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	newMode := "SIMULTANEOUS_ASSIGNMENT"
	if mode != "" {
		newMode = mode + ",SIMULTANEOUS_ASSIGNMENT"
	}
	sdsn := withParam(dsn, "sql_mode="+url.QueryEscape("'"+newMode+"'"))
	b := rawLocker(t, sdsn, sqllock.Options{Table: plain.Table(), Format: sqllock.FormatShedLock, Host: "b"}, false)
	c := rawLocker(t, sdsn, sqllock.Options{Table: plain.Table(), Format: sqllock.FormatShedLock, Host: "c"}, false)
	ctx := context.Background()
	name := shedName("simul")
	la, err := plain.Acquire(ctx, name, lock.AcquireOptions{TTL: 300 * time.Millisecond, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	_ = la
	time.Sleep(600 * time.Millisecond)
	lb, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatalf("takeover of an expired ShedLock row under SIMULTANEOUS_ASSIGNMENT: %v", err)
	}
	defer b.Release(ctx, name, lb.Token)
	if lc, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner}); err == nil {
		defer c.Release(ctx, name, lc.Token)
		t.Fatalf("DOUBLE GRANT: B took %q over (token %s), C was granted it too (token %s)", name, lb.Token, lc.Token)
	}
}

// A MySQL ShedLock Locker whose session time zone has daylight saving time runs its
// statements in UTC (forced here: the test server has no named zones). It must still
// exclude a ShedLock client and work end to end, from a session in another zone.
func TestFixMySQLShedLockUTCSession(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	plain := shedLocker(t, dsn)
	c := shedlockClient{l: plain, hostname: "app-server-3"}
	name := shedName("utc")
	if !c.lock(t, name, time.Minute) {
		t.Fatal("ShedLock client could not lock")
	}
	l := rawLocker(t, withParam(dsn, "time_zone="+url.QueryEscape("'+05:00'")), sqllock.Options{Table: plain.Table(), Format: sqllock.FormatShedLock, Host: "dsctl"}, false)
	sqllock.ForceUTCSession(l)
	ctx := context.Background()
	if le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Minute, Owner: owner}); err == nil {
		defer l.Release(ctx, name, le.Token)
		t.Fatalf("DOUBLE GRANT: the ShedLock client holds %q, dsctl (UTC statements) was granted it too", name)
	}
	info, err := l.Inspect(ctx, name)
	if err != nil || !info.Held || info.Holder.TTLLeft < 50*time.Second || info.Holder.TTLLeft > 61*time.Second {
		t.Fatalf("inspect through UTC statements: %+v %v", info, err)
	}
	c.unlock(t, name)
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := l.List(ctx, lock.ListOptions{Prefix: name}); err != nil || len(list) != 1 || list[0].Holder.Token != le.Token {
		t.Fatalf("list through UTC statements: %+v %v", list, err)
	}
	if _, err := l.Renew(ctx, name, le.Token, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if c.lock(t, name, time.Minute) {
		t.Fatalf("the ShedLock client took %q while dsctl held it", name)
	}
	if err := l.Release(ctx, name, le.Token); err != nil {
		t.Fatal(err)
	}
	if !c.lock(t, name, time.Minute) {
		t.Fatalf("the ShedLock client could not take %q after dsctl released it", name)
	}
}

// Breaking a session-mode lock from a lease-mode Locker (the CLI's default) also ends
// the holder's connection, so the session lock is free for the next holder at once.
func TestFixLeaseModeBreakOfSessionLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		a := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		breaker := newLocker(t, dsn, sqllock.Options{Table: tbl})
		c := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		ctx := context.Background()
		name := "fix-lbreak-" + randHex(4)
		la, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := breaker.Break(ctx, name, lock.BreakOptions{By: "test", Reason: "stuck"}); err != nil {
			t.Fatal(err)
		}
		lc, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatalf("after a lease-mode break of a session lock, the next session holder could not take it at once: %v", err)
		}
		defer c.Release(ctx, name, lc.Token)
		if lc.Fence <= la.Fence {
			t.Errorf("fence %d after %d", lc.Fence, la.Fence)
		}
		if _, err := a.Renew(ctx, name, la.Token, 30*time.Second); err == nil {
			t.Errorf("the broken holder renewed")
		}
	})
}

// Break frees a ShedLock client's row (pinned to the locked_by and locked_at it read),
// and only for the holder --if-token names.
func TestFixShedLockBreakForeignHolder(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		l := shedLocker(t, dsn)
		c := shedlockClient{l: l, hostname: "app-server-5"}
		name := shedName("brk")
		if !c.lock(t, name, time.Minute) {
			t.Fatal("ShedLock client could not lock")
		}
		ctx := context.Background()
		var nh *lock.NotHeldError
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test", IfToken: "other-host"}); !errors.As(err, &nh) {
			t.Fatalf("break --if-token of another holder: want NotHeld, got %v", err)
		}
		if info, err := l.Inspect(ctx, name); err != nil || !info.Held {
			t.Fatalf("a refused break freed the lock: %+v %v", info, err)
		}
		prev, err := l.Break(ctx, name, lock.BreakOptions{By: "test", IfToken: "app-server-5"})
		if err != nil || !prev.Held || prev.Holder.Token != "app-server-5" {
			t.Fatalf("break: %+v %v", prev, err)
		}
		if info, err := l.Inspect(ctx, name); err != nil || info.Held {
			t.Fatalf("after break: %+v %v", info, err)
		}
		if !c.lock(t, name, time.Minute) {
			t.Fatal("the ShedLock client could not lock again after the break")
		}
	})
}
