package sqllock

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// A lock table is safe only with a unique key on exactly (name): without one, MySQL's
// INSERT ... ON DUPLICATE KEY UPDATE never meets a duplicate and every acquire inserts
// (and is granted) its own row, and PostgreSQL's ON CONFLICT (name) fails. Its time
// columns must have the types dsctl's statements assume: dsctl's table keeps UTC in
// DATETIME(6) on MySQL (a TIMESTAMP column would convert through each session's time
// zone) and instants in timestamptz on PostgreSQL; ShedLock's keeps TIMESTAMP or
// DATETIME (MySQL) and timestamp or timestamptz (PostgreSQL).

// colTypes maps the table's columns (lower case) to their information_schema
// data_type (lower case); empty when the table does not exist.
func (l *Locker) colTypes(ctx context.Context) (map[string]string, error) {
	schema, table := splitTable(l.table)
	q := `SELECT LOWER(column_name), LOWER(data_type) FROM information_schema.columns WHERE table_schema = COALESCE(NULLIF(?, ''), DATABASE()) AND table_name = ?`
	if l.dialect.name() == "postgres" {
		q = `SELECT LOWER(column_name), LOWER(data_type) FROM information_schema.columns WHERE table_schema = COALESCE(NULLIF($1, ''), current_schema()) AND table_name = $2`
	}
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	rows, err := l.db.QueryContext(cctx, q, schema, table)
	if err != nil {
		return nil, l.classify(ctx, "read the table's columns", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return nil, l.classify(ctx, "read the table's columns", err)
		}
		out[c] = t
	}
	return out, l.classify(ctx, "read the table's columns", rows.Err())
}

// nameKeyed reports whether the table has a primary or unique key on exactly (name):
// the whole column (no prefix index on MySQL), no partial or expression index on
// PostgreSQL.
func (l *Locker) nameKeyed(ctx context.Context) (bool, error) {
	schema, table := splitTable(l.table)
	q := `SELECT COUNT(*) FROM (SELECT s.index_name FROM information_schema.statistics s
WHERE s.table_schema = COALESCE(NULLIF(?, ''), DATABASE()) AND s.table_name = ? AND s.non_unique = 0
GROUP BY s.index_name
HAVING COUNT(*) = 1 AND MAX(LOWER(s.column_name)) = 'name' AND MAX(s.sub_part) IS NULL) k`
	if l.dialect.name() == "postgres" {
		q = `SELECT COUNT(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = COALESCE(NULLIF($1, ''), current_schema()) AND c.relname = $2 AND i.indisunique AND i.indnatts = 1
  AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'name'`
	}
	var n int
	if _, err := l.queryRow(ctx, false, "read the table's keys", q, []any{schema, table}, &n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// wantTypes are the accepted data_types of the time-critical columns, by format and
// dialect.
func (l *Locker) wantTypes() map[string][]string {
	my := l.dialect.name() == "mysql"
	switch {
	case l.format == FormatShedLock && my:
		return map[string][]string{"lock_until": {"timestamp", "datetime"}, "locked_at": {"timestamp", "datetime"}}
	case l.format == FormatShedLock:
		return map[string][]string{"lock_until": {"timestamp without time zone", "timestamp with time zone"},
			"locked_at": {"timestamp without time zone", "timestamp with time zone"}}
	case my:
		return map[string][]string{"expires_at": {"datetime"}, "acquired_at": {"datetime"}, "break_at": {"datetime"},
			"fence": {"bigint"}, "ttl_ms": {"bigint"}}
	}
	return map[string][]string{"expires_at": {"timestamp with time zone"}, "acquired_at": {"timestamp with time zone"},
		"break_at": {"timestamp with time zone"}, "fence": {"bigint"}, "ttl_ms": {"bigint"}}
}

// checkShape verifies the table of the Locker's format: columns, key, types. exists is
// false (and err nil) when there is no such table.
func (l *Locker) checkShape(ctx context.Context) (exists bool, err error) {
	types, err := l.colTypes(ctx)
	if err != nil || len(types) == 0 {
		return false, err
	}
	have := make([]string, 0, len(types))
	for c := range types {
		have = append(have, c)
	}
	sort.Strings(have)
	want := dsctlColumns
	if l.format == FormatShedLock {
		want = shedlockColumns
	}
	if len(missingColumns(want, have)) > 0 {
		return true, l.shapeError(ctx, nil)
	}
	var bad []string
	wt := l.wantTypes()
	cols := make([]string, 0, len(wt))
	for c := range wt {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		ok := false
		for _, t := range wt[c] {
			ok = ok || types[c] == t
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is %s, want %s", c, strings.ToUpper(types[c]), strings.ToUpper(strings.Join(wt[c], " or "))))
		}
	}
	keyed, err := l.nameKeyed(ctx)
	if err != nil {
		return true, err
	}
	if !keyed {
		bad = append([]string{"no primary or unique key on exactly (name): every acquire could insert its own row and be granted"}, bad...)
	}
	if len(bad) == 0 {
		return true, nil
	}
	hint := "recreate it from `dsctl lock sql init --print --table NEW` (or ALTER it to match), then point --table at it"
	if !keyed {
		hint = fmt.Sprintf("add the key (ALTER TABLE %s ADD PRIMARY KEY (name)) or recreate the table from `dsctl lock sql init --print`", l.table)
	}
	return true, errs.Usage("%s %s: the table %s is not a safe %s lock table: %s", l.target.Driver, l.target.Name, l.table, l.formatWord(), strings.Join(bad, "; ")).
		WithHint("%s", hint)
}

func (l *Locker) formatWord() string {
	if l.format == FormatShedLock {
		return "ShedLock"
	}
	return string(lock.FormatDsctl)
}

// shapeOK is checkShape once per Locker for the statements that take locks: a
// misshapen table is refused before the first acquire; a missing one is left to the
// statement's own error (and checked again next time).
func (l *Locker) shapeOK(ctx context.Context) error {
	if l.format == FormatUniqueKey {
		return nil
	}
	l.mu.Lock()
	done, serr := l.shapeDone, l.shapeErr
	l.mu.Unlock()
	if done {
		return serr
	}
	exists, err := l.checkShape(ctx)
	if !exists && err == nil {
		return nil
	}
	if err != nil && errs.KindOf(err) != errs.KindUsage {
		return err // not an answer about the table: ask again next time
	}
	l.mu.Lock()
	l.shapeDone, l.shapeErr = true, err
	l.mu.Unlock()
	return err
}
