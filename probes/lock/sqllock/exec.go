package sqllock

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dsctl/dsctl/probes/errs"
)

// queryer is a pool or one dedicated connection.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmt returns the prepared statement for q (prepared once per pool; database/sql
// prepares it again on each connection it runs on, once). Steady state, a statement is
// one round trip: execute.
func (l *Locker) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	l.stmtMu.Lock()
	defer l.stmtMu.Unlock()
	if s, ok := l.stmts[q]; ok {
		return s, nil
	}
	s, err := l.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	l.stmts[q] = s
	return s, nil
}

// bounded is ctx with the dialer's timeout. detached keeps the request going when the
// caller gives up (a statement that may take or free a lock must not be abandoned
// half-way; the caller undoes its effect instead).
func (l *Locker) bounded(ctx context.Context, detached bool) (context.Context, context.CancelFunc) {
	if detached {
		ctx = context.WithoutCancel(ctx)
	}
	return context.WithTimeout(ctx, l.timeout)
}

// onUTC runs f on a pool connection whose session time zone was just set to UTC
// (MySQL ShedLock with a DST session time zone, see shedInit).
func (l *Locker) onUTC(ctx context.Context, f func(c *sql.Conn) error) error {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	l.statements.Add(1)
	if _, err := c.ExecContext(ctx, "SET time_zone = '+00:00'"); err != nil {
		return err
	}
	l.statements.Add(1)
	return f(c)
}

// exec runs a prepared statement on the pool.
func (l *Locker) exec(ctx context.Context, detached bool, what, q string, args ...any) (sql.Result, error) {
	cctx, cancel := l.bounded(ctx, detached)
	defer cancel()
	if l.utcSession.Load() {
		var r sql.Result
		err := l.onUTC(cctx, func(c *sql.Conn) (err error) {
			r, err = c.ExecContext(cctx, q, args...)
			return err
		})
		if err != nil {
			return nil, l.classify(ctx, what, err)
		}
		return r, nil
	}
	s, err := l.stmt(cctx, q)
	if err != nil {
		return nil, l.classify(ctx, what, err)
	}
	l.statements.Add(1)
	r, err := s.ExecContext(cctx, args...)
	if err != nil {
		return nil, l.classify(ctx, what, err)
	}
	return r, nil
}

// queryRow runs a prepared query returning at most one row and scans it; found is
// false when there was no row.
func (l *Locker) queryRow(ctx context.Context, detached bool, what, q string, args []any, dest ...any) (found bool, err error) {
	cctx, cancel := l.bounded(ctx, detached)
	defer cancel()
	if l.utcSession.Load() {
		err = l.onUTC(cctx, func(c *sql.Conn) error { return c.QueryRowContext(cctx, q, args...).Scan(dest...) })
	} else {
		var s *sql.Stmt
		if s, err = l.stmt(cctx, q); err != nil {
			return false, l.classify(ctx, what, err)
		}
		l.statements.Add(1)
		err = s.QueryRowContext(cctx, args...).Scan(dest...)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, l.classify(ctx, what, err)
	}
	return true, nil
}

// Database error codes dsctl explains.
const (
	myNoSuchTable   = 1146
	myBadField      = 1054
	myTableAccess   = 1142 // command denied to user for table
	myColumnAccess  = 1143
	myDBAccess      = 1044
	myAccessDenied  = 1045
	mySpecificDeny  = 1227 // needs SUPER/PROCESS/...
	myLockWait      = 1205
	pgUndefinedTab  = "42P01"
	pgUndefinedCol  = "42703"
	pgInsufficient  = "42501"
	pgAdminShutdown = "57P01"
)

// tableMissing reports a "no such table" answer.
func tableMissing(err error) bool {
	if errors.As(err, new(noTableErr)) {
		return true
	}
	var me *mysql.MySQLError
	var pe *pgconn.PgError
	return errors.As(err, &me) && me.Number == myNoSuchTable || errors.As(err, &pe) && pe.Code == pgUndefinedTab
}

func columnMissing(err error) bool {
	var me *mysql.MySQLError
	var pe *pgconn.PgError
	return errors.As(err, &me) && me.Number == myBadField || errors.As(err, &pe) && pe.Code == pgUndefinedCol
}

func permissionDenied(err error) bool {
	var me *mysql.MySQLError
	var pe *pgconn.PgError
	if errors.As(err, &me) {
		switch me.Number {
		case myTableAccess, myColumnAccess, myDBAccess, myAccessDenied, mySpecificDeny:
			return true
		}
	}
	return errors.As(err, &pe) && pe.Code == pgInsufficient
}

