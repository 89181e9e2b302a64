package sqllock_test

// Adversarial review of the SQL lock backend (branch sqlreview). Each
// TestReviewAttack* test FAILS when the claim it attacks is broken.

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// withParam adds a DSN parameter (go-sql-driver DSN or postgres URL).
func withParam(dsn, kv string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + kv
	}
	return dsn + "?" + kv
}

// rawLocker opens a Locker on table tbl (Init when init is set) with no shared state.
func rawLocker(t *testing.T, dsn string, opt sqllock.Options, init bool) *sqllock.Locker {
	t.Helper()
	l, err := sqllock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if init {
		if _, err := l.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// holdThenTry is the double-grant attempt of the review attacks: A takes name for ttl
// (it must), then B tries it without waiting. It returns both leases (B's only when
// B was granted it too: a double grant) and B's error; the leases are released when
// the test ends.
func holdThenTry(t *testing.T, a, b *sqllock.Locker, name string, ttl time.Duration) (la, lb *lock.Lease, errB error) {
	t.Helper()
	ctx := context.Background()
	la, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Release(ctx, name, la.Token) })
	lb, errB = b.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl, Owner: owner})
	if errB == nil {
		t.Cleanup(func() { _ = b.Release(ctx, name, lb.Token) })
	}
	return la, lb, errB
}

// Claim 1 (MySQL): a DSN with clientFoundRows=true (common in ORMs' DSNs) makes
// MySQL report "1 row affected" for an ON DUPLICATE KEY UPDATE that changed nothing,
// so the acquire statement on a HELD row looks like a grant.
func TestReviewAttackMySQLClientFoundRowsDoubleGrant(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	tbl := table("cfr")
	remember(dsn, tbl)
	a := rawLocker(t, dsn, sqllock.Options{Table: tbl}, true)
	b := rawLocker(t, withParam(dsn, "clientFoundRows=true"), sqllock.Options{Table: tbl}, false)
	name := "review-cfr-" + randHex(4)
	la, lb, err := holdThenTry(t, a, b, name, 30*time.Second)
	if err == nil {
		t.Fatalf("DOUBLE GRANT: A holds %q (fence %d, expires %s) and B (clientFoundRows=true DSN) was granted it too: token %s fence %d",
			name, la.Fence, la.ExpiresAt.Format(time.RFC3339Nano), lb.Token, lb.Fence)
	}
	var na *lock.NotAcquiredError
	if !errors.As(err, &na) {
		t.Fatalf("B: want NotAcquired, got %v", err)
	}
}

// Same DSN option against the ShedLock format.
func TestReviewAttackMySQLClientFoundRowsShedLockDoubleGrant(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	tbl := table("cfrshed")
	remember(dsn, tbl)
	a := rawLocker(t, dsn, sqllock.Options{Table: tbl, Format: sqllock.FormatShedLock, Host: "a"}, true)
	b := rawLocker(t, withParam(dsn, "clientFoundRows=true"), sqllock.Options{Table: tbl, Format: sqllock.FormatShedLock, Host: "b"}, false)
	name := "review-cfrs-" + randHex(4)
	la, lb, err := holdThenTry(t, a, b, name, 30*time.Second)
	if err == nil {
		t.Fatalf("DOUBLE GRANT (shedlock): A holds %q (token %s) and B (clientFoundRows=true) was granted it too (token %s)", name, la.Token, lb.Token)
	}
}

