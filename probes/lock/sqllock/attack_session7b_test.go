package sqllock_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

// recordTrigger is a piece of recordUnstampedBreak's INSERT, and of no other statement.
func recordTrigger(dsn string) string {
	if isMySQL(dsn) {
		return "0, 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)"
	}
	return "0, 0, clock_timestamp(), clock_timestamp()"
}

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

// Claim 3, with `lock break --if-token`: inspect shows the stopped client as "connection
// N" (its token); `lock break --if-token 'connection N'` must break only that holder.
// A dsctl process's connections are pooled: the client resumes, stamps, releases, and
// its next acquire gets the same pooled connection N (same id, same pid) and a new
// lease with a new token, all before the break's statements arrive. The break writes no
// record (the row is live), terminate finds connection N holding the session lock and
// kills it, and Break then breaks the new lease's row: a lease whose token the operator
// never saw and --if-token did not name is broken.
func TestAttackSession7bIfTokenOfAConnectionBreaksALaterLease(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "iftokenreuse")
		conn, sid := stalledClient(t, holder, name)
		var second *lock.Lease
		var sid2 int64
		var herr error
		done := make(chan struct{})
		p := newHookProxy(t, dsnAddr(t, dsn), recordTrigger(dsn), func() {
			defer close(done)
			first, err := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
			if err != nil {
				herr = err
				return
			}
			if err := holder.Release(ctx, name, first.Token); err != nil { // the connection goes back to the pool
				herr = err
				return
			}
			var c2 *sql.Conn
			if c2, sid2, err = sqllock.TakeSessionLock(ctx, holder, name); err != nil {
				herr = err
				return
			}
			second, herr = sqllock.GrantSession(ctx, holder, c2, sid2, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
			if herr != nil {
				_ = c2.Close()
			}
		})
		breaker := newLocker(t, dsnWith(t, dsn, p.addr(), "", ""), sqllock.Options{}) // lease mode, the default
		shown := sessionWord(dsn) + itoa(sid)
		info, berr := breaker.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck", IfToken: shown})
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the break never wrote its record (%+v, %v)", info, berr)
		}
		if herr != nil || second == nil {
			t.Skipf("the client's release and re-acquire failed: %v", herr)
		}
		defer func() { _ = holder.Release(context.Background(), name, second.Token) }()
		if sid2 != sid {
			t.Skipf("the pool gave another connection (%d, not %d): not the case under test", sid2, sid)
		}
		if _, rerr := holder.Renew(ctx, name, second.Token, 30*time.Second); rerr != nil {
			t.Fatalf("lock break --if-token %q (break err %v) broke a later lease %s (fence %d) on the same pooled connection, whose token it did not name: its renewal: %v",
				shown, berr, second.Token, second.Fence, rerr)
		}
	})
}

// Claim 3 ("first writes a break record ... then ends that connection"): the record is
// written before terminate checks that the connection still holds the session lock.
// When the client stamped and released (a normal, quick use of the lock) between the
// break's inspect and its record, the record lands on the free row naming "connection
// N", terminate ends nothing, and Break returns success: the row now says connection N
// was broken by oncall, though nothing was broken. That record also outlives the case:
// the same pooled connection N, whose stamp later fails for any network reason, is told
// brokenBeforeStamp's "was ended before the lease was written" by a stale record.
func TestAttackSession7bBreakThatEndedNothingLeavesARecord(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		ops := newLocker(t, dsn, sqllock.Options{})
		_, name, sid, berr := breakAfterARelease(t, dsn)
		info, err := ops.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.LastBreak != nil && info.LastBreak.Token == sessionWord(dsn)+itoa(sid) {
			t.Fatalf("a break that ended no connection and broke no lease (the client had released; break returned %v) left the record %+v on the free row",
				berr, *info.LastBreak)
		}
	})
}

