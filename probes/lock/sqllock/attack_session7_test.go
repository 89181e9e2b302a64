package sqllock_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// Session-7 review: attack tests on the dsctl client marker of session mode (claim D:
// session.go tryLockSQL, foreign.go, inspect.go unstampedInfo and Break).

// stalledClient takes name's session lock on holder as a dsctl session-mode acquire
// does (the marker with it) and stays stopped before its stamp, past inspect's grace.
func stalledClient(t *testing.T, holder *sqllock.Locker, name string) (*sql.Conn, int64) {
	t.Helper()
	conn, sid, err := sqllock.TakeSessionLock(context.Background(), holder, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	time.Sleep(300 * time.Millisecond) // past the 250 ms grace
	return conn, sid
}

func sessionWord(dsn string) string {
	if isMySQL(dsn) {
		return "connection "
	}
	return "backend pid "
}

// Claim D: "a session lock held with no live row by a marked connection is shown by
// inspect ... as dsctl's lock, held ...; `lock break` (without --raw) then ends that
// connection". `dsctl lock inspect` and `dsctl lock break` run in lease mode unless
// --mode session is given (break.go's comment: "`lock break` runs in lease mode by
// default"; TestUnstampedDsctlHolderIsNamedAndBroken breaks with a lease-mode Locker
// too). But inspect looks for a session-lock holder only when the Locker's own mode
// is session (`info.Held || l.mode != ModeSession` returns the row's state): in lease
// mode the stopped dsctl client is "free", and Break, finding nothing held, returns
// without ending anything; the stopped client then stamps and holds the lease.
func TestAttackSession7LeaseModeInspectAndBreakOfAnUnstampedClient(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		ops := newLocker(t, dsn, sqllock.Options{}) // `dsctl lock inspect/break NAME`: lease mode
		name := locktest.Name(t, "leasemodebreak")
		conn, sid := stalledClient(t, holder, name)
		info, err := ops.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// (Session 7, after the second review: lease-mode clients neither take nor wait
		// for session locks, so in lease mode the name is free, with a note naming the
		// session lock's holder; break leaves it alone, and the client stamps.)
		inspected := !info.Held && strings.Contains(strings.Join(info.Notes, " "), "dsctl session-mode client")
		_, berr := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"})
		lease, gerr := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if lease != nil {
			defer func() { _ = holder.Release(context.Background(), name, lease.Token) }()
		}
		if !inspected || berr != nil || gerr != nil || lease == nil {
			holderStr := "<nil>"
			if info.Holder != nil {
				holderStr = info.Holder.Token
			}
			t.Fatalf("lease-mode (the default) inspect of a dsctl client stopped before its stamp: held %v, format %s, holder %s, notes %v; "+
				"break: %v; the stopped client's stamp afterwards: lease %v, err %v (want: free in lease mode, a note naming dsctl's %s%d; break leaves it; the stamp succeeds)",
				info.Held, info.Format, holderStr, info.Notes, berr, lease != nil, gerr, sessionWord(dsn), sid)
		}
	})
}

