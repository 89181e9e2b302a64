//go:build dsctl_sqllock_pending

// Built only once the sqllock branch (package sqllock with Format shedlock) is merged:
// then this constraint goes.

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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

var shedInteropOwner = lock.CurrentOwner(4242, "shedlock interop test", "sql", "dsctl test")

// shedInteropJar is the ShedLock contender built by scripts/interop/setup:
// DSCTL_TEST_INTEROP_DIR unset skips (scripts/test sets it in its interop phase);
// set but the jar or java missing skips, or fails under CI=true.
func shedInteropJar(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DSCTL_TEST_INTEROP_DIR")
	if dir == "" {
		t.Skip("interop test: set DSCTL_TEST_INTEROP_DIR with `eval \"$(scripts/interop/setup)\"` (Java 17 + Maven); scripts/test runs these in its interop phase")
	}
	jar := filepath.Join(dir, "shedlock", "shedlock-contender.jar")
	_, javaErr := exec.LookPath("java")
	_, jarErr := os.Stat(jar)
	if javaErr == nil && jarErr == nil {
		return jar
	}
	msg := fmt.Sprintf("ShedLock contender not available (%s: %v; java on PATH: %v): run `eval \"$(scripts/interop/setup)\"`", jar, jarErr, javaErr == nil)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, but CI=true: the interop tests must run", msg)
	}
	t.Skip(msg)
	return ""
}

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

// shedProc is the ShedLock contender process: its stdout events and its exit.
type shedProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
	done   chan struct{}
	err    error
	stderr bytes.Buffer
}

func startShedLock(t *testing.T, kind, dsn, table, name, marker string, args ...string) *shedProc {
	t.Helper()
	jar := shedInteropJar(t)
	u, user, password := jdbcOf(t, kind, dsn)
	all := append([]string{"-Xmx128m", "-XX:TieredStopAtLevel=1", "-jar", jar, "--jdbc-url", u, "--user", user,
		"--table", table, "--name", name, "--marker", marker}, args...)
	p := &shedProc{cmd: exec.Command("java", all...), notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "SHEDLOCK_JDBC_PASSWORD="+password)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *shedProc) events() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *shedProc) count(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// next waits (bounded) for the first event at index >= *from starting with prefix.
func (p *shedProc) next(t *testing.T, from *int, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		p.mu.Lock()
		for ; *from < len(p.lines); *from++ {
			if l := p.lines[*from]; strings.HasPrefix(l, prefix) {
				*from++
				p.mu.Unlock()
				return l
			}
		}
		n := len(p.lines)
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.done:
			p.mu.Lock()
			more := len(p.lines) > n
			p.mu.Unlock()
			if !more && *from >= n {
				t.Fatalf("shedlock exited (%v) before %q; events:\n%s\nstderr:\n%s", p.err, prefix, p.events(), p.stderr.String())
			}
		case <-deadline:
			t.Fatalf("shedlock: no %q within %s; events:\n%s\nstderr:\n%s", prefix, within, p.events(), p.stderr.String())
		}
	}
}

