package sqllock_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// dsnWith returns dsn with another address and/or user and password.
func dsnWith(t testing.TB, dsn, addr, user, pass string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if addr != "" {
			u.Host = addr
		}
		if user != "" {
			u.User = url.UserPassword(user, pass)
		}
		return u.String()
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		cfg.Addr = addr
	}
	if user != "" {
		cfg.User, cfg.Passwd = user, pass
	}
	return cfg.FormatDSN()
}

func open(t testing.TB, dsn string, opt sqllock.Options) (*sqllock.Locker, error) {
	l, err := sqllock.New(context.Background(), endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), opt)
	if err == nil {
		t.Cleanup(func() { _ = l.Close() })
	}
	return l, err
}

// rawDB is a plain connection for test setup.
func rawDB(t testing.TB, dsn string) *sql.DB {
	db, _, err := endpoint.Dialer{Timeout: 5 * time.Second}.ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue(dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestBadInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		// A table that does not exist: a usage error (exit 2) that says what to run.
		l, err := open(t, dsn, sqllock.Options{Table: "dsctl_missing_" + runID})
		if err != nil {
			t.Fatal(err)
		}
		before := l.Statements()
		_, err = l.Acquire(ctx, locktest.Name(t, "m"), lock.AcquireOptions{TTL: time.Second})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "dsctl lock sql init --table dsctl_missing_"+runID) {
			t.Fatalf("missing table: %v", err)
		}
		if _, err := l.Inspect(ctx, "x"); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "lock sql init") {
			t.Fatalf("inspect, missing table: %v", err)
		}
		// A name too long, a bad TTL, a bad table: usage errors before any I/O.
		mid := l.Statements()
		_, err = l.Acquire(ctx, strings.Repeat("n", lock.MaxNameLen+1), lock.AcquireOptions{TTL: time.Second})
		if errs.KindOf(err) != errs.KindUsage || l.Statements() != mid {
			t.Fatalf("name too long: %v (%d statements)", err, l.Statements()-mid)
		}
		if _, err := open(t, dsn, sqllock.Options{Table: "x; DROP TABLE y"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("bad table name: %v", err)
		}
		if _, err := open(t, dsn, sqllock.Options{Mode: "exclusive"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("bad mode: %v", err)
		}
		if _, err := open(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Format: sqllock.FormatShedLock}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("session + shedlock: %v", err)
		}
		_ = before

		// A table of the wrong shape names the missing columns; Init does not alter it.
		db := rawDB(t, dsn)
		odd := table("odd")
		remember(dsn, odd)
		if _, err := db.Exec("CREATE TABLE " + odd + " (name VARCHAR(200) PRIMARY KEY, token VARCHAR(64), expires_at TIMESTAMP)"); err != nil {
			t.Fatal(err)
		}
		l, err = open(t, dsn, sqllock.Options{Table: odd})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Acquire(ctx, locktest.Name(t, "o"), lock.AcquireOptions{TTL: time.Second})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "missing owner, fence") {
			t.Fatalf("wrong shape: %v", err)
		}
		if _, err := l.Init(ctx); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "missing owner") {
			t.Fatalf("init on a wrong shape: %v", err)
		}
	})
}

// A wrong address or password is reported with host and port, never the DSN's
// password; an unreachable database is exit 6.
func TestUnreachableAndSecretsNeverEchoed(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		const secret = "s3cr3t-Pa55"
		_, err = open(t, dsnWith(t, dsn, addr, "someone", secret), sqllock.Options{})
		if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), secret) {
			t.Fatalf("unreachable: %v", err)
		}
		_, err = open(t, dsnWith(t, dsn, "", "nobody_"+runID, secret), sqllock.Options{})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("wrong user: %v", err)
		}
		t.Logf("wrong user: %v", err)
	})
}

