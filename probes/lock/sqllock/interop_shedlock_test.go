package sqllock_test

// dsctl's `--format shedlock` against the real ShedLock: ShedLock 6.9.2's plain-JDBC
// JdbcLockProvider (no Spring), run as a process (scripts/interop/shedlock, built by
// scripts/interop/setup), contends with dsctl's sqllock in this process on MariaDB and
// PostgreSQL. Both prove exclusion with one critical-section marker file: whoever holds
// the lock creates it with O_EXCL right after acquiring and deletes it right before
// releasing, so two holders at once make a create fail (a violation).
//
// What ShedLock 6.9.2's JdbcLockProvider does (its SQL, read in its source):
//   - lock:   INSERT (name, lock_until = now + lockAtMostFor, locked_at = now,
//     locked_by = hostname); on a duplicate key UPDATE ... WHERE name = ? AND
//     lock_until <= now. "now" is the JVM's clock, not the database's.
//   - extend: UPDATE SET lock_until WHERE name = ? AND locked_by = hostname AND
//     lock_until > now.
//   - unlock: UPDATE SET lock_until = now WHERE name = ?  (no owner check).
// So: dsctl and ShedLock exclude each other while their clocks agree; ShedLock can
// never extend dsctl's row (dsctl's locked_by is "<host> dsctl pid N #token", not the
// bare hostname); but a ShedLock task that overran its lockAtMostFor ends whoever holds
// the row when it unlocks, dsctl included, and dsctl learns it at its next renewal.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

var shedInteropOwner = lock.CurrentOwner(4242, "shedlock interop test", "sql", "dsctl test")

// jdbcOf turns a DSCTL_TEST_* DSN into a JDBC URL, user and password.
func jdbcOf(t *testing.T, kind, dsn string) (jdbcURL, user, password string) {
	t.Helper()
	if kind == "mysql" {
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatalf("DSCTL_TEST_MYSQL_DSN: %v", err)
		}
		return "jdbc:mariadb://" + c.Addr + "/" + c.DBName, c.User, c.Passwd
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("DSCTL_TEST_PG_DSN: %v", err)
	}
	password, _ = u.User.Password()
	return "jdbc:postgresql://" + u.Host + u.Path, u.User.Username(), password
}

// startShedLock starts the ShedLock contender (scripts/interop/shedlock) on the
// database of dsn, its password in the environment.
func startShedLock(t *testing.T, kind, dsn, table, name, marker string, args ...string) *locktest.Contender {
	t.Helper()
	jar := locktest.ContenderJar(locktest.InteropDir(t, "shedlock"), "shedlock")
	u, user, password := jdbcOf(t, kind, dsn)
	cmd := locktest.JavaCommand(jar, append([]string{"--jdbc-url", u, "--user", user,
		"--table", table, "--name", name, "--marker", marker}, args...)...)
	cmd.Env = append(os.Environ(), "SHEDLOCK_JDBC_PASSWORD="+password)
	return locktest.StartContender(t, "shedlock", cmd)
}

// shedInterop runs f on both databases with a fresh ShedLock table name (created by the
// ShedLock contender, as a Spring service's migration would; dropped afterwards).
func shedInterop(t *testing.T, f func(t *testing.T, kind, dsn, table string)) {
	for _, db := range []struct{ kind, env string }{{"mysql", testenv.MySQL}, {"postgres", testenv.Postgres}} {
		t.Run(db.kind, func(t *testing.T) {
			locktest.InteropDir(t, "shedlock")
			dsn := testenv.Get(t, db.env)
			table := "dsctl_interop_shed_" + randHex(4)
			t.Cleanup(func() {
				d, _, err := endpoint.Dialer{Timeout: 5 * time.Second}.ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue(dsn))
				if err == nil {
					_, _ = d.Exec("DROP TABLE IF EXISTS " + table)
					_ = d.Close()
				}
			})
			f(t, db.kind, dsn, table)
		})
	}
}