// Claim 1/6 (PostgreSQL, ShedLock format): lock_until is TIMESTAMP WITHOUT TIME ZONE
// and dsctl writes/compares clock_timestamp(), which PostgreSQL converts with the
// SESSION's TimeZone. Two clients whose sessions differ in TimeZone (PGTZ, a DSN
// timezone=, ALTER ROLE ... SET timezone, the server default vs. a client override)
// read the same row as different instants: the one east of the writer sees a live
// lease as expired and takes it over.
func TestReviewAttackPGShedLockSessionTimeZoneDoubleGrant(t *testing.T) {
	dsn := testenv.Get(t, testenv.Postgres)
	tbl := table("shedtz")
	remember(dsn, tbl)
	a := rawLocker(t, withParam(dsn, "timezone=UTC"), sqllock.Options{Table: tbl, Format: sqllock.FormatShedLock, Host: "a"}, true)
	b := rawLocker(t, withParam(dsn, "timezone="+url.QueryEscape("Asia/Karachi")), sqllock.Options{Table: tbl, Format: sqllock.FormatShedLock, Host: "b"}, false)
	name := "review-tz-" + randHex(4)
	ctx := context.Background()
	la, lb, err := holdThenTry(t, a, b, name, 60*time.Second)
	if err == nil {
		t.Fatalf("DOUBLE GRANT: A (session TimeZone UTC) holds %q until %s; B (session TimeZone Asia/Karachi) was granted it too (token %s)",
			name, la.ExpiresAt.Format(time.RFC3339), lb.Token)
	}
	// The renew of the first holder must still work (it was not taken over).
	if _, err := a.Renew(ctx, name, la.Token, 60*time.Second); err != nil {
		t.Fatalf("A lost its lease to a client in another time zone: %v", err)
	}
}

// Claim 1/2 (MariaDB): the MySQL acquire statement relies on ON DUPLICATE KEY UPDATE
// assigning left to right ("every other column follows token = VALUES(token)").
// MariaDB's sql_mode SIMULTANEOUS_ASSIGNMENT (settable in the DSN or server config)
// makes the assignments simultaneous: does the takeover still move the fence and
// expiry together with the token?
func TestReviewAttackMariaDBSimultaneousAssignment(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	tbl := table("simul")
	remember(dsn, tbl)
	a := rawLocker(t, dsn, sqllock.Options{Table: tbl}, true)
	var mode string
	if err := a.DB().QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	var version string
	_ = a.DB().QueryRow("SELECT VERSION()").Scan(&version)
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		t.Skip("SIMULTANEOUS_ASSIGNMENT is MariaDB-only; server is " + version)
	}
	newMode := "SIMULTANEOUS_ASSIGNMENT"
	if mode != "" {
		newMode = mode + ",SIMULTANEOUS_ASSIGNMENT"
	}
	sdsn := withParam(dsn, "sql_mode="+url.QueryEscape("'"+newMode+"'"))
	b := rawLocker(t, sdsn, sqllock.Options{Table: tbl}, false)
	c := rawLocker(t, sdsn, sqllock.Options{Table: tbl}, false)
	var got string
	if err := b.DB().QueryRow("SELECT @@SESSION.sql_mode").Scan(&got); err != nil || !strings.Contains(got, "SIMULTANEOUS_ASSIGNMENT") {
		t.Fatalf("could not set sql_mode on B: %q %v", got, err)
	}
	name := "review-simul-" + randHex(4)
	ctx := context.Background()
	ttl := 300 * time.Millisecond
	la, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 200*time.Millisecond) // A's lease expired by the database clock
	lb, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatalf("B could not take over an expired lease: %v", err)
	}
	defer b.Release(ctx, name, lb.Token)
	if lb.Fence <= la.Fence {
		t.Errorf("FENCE NOT INCREASED: A had fence %d, B (takeover under SIMULTANEOUS_ASSIGNMENT) got fence %d", la.Fence, lb.Fence)
	}
	lc, err := c.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err == nil {
		defer c.Release(ctx, name, lc.Token)
		t.Fatalf("DOUBLE GRANT: B holds %q (fence %d, 30s TTL) and C was granted it too (fence %d)", name, lb.Fence, lc.Fence)
	}
}

// Claim 7: Break recognises ANY table with a single-column unique string key as a
// "unique-key lock table" and DELETEs the row whose key equals the lock name. A
// users(id, email UNIQUE, ...) table is application data, not a lock table.
func TestReviewAttackBreakDeletesApplicationRow(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := "review_app_users_" + runID
		remember(dsn, tbl)
		admin := rawLocker(t, dsn, sqllock.Options{Table: table("locks")}, false)
		db := admin.DB()
		ddl := "CREATE TABLE " + tbl + " (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, full_name VARCHAR(100), balance INT)"
		if _, err := db.Exec(ddl); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + tbl) })
		if _, err := db.Exec("INSERT INTO " + tbl + " VALUES (1, 'alice@example.com', 'Alice', 100)"); err != nil {
			t.Fatal(err)
		}
		l := rawLocker(t, dsn, sqllock.Options{Table: tbl}, false)
		info, err := l.Break(context.Background(), "alice@example.com", lock.BreakOptions{By: "review", Reason: "attack"})
		var n int
		if qerr := db.QueryRow("SELECT COUNT(*) FROM " + tbl + " WHERE email = 'alice@example.com'").Scan(&n); qerr != nil {
			t.Fatal(qerr)
		}
		if n == 0 {
			format := ""
			if info != nil {
				format = string(info.Format)
			}
			t.Fatalf("DATA LOSS: `lock break --table %s alice@example.com` (no --raw) deleted an application row (recognised as %q, err %v)", tbl, format, err)
		}
		if err == nil {
			t.Errorf("Break on an application table succeeded without touching it? want a usage error naming the table (info %+v)", info)
		}
	})
}

