package sqllock_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Session-7 second review (review7b): attack tests on lease-mode inspect/break of a
// session-lock holder with no live row (inspect.go inspect, unstampedInfo, Break,
// recordUnstampedBreak; session.go brokenBeforeStamp).

// Claims 3 and 4: "`lock break` of such a dsctl-marked holder ... ends that
// connection"; "another program's session lock is never ended without --raw". The
// session lock's key is the lock NAME only (GET_LOCK(name) / pg_advisory_lock(hash of
// "dsctl:"+name)), not the table. A live, stamped session-mode holder of NAME on table
// A holds that session lock on a marked connection. On table B (another --table, the
// same database) NAME has no row: a lease-mode `lock inspect` there names the table-A
// holder "dsctl's, held, between its two steps", and `lock break` on table B (no --raw)
// writes a break record on table B and KILLS the table-A holder's connection. That
// holder had a live lease on table A that nobody broke: its row on A stays held by a
// dead connection (no break record there), and its renewal says only that its
// connection ended.
func TestAttackSession7bBreakOnAnotherTableEndsALiveHolder(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession}) // table A
		ops := newLocker(t, dsn, sqllock.Options{Table: table("other7b")})      // `lock break --table B NAME`
		name := locktest.Name(t, "crosstable")
		le, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = holder.Release(context.Background(), name, le.Token) }()
		info, ierr := ops.Inspect(ctx, name)
		said := "<nothing>"
		if ierr == nil && info.Holder != nil {
			said = string(info.Format) + " held by " + info.Holder.Token
		}
		_, berr := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "cleanup on table B"})
		_, rerr := holder.Renew(ctx, name, le.Token, 30*time.Second)
		if rerr != nil {
			t.Fatalf("lock break on table %s of %q (no row there; inspect said: %s, %v; break err %v) ended the live session-mode holder on table %s (fence %d): its renewal: %v",
				table("other7b"), name, said, ierr, berr, table("locks"), le.Fence, rerr)
		}
	})
}

// Claim 2 (and the brief's performance question): a lease-mode `lock inspect` of a
// name whose row is free and whose session lock another program holds (no dsctl
// marker) now waits inspect's 250 ms stamp grace, polling the row every 10 ms, although
// the missing marker already says it is not a dsctl client between its two steps.
// Measured in statements (not time): one inspect costs the row read, the holder query,
// and ~25 more row reads.
func TestAttackSession7bLeaseInspectOfAnUnmarkedHolderPollsTheGrace(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		ops := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "unmarkedgrace")
		plainSessionLock(t, dsn, name)
		if _, err := ops.Inspect(ctx, "warm-"+randHex(4)); err != nil { // table format cached
			t.Fatal(err)
		}
		s0 := ops.Statements()
		info, err := ops.Inspect(ctx, name)
		n := ops.Statements() - s0
		if err != nil || info.Held || !strings.Contains(strings.Join(info.Notes, " "), "another program") {
			t.Fatalf("lease-mode inspect of another program's session lock: %+v %v; want free, with a note", info, err)
		}
		if n > 5 {
			t.Fatalf("a lease-mode inspect of a name held by another program's (unmarked) session lock ran %d statements (the 250 ms stamp grace, polled); want a few", n)
		}
	})
}

// Claim 4: a lease-mode `lock break` of a name held by a live lease-mode holder while
// an unrelated program holds GET_LOCK / the advisory lock of the same name breaks the
// row only: the program's connection lives and keeps its lock, and no holder string of
// that program lands in the break record.
func TestAttackSession7bLeaseBreakLeavesAnotherProgramsSessionLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		ops := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "leaseandforeign")
		plain, pid := plainSessionLock(t, dsn, name)
		id := sql.NullInt64{Int64: pid, Valid: true}
		le, err := ops.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"}); err != nil {
			t.Fatal(err)
		}
		info, err := ops.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var rec sql.NullString
		q := "SELECT break_token FROM " + table("locks") + " WHERE name = ?"
		if !isMySQL(dsn) {
			q = "SELECT break_token FROM " + table("locks") + " WHERE name = $1"
		}
		if err := rawDB(t, dsn).QueryRowContext(ctx, q, name).Scan(&rec); err != nil || rec.String != le.Token {
			t.Fatalf("the row's break record after breaking lease %s: %v %v", le.Token, rec, err)
		}
		var one int
		if err := plain.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("the other program's connection (%d) was ended by a lease-mode break without --raw: %v", id.Int64, err)
		}
		// (Lease mode: the name is free for lease clients; a note names the session
		// lock's holder, and a second break has nothing to break.)
		if info.Held || info.LastBreak == nil || !strings.Contains(strings.Join(info.Notes, " "), sessionWord(dsn)+itoa(id.Int64)+" (another program)") {
			t.Fatalf("after the break, lease-mode inspect should say free and name the other program's session lock: %+v", info)
		}
		if _, err := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "again"}); err != nil {
			t.Fatalf("a second lease-mode break: %v", err)
		}
		if err := plain.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("the other program's connection was ended: %v", err)
		}
	})
}

