// Package sqllock is the MySQL/MariaDB and PostgreSQL backend of dsctl's lock contract
// (package lock). It offers the two recipes teams already use on a database, without
// their usual failures:
//
// # Lease rows (Mode lease, the default)
//
// One row per lock name in a table (dsctl_locks by default, created by Init or
// `dsctl lock sql init`): name (primary key), holder token, owner (JSON), fencing
// counter, ttl, acquired_at, expires_at, and the record of the last break. Acquire is
// one statement that inserts the row, or takes over a row that is free or whose lease
// has expired by the DATABASE's clock (never the client's); every grant increments the
// fencing counter, so rows are reused and never pile up (one row per name ever used:
// the counter must survive releases). Release and Renew compare the token. A lease
// outlives the process that took it (Backend.Detached), like a Redis key.
//
//   - PostgreSQL: INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the row is free or
//     expired by clock_timestamp() RETURNING fence. Release sends pg_notify on the
//     table's channel in the same statement; waiters LISTEN and retry when told (and
//     at the latest when the holder's lease runs out).
//   - MySQL/MariaDB: INSERT ... ON DUPLICATE KEY UPDATE that assigns every column only
//     when the OLD row is free or expired by UTC_TIMESTAMP(6), in an order that decides
//     the same whether assignments see each other (MySQL) or not (MariaDB's sql_mode
//     SIMULTANEOUS_ASSIGNMENT). The outcome and the new fence come back in the OK
//     packet through LAST_INSERT_ID(expr) (0: held by someone else), never from "rows
//     affected" (which a DSN's clientFoundRows=true would change; dsctl also turns it
//     off), so an uncontended acquire is one round trip. Waiters retry with capped
//     exponential backoff and full jitter, never past the holder's expiry.
//
// The table must have a primary or unique key on exactly (name) and the time column
// types of dsctl's DDL (DATETIME(6) on MySQL, timestamptz on PostgreSQL): New checks
// once, and Acquire refuses a table without them (MySQL would otherwise insert a row
// per acquire and grant them all).
//
// # Session locks (Mode session)
//
// The lock is a server-side session lock held by one dedicated connection:
// GET_LOCK(name, timeout) on MySQL/MariaDB (user-lock names longer than 64 characters
// are replaced by "dsctl-" + the first 58 hex digits of their SHA-256), and
// pg_try_advisory_lock(key) on PostgreSQL, with key = the first 8 bytes (big-endian,
// as a signed int64) of SHA-256("dsctl:" + name). The database frees it when the
// connection ends (process killed, connection killed server-side, restart). The
// fencing token, owner and lease live in the same table's row, stamped on that
// connection right after the grant. As on ZooKeeper, the TTL is enforced by the holder
// (a lease not renewed within its TTL is given up), and also by the server: the
// holder's connection gets wait_timeout = ceil(TTL) (MySQL) or idle_session_timeout =
// TTL (PostgreSQL 14+), so a stopped holder's connection is ended, and its lock freed,
// once it has been silent for a TTL. Renew is a statement on that connection: a killed
// connection is reported as a lost lock (exit 4 under `lock run`). A connection that
// ended frees the session lock at once, but its holder may not know yet: the next
// dsctl holder keeps the session lock and waits for the row's lease to expire (by the
// database clock) before it takes the row, so two dsctl clients never believe they
// hold the lock at once. Leases do not outlive the process; Close frees them. Renew
// also checks the row's expiry by the database clock, so an expired lease is never
// renewed. Session mode needs one server session per client connection: behind a
// transaction-pooling proxy (PgBouncer pool_mode=transaction) the PostgreSQL grant
// sees two backends and is refused (MySQL proxies that multiplex connections are not
// detected; ProxySQL stops multiplexing a connection that called GET_LOCK). Break ends
// the holder's connection only while it still holds the session lock (on PostgreSQL
// checked in the same statement: backend pids are reused), whatever the breaking
// Locker's mode.
//
// # Other formats
//
// Format shedlock takes and releases locks in an existing ShedLock table
// (shedlock(name, lock_until, locked_at, locked_by)) with ShedLock's semantics, so a
// shell job and a service scheduled with ShedLock exclude each other (see shedlock.go
// for how ownership is proved without a token column, and why there is no fence).
// Format unique-key reads the classic unique-key table (method_lock) for Inspect, List
// and Break; it is never inferred from a table's shape (a users table with a unique
// email column looks the same), and Break deletes such a row only with Raw or IfToken.
// Inspect and List also report the holders of PostgreSQL advisory locks and MySQL
// user locks.
package sqllock

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Mode is how a lock is held: a lease row, or a session lock on a connection.
type Mode string