// Claim 6: "A ShedLock client on the same host writes plain <host>, so it can never
// extend or release dsctl's row, nor dsctl its (except through lock break)". dsctl's
// Release/Renew with a token that is not 16 hex digits compare locked_by = token, so
// the hostname (shown as the holder's token by inspect) releases/extends a live
// ShedLock holder's lock without `lock break` (no break record, no --if-token).
func TestReviewAttackShedLockReleaseForeignHolderByHostname(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		l := shedLocker(t, dsn)
		c := shedlockClient{l: l, hostname: "app-server-7"}
		name := shedName("foreign")
		if !c.lock(t, name, time.Minute) {
			t.Fatal("ShedLock client could not lock")
		}
		ctx := context.Background()
		_, rerr := l.Renew(ctx, name, "app-server-7", 10*time.Minute)
		relErr := l.Release(ctx, name, "app-server-7")
		info, err := l.Inspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if rerr == nil {
			t.Errorf("dsctl Renew with the ShedLock host as token extended a foreign ShedLock holder's lease")
		}
		if relErr == nil || !info.Held {
			t.Fatalf("dsctl Release(name, %q) released a live ShedLock holder's lock (release err %v, still held: %v)", "app-server-7", relErr, info.Held)
		}
	})
}

// Claim 6 (PostgreSQL): ShedLock stores UTC wall time in its TIMESTAMP columns
// (timezone('utc', CURRENT_TIMESTAMP) with usingDbTime(), a UTC Calendar otherwise;
// shedlockClient does the same); dsctl stores clock_timestamp() in the session's
// TimeZone. With any session TimeZone east of UTC (server default from the OS at
// initdb, PGTZ, ALTER ROLE ... SET timezone, timezone= in the DSN) dsctl sees a live
// ShedLock lease as expired and takes it.
func TestReviewAttackPGShedLockVsShedLockClientNonUTCSession(t *testing.T) {
	dsn := testenv.Get(t, testenv.Postgres)
	plain := shedLocker(t, dsn) // creates the table with ShedLock's DDL
	c := shedlockClient{l: plain, hostname: "app-server-9"}
	name := shedName("tzclient")
	if !c.lock(t, name, time.Minute) {
		t.Fatal("ShedLock client could not lock")
	}
	l := rawLocker(t, withParam(dsn, "timezone="+url.QueryEscape("Europe/Moscow")), sqllock.Options{Table: plain.Table(), Format: sqllock.FormatShedLock, Host: "dsctl"}, false)
	ctx := context.Background()
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Minute, Owner: owner})
	if err == nil {
		defer l.Release(ctx, name, le.Token)
		t.Fatalf("DOUBLE GRANT: a ShedLock client (UTC timestamps) holds %q for a minute; dsctl with session TimeZone Europe/Moscow was granted it too (token %s)", name, le.Token)
	}
}