// Claim D: "Markers cannot make another program's connection look like dsctl's by
// accident": a plain program holding the lock's GET_LOCK / advisory lock on a
// connection that also holds a marker-shaped lock of ANOTHER connection id / pid (a
// copy-pasted script, a stale id) is still another program's; break refuses it
// without --raw; and the dsctl client marker of a live dsctl connection is never listed
// by list --foreign. Also checks that a dsctl session-mode connection does carry its
// marker (the IF/CASE took it before the session lock).
func TestAttackSession7MarkerOfAnotherIDIsNotDsctl(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "othermarker")
		db := rawDB(t, dsn)
		plain, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var id int64
		// Another id, one no connection will have soon: connection ids and pids are
		// handed out in order, and a marker-shaped lock of the NEXT id would take the
		// next dsctl connection's marker (its GET_LOCK / pg_try_advisory_lock fails),
		// leaving that dsctl client unmarked (named another program's, as before
		// session 7: safe).
		const otherID = 2000000000
		if isMySQL(dsn) {
			if err := plain.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			var a, b sql.NullInt64
			if err := plain.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('dsctl client ', ?), 0), GET_LOCK(?, 0)", itoa(otherID), sqllock.UserLockName(name)).Scan(&a, &b); err != nil || b.Int64 != 1 {
				t.Fatalf("plain program's locks: %v %v %v", a, b, err)
			}
		} else {
			if err := plain.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			var a, b bool
			if err := plain.QueryRowContext(ctx, "SELECT pg_try_advisory_lock(1685283700, $1::int), pg_try_advisory_lock($2::bigint)", otherID, sqllock.AdvisoryKey(name)).Scan(&a, &b); err != nil || !b {
				t.Fatalf("plain program's locks: %v %v %v", a, b, err)
			}
		}
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held || info.Format == lock.FormatDsctl {
			t.Fatalf("inspect of a plain program's session lock (its connection holds a marker-shaped lock of id %d, not its own %d): %+v %v; want another program's",
				otherID, id, info, err)
		}
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("break (no --raw) of a plain program's session lock: %v, want refused (usage)", err)
		}
		if err := plain.PingContext(ctx); err != nil {
			t.Fatalf("break without --raw ended the plain program's connection: %v", err)
		}

		// A real dsctl client carries its own marker, and list --foreign hides it.
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		other := locktest.Name(t, "marked")
		_, sid, err := sqllock.TakeSessionLock(ctx, holder, other)
		if err != nil {
			t.Fatal(err)
		}
		var marked bool
		if isMySQL(dsn) {
			var h sql.NullInt64
			if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(CONCAT('dsctl client ', ?))", itoa(sid)).Scan(&h); err != nil {
				t.Fatal(err)
			}
			marked = h.Valid && h.Int64 == sid
		} else {
			if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
  AND classid = 1685283700 AND objid = $1::int AND pid = $1::int)`, sid).Scan(&marked); err != nil {
				t.Fatal(err)
			}
		}
		if !marked {
			t.Fatalf("dsctl's session-mode connection %d holds no client marker", sid)
		}
		list, err := l.List(ctx, lock.ListOptions{Foreign: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range list {
			if strings.Contains(in.Name, "dsctl client") || strings.HasPrefix(in.Key, "pg_advisory_lock(1685283700,") && strings.HasSuffix(in.Key, ","+itoa(sid)+")") {
				t.Fatalf("list --foreign shows dsctl connection %d's client marker: %+v", sid, in)
			}
		}
	})
}

// Claim D, the same lock seen two ways: inspect names a stopped dsctl client's
// session lock dsctl's ("no lease on the row; `lock break` ends that connection"),
// while `lock list --foreign` lists that very session lock as another program's
// (pg-advisory / mysql-user-lock, under its raw key), because listSessionLocks
// consults the markers only to hide them. An operator scanning list --foreign sees a
// foreign program holding dsctl's key. (MariaDB lists user locks only with
// performance_schema on: skipped when the lock is not listed at all.)
func TestAttackSession7ListForeignNamesAnUnstampedDsctlClientForeign(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "listunstamped")
		_, sid := stalledClient(t, holder, name)
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held || info.Holder == nil || info.Holder.Owner == nil || !strings.Contains(info.Holder.Owner.Tool, "dsctl") {
			t.Fatalf("inspect: %+v %v; want held by a dsctl client (see TestUnstampedDsctlHolderIsNamedADsctlClient)", info, err)
		}
		list, err := l.List(ctx, lock.ListOptions{Foreign: true})
		if err != nil {
			t.Fatal(err)
		}
		key := "pg_advisory_lock(" + itoa(sqllock.AdvisoryKey(name)) + ")"
		if isMySQL(dsn) {
			key = "GET_LOCK('" + sqllock.UserLockName(name) + "')"
		}
		for _, in := range list {
			if in.Key == key || in.Name == sqllock.UserLockName(name) {
				if in.Holder == nil || in.Holder.Owner == nil || !strings.Contains(in.Holder.Owner.Tool, "dsctl") {
					t.Fatalf("list --foreign: the session lock of dsctl's stopped client (%s%d) is listed as %q, %s (%s); inspect %s says dsctl's",
						sessionWord(dsn), sid, in.Name, in.Format, in.FormatDetail, name)
				}
				return
			}
			if in.Name == name && in.Format == lock.FormatDsctl {
				return
			}
		}
		if isMySQL(dsn) {
			t.Skipf("the user lock is not listed (performance_schema off?): %d entries", len(list))
		}
		t.Fatalf("list --foreign does not show the stopped dsctl client's session lock at all: %+v", list)
	})
}