func (p *shedProc) wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("shedlock still running after %s; events:\n%s\nstderr:\n%s", within, p.events(), p.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		code = ee.ExitCode()
	} else if p.err != nil {
		t.Fatal(p.err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := ""
	if len(p.lines) > 0 {
		last = p.lines[len(p.lines)-1]
	}
	return code, last
}

// shedInterop runs f on both databases with a fresh ShedLock table name (created by the
// ShedLock contender, as a Spring service's migration would; dropped afterwards).
func shedInterop(t *testing.T, f func(t *testing.T, kind, dsn, table string)) {
	for _, db := range []struct{ kind, env string }{{"mysql", testenv.MySQL}, {"postgres", testenv.Postgres}} {
		t.Run(db.kind, func(t *testing.T) {
			shedInteropJar(t)
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

type shedMarker string

// enter creates the marker with O_EXCL; a non-empty violation names who was inside.
func (m shedMarker) enter(who string) (leave func(), violation string) {
	f, err := os.OpenFile(string(m), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		inside, _ := os.ReadFile(string(m))
		return func() {}, fmt.Sprintf("%s found the marker taken by: %s", who, strings.TrimSpace(string(inside)))
	}
	_, _ = f.WriteString(who + "\n")
	_ = f.Close()
	if h, err := os.OpenFile(string(m)+".history", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		_, _ = h.WriteString(who + "\n")
		_ = h.Close()
	}
	return func() { _ = os.Remove(string(m)) }, ""
}

func (m shedMarker) sides(t *testing.T) (map[string]int, int) {
	t.Helper()
	b, err := os.ReadFile(string(m) + ".history")
	if err != nil {
		t.Fatal(err)
	}
	count, handoffs, prev := map[string]int{}, 0, ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		side, _, _ := strings.Cut(line, " ")
		count[side]++
		if prev != "" && side != prev {
			handoffs++
		}
		prev = side
	}
	return count, handoffs
}

// ShedLock holds: dsctl is refused and names the ShedLock holder, then takes the lock
// as soon as ShedLock unlocks. dsctl holds: ShedLock cannot take it until dsctl releases.
func TestInteropShedLockHandoff(t *testing.T) {
	shedInterop(t, func(t *testing.T, kind, dsn, table string) {
		ctx := context.Background()
		name := "interop-handoff-" + randHex(4)
		m := shedMarker(filepath.Join(t.TempDir(), "critical-section"))
		release := filepath.Join(t.TempDir(), "release")

		java := startShedLock(t, kind, dsn, table, name, string(m), "--iterations", "1", "--hold-ms", "30000",
			"--lock-at-most-ms", "30000", "--release-file", release)
		from := 0
		// enter <ms> <name> shedlock <locked_by>: ShedLock writes the JVM's host name.
		host := strings.Fields(java.next(t, &from, "enter ", 30*time.Second))[4]
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
		got := make(chan *lock.Lease, 1)
		go func() {
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: shedInteropOwner})
			if err != nil {
				t.Error(err)
			}
			got <- le
		}()
		select {
		case <-got:
			t.Fatal("dsctl acquired while ShedLock held")
		case <-time.After(300 * time.Millisecond):
		}
		released := time.Now()
		if err := os.WriteFile(release, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var ours *lock.Lease
		select {
		case ours = <-got:
		case <-time.After(15 * time.Second):
			t.Fatal("dsctl did not take the lock after ShedLock unlocked")
		}
		if ours == nil {
			t.FailNow()
		}
		// ShedLock sends no NOTIFY: on PostgreSQL dsctl's waiter learns of the unlock by
		// its fallback poll, on MySQL by its backoff.
		t.Logf("%s: dsctl took the lock %s after ShedLock was told to unlock", kind, time.Since(released).Round(time.Millisecond))
		leave, v := m.enter("dsctl " + ours.Token)
		if v != "" {
			t.Fatal(v)
		}
		if code, last := java.wait(t, 15*time.Second); code != 0 || last != "done acquired=1 violations=0" || java.count("extended") != 1 {
			t.Fatalf("shedlock exit %d, last %q; events:\n%s\nstderr:\n%s", code, last, java.events(), java.stderr.String())
		}

		// dsctl holds: ShedLock polls in vain until dsctl releases.
		java2 := startShedLock(t, kind, dsn, table, name, string(m), "--iterations", "1", "--hold-ms", "20")
		from2 := 0
		java2.next(t, &from2, "ready", 30*time.Second)
		time.Sleep(500 * time.Millisecond)
		if java2.count("enter") != 0 {
			t.Fatalf("ShedLock entered while dsctl held:\n%s", java2.events())
		}
		leave()
		if err := l.Release(ctx, name, ours.Token); err != nil {
			t.Fatal(err)
		}
		java2.next(t, &from2, "enter ", 15*time.Second)
		if code, last := java2.wait(t, 15*time.Second); code != 0 || last != "done acquired=1 violations=0" {
			t.Fatalf("shedlock exit %d, last %q; events:\n%s\nstderr:\n%s", code, last, java2.events(), java2.stderr.String())
		}
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
		m := shedMarker(filepath.Join(t.TempDir(), "critical-section"))
		java := startShedLock(t, kind, dsn, table, name, string(m), "--iterations", fmt.Sprint(rounds),
			"--hold-ms", fmt.Sprint(hold.Milliseconds()), "--gap-ms", fmt.Sprint(gap.Milliseconds()))
		from := 0
		java.next(t, &from, "ready", 30*time.Second)
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
			leave, v := m.enter("dsctl " + le.Token)
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
		code, last := java.wait(t, time.Minute)
		if code != 0 || last != fmt.Sprintf("done acquired=%d violations=0", rounds) {
			t.Fatalf("shedlock exit %d, last %q; events:\n%s\nstderr:\n%s", code, last, java.events(), java.stderr.String())
		}
		if n := java.count("extend-failed"); n != 0 || java.count("extended") != rounds {
			t.Fatalf("ShedLock extends: %d failed, %d succeeded of %d", n, java.count("extended"), rounds)
		}
		count, handoffs := m.sides(t)
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
		overrun := func(extend string) (*shedProc, string, *lock.Lease) {
			release := filepath.Join(t.TempDir(), "release")
			java := startShedLock(t, kind, dsn, table, name, filepath.Join(t.TempDir(), "shedlock-only"), "--iterations", "1",
				"--hold-ms", "30000", "--lock-at-most-ms", "1000", "--release-file", release, "--extend", extend)
			from := 0
			java.next(t, &from, "enter ", 30*time.Second)
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(20 * time.Second), Owner: shedInteropOwner,
				Strategy: lock.WaitPoll, PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatalf("dsctl did not take over the overrun ShedLock row: %v\n%s", err, java.events())
			}
			return java, release, le
		}

		t.Run("extend fails, no unlock", func(t *testing.T) {
			java, release, le := overrun("yes")
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if code, last := java.wait(t, 30*time.Second); code != 0 || last != "done acquired=1 violations=0" || java.count("extend-failed") != 1 || java.count("unlock-skipped") != 1 {
				t.Fatalf("shedlock exit %d, last %q; events:\n%s\nstderr:\n%s", code, last, java.events(), java.stderr.String())
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
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if code, last := java.wait(t, 30*time.Second); code != 0 || last != "done acquired=1 violations=0" {
				t.Fatalf("shedlock exit %d, last %q; events:\n%s\nstderr:\n%s", code, last, java.events(), java.stderr.String())
			}
			_, err := l.Renew(ctx, name, le.Token, 10*time.Second)
			if errs.KindOf(err) != errs.KindLockLost {
				t.Fatalf("dsctl renew after ShedLock's late unlock: %v (want lock lost: ShedLock's unlock ends any holder)", err)
			}
		})
	})
}