// Claim 8: no error for a bad DSN, a refused connection or a failed login shows the
// password (message or hint).
func TestReviewAttackDSNPasswordNeverEchoed(t *testing.T) {
	pg := testenv.Get(t, testenv.Postgres)
	my := testenv.Get(t, testenv.MySQL)
	pgu, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	myCfgHost := "127.0.0.1:13306"
	if i, j := strings.Index(my, "tcp("), strings.Index(my, ")"); i >= 0 && j > i {
		myCfgHost = my[i+4 : j]
	}
	const pw = "Sekr1tPw_q7"
	cases := map[string]string{
		"pg wrong password":    "postgres://dsctl_nouser:" + pw + "@" + pgu.Host + pgu.Path + "?sslmode=disable",
		"pg bad param":         "postgres://u:" + pw + "@" + pgu.Host + "/db?sslmode=bogus",
		"pg kv wrong password": "host=" + pgu.Hostname() + " port=" + pgu.Port() + " user=dsctl_nouser password=" + pw + " dbname=x sslmode=disable",
		"pg kv quoted":         "host=" + pgu.Hostname() + " port=" + pgu.Port() + " user=dsctl_nouser password='" + pw + " x' dbname=x sslmode=bogus",
		"pg refused":           "postgres://u:" + pw + "@127.0.0.1:1/db?sslmode=disable",
		"pg encoded":           "postgres://u:" + url.QueryEscape(pw+"@/") + "@" + pgu.Host + "/db?sslmode=disable",
		"mysql wrong password": "dsctl_nouser:" + pw + "@tcp(" + myCfgHost + ")/dsctl_test",
		"mysql bad param":      "u:" + pw + "@tcp(" + myCfgHost + ")/dsctl_test?timeout=notaduration",
		"mysql url":            "mysql://u:" + pw + "@" + myCfgHost + "/dsctl_test?readTimeout=bogus",
		"mysql refused":        "u:" + pw + "@tcp(127.0.0.1:1)/dsctl_test",
	}
	for what, dsn := range cases {
		t.Run(what, func(t *testing.T) {
			l, err := sqllock.New(context.Background(), endpoint.Dialer{Timeout: 3 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), sqllock.Options{})
			if err == nil {
				_ = l.Close()
				t.Skip("connected")
			}
			text := err.Error()
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				text += " | " + e.Error()
			}
			if strings.Contains(text, pw) || strings.Contains(text, url.QueryEscape(pw+"@/")) {
				t.Errorf("the password is echoed: %s", err)
			}
		})
	}
}

// ph is the n-th placeholder for l's database.
func ph(l *sqllock.Locker, n int) string {
	if l.Backend().Kind == "mysql" {
		return "?"
	}
	return "$" + string(rune('0'+n))
}

// Claim 4: a session holder whose connection is killed server-side may believe it
// holds the lock until its ExpiresAt; the next dsctl session holder must not be
// granted before then, and must get a larger fence.
func TestReviewAttackSessionKilledHolderNoOverlap(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		a := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		b := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
		ctx := context.Background()
		name := "review-kill-" + randHex(4)
		la, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 3 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		var sid int64
		if err := admin.DB().QueryRow("SELECT session_id FROM "+tbl+" WHERE name = "+ph(admin, 1), name).Scan(&sid); err != nil {
			t.Fatal(err)
		}
		if admin.Backend().Kind == "mysql" {
			_, err = admin.DB().Exec("KILL " + reviewItoa(sid))
		} else {
			_, err = admin.DB().Exec("SELECT pg_terminate_backend($1::int)", sid)
		}
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		lb, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 3 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		got := time.Now()
		defer b.Release(ctx, name, lb.Token)
		t.Logf("killed A's connection; B granted %s later; A believed until %s after the kill",
			got.Sub(killed).Round(time.Millisecond), la.ExpiresAt.Sub(killed).Round(time.Millisecond))
		if lb.AcquiredAt.Before(la.ExpiresAt) {
			t.Errorf("OVERLAP: B's lease starts %s before A's ExpiresAt (A never learned it lost the lock)", la.ExpiresAt.Sub(lb.AcquiredAt))
		}
		if lb.Fence <= la.Fence {
			t.Errorf("fence: A %d, B %d", la.Fence, lb.Fence)
		}
		if _, err := a.Renew(ctx, name, la.Token, 3*time.Second); err == nil {
			t.Errorf("A renewed a session lease whose connection was killed")
		}
	})
}

func reviewItoa(n int64) string { return strconv.FormatInt(n, 10) }

// freeRow makes name's row exist and be free (taken and released once).
func freeRow(t *testing.T, l *sqllock.Locker, name string) {
	t.Helper()
	ctx := context.Background()
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, name, le.Token); err != nil {
		t.Fatal(err)
	}
}

