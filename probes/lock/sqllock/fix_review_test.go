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
		tbl := "fix_types_" + runID
		remember(dsn, tbl)
		admin := rawLocker(t, dsn, sqllock.Options{Table: table("locks")}, false)
		ddl, err := sqllock.DDL(admin.Backend().Kind, lock.FormatDsctl, tbl)
		if err != nil {
			t.Fatal(err)
		}
		ddl = strings.TrimSuffix(ddl, ";")
		bad := strings.Replace(ddl, "expires_at   DATETIME(6)", "expires_at   TIMESTAMP(6)", 1)
		bad = strings.Replace(bad, "expires_at   TIMESTAMPTZ(6)", "expires_at   TIMESTAMP(6)", 1)
		if bad == ddl {
			t.Fatalf("could not change the type of expires_at in %s", ddl)
		}
		if _, err := admin.DB().Exec(bad); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.DB().Exec("DROP TABLE IF EXISTS " + tbl) })
		l := rawLocker(t, dsn, sqllock.Options{Table: tbl}, false)
		ctx := context.Background()
		_, err = l.Init(ctx)
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