// breakAfterARelease is the case above: a dsctl client stopped between its two steps
// on connection sid resumes, stamps and releases (the connection goes back to its
// Locker's pool) after `lock break` inspected it and before the break's record.
func breakAfterARelease(t *testing.T, dsn string) (holder *sqllock.Locker, name string, sid int64, berr error) {
	t.Helper()
	ctx := context.Background()
	holder = newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
	name = locktest.Name(t, "stalerecord")
	conn, sid := stalledClient(t, holder, name)
	var herr error
	done := make(chan struct{})
	p := newHookProxy(t, dsnAddr(t, dsn), recordTrigger(dsn), func() {
		defer close(done)
		first, err := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			herr = err
			return
		}
		herr = holder.Release(ctx, name, first.Token)
	})
	breaker := newLocker(t, dsnWith(t, dsn, p.addr(), "", ""), sqllock.Options{})
	binfo, berr := breaker.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the break never wrote its record (%+v, %v)", binfo, berr)
	}
	if herr != nil {
		t.Skipf("the client's stamp and release failed: %v", herr)
	}
	return holder, name, sid, berr
}

// Claim 3, "a client between its two steps: its stamp fails with a runtime error naming
// the breaker": brokenBeforeStamp trusts any break record whose break_token is
// "connection <my id>", whenever it was written. After the stale record above, the
// same process acquires again on the same pooled connection N; that connection is then
// ended by something else (a DBA's KILL, a proxy or network reset, wait_timeout) before
// the stamp. The client is told "connection N ... was ended before the lease was
// written: broken by oncall (stuck)": a break that happened before this acquire began,
// and that broke nothing.
func TestAttackSession7bStaleRecordMisnamesALaterConnectionLoss(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder, name, sid, _ := breakAfterARelease(t, dsn)
		conn, sid2, err := sqllock.TakeSessionLock(ctx, holder, name)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if sid2 != sid {
			t.Skipf("the pool gave another connection (%d, not %d): not the case under test", sid2, sid)
		}
		db := rawDB(t, dsn)
		if isMySQL(dsn) {
			_, err = db.ExecContext(ctx, "KILL CONNECTION "+itoa(sid))
		} else {
			_, err = db.ExecContext(ctx, "SELECT pg_terminate_backend($1::int, 5000)", sid)
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // MySQL: KILL returns before the thread is gone
		lease, gerr := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if lease != nil {
			_ = holder.Release(ctx, name, lease.Token)
			t.Fatalf("stamped on a killed connection: %+v", lease)
		}
		if gerr != nil && strings.Contains(gerr.Error(), "oncall") {
			t.Fatalf("a connection lost to something other than lock break, on an acquire that began after the only break, is told it was broken: %v", gerr)
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
		plain, err := rawDB(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var got sql.NullInt64
		if isMySQL(dsn) {
			err = plain.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", sqllock.UserLockName(name)).Scan(&got)
		} else {
			err = plain.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1::bigint)::int", sqllock.AdvisoryKey(name)).Scan(&got)
		}
		if err != nil || got.Int64 != 1 {
			t.Fatalf("plain program's lock: %v %v", got, err)
		}
		if _, err := ops.Inspect(ctx, "warm-"+randHex(4)); err != nil { // table format cached
			t.Fatal(err)
		}
		s0 := ops.Statements()
		info, err := ops.Inspect(ctx, name)
		n := ops.Statements() - s0
		if err != nil || !info.Held || info.Format == lock.FormatDsctl {
			t.Fatalf("inspect of another program's session lock: %+v %v", info, err)
		}
		if n > 5 {
			t.Fatalf("a lease-mode inspect of a name held by another program's (unmarked) session lock ran %d statements (the 250 ms stamp grace, polled); want a few", n)
		}
	})
}