// serverGoingAway reports an answer that means the server is shutting down or not
// accepting work (PostgreSQL classes 57P and 08, MySQL's shutdown errors): the
// database is unreachable for now, not wrong.
func serverGoingAway(err error) bool {
	var me *mysql.MySQLError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08")
	case errors.As(err, &me):
		return me.Number == 1053 || me.Number == 1077 || me.Number == 1927 // shutdown in progress, normal shutdown, connection killed
	}
	return false
}

// ErrNoTable is in the chain of the error for a missing lock table.
var ErrNoTable = errors.New("lock table does not exist")

// classify turns a database failure into a typed error naming the database (host,
// port, database, never the DSN) and the next step.
func (l *Locker) classify(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "%s: interrupted during %s", l.target.Driver, what)
	}
	switch {
	case tableMissing(err):
		// Exit 2, not 1: nothing transient went wrong and retrying cannot help; the
		// input (--table, or the setup it names) is wrong until someone runs init.
		return errs.Usage("%s %s: the lock table %s does not exist", l.target.Driver, l.target.Name, l.table).
			WithHint("create it with `dsctl lock sql init --table %s` (add --print for the DDL to hand to a DBA), or name the right table with --table", l.table).Wrap(errors.Join(ErrNoTable, err))
	case columnMissing(err):
		return l.shapeError(context.WithoutCancel(ctx), err)
	case serverGoingAway(err):
		return errs.Unreachable("sql", l.target.Name, l.timeout, "the database is shutting down, restarting or refusing connections; is it up? check the DSN in DSCTL_SQL_DSN or the context's sql.dsn", err)
	case permissionDenied(err):
		return errs.New(errs.KindRuntime, "%s %s: permission denied during %s on table %s: %s", l.target.Driver, l.target.Name, what, l.table, dbMessage(err)).
			WithHint("the user needs SELECT, INSERT, UPDATE on %s (and CREATE for `lock sql init`); ask a DBA to GRANT them", l.table).Wrap(err)
	}
	return l.dialer.SQLError(l.target, err)
}

// dbMessage is the server's own message without the driver's prefix.
func dbMessage(err error) string {
	var me *mysql.MySQLError
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &me):
		return me.Message
	case errors.As(err, &pe):
		return pe.Message
	}
	return err.Error()
}

// columns lists the table's columns (lower case), nil when it does not exist.
func (l *Locker) columns(ctx context.Context) ([]string, error) {
	schema, table := "", l.table
	if i := strings.IndexByte(l.table, '.'); i >= 0 {
		schema, table = l.table[:i], l.table[i+1:]
	}
	var q string
	if l.dialect.name() == "mysql" {
		q = `SELECT LOWER(column_name) FROM information_schema.columns WHERE table_schema = COALESCE(NULLIF(?, ''), DATABASE()) AND table_name = ?`
	} else {
		q = `SELECT LOWER(column_name) FROM information_schema.columns WHERE table_schema = COALESCE(NULLIF($1, ''), current_schema()) AND table_name = $2`
	}
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	rows, err := l.db.QueryContext(cctx, q, schema, table)
	if err != nil {
		return nil, l.classify(ctx, "read the table's columns", err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, l.classify(ctx, "read the table's columns", err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, l.classify(ctx, "read the table's columns", err)
	}
	sort.Strings(cols)
	return cols, nil
}

// shapeError explains a table that lacks the columns this format needs.
func (l *Locker) shapeError(ctx context.Context, cause error) error {
	want := dsctlColumns
	if l.format == FormatShedLock {
		want = shedlockColumns
	}
	have, err := l.columns(ctx)
	if err != nil {
		have = nil
	}
	missing := missingColumns(want, have)
	msg := "the table " + l.table + " does not have the columns of a " + string(l.format) + " lock table"
	if len(missing) > 0 {
		msg += ": missing " + strings.Join(missing, ", ")
	}
	if len(have) > 0 {
		msg += " (it has " + strings.Join(have, ", ") + ")"
	}
	hint := "name the dsctl lock table with --table, or create one with `dsctl lock sql init --table NEW`; for a classic unique-key lock table (a row per held lock) add --format unique-key"
	if l.format == FormatShedLock {
		hint = "point --table at a ShedLock table: name, lock_until, locked_at, locked_by"
	}
	return errs.Usage("%s %s: %s", l.target.Driver, l.target.Name, msg).WithHint("%s", hint).Wrap(cause)
}

func missingColumns(want, have []string) []string {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	var out []string
	for _, w := range want {
		if !set[w] {
			out = append(out, w)
		}
	}
	return out
}