// A user without privileges on the table gets a clear error naming the table and the
// grants it needs.
func TestNoPrivileges(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		newLocker(t, dsn, sqllock.Options{}) // the table exists
		db := rawDB(t, dsn)
		user, pass := "dsctl_np_"+runID, "pw"+runID
		mysqlDB := !strings.HasPrefix(dsn, "postgres")
		if mysqlDB {
			if _, err := db.Exec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, pass)); err != nil {
				t.Skipf("cannot create a test user: %v", err)
			}
			t.Cleanup(func() { _, _ = db.Exec(fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
			cfg, _ := mysql.ParseDSN(dsn)
			if _, err := db.Exec(fmt.Sprintf("GRANT SELECT ON `%s`.`%s` TO '%s'@'%%'", cfg.DBName, table("locks"), user)); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := db.Exec(fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", user, pass)); err != nil {
				t.Skipf("cannot create a test role: %v", err)
			}
			t.Cleanup(func() { _, _ = db.Exec("DROP OWNED BY " + user); _, _ = db.Exec("DROP ROLE " + user) })
			if _, err := db.Exec(fmt.Sprintf("GRANT SELECT ON %s TO %s", table("locks"), user)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := open(t, dsnWith(t, dsn, "", user, pass), sqllock.Options{Table: table("locks")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.Acquire(ctx, locktest.Name(t, "p"), lock.AcquireOptions{TTL: time.Second})
		if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "GRANT") || strings.Contains(err.Error(), pass) {
			t.Fatalf("no privileges: %v", err)
		}
		t.Logf("no privileges: %v", err)
		// Init without CREATE says so and points at --print for a DBA.
		l2, err := open(t, dsnWith(t, dsn, "", user, pass), sqllock.Options{Table: table("nocreate")})
		if err != nil {
			t.Fatal(err)
		}
		remember(dsn, table("nocreate"))
		if _, err := l2.Init(ctx); err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "--print") {
			t.Fatalf("init without CREATE: %v", err)
		}
		// Reading still works with SELECT alone.
		if _, err := l.Inspect(ctx, "x"); err != nil {
			t.Fatalf("inspect with SELECT only: %v", err)
		}
	})
}

func TestDDLIsIdempotentAndPrintable(t *testing.T) {
	for _, drv := range []string{"mysql", "postgres"} {
		ddl, err := sqllock.DDL(drv, lock.FormatDsctl, "")
		if err != nil || !strings.Contains(ddl, "CREATE TABLE IF NOT EXISTS") || !strings.Contains(ddl, "dsctl_locks") || !strings.Contains(ddl, "fence") {
			t.Fatalf("%s: %s %v", drv, ddl, err)
		}
		ddl, err = sqllock.DDL(drv, sqllock.FormatShedLock, "")
		if err != nil || !strings.Contains(ddl, "shedlock") || !strings.Contains(ddl, "lock_until") {
			t.Fatalf("%s shedlock: %s %v", drv, ddl, err)
		}
	}
	if _, err := sqllock.DDL("oracle", lock.FormatDsctl, ""); errs.KindOf(err) != errs.KindUsage {
		t.Fatal(err)
	}
	forEachDB(t, func(t *testing.T, dsn string) {
		l := newLocker(t, dsn, sqllock.Options{})
		res, err := l.Init(context.Background()) // a second time
		if err != nil || res.Created || len(res.Columns) != 13 {
			t.Fatalf("second init: %+v %v", res, err)
		}
	})
}

// Uncontended acquire and release are one statement each, and (once prepared) one
// round trip each: counted on the wire by a proxy.
func TestOneRoundTripEach(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		newLocker(t, dsn, sqllock.Options{}) // table
		target := dsnAddr(t, dsn)
		p := newCountingProxy(t, target)
		l, err := open(t, dsnWith(t, dsn, p.addr(), "", ""), sqllock.Options{Table: table("locks")})
		if err != nil {
			t.Fatal(err)
		}
		name := locktest.Name(t, "rt")
		for i := 0; i < 3; i++ {
			s0, w0 := l.Statements(), p.requests()
			lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			s1, w1 := l.Statements(), p.requests()
			if err := l.Release(ctx, name, lease.Token); err != nil {
				t.Fatal(err)
			}
			s2, w2 := l.Statements(), p.requests()
			t.Logf("round %d: acquire %d statement(s) %d request(s), release %d statement(s) %d request(s)", i, s1-s0, w1-w0, s2-s1, w2-w1)
			if s1-s0 != 1 || s2-s1 != 1 {
				t.Fatalf("acquire %d, release %d statements; want 1 each", s1-s0, s2-s1)
			}
			if i > 0 && (w1-w0 != 1 || w2-w1 != 1) { // the first round prepares the statements
				t.Fatalf("acquire %d, release %d requests on the wire; want 1 each", w1-w0, w2-w1)
			}
		}
	})
}

func dsnAddr(t testing.TB, dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		return u.Host
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Addr
}
