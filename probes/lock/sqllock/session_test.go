package sqllock_test

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

func isMySQL(dsn string) bool { return !strings.HasPrefix(dsn, "postgres") }

// killSessionConn ends, server-side, the connection that holds name's session lock
// (KILL CONNECTION on MySQL/MariaDB, pg_terminate_backend on PostgreSQL) and returns
// when it sent the statement.
func killSessionConn(t *testing.T, l *sqllock.Locker, dsn, name string) time.Time {
	t.Helper()
	sid := sessionID(t, l, dsn, name)
	db := rawDB(t, dsn)
	sent := time.Now()
	var err error
	if isMySQL(dsn) {
		_, err = db.Exec("KILL CONNECTION ?", sid)
	} else {
		_, err = db.Exec("SELECT pg_terminate_backend($1::int, 5000)", sid)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// sessionID reads the connection id / backend pid recorded in a lock's row.
func sessionID(t *testing.T, l *sqllock.Locker, dsn, name string) int64 {
	t.Helper()
	q := "SELECT session_id FROM " + l.Table() + " WHERE name = ?"
	if !isMySQL(dsn) {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var id int64
	if err := l.DB().QueryRow(q, name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A session lock whose connection is killed server-side is lost: Renew says so (the
// supervisor of `lock run` then stops the child, exit 4), and the next holder gets it
// with a larger fence once the row's lease has expired (never before the killed
// holder's local deadline).
func TestSessionConnectionKilledIsLost(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		other := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "kill")
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 2 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if l.Backend().Detached || !l.Backend().Notify {
			t.Fatalf("backend %+v", l.Backend())
		}
		killSessionConn(t, l, dsn, name)
		_, err = l.Renew(ctx, name, lease.Token, 2*time.Second)
		if nh, ok := lock.AsNotHeld(err); !ok || errs.KindOf(err) != errs.KindLockLost || !strings.Contains(nh.Detail, "connection") {
			t.Fatalf("renew after the connection was killed: %v", err)
		}
		t.Logf("renew after kill: %v", err)
		next, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(5 * time.Second), Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().Before(lease.ExpiresAt) {
			t.Fatalf("the next holder got the lock before the killed holder's local deadline")
		}
		if next.Fence <= lease.Fence {
			t.Fatalf("fence %d after %d", next.Fence, lease.Fence)
		}
		_ = other.Release(ctx, name, next.Token)
	})
}

// plainSessionLock takes name's session lock as another program would (a plain
// GET_LOCK / pg_try_advisory_lock on its own connection, no dsctl marker) and returns
// that connection (closed at the test's end) and its id.
func plainSessionLock(t *testing.T, dsn, name string) (*sql.Conn, int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := rawDB(t, dsn).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var got, id int64
	if isMySQL(dsn) {
		err = conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0), CONNECTION_ID()", sqllock.UserLockName(name)).Scan(&got, &id)
	} else {
		err = conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1::bigint)::int, pg_backend_pid()", sqllock.AdvisoryKey(name)).Scan(&got, &id)
	}
	if err != nil || got != 1 {
		t.Fatalf("another program's session lock of %q: %d %v", name, got, err)
	}
	return conn, id
}

// Another program's plain GET_LOCK / pg_advisory_lock on the same name excludes dsctl's
// session lock and is shown by inspect (and, on PostgreSQL, list --foreign); break
// refuses to end that program's connection without --raw.
func TestSessionForeignSessionLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "plain")
		_, id := plainSessionLock(t, dsn, name)
		_, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		na, ok := lock.AsNotAcquired(err)
		if !ok || na.Holder == nil || !strings.HasSuffix(na.Holder.Token, " "+itoa(id)) {
			t.Fatalf("acquire against a plain session lock: %v", err)
		}
		info, err := l.Inspect(ctx, name)
		want := sqllock.FormatPGAdvisory
		if isMySQL(dsn) {
			want = sqllock.FormatMySQLUserLock
		}
		if err != nil || !info.Held || info.Format != want || info.Holder.Owner == nil || info.Holder.Owner.User == "" {
			t.Fatalf("inspect: %+v %v", info, err)
		}
		t.Logf("inspect: %s held by %s (%s)", info.Key, info.Holder, info.FormatDetail)
		list, err := l.List(ctx, lock.ListOptions{Foreign: true})
		if err != nil {
			t.Fatal(err)
		}
		if isMySQL(dsn) {
			var warned bool
			for _, w := range l.Backend().Warnings {
				warned = warned || strings.Contains(w, "performance_schema is off")
			}
			found := false
			for _, in := range list {
				found = found || in.Name == sqllock.UserLockName(name)
			}
			if !warned && !found {
				t.Fatalf("list --foreign neither lists the user lock nor says why: %+v %v", list, l.Backend().Warnings)
			}
		} else {
			found := false
			for _, in := range list {
				if in.Name == "advisory:"+itoa(sqllock.AdvisoryKey(name)) && in.Format == sqllock.FormatPGAdvisory && in.Holder.Token == "backend pid "+itoa(id) {
					found = true
				}
			}
			if !found {
				t.Fatalf("list --foreign does not show the advisory lock: %+v", list)
			}
		}
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("break of a foreign session lock without --raw: %v", err)
		}
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test", Raw: true}); err != nil {
			t.Fatalf("break --raw: %v", err)
		}
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(5 * time.Second), Owner: owner})
		if err != nil {
			t.Fatalf("after break --raw: %v", err)
		}
		_ = l.Release(ctx, name, le.Token)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The client's clock plays no part in expiry: a holder whose clock is an hour ahead
