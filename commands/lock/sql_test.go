//go:build unix

package lock_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// sqlBackend is a MySQL/MariaDB or PostgreSQL database under test: its DSN reaches
// dsctl through a context whose sql.dsn names an environment variable (set with
// t.Setenv, so `lock run`'s children would inherit it unless dsctl drops it), each
// run has its own lock table (made by `lock sql init`, dropped afterwards).
type sqlBackend struct {
	kind  string // mysql or postgres
	mode  string // lease or session
	dsn   string
	table string
	cfg   string // config file whose context names the DSN's variable
	db    *sql.DB
}

var sqlDBs = []struct{ kind, env, dsnVar string }{
	{"mysql", testenv.MySQL, "DSCTL_TEST_CLI_MYSQL_DSN"},
	{"postgres", testenv.Postgres, "DSCTL_TEST_CLI_PG_DSN"},
}

// eachSQLBackend runs fn on MySQL and PostgreSQL, in lease and in session mode.
func eachSQLBackend(t *testing.T, fn func(t *testing.T, b backendUnderTest)) {
	for _, db := range sqlDBs {
		for _, mode := range []string{"lease", "session"} {
			t.Run(db.kind+"-"+mode, func(t *testing.T) {
				s := newSQLBackend(t, db.kind, mode)
				fn(t, s.underTest())
			})
		}
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newSQLBackend makes a lock table with `lock sql init` on database kind and drops it
// at the end.
func newSQLBackend(t *testing.T, kind, mode string) *sqlBackend {
	t.Helper()
	var env, dsnVar string
	for _, db := range sqlDBs {
		if db.kind == kind {
			env, dsnVar = db.env, db.dsnVar
		}
	}
	dsn := testenv.Get(t, env)
	s := &sqlBackend{kind: kind, mode: mode, dsn: dsn, table: "dsctl_cli_" + randSuffix()}
	s.cfg = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(s.cfg, []byte("current_context: t\ncontexts:\n  t:\n    sql:\n      dsn:\n        env: "+dsnVar+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(dsnVar, dsn)
	s.db = rawSQL(t, dsn)
	t.Cleanup(func() { s.drop(s.table) })
	r := dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--table", s.table)
	if r.code != 0 || !strings.Contains(r.out, "result:    created") {
		t.Fatalf("lock sql init: exit %d %q %q", r.code, r.out, r.errOut)
	}
	return s
}

func rawSQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, _, err := endpoint.Dialer{Timeout: 5 * time.Second}.ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue(dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (s *sqlBackend) drop(table string) {
	_, _ = s.db.Exec("DROP TABLE IF EXISTS " + table)
}

func (s *sqlBackend) flags() []string {
	return []string{"--config", s.cfg, "--backend", s.kind, "--mode", s.mode, "--table", s.table}
}

func (s *sqlBackend) underTest() backendUnderTest {
	return backendUnderTest{name: s.kind + "-" + s.mode, flags: s.flags(), detached: s.mode == "lease", held: s.held, sql: s}
}

// held lists what holds name in the database itself: a live lease row (lease mode),
// or the session lock (session mode; and a live row whose session lock is gone).
func (s *sqlBackend) held(t *testing.T, name string) []string {
	t.Helper()
	now := "clock_timestamp()"
	q := "SELECT count(*) FROM " + s.table + " WHERE name = $1 AND token IS NOT NULL AND expires_at > "
	if s.kind == "mysql" {
		now = "UTC_TIMESTAMP(6)"
		q = strings.Replace(q, "$1", "?", 1)
	}
	var rows int
	if err := s.db.QueryRow(q+now, name).Scan(&rows); err != nil {
		t.Fatalf("read the lock row: %v", err)
	}
	var out []string
	session := false
	if s.mode == "session" {
		if s.kind == "mysql" {
			var id sql.NullInt64
			if err := s.db.QueryRow("SELECT IS_USED_LOCK(?)", sqllock.UserLockName(name)).Scan(&id); err != nil {
				t.Fatal(err)
			}
			session = id.Valid
		} else {
			key := uint64(sqllock.AdvisoryKey(name))
			if err := s.db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND classid = $1::bigint::oid AND objid = $2::bigint::oid)`, int64(key>>32), int64(uint32(key))).Scan(&session); err != nil {
				t.Fatal(err)
			}
		}
		if session {
			out = append(out, "session lock "+name)
		}
	}
	if rows > 0 && !session {
		out = append(out, s.table+"["+name+"]")
	}
	return out
}

// rowExists reports whether name has a row at all (held or not).
func (s *sqlBackend) rowExists(t *testing.T, table, name string) bool {
	t.Helper()
	q := "SELECT count(*) FROM " + table + " WHERE name = $1"
	if s.kind == "mysql" {
		q = strings.Replace(q, "$1", "?", 1)
	}
	var n int
	if err := s.db.QueryRow(q, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// Every lock command, on a table that does not exist: exit 2, naming the table and
// `lock sql init`; nothing is created.
func TestSQLMissingTableSaysLockSQLInit(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "lease")
			missing := "dsctl_cli_nosuch_" + randSuffix()
			for _, args := range [][]string{
				{"lock", "acquire", "x"},
				{"lock", "run", "x", "--", "true"},
				{"lock", "inspect", "x"},
				{"lock", "list"},
				{"lock", "release", "x", "--token", "abc"},
				{"lock", "renew", "x", "--token", "abc"},
				{"lock", "break", "x", "--force"},
				{"lock", "bench", "--ops", "10", "--clients", "2"},
				{"lock", "verify", "--duration", "2s", "--ttl", "300ms"},
				{"lock", "acquire", "x", "--mode", "session"},
			} {
				full := append(append(append([]string{}, args[:2]...), "--config", s.cfg, "--backend", db.kind, "--table", missing), args[2:]...)
				if args[1] == "run" {
					full = append(append(append([]string{}, args[:3]...), "--config", s.cfg, "--backend", db.kind, "--table", missing), args[3:]...)
				}
				r := dsctl(t, nil, full...)
				if r.code != 2 || !strings.Contains(r.errOut, "the lock table "+missing+" does not exist") ||
					!strings.Contains(r.errOut, "dsctl lock sql init --table "+missing) {
					t.Errorf("%v: exit %d %q", args, r.code, r.errOut)
				}
			}
			var n int
			q := "SELECT count(*) FROM information_schema.tables WHERE table_name = '" + missing + "'"
			if err := s.db.QueryRow(q).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the missing table was created (%d, %v)", n, err)
			}
		})
	}
}

// `lock sql init`: --print writes the DDL without connecting (the database from
// --backend or the DSN); init is idempotent; a table of the wrong shape is refused
// naming the missing columns and left alone.
func TestSQLInit(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--backend", "postgres"}, []string{`CREATE TABLE IF NOT EXISTS "dsctl_locks" (`, "fence        BIGINT NOT NULL", "expires_at   TIMESTAMPTZ(6) NOT NULL"}},
		{[]string{"--backend", "mysql", "--table", "ops.locks"}, []string{"CREATE TABLE IF NOT EXISTS `ops`.`locks` (", "ENGINE=InnoDB"}},
		{[]string{"--backend", "mysql", "--format", "shedlock"}, []string{"CREATE TABLE IF NOT EXISTS `shedlock` (", "lock_until TIMESTAMP(3)"}},
	} {
		// No DSN and an unreachable everything: --print must not connect.
		r := dsctl(t, map[string]string{"DSCTL_REDIS": "127.0.0.1:1"}, append([]string{"lock", "sql", "init", "--print"}, c.args...)...)
		for _, w := range c.want {
			if r.code != 0 || !strings.Contains(r.out, w) || r.errOut != "" {
				t.Errorf("init --print %v: exit %d, want %q in\n%s%s", c.args, r.code, w, r.out, r.errOut)
			}
		}
	}
	r := dsctl(t, nil, "lock", "sql", "init", "--print", "--backend", "pg", "--table", "ops.locks", "-o", "json")
	var ddl map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &ddl) != nil || ddl["driver"] != "postgres" || ddl["table"] != "ops.locks" ||
		ddl["format"] != "dsctl" || !strings.Contains(fmt.Sprint(ddl["ddl"]), `"ops"."locks"`) {
		t.Fatalf("--print -o json: exit %d %q %q", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "lock", "sql", "init", "--print")
	if r.code != 2 || !strings.Contains(r.errOut, "say which database: --backend mysql or --backend postgres") {
		t.Fatalf("--print without a database: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "sql", "init")
	if r.code != 2 || !strings.Contains(r.errOut, "no database configured") || !strings.Contains(r.errOut, "DSCTL_SQL_DSN") {
		t.Fatalf("init without a DSN: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "sql", "init", "--print", "--backend", "redis")
	if r.code != 2 {
		t.Fatalf("--print --backend redis: exit %d %q", r.code, r.errOut)
	}
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "lease") // created once by newSQLBackend
			r := dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--table", s.table, "-o", "json")
			var res map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &res) != nil || res["created"] != false || res["driver"] != db.kind || res["table"] != s.table {
				t.Fatalf("second init: exit %d %q %q", r.code, r.out, r.errOut)
			}
			r = dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--table", s.table)
			if r.code != 0 || !strings.Contains(r.out, "already there") {
				t.Fatalf("second init (table): exit %d %q", r.code, r.out)
			}
			// With the DSN in the context, --print uses its database without connecting.
			r = dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--print", "--table", "x")
			if r.code != 0 || !strings.Contains(r.out, "CREATE TABLE IF NOT EXISTS") || (db.kind == "mysql") != strings.Contains(r.out, "ENGINE=InnoDB") {
				t.Fatalf("--print from the DSN: exit %d %q", r.code, r.out)
			}
			other := map[string]string{"mysql": "postgres", "postgres": "mysql"}[db.kind]
			r = dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--backend", other)
			if r.code != 2 || !strings.Contains(r.errOut, "--backend "+other+", but the DSN in the context's sql.dsn") {
				t.Fatalf("--backend %s with a %s DSN: exit %d %q", other, db.kind, r.code, r.errOut)
			}
			// A table of the wrong shape is refused and left alone.
			odd := "dsctl_cli_odd_" + randSuffix()
			t.Cleanup(func() { s.drop(odd) })
			if _, err := s.db.Exec("CREATE TABLE " + odd + " (name VARCHAR(64) PRIMARY KEY, payload TEXT)"); err != nil {
				t.Fatal(err)
			}
			r = dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--table", odd)
			if r.code != 2 || !strings.Contains(r.errOut, "missing token, owner, fence") {
				t.Fatalf("init on a misshapen table: exit %d %q", r.code, r.errOut)
			}
			var cols int
			if err := s.db.QueryRow("SELECT count(*) FROM information_schema.columns WHERE table_name = '" + odd + "'").Scan(&cols); err != nil || cols != 2 {
				t.Fatalf("the misshapen table was changed: %d columns, %v", cols, err)
			}
		})
	}
}

// dsnWithAddrPass is dsn with another address and/or password.
func dsnWithAddrPass(t *testing.T, dsn, addr, pass string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if addr != "" {
			u.Host = addr
		}
		u.User = url.UserPassword(u.User.Username(), pass)
		return u.String()
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if addr != "" {
		cfg.Addr = addr
	}
	cfg.Passwd = pass
	return cfg.FormatDSN()
}

// A DSN nobody answers at: exit 6 naming host:port, never the password.
func TestSQLWrongDSNExit6(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			dsn := dsnWithAddrPass(t, testenv.Get(t, db.env), "127.0.0.1:1", "pw-S3cret-6")
			for _, args := range [][]string{
				{"lock", "acquire", "x"},
				{"lock", "run", "x", "--", "true"},
				{"lock", "inspect", "x", "-v"},
				{"lock", "sql", "init"},
				{"lock", "verify", "--duration", "2s", "--ttl", "300ms"},
			} {
				r := dsctl(t, map[string]string{"DSCTL_SQL_DSN": dsn}, append(args, "--timeout", "1s")...)
				if r.code != 6 || !strings.Contains(r.errOut, "127.0.0.1:1") || strings.Contains(r.out+r.errOut, "pw-S3cret-6") {
					t.Errorf("%v: exit %d %q", args, r.code, r.errOut)
				}
			}
		})
	}
}

// The DSN's password never appears: not in output, errors, -v, JSON, nor in the
// environment of `lock run`'s child (DSCTL_SQL_DSN and the context's DSN variable are
// dropped). -v shows host and user.
func TestSQLPasswordNeverPrinted(t *testing.T) {
	const secret = "pw-S3cret-never"
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "lease")
			good := s.dsn
			if db.kind == "postgres" { // trust authentication here: any password is accepted
				good = dsnWithAddrPass(t, s.dsn, "", secret)
			}
			t.Setenv("DSCTL_SQL_DSN", good) // the child of lock run would inherit it
			env := map[string]string{"DSCTL_SQL_DSN": good}
			var all strings.Builder
			check := func(r result, code int, args []string) {
				t.Helper()
				all.WriteString(r.out + r.errOut)
				if r.code != code {
					t.Errorf("%v: exit %d, want %d: %q %q", args, r.code, code, r.out, r.errOut)
				}
			}
			for _, c := range []struct {
				args []string
				code int
			}{
				{[]string{"lock", "acquire", "pw", "--table", s.table, "-v", "-o", "json"}, 0},
				{[]string{"lock", "inspect", "pw", "--table", s.table, "-v", "-o", "yaml"}, 0},
				{[]string{"lock", "acquire", "pw", "--table", s.table, "-v"}, 3},
				{[]string{"lock", "run", "pw2", "--table", s.table, "-v", "--", "sh", "-c", "env; exit 5"}, 5},
				{[]string{"lock", "list", "--table", s.table, "-v"}, 0},
				{[]string{"lock", "acquire", "pw", "--table", "nosuch_" + randSuffix(), "-v"}, 2},
				{[]string{"lock", "sql", "init", "--table", s.table, "-v", "-o", "json"}, 0},
				{[]string{"lock", "bench", "--table", s.table, "--ops", "10", "--clients", "2", "-v"}, 0},
			} {
				r := dsctl(t, env, c.args...)
				check(r, c.code, c.args)
				if c.args[1] == "run" && (strings.Contains(r.out, "DSCTL_SQL_DSN") || !strings.Contains(r.out, "PATH=")) {
					t.Errorf("lock run's child got DSCTL_SQL_DSN, or lost its environment:\n%s", r.out)
				}
				if c.args[1] == "acquire" && c.code == 0 {
					user := "root"
					if db.kind == "postgres" {
						user = "postgres"
					}
					if !strings.Contains(r.errOut, "as user "+user+" (DSN from DSCTL_SQL_DSN)") || !strings.Contains(r.errOut, "127.0.0.1:") {
						t.Errorf("-v does not show host and user: %q", r.errOut)
					}
				}
			}
			// The DSN from the context's variable: the child does not get that variable.
			r0 := dsctl(t, nil, "lock", "run", "pw3", "--config", s.cfg, "--table", s.table, "--", "sh", "-c", "env")
			if r0.code != 0 || !strings.Contains(r0.out, "PATH=") || strings.Contains(r0.out, sqlDSNVar(db.kind)+"=") {
				t.Errorf("lock run's child got the context's DSN variable %s: exit %d", sqlDSNVar(db.kind), r0.code)
			}
			// Another database's kind, and a wrong password (MySQL refuses it).
			other := map[string]string{"mysql": "postgres", "postgres": "mysql"}[db.kind]
			r := dsctl(t, env, "lock", "acquire", "pw", "--backend", other, "-v")
			check(r, 2, []string{"--backend", other})
			if db.kind == "mysql" {
				bad := dsnWithAddrPass(t, s.dsn, "", secret)
				r = dsctl(t, map[string]string{"DSCTL_SQL_DSN": bad}, "lock", "acquire", "pw", "--table", s.table, "-v")
				all.WriteString(r.out + r.errOut)
				if r.code == 0 || !strings.Contains(r.errOut, "Access denied") {
					t.Errorf("wrong password: exit %d %q", r.code, r.errOut)
				}
			}
			if strings.Contains(all.String(), secret) {
				t.Fatalf("the DSN's password was printed:\n%s", all.String())
			}
			if db.kind == "postgres" && !strings.Contains(all.String(), "pw2") {
				t.Fatal("no output was checked")
			}
		})
	}
}

// `lock verify` on both databases (lease mode, all faults; and MySQL session mode
// without resets, which end a session lock by design), through per-worker fault
// proxies in front of the DSN's address; the throwaway lock's row is purged.
func TestVerifyOnSQL(t *testing.T) {
	for _, c := range []struct{ kind, mode, faults, duration string }{
		{"mysql", "lease", "all", "5s"},
		{"postgres", "lease", "all", "5s"},
		{"mysql", "session", "latency,blackhole,pause", "3s"},
	} {
		db := c
		t.Run(c.kind+"-"+c.mode, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, db.mode)
			r := dsctl(t, nil, "lock", "verify", "--config", s.cfg, "--backend", db.kind, "--mode", db.mode, "--table", s.table, "--faults", db.faults,
				"--workers", "4", "--duration", db.duration, "--ttl", "400ms", "--timeout", "1s", "-o", "json")
			v := parseVerify(t, r.out)
			checkVerdict(t, v, r.code, r.errOut)
			if !v.Safe {
				t.Fatalf("the %s lock failed lock verify: %s", db.kind, r.out)
			}
			injected := 0
			for _, n := range v.FaultsInjected {
				injected += n
			}
			if v.Backend.Kind != db.kind || !v.FencingChecked || v.Counts["sections"] < 3 || injected == 0 {
				t.Fatalf("verify: %s", r.out)
			}
			if s.rowExists(t, s.table, v.LockName) {
				t.Fatalf("verify left the row of %s behind", v.LockName)
			}
		})
	}
}

// `lock bench` says how waiters wait: NOTIFY on PostgreSQL, backoff on MySQL lease
// rows, GET_LOCK in session mode; the throwaway row is purged.
func TestBenchOnSQLStatesTheWaitMethod(t *testing.T) {
	for _, c := range []struct{ kind, mode, want string }{
		{"postgres", "lease", "LISTEN/NOTIFY"},
		{"mysql", "lease", "capped exponential backoff with full jitter"},
		{"mysql", "session", "waits inside GET_LOCK"},
	} {
		t.Run(c.kind+"-"+c.mode, func(t *testing.T) {
			s := newSQLBackend(t, c.kind, c.mode)
			r := dsctl(t, nil, "lock", "bench", "--config", s.cfg, "--backend", c.kind, "--mode", c.mode, "--table", s.table,
				"--clients", "3", "--ops", "45", "-o", "json")
			var res map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &res) != nil || res["ok"] != true || res["ops"] != 45.0 ||
				res["fencing_checked"] != true || !strings.Contains(fmt.Sprint(res["wait_method"]), c.want) {
				t.Fatalf("bench: exit %d %q %q", r.code, r.out, r.errOut)
			}
			r = dsctl(t, nil, "lock", "bench", "--config", s.cfg, "--backend", c.kind, "--mode", c.mode, "--table", s.table, "--clients", "2", "--ops", "10")
			if r.code != 0 || !strings.Contains(r.out, "wait method:") || !strings.Contains(r.out, c.want) {
				t.Fatalf("bench table: exit %d %q", r.code, r.out)
			}
			var left int
			if err := s.db.QueryRow("SELECT count(*) FROM " + s.table).Scan(&left); err != nil || left != 0 {
				t.Fatalf("bench left %d rows behind (%v)", left, err)
			}
		})
	}
}

// --format shedlock takes and releases locks in an existing ShedLock table; inspect
// --table shows a row a ShedLock service wrote.
func TestShedLockFormatAcquireReleaseAndInspectAForeignRow(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "lease")
			shed := "dsctl_cli_shed_" + randSuffix()
			t.Cleanup(func() { s.drop(shed) })
			r := dsctl(t, nil, "lock", "sql", "init", "--config", s.cfg, "--format", "shedlock", "--table", shed)
			if r.code != 0 || !strings.Contains(r.out, "created") {
				t.Fatalf("init --format shedlock: exit %d %q %q", r.code, r.out, r.errOut)
			}
			flags := []string{"--config", s.cfg, "--format", "shedlock", "--table", shed}
			r = dsctl(t, nil, append([]string{"lock", "acquire", "report", "--ttl", "1m", "-o", "json"}, flags...)...)
			var lease map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &lease) != nil || lease["token"] == "" || lease["fencing_safe"] != false {
				t.Fatalf("acquire --format shedlock: exit %d %q %q", r.code, r.out, r.errOut)
			}
			if !strings.Contains(r.errOut, "no fencing counter") {
				t.Errorf("no warning that ShedLock leases carry no fence: %q", r.errOut)
			}
			token := lease["token"].(string)
			var lockedBy string
			q := "SELECT locked_by FROM " + shed + " WHERE name = $1 AND lock_until > now()"
			if db.kind == "mysql" {
				q = "SELECT locked_by FROM " + shed + " WHERE name = ? AND lock_until > CURRENT_TIMESTAMP(3)"
			}
			if err := s.db.QueryRow(q, "report").Scan(&lockedBy); err != nil || lockedBy == "" {
				t.Fatalf("no live ShedLock row after acquire: %q %v", lockedBy, err)
			}
			r = dsctl(t, nil, append([]string{"lock", "acquire", "report"}, flags...)...)
			if r.code != 3 {
				t.Fatalf("second acquire: exit %d %q", r.code, r.errOut)
			}
			r = dsctl(t, nil, append([]string{"lock", "release", "report", "--token", token}, flags...)...)
			if r.code != 0 {
				t.Fatalf("release: exit %d %q", r.code, r.errOut)
			}
			if err := s.db.QueryRow(q, "report").Scan(&lockedBy); err != sql.ErrNoRows {
				t.Fatalf("still held after release: %q %v", lockedBy, err)
			}
			// A row written by a ShedLock service.
			ins := "INSERT INTO " + shed + " (name, lock_until, locked_at, locked_by) VALUES ($1, now() + interval '1 hour', now(), $2)"
			if db.kind == "mysql" {
				ins = "INSERT INTO " + shed + " (name, lock_until, locked_at, locked_by) VALUES (?, CURRENT_TIMESTAMP(3) + INTERVAL 1 HOUR, CURRENT_TIMESTAMP(3), ?)"
			}
			if _, err := s.db.Exec(ins, "spring-job", "spring-host-7"); err != nil {
				t.Fatal(err)
			}
			r = dsctl(t, nil, "lock", "inspect", "spring-job", "--config", s.cfg, "--table", shed, "-o", "json")
			var info map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil || info["held"] != true || info["format"] != "shedlock" ||
				!strings.Contains(r.out, "spring-host-7") {
				t.Fatalf("inspect --table %s: exit %d %q %q", shed, r.code, r.out, r.errOut)
			}
			r = dsctl(t, nil, "lock", "inspect", "spring-job", "--config", s.cfg, "--table", shed)
			if r.code != 0 || !regexp.MustCompile(`(?m)^state: +held$`).MatchString(r.out) || !strings.Contains(r.out, "spring-host-7") {
				t.Fatalf("inspect table: %q", r.out)
			}
			// dsctl cannot take what the service holds.
			r = dsctl(t, nil, append([]string{"lock", "acquire", "spring-job"}, flags...)...)
			if r.code != 3 || !strings.Contains(r.errOut, "spring-host-7") {
				t.Fatalf("acquire of the service's lock: exit %d %q", r.code, r.errOut)
			}
		})
	}
}

// SQL session mode: `lock acquire` holds in the foreground (like ZooKeeper) and says
// it lives with the database connection; --detach is refused.
func TestSQLSessionAcquireHoldsInTheForeground(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "session")
			b := s.underTest()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := background(ctx, t, nil, b.args("lock", "acquire", "fg", "-o", "env")...)
			waitHeld(t, b, "fg")
			time.Sleep(200 * time.Millisecond)
			select {
			case r := <-done:
				t.Fatalf("acquire returned while it should hold: exit %d %q", r.code, r.errOut)
			default:
			}
			if got := b.held(t, "fg"); len(got) != 1 || !strings.HasPrefix(got[0], "session lock") {
				t.Fatalf("held: %v", got)
			}
			cancel()
			r := await(t, done, 10*time.Second)
			if r.code != 0 || !strings.Contains(r.out, "export DSCTL_LOCK_FENCE=") ||
				!strings.Contains(r.errOut, "a "+db.kind+" session-mode lease lives as long as this process's database connection") ||
				!strings.Contains(r.errOut, "released (interrupted") {
				t.Fatalf("acquire after ctrl-C: exit %d\n%s%s", r.code, r.out, r.errOut)
			}
			if left := b.held(t, "fg"); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
			r = dsctl(t, nil, b.args("lock", "acquire", "fg", "--detach")...)
			if r.code != 2 || !strings.Contains(r.errOut, "session-mode lease cannot outlive this process") || !strings.Contains(r.errOut, "--mode lease") {
				t.Fatalf("--detach in session mode: exit %d %q", r.code, r.errOut)
			}
			// Lease mode returns at once (the row outlives dsctl); --detach is accepted.
			r = dsctl(t, nil, "lock", "acquire", "bg", "--config", s.cfg, "--table", s.table, "--detach", "-o", "json")
			if r.code != 0 || !strings.Contains(r.out, `"detached": true`) || !s.rowExists(t, s.table, "bg") {
				t.Fatalf("lease acquire --detach: exit %d %q %q", r.code, r.out, r.errOut)
			}
		})
	}
}

func sqlDSNVar(kind string) string {
	for _, db := range sqlDBs {
		if db.kind == kind {
			return db.dsnVar
		}
	}
	return ""
}

// SQL session mode: a holder connection killed server-side (KILL /
// pg_terminate_backend) is a lost lock: `lock run` stops its child and exits 4.
func TestSQLSessionRunStopsTheChildWhenTheConnectionIsKilled(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "session")
			b := s.underTest()
			// Kill the connection once the child runs: before that, the kill could land
			// between the server's commit of the grant and dsctl reading its reply, a
			// failed acquire (exit 6), not a lost lock.
			started := filepath.Join(t.TempDir(), "started")
			done := background(context.Background(), t, nil, b.args("lock", "run", "killed", "--ttl", "3s", "--", "sh", "-c", `: > "$0"; exec sleep 30`, started)...)
			waitFor(t, "the child to start", 10*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
			q := "SELECT session_id FROM " + s.table + " WHERE name = $1"
			kill := "SELECT pg_terminate_backend($1::int)"
			if db.kind == "mysql" {
				q, kill = strings.Replace(q, "$1", "?", 1), "KILL ?"
			}
			var sid int64
			if err := s.db.QueryRow(q, "killed").Scan(&sid); err != nil || sid == 0 {
				t.Fatalf("the holder's session: %d %v", sid, err)
			}
			if _, err := s.db.Exec(kill, sid); err != nil {
				t.Fatalf("kill session %d: %v", sid, err)
			}
			r := await(t, done, 15*time.Second)
			if r.code != 4 || !strings.Contains(r.errOut, `lock "killed" lost at`) || !strings.Contains(r.errOut, "SIGTERM") {
				t.Fatalf("connection killed under lock run: exit %d %q", r.code, r.errOut)
			}
			// The row keeps its lease until its TTL (the next dsctl holder waits for it,
			// so a child that ran on cannot overlap it), then nothing is left.
			waitFor(t, "the killed holder's row to expire", 6*time.Second, func() bool { return len(b.held(t, "killed")) == 0 })
		})
	}
}

// inspect and list --table read a classic unique-key table (insert to take, delete to
// release), and inspect in session mode names another program's session lock.
func TestSQLInspectUniqueKeyTableAndForeignSessionLock(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "session")
			mk := "dsctl_cli_mlock_" + randSuffix()
			t.Cleanup(func() { s.drop(mk) })
			if _, err := s.db.Exec("CREATE TABLE " + mk + " (id INT PRIMARY KEY, method_name VARCHAR(64) NOT NULL UNIQUE, created TIMESTAMP NULL)"); err != nil {
				t.Fatal(err)
			}
			ins := "INSERT INTO " + mk + " (id, method_name) VALUES (1, $1)"
			if db.kind == "mysql" {
				ins = strings.Replace(ins, "$1", "?", 1)
			}
			if _, err := s.db.Exec(ins, "billing.run"); err != nil {
				t.Fatal(err)
			}
			r := dsctl(t, nil, "lock", "inspect", "billing.run", "--config", s.cfg, "--table", mk, "--format", "unique-key", "-o", "json")
			var info map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil || info["held"] != true || info["format"] != "unique-key" {
				t.Fatalf("inspect a unique-key row: exit %d %q %q", r.code, r.out, r.errOut)
			}
			r = dsctl(t, nil, "lock", "list", "--config", s.cfg, "--table", mk, "--format", "unique-key", "-o", "json")
			var rows []map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.out), &rows) != nil || len(rows) != 1 || rows[0]["name"] != "billing.run" {
				t.Fatalf("list a unique-key table: exit %d %q %q", r.code, r.out, r.errOut)
			}
			// Another program holds the session lock dsctl would take.
			conn, err := s.db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			take := "SELECT pg_advisory_lock($1)"
			var key any = sqllock.AdvisoryKey("shared-job")
			if db.kind == "mysql" {
				take, key = "SELECT GET_LOCK(?, 1)", sqllock.UserLockName("shared-job")
			}
			if _, err := conn.ExecContext(context.Background(), take, key); err != nil {
				t.Fatal(err)
			}
			r = dsctl(t, nil, s.underTest().args("lock", "inspect", "shared-job", "-o", "json")...)
			want := map[string]string{"mysql": "mysql-user-lock", "postgres": "pg-advisory"}[db.kind]
			if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil || info["held"] != true || info["format"] != want {
				t.Fatalf("inspect another program's session lock: exit %d %q %q", r.code, r.out, r.errOut)
			}
			r = dsctl(t, nil, s.underTest().args("lock", "acquire", "shared-job")...)
			if r.code != 3 {
				t.Fatalf("acquire while another program holds the session lock: exit %d %q", r.code, r.errOut)
			}
		})
	}
}

// lock verify --processes on SQL: the real binary re-executes itself as workers, each
// making its Locker from the backend description on its stdin (the DSN as a reference
// to the context's variable, or DSCTL_SQL_DSN from its own environment: never in argv
// nor in the description).
func TestVerifyProcessesOnSQL(t *testing.T) {
	for _, db := range sqlDBs {
		t.Run(db.kind, func(t *testing.T) {
			s := newSQLBackend(t, db.kind, "lease")
			for _, via := range []string{"context", "env"} {
				args := []string{"lock", "verify", "--processes", "--backend", db.kind, "--table", s.table, "--workers", "2", "--duration", "2s",
					"--ttl", "300ms", "--timeout", "1s", "--faults", "pause,latency", "-o", "json"}
				var env []string
				if via == "context" {
					args = append(args, "--config", s.cfg)
				} else {
					env = []string{"DSCTL_SQL_DSN=" + s.dsn, "DSCTL_CONFIG=" + filepath.Join(t.TempDir(), "none.yaml")}
				}
				p := start(t, env, args...)
				code := p.wait(t, time.Minute)
				v := parseVerify(t, p.stdout.String())
				checkVerdict(t, v, code, p.stderr.String())
				if !v.Safe || !v.Processes || v.Backend.Kind != db.kind || v.Counts["acquire_ok"] < 2 {
					t.Fatalf("%s: json: %s\nstderr: %s", via, p.stdout, p.stderr)
				}
			}
		})
	}
}
