package sqllock

import (
	"context"
	"fmt"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// DDL is the statement that creates a lock table of the given format (lock.FormatDsctl
// or FormatShedLock, ShedLock's documented table) on driver "mysql" or "postgres",
// idempotently (CREATE TABLE IF NOT EXISTS). It does no I/O (`lock sql init --print`).
func DDL(driver string, format lock.Format, table string) (string, error) {
	if table == "" {
		table = DefaultTable
		if format == FormatShedLock {
			table = DefaultShedLockTable
		}
	}
	if err := ValidateTable(table); err != nil {
		return "", err
	}
	var d dialect
	switch driver {
	case "mysql", "mariadb":
		d = mysqlDialect{}
	case "postgres", "postgresql", "pg", "pgx":
		d = pgDialect{}
	default:
		return "", errs.Usage("sql: unknown driver %q", driver).WithHint("use mysql or postgres")
	}
	switch format {
	case "", lock.FormatDsctl:
		return strings.Join(d.ddl(d.quoteTable(table)), ";\n") + ";", nil
	case FormatShedLock:
		return shedlockDDL(d, d.quoteTable(table)) + ";", nil
	}
	return "", errs.Usage("unknown --format %q for SQL locks", string(format)).WithHint("use dsctl (default) or shedlock")
}

// shedlockDDL is ShedLock's documented table. On MySQL every TIMESTAMP column has an
// explicit DEFAULT, so that servers with explicit_defaults_for_timestamp off do not
// add ON UPDATE CURRENT_TIMESTAMP to lock_until.
func shedlockDDL(d dialect, qtable string) string {
	if d.name() == "mysql" {
		return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  name       VARCHAR(64)  NOT NULL,
  lock_until TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  locked_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  locked_by  VARCHAR(255) NOT NULL,
  PRIMARY KEY (name)
)`, qtable)
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  name       VARCHAR(64)  NOT NULL,
  lock_until TIMESTAMP    NOT NULL,
  locked_at  TIMESTAMP    NOT NULL,
  locked_by  VARCHAR(255) NOT NULL,
  PRIMARY KEY (name)
)`, qtable)
}

// InitResult says what Init did.
type InitResult struct {
	Table   string   `json:"table"`
	Format  string   `json:"format"`
	Driver  string   `json:"driver"`
	Target  string   `json:"target"`
	Created bool     `json:"created"`
	Columns []string `json:"columns"`
	DDL     string   `json:"ddl"`
}

// Init creates the Locker's table when it is missing (idempotent) and checks that it
// has the columns its format needs. An existing table of the wrong shape is an error
// naming the missing columns; nothing is altered.
func (l *Locker) Init(ctx context.Context) (*InitResult, error) {
	ddl, err := DDL(l.target.Driver, l.format, l.table)
	if err != nil {
		return nil, err
	}
	res := &InitResult{Table: l.table, Format: string(l.format), Driver: l.target.Driver, Target: l.target.Name, DDL: ddl}
	before, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	if len(before) == 0 {
		cctx, cancel := l.bounded(ctx, true)
		l.statements.Add(1)
		_, err := l.db.ExecContext(cctx, strings.TrimSuffix(ddl, ";"))
		cancel()
		if err != nil {
			if permissionDenied(err) {
				return nil, errs.New(errs.KindRuntime, "%s %s: permission denied creating table %s: %s", l.target.Driver, l.target.Name, l.table, dbMessage(err)).
					WithHint("ask a DBA to run the DDL from `dsctl lock sql init --print`, or to GRANT CREATE").Wrap(err)
			}
			return nil, l.classify(ctx, "create table", err)
		}
		res.Created = true
	}
	if err := l.CheckTable(ctx); err != nil {
		return nil, err
	}
	res.Columns, _ = l.columns(ctx)
	return res, nil
}

// CheckTable verifies that the table exists and has the shape of the Locker's format:
// its columns, a primary or unique key on exactly (name), and the types of its time
// columns. A missing table says to run `dsctl lock sql init`; a misshapen one names
// what is wrong.
func (l *Locker) CheckTable(ctx context.Context) error {
	have, err := l.columns(ctx)
	if err != nil {
		return err
	}
	if len(have) == 0 {
		return l.classify(ctx, "check table", noTableErr{})
	}
	if l.format == FormatUniqueKey {
		_, err := l.tableFormat(ctx)
		return err
	}
	_, err = l.checkShape(ctx)
	if err == nil || errs.KindOf(err) == errs.KindUsage {
		l.mu.Lock()
		l.shapeDone, l.shapeErr = true, err
		l.mu.Unlock()
	}
	return err
}

// noTableErr stands for the server's "no such table" when the check found none.
type noTableErr struct{}

func (noTableErr) Error() string { return "table does not exist" }