// lockRow holds name's row in tbl with SELECT ... FOR UPDATE in a transaction the
// caller ends, as an open transaction or a DBA's query would.
func lockRow(t *testing.T, admin *sqllock.Locker, tbl, name string) *sql.Tx {
	t.Helper()
	tx, err := admin.DB().BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var x string
	if err := tx.QueryRow("SELECT name FROM "+tbl+" WHERE name = "+ph(admin, 1)+" FOR UPDATE", name).Scan(&x); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	return tx
}

// checkNotStranded checks, half a second after an acquire (what) that should have
// failed, that it did (aerr) and that the lock is not held: a grant nobody holds
// strands the lock for its whole TTL.
func checkNotStranded(t *testing.T, admin *sqllock.Locker, name string, aerr error, what string) {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	info, err := admin.Inspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if aerr == nil {
		t.Fatalf("%s succeeded", what)
	}
	if info.Held {
		t.Fatalf("STRANDED: the %s failed (%v), yet the lock is held by token %s for %s (nobody holds that token)",
			what, aerr, info.Holder.Token, info.Holder.TTLLeft.Round(time.Second))
	}
}

// misshapenTable creates a lock table named prefix+runID from dsctl's own DDL as
// edit changed it (edit fails the test when its change did not apply), dropped when
// the test ends.
func misshapenTable(t *testing.T, dsn, prefix string, edit func(ddl string) string) string {
	t.Helper()
	tbl := prefix + runID
	remember(dsn, tbl)
	admin := rawLocker(t, dsn, sqllock.Options{Table: table("locks")}, false)
	ddl, err := sqllock.DDL(admin.Backend().Kind, lock.FormatDsctl, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DB().Exec(edit(strings.TrimSuffix(ddl, ";"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.DB().Exec("DROP TABLE IF EXISTS " + tbl) })
	return tbl
}

// "The statement is never abandoned half-way: if the caller gave up meanwhile, a lock
// it got is released again" (tryAcquire). An acquire statement blocked behind a row
// lock (an open transaction, a slow renew, a DBA's SELECT ... FOR UPDATE) outlives the
// client's timeout; the client reports the database unreachable and its background
// release runs (and times out) while the statement is still queued. When the row lock
// goes, does the abandoned statement grant a lease that nobody holds, stranding the
// lock for its whole TTL?
func TestReviewAttackTimedOutAcquireStrandsLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
		ctx := context.Background()
		name := "review-strand-" + randHex(4)
		// The row exists and is free.
		freeRow(t, admin, name)
		defer admin.Break(ctx, name, lock.BreakOptions{By: "review", Reason: "cleanup"})
		l, err := sqllock.New(ctx, endpoint.Dialer{Timeout: time.Second}, endpoint.SQL{}.WithDSNValue(dsn), sqllock.Options{Table: tbl})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		tx := lockRow(t, admin, tbl, name)
		_, aerr := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Hour, Owner: owner})
		time.Sleep(1500 * time.Millisecond) // the background release times out too
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		checkNotStranded(t, admin, name, aerr, "acquire behind a row lock")
	})
}

// The same attack on MySQL/MariaDB holds: TIMESTAMP columns store instants, and
// NOW(6) and the column are both read in the session's zone.
func TestReviewAttackMySQLShedLockNonUTCSession(t *testing.T) {
	dsn := testenv.Get(t, testenv.MySQL)
	plain := shedLocker(t, dsn)
	c := shedlockClient{l: plain, hostname: "app-server-9"}
	name := shedName("mytz")
	if !c.lock(t, name, time.Minute) {
		t.Fatal("ShedLock client could not lock")
	}
	l := rawLocker(t, withParam(dsn, "time_zone="+url.QueryEscape("'+05:00'")), sqllock.Options{Table: plain.Table(), Format: sqllock.FormatShedLock, Host: "dsctl"}, false)
	var tz string
	if err := l.DB().QueryRow("SELECT @@SESSION.time_zone").Scan(&tz); err != nil || tz != "+05:00" {
		t.Fatalf("session time_zone %q %v", tz, err)
	}
	ctx := context.Background()
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Minute, Owner: owner})
	if err == nil {
		defer l.Release(ctx, name, le.Token)
		t.Fatalf("DOUBLE GRANT: ShedLock client holds %q; dsctl with time_zone +05:00 was granted it too", name)
	}
}