// Claim 2: "on a dsctl table, when no live row holds a name, `lock inspect` shows the
// holder of that name's session lock". Before session 7 a lease-mode inspect of such a
// name showed the row: free, its last fence and its last break (`lock break` record).
// Now, when another program holds the name's GET_LOCK / advisory lock, inspect returns
// sessionInfo, built from scratch: the row's last_fence and last_break are gone from
// `lock inspect` (and from `lock break`'s "before" output), though the row still has
// them.
func TestAttackSession7bInspectOfAForeignHolderDropsTheRowsRecord(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		ops := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "foreigndropsrecord")
		le, err := ops.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"}); err != nil {
			t.Fatal(err)
		}
		before, err := ops.Inspect(ctx, name)
		if err != nil || before.LastBreak == nil || before.LastFence != le.Fence {
			t.Fatalf("inspect after the break, nobody holding: %+v %v", before, err)
		}
		plainSessionLock(t, dsn, name)
		info, err := ops.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.LastBreak == nil || info.LastFence != le.Fence {
			t.Fatalf("lease-mode inspect of a name whose row was broken (fence %d, break by oncall) and whose session lock another program holds: format %s, last_fence %d, last_break %+v (the row's record is dropped)",
				le.Fence, info.Format, info.LastFence, info.LastBreak)
		}
	})
}

// Claims 3 and 4, MySQL/MariaDB: user locks (GET_LOCK) are server-wide, not per
// database. A live session-mode holder in one database (say production's) holds
// GET_LOCK(NAME) on a marked connection; a lease-mode `lock break NAME` (no --raw)
// against ANOTHER database on the same server (staging's dsctl table, where NAME has no
// row) names it "dsctl's, between its two steps" and kills the production holder's
// connection. (PostgreSQL advisory locks are filtered by database: not affected.)
func TestAttackSession7bMySQLBreakInAnotherDatabaseEndsALiveHolder(t *testing.T) {
	dsn := testenvMySQL(t)
	ctx := context.Background()
	db := rawDB(t, dsn)
	other := "dsctl_t7b_" + runID
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+other); err != nil {
		t.Skipf("cannot create a second database: %v", err)
	}
	defer func() { _, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+other) }()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	prod := cfg.DBName
	cfg.DBName = other
	holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession}) // "production"
	staging, err := sqllock.New(ctx, endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(cfg.FormatDSN()), sqllock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer staging.Close()
	if _, err := staging.Init(ctx); err != nil {
		t.Fatal(err)
	}
	name := locktest.Name(t, "crossdb")
	le, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Release(context.Background(), name, le.Token) }()
	_, berr := staging.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "staging cleanup"})
	if _, rerr := holder.Renew(ctx, name, le.Token, 30*time.Second); rerr != nil {
		t.Fatalf("lock break in database %s (break err %v) ended the live session-mode holder of %q in database %s: its renewal: %v", other, berr, name, prod, rerr)
	}
}

func testenvMySQL(t *testing.T) string {
	for _, db := range dbs {
		if db.name == "mysql" {
			return testenv.Get(t, db.env)
		}
	}
	t.Skip("no mysql in dbs")
	return ""
}

// Claim 2: "lease-mode acquire/renew/release are unaffected ... the new lease-mode
// inspect behaviour must not change what lease-mode clients can do". They are
// unaffected; but what a lease-mode inspect now says contradicts them. With the dsctl
// row free and another program holding GET_LOCK(NAME) / the advisory lock (UserLockName
// is the name itself: an application's own `GET_LOCK('deploy', 10)`), a lease-mode
// `lock inspect` says held (by that program), and `lock break --if-token` answers
// "another program's session lock" (a usage error), while a lease-mode `lock acquire
// --wait 0` gets the lock at once.
func TestAttackSession7bLeaseInspectSaysHeldWhereLeaseAcquireGetsIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		ops := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "leaseheldfree")
		plainSessionLock(t, dsn, name)
		info, err := ops.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		le, aerr := ops.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if aerr == nil {
			defer func() { _ = ops.Release(context.Background(), name, le.Token) }()
		}
		if info.Held && aerr == nil {
			t.Fatalf("lease-mode inspect says %q is held (%s by %s), and a lease-mode acquire with no wait got it at once (fence %d)",
				name, info.Format, info.Holder.Token, le.Fence)
		}
	})
}