// Claim 3, fences: the row recordUnstampedBreak creates has fence 0; the next grant, in
// either mode, gets a fence above every fence handed out before.
func TestAttackSession7bFenceAfterABreakCreatedRow(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		session := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		lease := newLocker(t, dsn, sqllock.Options{})
		name := locktest.Name(t, "breakfence")
		conn, sid := stalledClient(t, holder, name)
		if _, err := lease.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"}); err != nil {
			t.Fatal(err)
		}
		info, err := lease.Inspect(ctx, name)
		if err != nil || info.Held || info.LastFence != 0 || info.LastBreak == nil || info.LastBreak.Token != sessionWord(dsn)+itoa(sid) {
			t.Fatalf("after the break of an unstamped client: %+v (break %+v) %v", info, info.LastBreak, err)
		}
		if le, gerr := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner}); gerr == nil && le != nil {
			t.Fatalf("the broken client stamped: %+v", le)
		}
		a, err := lease.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner, Wait: lock.WaitFor(2 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := lease.Release(ctx, name, a.Token); err != nil {
			t.Fatal(err)
		}
		b, err := session.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner, Wait: lock.WaitFor(2 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = session.Release(context.Background(), name, b.Token) }()
		if a.Fence < 1 || b.Fence <= a.Fence {
			t.Fatalf("fences after a break-created row: lease %d, then session %d", a.Fence, b.Fence)
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
		plain, err := rawDB(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var got, id sql.NullInt64
		if isMySQL(dsn) {
			err = plain.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0), CONNECTION_ID()", sqllock.UserLockName(name)).Scan(&got, &id)
		} else {
			err = plain.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1::bigint)::int, pg_backend_pid()", sqllock.AdvisoryKey(name)).Scan(&got, &id)
		}
		if err != nil || got.Int64 != 1 {
			t.Fatalf("plain program's lock: %v %v", got, err)
		}
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
		if info.Format == lock.FormatDsctl || info.Holder == nil || info.Holder.Token != sessionWord(dsn)+itoa(id.Int64) {
			t.Fatalf("after the break the other program's session lock should show: %+v", info)
		}
		// A second break (no --raw) refuses it.
		if _, err := ops.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "again"}); err == nil {
			t.Fatalf("a break without --raw of another program's session lock succeeded")
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
		plain, err := rawDB(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var got sql.NullInt64
		if isMySQL(dsn) {
			err = plain.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", sqllock.UserLockName(name)).Scan(&got)
		} else {
			err = plain.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1::bigint)::int", sqllock.AdvisoryKey(name)).Scan(&got)
		}
		if err != nil || got.Int64 != 1 {
			t.Fatalf("plain program's lock: %v %v", got, err)
		}
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

// Claim 3, "never two holders; the next client takes the lock": the session lock
// changes hands between the break's inspect and its record. The stopped client gives up
// (its connection closes), and another dsctl client takes the session lock on another
// connection and is between its two steps when the record ("connection N", the old
// one) is written on the free row. terminate(N) finds N gone and ends nothing; the new
// client's stamp succeeds (the stale record names another connection) and its lease
// renews.
func TestAttackSession7bBreakAfterTheSessionLockChangedHands(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		next := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "changedhands")
		conn, sid := stalledClient(t, holder, name)
		var c2 *sql.Conn
		var sid2 int64
		var herr error
		done := make(chan struct{})
		p := newHookProxy(t, dsnAddr(t, dsn), recordTrigger(dsn), func() {
			defer close(done)
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // the stopped client gives up
			_ = conn.Close()
			deadline := time.Now().Add(3 * time.Second)
			for {
				c2, sid2, herr = sqllock.TakeSessionLock(ctx, next, name)
				if herr == nil || time.Now().After(deadline) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		breaker := newLocker(t, dsnWith(t, dsn, p.addr(), "", ""), sqllock.Options{})
		_, berr := breaker.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck"})
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the break never wrote its record (%v)", berr)
		}
		if herr != nil {
			t.Fatalf("the next client could not take the session lock: %v", herr)
		}
		if sid2 == sid {
			t.Skipf("the next client got the same connection id %d", sid)
		}
		le, err := sqllock.GrantSession(ctx, next, c2, sid2, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil || le == nil {
			_ = c2.Close()
			t.Fatalf("the next client (%s%d), between its steps while a break of %s%d ran (break err %v), could not stamp: %v", sessionWord(dsn), sid2, sessionWord(dsn), sid, berr, err)
		}
		defer func() { _ = next.Release(context.Background(), name, le.Token) }()
		if _, err := next.Renew(ctx, name, le.Token, 30*time.Second); err != nil {
			t.Fatalf("the next client's lease after a break of the previous connection: %v", err)
		}
		if le.Fence < 1 {
			t.Fatalf("fence %d", le.Fence)
		}
	})
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
		plain, err := rawDB(t, dsn).Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		var got sql.NullInt64
		if isMySQL(dsn) {
			err = plain.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", sqllock.UserLockName(name)).Scan(&got)
		} else {
			err = plain.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1::bigint)::int", sqllock.AdvisoryKey(name)).Scan(&got)
		}
		if err != nil || got.Int64 != 1 {
			t.Fatalf("plain program's lock: %v %v", got, err)
		}
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