// Modes.
const (
	ModeLease   Mode = "lease"
	ModeSession Mode = "session"
)

// Formats of SQL locks sqllock knows.
const (
	// FormatShedLock is a ShedLock table: name, lock_until, locked_at, locked_by.
	FormatShedLock lock.Format = "shedlock"
	// FormatUniqueKey is the classic "insert a row to take, delete it to release"
	// table (method_lock(method_name unique, ...)): no expiry, no owner, no fence.
	FormatUniqueKey lock.Format = "unique-key"
	// FormatPGAdvisory is a PostgreSQL advisory lock (pg_advisory_lock).
	FormatPGAdvisory lock.Format = "pg-advisory"
	// FormatMySQLUserLock is a MySQL/MariaDB user lock (GET_LOCK).
	FormatMySQLUserLock lock.Format = "mysql-user-lock"
)

// DescribeFormat says in a few words what a format is (lock.Format.Describe for the
// formats of this package).
func DescribeFormat(f lock.Format) string {
	switch f {
	case FormatShedLock:
		return "ShedLock row (lock_until, locked_at, locked_by; no token column, no fencing counter)"
	case FormatUniqueKey:
		return "unique-key row (inserted to take, deleted to release; no expiry, no owner, no fencing counter)"
	case FormatPGAdvisory:
		return "PostgreSQL advisory lock (held while the holder's connection lives)"
	case FormatMySQLUserLock:
		return "MySQL user lock, GET_LOCK (held while the holder's connection lives)"
	case lock.FormatDsctl:
		return "dsctl lease row (token, owner, fencing counter, database-clock expiry)"
	}
	return f.Describe()
}

// DefaultTable is where dsctl keeps its lease rows.
const DefaultTable = "dsctl_locks"

// DefaultShedLockTable is ShedLock's default table name.
const DefaultShedLockTable = "shedlock"

// Options say how locks are kept.
type Options struct {
	// Mode is lease (default) or session.
	Mode Mode
	// Table is the lock table: DefaultTable for Format dsctl, DefaultShedLockTable for
	// Format shedlock; "schema.table" is accepted. Inspect and List recognise the
	// table's format by its columns (dsctl, ShedLock, unique-key).
	Table string
	// Format is lock.FormatDsctl (default), FormatShedLock (acquire and release in
	// an existing ShedLock table; lease mode only) or FormatUniqueKey (inspect, list and
	// break a classic unique-key lock table; never inferred, since any table with a
	// unique text column looks like one).
	Format lock.Format
	// Now is the client's clock (time.Now when nil). Only local deadlines use it:
	// expiry is decided by the database's clock. Tests fake it.
	Now func() time.Time
	// Host names this machine in ShedLock's locked_by (os.Hostname when empty).
	Host string
}