func shedDsctl(t *testing.T, dsn, table string) *sqllock.Locker {
	t.Helper()
	l, err := sqllock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn),
		sqllock.Options{Format: sqllock.FormatShedLock, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// ShedLock holds: dsctl is refused and names the ShedLock holder, then takes the lock
// as soon as ShedLock unlocks. dsctl holds: ShedLock cannot take it until dsctl releases.
func TestInteropShedLockHandoff(t *testing.T) {
	shedInterop(t, func(t *testing.T, kind, dsn, table string) {
		ctx := context.Background()
		name := "interop-handoff-" + randHex(4)
		m := locktest.NewMarker(t)
		release := filepath.Join(t.TempDir(), "release")

		java := startShedLock(t, kind, dsn, table, name, m.Path, "--iterations", "1", "--hold-ms", "30000",
			"--lock-at-most-ms", "30000", "--release-file", release)
		from := 0
		// enter <ms> <name> shedlock <locked_by>: ShedLock writes the JVM's host name.
		host := strings.Fields(java.Next(t, &from, "enter ", 30*time.Second))[4]
		l := shedDsctl(t, dsn, table)
		_, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: shedInteropOwner})
		na, ok := lock.AsNotAcquired(err)
		if !ok || na.Holder == nil || na.Holder.Owner == nil || na.Holder.Owner.Host != host || na.Holder.TTLLeft < 10*time.Second {
			t.Fatalf("dsctl acquire while ShedLock holds: %v (%+v)", err, na)
		}
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held || info.Format != sqllock.FormatShedLock || info.Holder.Token != host {
			t.Fatalf("inspect while ShedLock holds: %+v %v", info, err)
		}
		waiter := locktest.AcquireInBackground(t, l, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: shedInteropOwner})
		waiter.StillWaiting(t, 300*time.Millisecond, "dsctl acquired while ShedLock held")
		released := time.Now()
		locktest.Touch(t, release)
		ours := waiter.Lease(t, 15*time.Second, "dsctl did not take the lock after ShedLock unlocked")
		// ShedLock sends no NOTIFY: on PostgreSQL dsctl's waiter learns of the unlock by
		// its fallback poll, on MySQL by its backoff.
		t.Logf("%s: dsctl took the lock %s after ShedLock was told to unlock", kind, time.Since(released).Round(time.Millisecond))
		leave, v := m.Enter("dsctl " + ours.Token)
		if v != "" {
			t.Fatal(v)
		}
		if code, last := java.Wait(t, 15*time.Second); code != 0 || last != "done acquired=1 violations=0" || java.Count("extended") != 1 {
			t.Fatalf("shedlock exit %d, last %q; %s", code, last, java.Report())
		}

		// dsctl holds: ShedLock polls in vain until dsctl releases.
		java2 := startShedLock(t, kind, dsn, table, name, m.Path, "--iterations", "1", "--hold-ms", "20")
		from2 := 0
		java2.Next(t, &from2, "ready", 30*time.Second)
		time.Sleep(500 * time.Millisecond)
		if java2.Count("enter") != 0 {
			t.Fatalf("ShedLock entered while dsctl held:\n%s", java2.Events())
		}
		leave()
		if err := l.Release(ctx, name, ours.Token); err != nil {
			t.Fatal(err)
		}
		java2.Next(t, &from2, "enter ", 15*time.Second)
		java2.WaitDone(t, 15*time.Second, 1)
	})
}

// ShedLock (take, extend, unlock) and dsctl (acquire, renew, release) loop on the same
// row at once: never both inside, each side gets it every time it asks, ShedLock's
// extends all succeed and dsctl's renewals all succeed.
func TestInteropShedLockContention(t *testing.T) {
	shedInterop(t, func(t *testing.T, kind, dsn, table string) {
		const rounds = 15
		hold, gap := 20*time.Millisecond, 20*time.Millisecond
		name := "interop-contention-" + randHex(4)
		m := locktest.NewMarker(t)
		java := startShedLock(t, kind, dsn, table, name, m.Path, "--iterations", fmt.Sprint(rounds),
			"--hold-ms", fmt.Sprint(hold.Milliseconds()), "--gap-ms", fmt.Sprint(gap.Milliseconds()))
		from := 0
		java.Next(t, &from, "ready", 30*time.Second)
		l := shedDsctl(t, dsn, table)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for i := 0; i < rounds; i++ {
			// ShedLock never NOTIFYs, so on PostgreSQL dsctl's default waiter would sleep
			// until its fallback poll (2 s) while ShedLock, polling every 5 ms, takes
			// every turn: poll as ShedLock does (`--wait-strategy poll`).
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: shedInteropOwner,
				Strategy: lock.WaitPoll, PollInterval: 5 * time.Millisecond})
			if err != nil {
				t.Fatalf("dsctl acquire %d: %v", i, err)
			}
			leave, v := m.Enter("dsctl " + le.Token)
			if v != "" {
				t.Fatalf("round %d: %s", i, v)
			}
			time.Sleep(hold / 2)
			if _, err := l.Renew(ctx, name, le.Token, 10*time.Second); err != nil {
				t.Fatalf("dsctl renew %d: %v", i, err)
			}
			time.Sleep(hold / 2)
			leave()
			if err := l.Release(ctx, name, le.Token); err != nil {
				t.Fatalf("dsctl release %d: %v", i, err)
			}
			time.Sleep(gap)
		}
		java.WaitDone(t, time.Minute, rounds)
		if n := java.Count("extend-failed"); n != 0 || java.Count("extended") != rounds {
			t.Fatalf("ShedLock extends: %d failed, %d succeeded of %d", n, java.Count("extended"), rounds)
		}
		count, handoffs := m.Sides(t)
		if count["dsctl"] != rounds || count["shedlock"] != rounds {
			t.Fatalf("holds per side %v, want %d each", count, rounds)
		}
		// ShedLock has no queue (both sides poll), so no strict alternation; but the two
		// loops overlapped in time, so the lock changed sides at least a few times.
		if handoffs < 3 {
			t.Fatalf("only %d handoffs between dsctl and ShedLock in %d holds: they did not contend", handoffs, 2*rounds)
		}
		t.Logf("%s: %d holds each, %d handoffs between dsctl and ShedLock", kind, rounds, handoffs)
	})
}

