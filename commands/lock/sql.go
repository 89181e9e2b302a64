package lock

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

func newSQLCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Set up SQL locks (MySQL/MariaDB, PostgreSQL): create the lock table",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSQLInitCmd(f))
	return cmd
}

// SQLInitOptions are the flags of `dsctl lock sql init`.
type SQLInitOptions struct {
	Print   bool
	Backend backendFlags
}

func newSQLInitCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SQLInitOptions{}
	cmd := &cobra.Command{
		Use:   "init [--print] [--table NAME] [--format dsctl|shedlock]",
		Short: "Create the SQL lock table (idempotent); --print shows the DDL without connecting",
		Long: `Create the table SQL locks live in, on the database of DSCTL_SQL_DSN (or the
context's sql.dsn), if it does not exist yet, and check that an existing one has the
right columns (a table of the wrong shape is named with its missing columns and left
alone). Running it again changes nothing.

The dsctl table (` + backends.DefaultSQLTable + ` by default, --table NAME or schema.table) has one row
per lock name: name (primary key), holder token, owner, fencing counter, TTL,
acquired_at, expires_at (by the database's clock), and the last forced break. Rows
are reused, never piled up. Session mode (--mode session) uses the same table for its
fencing counter. With --format shedlock it creates ShedLock's documented table
(shedlock(name, lock_until, locked_at, locked_by)) instead.

--print writes the DDL on stdout without connecting, for a DBA to run: the database
comes from the DSN when one is configured, else from --backend mysql|postgres.
The user needs CREATE to run init, and SELECT, INSERT, UPDATE, DELETE on the table to
use locks.

Exit codes: 0 created or already there; 2 bad input, no DSN, or an existing table of
the wrong shape; 1 refused by the database (e.g. no CREATE privilege: the message says
to hand the --print DDL to a DBA); 6 the database is unreachable.

JSON keys: table, format, driver, target, created, columns, ddl.`,
		Example: `  DSCTL_SQL_DSN='postgres://app@db:5432/app' dsctl lock sql init
  dsctl lock sql init --print --backend mysql > dsctl_locks.sql
  dsctl lock sql init --table ops.locks
  dsctl lock sql init --format shedlock --print --backend postgres`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunSQLInit(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Print, "print", false, "print the DDL on stdout and do nothing else (no connection)")
	fl.StringVar(&o.Backend.Backend, "backend", "", "mysql or postgres (default: from the DSN; needed with --print when no DSN is set)")
	fl.StringVar(&o.Backend.Table, "table", "", "the table to create (default "+backends.DefaultSQLTable+", or shedlock with --format shedlock)")
	fl.StringVar(&o.Backend.Format, "format", "", "dsctl (default) or shedlock (ShedLock's table)")
	registerBackendCompletions(cmd)
	return cmd
}

// SQLInitView is what `lock sql init` prints.
type SQLInitView struct {
	*sqllock.InitResult
}

// Table renders the outcome in a sentence and the columns.
func (v SQLInitView) Table() *output.TableData {
	r := v.InitResult
	t := &output.TableData{}
	kv := func(k string, c output.Cell) { t.AddCells(output.S(k+":", output.Dim), c) }
	what := output.S("already there, with the columns a "+r.Format+" lock table needs (nothing changed)", output.OK)
	if r.Created {
		what = output.S("created", output.OK)
	}
	kv("table", output.C(r.Table))
	kv("database", output.C(r.Driver+" "+r.Target))
	kv("format", output.C(r.Format))
	kv("result", what)
	kv("columns", output.C(strings.Join(r.Columns, ", ")))
	return t
}

// ddlView is --print: the DDL as is on stdout (JSON/YAML: with its driver and table).
type ddlView struct {
	Driver string `json:"driver"`
	Table  string `json:"table"`
	Format string `json:"format"`
	DDL    string `json:"ddl"`
}

// Text is the statement alone, ready for a DBA's client.
func (v ddlView) Text() string { return v.DDL + "\n" }

// RunSQLInit creates the table, or prints its DDL.
func RunSQLInit(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *SQLInitOptions) error {
	if o.Print {
		kind, err := sqlKindForPrint(ctx, f, o)
		if err != nil {
			return err
		}
		ddl, err := backends.SQLDDL(kind, backends.Options{Table: o.Backend.Table, Format: sqlFormat(o.Backend.Format)})
		if err != nil {
			return err
		}
		table := o.Backend.Table
		if table == "" {
			table = backends.DefaultSQLTable
			if sqlFormat(o.Backend.Format) == backends.FormatShedLock {
				table = sqllock.DefaultShedLockTable
			}
		}
		format := string(sqlFormat(o.Backend.Format))
		if format == "" {
			format = "dsctl"
		}
		if p.Format == output.Table || p.Format == "" {
			_, err := fmt.Fprint(f.IO.Out, ddlView{DDL: ddl}.Text())
			return err
		}
		return p.Print(ddlView{Driver: string(kind), Table: table, Format: format, DDL: ddl})
	}
	r, err := o.resolve(ctx, f)
	if err != nil {
		return err
	}
	if backends.IsSQL(r.kind) {
		f.IO.Debugf("lock sql init: %s", backends.SQLSummary(f.Dialer(), r.e, r.opt))
	}
	res, err := backends.SQLInit(ctx, f.Dialer(), r.e, r.kind, r.opt)
	if err != nil {
		return err
	}
	return p.Print(SQLInitView{res})
}

// sqlKindForPrint is the database --print writes DDL for: --backend, else the DSN's
// (read without connecting).
func sqlKindForPrint(ctx context.Context, f *cmdutil.Factory, o *SQLInitOptions) (backends.Kind, error) {
	r, err := o.resolve(ctx, f)
	if err != nil {
		return "", err
	}
	return r.kind, nil
}

// resolve picks the database: --backend (or DSCTL_LOCK_BACKEND) when it names one,
// else the configured DSN's, whatever other lock backends are configured (sql init
// is about SQL only).
func (o *SQLInitOptions) resolve(ctx context.Context, f *cmdutil.Factory) (resolved, error) {
	b := o.Backend
	b.quiet = true
	if b.Backend == "" {
		if env := f.Getenv(backends.EnvBackend); env != "" {
			if k, err := backends.ParseKind(env); err == nil && backends.IsSQL(k) {
				b.Backend = env
			}
		}
	}
	if b.Backend == "" {
		e, err := f.Endpoints(ctx, config.Overrides{})
		if err != nil {
			return resolved{}, err
		}
		if k, ok := backends.SQLKindOf(e); ok {
			b.Backend = string(k)
		}
	}
	if b.Backend == "" {
		if o.Print {
			return resolved{}, errs.Usage("lock sql init --print: say which database: --backend mysql or --backend postgres").
				WithHint("or set DSCTL_SQL_DSN, whose DSN tells them apart")
		}
		return resolved{}, errs.Usage("lock sql init: no database configured").
			WithHint("set DSCTL_SQL_DSN, or sql.dsn.env / sql.dsn.file in the context (the DSN is never a flag)")
	}
	return b.resolve(ctx, f)
}

func sqlFormat(s string) lock.Format { return lock.Format(strings.ToLower(s)) }