// Locker implements lock.Locker on one database.
type Locker struct {
	db      *sql.DB
	target  endpoint.SQLTarget
	dialer  endpoint.Dialer
	dialect dialect
	mode    Mode
	format  lock.Format
	table   string // as given (validated)
	qtable  string // quoted for SQL
	channel string // PostgreSQL NOTIFY channel
	now     func() time.Time
	host    string
	timeout time.Duration
	backend lock.Backend

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	statements    atomic.Int64 // statements sent (tests count round trips)
	notifications atomic.Int64 // NOTIFY messages received by waiters
	shedTZ        atomic.Bool  // PostgreSQL ShedLock table with timestamptz lock_until
	utcSession    atomic.Bool  // MySQL ShedLock: run statements after SET time_zone = '+00:00'

	shapeDone bool           // the table was checked (shapeOK)
	shapeErr  error          // and what was wrong with it
	pending   sync.WaitGroup // background releases Close waits for (added under mu while !closed)

	mu          sync.Mutex
	held        map[string]*sessionLease // session mode: by token
	gone        map[string]bool          // session mode: tokens given up
	closed      bool
	tinfo       *tableInfo // recognised table format, cached briefly
	shedChecked bool       // shedInit done
	tinfoAt     time.Time
}

var _ lock.Locker = (*Locker)(nil)