// does not get an hour-long lease, one an hour behind does not expire at once.
func TestClientClockDoesNotMatter(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		for _, skew := range []time.Duration{time.Hour, -time.Hour, 30 * 24 * time.Hour} {
			now := func() time.Time { return time.Now().Add(skew) }
			a := newLocker(t, dsn, sqllock.Options{Now: now})
			b := newLocker(t, dsn, sqllock.Options{Now: func() time.Time { return time.Now().Add(-skew) }})
			name := locktest.Name(t, "clock")
			lease, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			if d := lease.ExpiresAt.Sub(now()); d > time.Second || d < 900*time.Millisecond {
				t.Fatalf("skew %s: the local deadline is %s away on the holder's clock", skew, d)
			}
			info, err := b.Inspect(ctx, name)
			if err != nil || !info.Held || info.Holder.TTLLeft > time.Second || info.Holder.TTLLeft < 800*time.Millisecond {
				t.Fatalf("skew %s: inspect from a client skewed the other way: %+v %v", skew, info.Holder, err)
			}
			if _, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner}); errs.KindOf(err) != errs.KindLockNotAcquired {
				t.Fatalf("skew %s: the other client took a live lease: %v", skew, err)
			}
			start := time.Now()
			next, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Wait: lock.WaitFor(5 * time.Second), Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Fatalf("skew %s: the lease ended %s later, want within its 1s TTL", skew, took)
			}
			_ = b.Release(ctx, name, next.Token)
		}
	})
}

// A unique-key table (method_lock) is inspected, listed and broken; dsctl does not
// take locks in it.
func TestUniqueKeyTable(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db := rawDB(t, dsn)
		tbl := table("method_lock")
		remember(dsn, tbl)
		ddl := "CREATE TABLE " + tbl + " (id INT AUTO_INCREMENT PRIMARY KEY, method_name VARCHAR(64) NOT NULL UNIQUE, method_desc VARCHAR(255), update_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
		ins := "INSERT INTO " + tbl + " (method_name, method_desc) VALUES (?, 'nightly job')"
		if !isMySQL(dsn) {
			ddl = strings.Replace(ddl, "INT AUTO_INCREMENT", "SERIAL", 1)
			ins = strings.Replace(ins, "?", "$1", 1)
		}
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ins, "jobs.nightly"); err != nil {
			t.Fatal(err)
		}
		// Never inferred: without --format unique-key the table is refused.
		plain, err := open(t, dsn, sqllock.Options{Table: tbl})
		if err != nil {
			t.Fatal(err)
		}
		if info, err := plain.Inspect(ctx, "jobs.nightly"); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("inspect of a unique-key table without --format unique-key: %+v %v", info, err)
		}
		if _, err := plain.Break(ctx, "jobs.nightly", lock.BreakOptions{By: "test", Raw: true}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("break of a unique-key table without --format unique-key: %v", err)
		}
		l, err := open(t, dsn, sqllock.Options{Table: tbl, Format: sqllock.FormatUniqueKey})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.CheckTable(ctx); err != nil {
			t.Fatalf("check of a unique-key table: %v", err)
		}
		info, err := l.Inspect(ctx, "jobs.nightly")
		if err != nil || !info.Held || info.Format != sqllock.FormatUniqueKey || !strings.Contains(info.Key, "method_name=") || info.Holder.TTLLeft >= 0 {
			t.Fatalf("inspect: %+v %v", info, err)
		}
		if info, err := l.Inspect(ctx, "jobs.other"); err != nil || info.Held {
			t.Fatalf("inspect of a free name: %+v %v", info, err)
		}
		list, err := l.List(ctx, lock.ListOptions{Prefix: "jobs."})
		if err != nil || len(list) != 1 || list[0].Name != "jobs.nightly" {
			t.Fatalf("list: %+v %v", list, err)
		}
		_, err = l.Acquire(ctx, "jobs.x", lock.AcquireOptions{TTL: time.Second})
		if errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("acquire in a unique-key table: %v", err)
		}
		// Deleting the row needs --raw (or --if-token NAME).
		if _, err := l.Break(ctx, "jobs.nightly", lock.BreakOptions{By: "test", Reason: "stuck"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("break without --raw: %v", err)
		}
		if info, err := l.Inspect(ctx, "jobs.nightly"); err != nil || !info.Held {
			t.Fatalf("a refused break deleted the row: %+v %v", info, err)
		}
		if prev, err := l.Break(ctx, "jobs.nightly", lock.BreakOptions{By: "test", Reason: "stuck", Raw: true}); err != nil || !prev.Held {
			t.Fatalf("break: %+v %v", prev, err)
		}
		if info, err := l.Inspect(ctx, "jobs.nightly"); err != nil || info.Held {
			t.Fatalf("after break: %+v %v", info, err)
		}
	})
}