// A ShedLock task that overruns its lockAtMostFor loses the row to dsctl (ShedLock's
// documented semantics: lockAtMostFor is the lease). If it then extends, the extend
// fails (it checks locked_by) and ShedLock does not unlock: dsctl keeps the lock. If it
// does not extend, its unlock, which checks nothing but the name, ends dsctl's hold:
// dsctl learns it at its next renewal (lock lost, as `lock run` reports with exit 4).
func TestInteropShedLockOverrun(t *testing.T) {
	shedInterop(t, func(t *testing.T, kind, dsn, table string) {
		ctx := context.Background()
		name := "interop-overrun-" + randHex(4)
		l := shedDsctl(t, dsn, table)
		// overrun starts a ShedLock task with lockAtMostFor 1s that runs until told to
		// stop, and lets dsctl take the row over once that second passed. (The markers
		// are separate: this overlap is ShedLock's documented behaviour.)
		overrun := func(extend string) (*locktest.Contender, string, *lock.Lease) {
			release := filepath.Join(t.TempDir(), "release")
			java := startShedLock(t, kind, dsn, table, name, filepath.Join(t.TempDir(), "shedlock-only"), "--iterations", "1",
				"--hold-ms", "30000", "--lock-at-most-ms", "1000", "--release-file", release, "--extend", extend)
			from := 0
			java.Next(t, &from, "enter ", 30*time.Second)
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(20 * time.Second), Owner: shedInteropOwner,
				Strategy: lock.WaitPoll, PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatalf("dsctl did not take over the overrun ShedLock row: %v\n%s", err, java.Events())
			}
			return java, release, le
		}

		t.Run("extend fails, no unlock", func(t *testing.T) {
			java, release, le := overrun("yes")
			locktest.Touch(t, release)
			if code, last := java.Wait(t, 30*time.Second); code != 0 || last != "done acquired=1 violations=0" || java.Count("extend-failed") != 1 || java.Count("unlock-skipped") != 1 {
				t.Fatalf("shedlock exit %d, last %q; %s", code, last, java.Report())
			}
			if _, err := l.Renew(ctx, name, le.Token, 10*time.Second); err != nil {
				t.Fatalf("dsctl renew after ShedLock's failed extend: %v", err)
			}
			if err := l.Release(ctx, name, le.Token); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("late unlock ends dsctl's lease", func(t *testing.T) {
			java, release, le := overrun("no")
			if _, err := l.Renew(ctx, name, le.Token, 10*time.Second); err != nil {
				t.Fatalf("dsctl renew before ShedLock's unlock: %v", err)
			}
			locktest.Touch(t, release)
			java.WaitDone(t, 30*time.Second, 1)
			_, err := l.Renew(ctx, name, le.Token, 10*time.Second)
			if errs.KindOf(err) != errs.KindLockLost {
				t.Fatalf("dsctl renew after ShedLock's late unlock: %v (want lock lost: ShedLock's unlock ends any holder)", err)
			}
		})
	})
}