// Claim 7 (session mode, PostgreSQL): Break ends the connection whose id the row's
// session_id names, without checking that it still holds the session lock. When the
// holder's backend has died (killed, reset, idle timeout) its lease row stays live
// until expiry, and PostgreSQL reuses backend pids: Break then terminates an
// unrelated application backend. The reuse is simulated by pointing the stale row at
// a live unrelated backend (exactly what a reused pid looks like to Break).
func TestReviewAttackPGSessionBreakTerminatesReusedPID(t *testing.T) {
	dsn := testenv.Get(t, testenv.Postgres)
	tbl := table("locks")
	a := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
	breaker := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
	admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
	ctx := context.Background()
	name := "review-pidreuse-" + randHex(4)
	la, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	_ = la
	var sid int64
	if err := admin.DB().QueryRow("SELECT session_id FROM "+tbl+" WHERE name = $1", name).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DB().Exec("SELECT pg_terminate_backend($1::int, 5000)", sid); err != nil {
		t.Fatal(err)
	}
	// An application's connection, which got the dead holder's pid.
	victim, err := admin.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var vpid int64
	if err := victim.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&vpid); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DB().Exec("UPDATE "+tbl+" SET session_id = $1 WHERE name = $2", vpid, name); err != nil {
		t.Fatal(err)
	}
	if _, err := breaker.Break(ctx, name, lock.BreakOptions{By: "review", Reason: "stuck holder"}); err != nil {
		t.Logf("break: %v", err)
	}
	var one int
	if err := victim.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("Break terminated backend %d, which held no session lock (an unrelated connection with a reused pid): %v", vpid, err)
	}
}

// Interrupted acquire (Ctrl-C, lock run's signal) whose statement wins after the
// cancel: Acquire releases the grant in a background goroutine and returns; the
// caller then closes the Locker (as the CLI does on its way out), and the release
// never reaches the database: the lock is held by nobody for the whole TTL.
func TestReviewAttackInterruptedAcquireThenCloseStrandsLock(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
		ctx := context.Background()
		name := "review-intr-" + randHex(4)
		freeRow(t, admin, name)
		defer admin.Break(ctx, name, lock.BreakOptions{By: "review", Reason: "cleanup"})
		l, err := sqllock.New(ctx, endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), sqllock.Options{Table: tbl})
		if err != nil {
			t.Fatal(err)
		}
		tx := lockRow(t, admin, tbl, name)
		actx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		time.AfterFunc(400*time.Millisecond, func() { _ = tx.Commit() })
		_, aerr := l.Acquire(actx, name, lock.AcquireOptions{TTL: time.Hour, Owner: owner})
		_ = l.Close() // the CLI closes its Locker on the way out
		checkNotStranded(t, admin, name, aerr, "acquire with a cancelled context")
	})
}

// Claims 1 and 8: a table of the wrong shape must be refused. Init and every call
// check the column NAMES only; a dsctl table whose name column is not unique (created
// by hand, by a DBA's edited DDL, by a migration tool that dropped the key) is
// accepted, and on MySQL/MariaDB "INSERT ... ON DUPLICATE KEY UPDATE" then never
// meets a duplicate: every Acquire inserts its own row and is granted.
func TestReviewAttackTableWithoutPrimaryKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := misshapenTable(t, dsn, "review_nopk_", func(ddl string) string {
			ddl = strings.Replace(ddl, ",\n  PRIMARY KEY (name)", "", 1) // MySQL
			ddl = strings.Replace(ddl, "NOT NULL PRIMARY KEY", "NOT NULL", 1)
			if strings.Contains(ddl, "PRIMARY KEY") {
				t.Fatalf("could not drop the key from %s", ddl)
			}
			return ddl
		})
		a := rawLocker(t, dsn, sqllock.Options{Table: tbl}, false)
		b := rawLocker(t, dsn, sqllock.Options{Table: tbl}, false)
		ctx := context.Background()
		_, initErr := a.Init(ctx)
		name := "review-nopk-" + randHex(4)
		la, errA := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		lb, errB := b.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if errA == nil && errB == nil {
			t.Fatalf("DOUBLE GRANT on a lock table without a key on name (Init said %v): A fence %d token %s, B fence %d token %s",
				initErr, la.Fence, la.Token, lb.Fence, lb.Token)
		}
		if initErr == nil {
			t.Errorf("Init accepted a lock table without a unique key on name (acquire errors: %v / %v)", errA, errB)
		}
	})
}