// Breaking a session lease whose connection already ended frees its row at once (the
// next holder need not wait for the row's lease), and tells the old holder.
func TestSessionBreakAfterConnectionEnded(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		other := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "brk")
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		killSessionConn(t, l, dsn, name)
		info, err := other.Inspect(ctx, name)
		if err != nil || !info.Held || len(info.Notes) == 0 || !strings.Contains(info.Notes[len(info.Notes)-1], "ended") {
			t.Fatalf("inspect after the holder's connection ended: %+v %v", info, err)
		}
		if _, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second}); errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("acquire while the row's lease runs: %v", err)
		}
		prev, err := other.Break(ctx, name, lock.BreakOptions{By: "test", Reason: "dead holder", IfToken: lease.Token})
		if err != nil || !prev.Held || prev.Holder.Token != lease.Token {
			t.Fatalf("break: %+v %v", prev, err)
		}
		next, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err != nil || next.Fence <= lease.Fence {
			t.Fatalf("acquire after the break: %+v %v", next, err)
		}
		_ = other.Release(ctx, name, next.Token)
		if _, err := l.Renew(ctx, name, lease.Token, time.Second); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("renew by the broken holder: %v", err)
		}
	})
}

// A dsctl client holds the session lock a moment before its row says so: it stamps the
// row one round trip later (longer when it is descheduled). Inspect in that moment names
// the dsctl holder, not "another program's session lock" (CI caught the latter once, and
// `lock break` then refused to break a dsctl lock).
func TestSessionInspectWhileStamping(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "stamping")
		conn, sid, err := sqllock.TakeSessionLock(ctx, holder, name)
		if err != nil {
			t.Fatal(err)
		}
		type answer struct {
			info *lock.Info
			err  error
		}
		inspected := make(chan answer, 1)
		go func() {
			info, err := l.Inspect(ctx, name)
			inspected <- answer{info, err}
		}()
		time.Sleep(80 * time.Millisecond) // the holder is paused between its two steps
		lease, err := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil || lease == nil {
			t.Fatalf("stamp: %v %v", lease, err)
		}
		defer func() { _ = holder.Release(ctx, name, lease.Token) }()
		got := <-inspected
		if got.err != nil || !got.info.Held || got.info.Format != lock.FormatDsctl || got.info.Holder.Token != lease.Token {
			t.Fatalf("inspect while the holder stamps its row: %+v %v", got.info, got.err)
		}
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test", IfToken: lease.Token}); err != nil {
			t.Fatalf("break of the dsctl holder: %v", err)
		}
	})
}

// `lock break` of a live session-mode holder ends its connection; the holder, on its
// next renew or release, is told it was broken, by whom and why, not just that its
// connection ended.
func TestSessionBrokenHolderIsToldWhy(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		for _, verb := range []string{"renew", "release"} {
			l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
			other := newLocker(t, dsn, sqllock.Options{})
			name := locktest.Name(t, verb)
			lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "stuck deploy"}); err != nil {
				t.Fatal(err)
			}
			if verb == "renew" {
				_, err = l.Renew(ctx, name, lease.Token, 30*time.Second)
			} else {
				err = l.Release(ctx, name, lease.Token)
			}
			nh, ok := lock.AsNotHeld(err)
			if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.Reason != "stuck deploy" || nh.Break.By != "oncall" {
				t.Fatalf("%s after a break: %v", verb, err)
			}
		}
	})
}