// New connects to the database (one ping, within the dialer's timeout), reads the
// table's shape (columns, key on name, types; Acquire refuses a misshapen table) and
// returns a Locker. It does not create the table: Init does, and every other call
// reports a missing or misshapen table with the next step.
func New(ctx context.Context, d endpoint.Dialer, ep endpoint.SQL, opt Options) (*Locker, error) {
	mode := opt.Mode
	switch mode {
	case "":
		mode = ModeLease
	case ModeLease, ModeSession:
	default:
		return nil, errs.Usage("unknown --mode %q", string(opt.Mode)).WithHint("use lease (rows with a database-clock expiry) or session (GET_LOCK / pg_advisory_lock held by a connection)")
	}
	format := opt.Format
	switch format {
	case "", lock.FormatDsctl:
		format = lock.FormatDsctl
	case FormatShedLock:
		if mode == ModeSession {
			return nil, errs.Usage("--format shedlock works with --mode lease only").WithHint("ShedLock tables are lease rows (lock_until); drop --mode session")
		}
	case FormatUniqueKey:
		if mode == ModeSession {
			return nil, errs.Usage("--format unique-key works with --mode lease only").WithHint("a unique-key table is rows; drop --mode session")
		}
	default:
		return nil, errs.Usage("unknown --format %q for SQL locks", string(opt.Format)).WithHint("use dsctl (default), shedlock, or unique-key (inspect, list and break only)")
	}
	table := opt.Table
	if table == "" {
		table = DefaultTable
		if format == FormatShedLock {
			table = DefaultShedLockTable
		}
	}
	if err := ValidateTable(table); err != nil {
		return nil, err
	}
	db, t, err := d.ConnectSQL(ctx, ep)
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(8)
	l := &Locker{db: db, target: t, dialer: d, mode: mode, format: format, table: table, now: opt.Now, host: opt.Host,
		timeout: d.Limit(), stmts: map[string]*sql.Stmt{}, held: map[string]*sessionLease{}, gone: map[string]bool{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.host == "" {
		l.host = lock.CurrentOwner(0, "", "", "").Host
	}
	switch t.Driver {
	case "mysql":
		l.dialect = mysqlDialect{}
	default:
		l.dialect = pgDialect{}
	}
	l.qtable = l.dialect.quoteTable(table)
	l.channel = notifyChannel(table)
	notify := t.Driver == "postgres" || (mode == ModeSession)
	fencing := format == lock.FormatDsctl
	l.backend = lock.Backend{Kind: t.Driver, Mode: string(mode), Endpoints: []string{t.Name},
		FencingSafe: fencing, Notify: notify, Detached: mode == ModeLease, EndsWithConnection: mode == ModeSession}
	switch format {
	case FormatShedLock:
		l.backend.Warnings = append(l.backend.Warnings, "ShedLock tables have no fencing counter: leases carry no fencing token")
	case FormatUniqueKey:
		l.backend.Detached = false
		l.backend.Warnings = append(l.backend.Warnings, "unique-key tables have no expiry, owner nor fencing counter: dsctl only inspects, lists and breaks them")
	}
	// A table that exists must have the shape the acquire statement relies on (a key on
	// name, the time column types): checked once here, so that Acquire stays one
	// statement; the answer is kept for Acquire (Inspect, List and Break still work on
	// other tables). A missing table is left to the statements' errors.
	_ = l.shapeOK(ctx)
	return l, nil
}

// notifyChannel is the PostgreSQL NOTIFY channel of a table: "dsctl_lock:<table>", or
// a hash of the table name when that is longer than PostgreSQL's 63-byte limit.
func notifyChannel(table string) string {
	ch := "dsctl_lock:" + table
	if len(ch) > 63 {
		sum := sha256.Sum256([]byte(table))
		ch = "dsctl_lock:" + hex.EncodeToString(sum[:8])
	}
	return ch
}

// ValidateTable checks a table name: [schema.]table, letters, digits and _, starting
// with a letter or _, at most 63 characters each (PostgreSQL's identifier limit).
func ValidateTable(table string) error {
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return errs.Usage("--table %q: use table or schema.table", table)
	}
	for _, p := range parts {
		if !identRe.MatchString(p) {
			return errs.Usage("--table %q is not a plain table name", table).
				WithHint("use letters, digits and _, starting with a letter (at most 63 characters), optionally schema.table")
		}
	}
	return nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Backend describes the database and what it promises.
func (l *Locker) Backend() lock.Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.backend
	b.Warnings = append([]string(nil), b.Warnings...)
	return b
}

// Mode is lease or session.
func (l *Locker) Mode() Mode { return l.mode }

// Table is the lock table's name.
func (l *Locker) Table() string { return l.table }

// Target names the database (host:port/db, never the DSN).
func (l *Locker) Target() endpoint.SQLTarget { return l.target }

// DB is the connection pool (tests use it).
func (l *Locker) DB() *sql.DB { return l.db }

// Statements is how many SQL statements this Locker has sent.
func (l *Locker) Statements() int64 { return l.statements.Load() }

// Notifications is how many NOTIFY messages this Locker's waiters received.
func (l *Locker) Notifications() int64 { return l.notifications.Load() }

// WaitMethod says how a waiter learns the lock may be free, for `bench` and -v.
func (l *Locker) WaitMethod(s lock.WaitStrategy) string {
	switch {
	case s == lock.WaitPoll:
		return "poll every --poll-interval"
	case l.mode == ModeSession && l.target.Driver == "mysql":
		return "waits inside GET_LOCK (woken by the server on release)"
	case l.target.Driver == "postgres":
		return "LISTEN/NOTIFY on release, retry at the holder's expiry at the latest"
	}
	return fmt.Sprintf("capped exponential backoff with full jitter (%s doubling to %s, never past the holder's expiry)", backoffBase, backoffCap)
}

// Close releases the connections; session-mode leases end with them.
func (l *Locker) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	hs := make([]*sessionLease, 0, len(l.held))
	for _, h := range l.held {
		hs = append(hs, h)
	}
	l.mu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		if !h.gone {
			l.giveUp(h) // frees the row too, so the next holder need not wait for its expiry
		}
		h.mu.Unlock()
	}
	// Background releases of grants nobody uses must reach the database first.
	done := make(chan struct{})
	go func() { l.pending.Wait(); close(done) }()
	t := time.NewTimer(l.timeout)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	l.stmtMu.Lock()
	for _, s := range l.stmts {
		_ = s.Close()
	}
	l.stmts = map[string]*sql.Stmt{}
	l.stmtMu.Unlock()
	return l.db.Close()
}

// newToken is a random 128-bit holder token in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deadline is the conservative local end of a lease whose request was sent at sent.
func deadline(sent time.Time, ttl time.Duration) time.Time {
	return sent.Add(ttl - lock.ClockDrift(ttl))
}
