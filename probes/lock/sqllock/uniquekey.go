package sqllock

import (
	"context"
	"fmt"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// The classic unique-key lock table (e.g. method_lock(id, method_name UNIQUE,
// method_desc, update_time)): a program takes a lock by inserting the row with the
// name in the unique column and releases it by deleting it. With Format unique-key
// (never inferred: an application table with a unique text column has the same shape)
// dsctl reads such tables (inspect, list) and can break a lock (delete its row, only
// with Raw or IfToken); it never takes locks in them: they have no expiry, so a
// crashed holder keeps the lock forever.

const uniqueKeyNote = "unique-key table: no expiry (a crashed holder keeps the lock until its row is deleted), no owner, no fencing token"

// uniqueKeyColumn finds the table's single-column unique key on a string column,
// preferring a UNIQUE key to the primary key ("" when there is none).
func (l *Locker) uniqueKeyColumn(ctx context.Context) (string, error) {
	schema, table := "", l.table
	if i := strings.IndexByte(l.table, '.'); i >= 0 {
		schema, table = l.table[:i], l.table[i+1:]
	}
	var q string
	if l.dialect.name() == "mysql" {
		q = `SELECT LOWER(MIN(s.column_name)), MIN(s.index_name) = 'PRIMARY' AS pk
FROM information_schema.statistics s JOIN information_schema.columns c
  ON c.table_schema = s.table_schema AND c.table_name = s.table_name AND c.column_name = s.column_name
WHERE s.table_schema = COALESCE(NULLIF(?, ''), DATABASE()) AND s.table_name = ? AND s.non_unique = 0
  AND c.data_type IN ('varchar', 'char', 'text', 'varbinary', 'binary')
GROUP BY s.index_name HAVING COUNT(*) = 1 ORDER BY pk LIMIT 1`
	} else {
		q = `SELECT LOWER(MIN(a.attname)), bool_or(i.indisprimary) AS pk
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
WHERE n.nspname = COALESCE(NULLIF($1, ''), current_schema()) AND c.relname = $2 AND i.indisunique AND i.indnatts = 1
  AND a.atttypid IN ('varchar'::regtype, 'text'::regtype, 'bpchar'::regtype)
GROUP BY i.indexrelid ORDER BY pk LIMIT 1`
	}
	var col string
	var pk bool
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	err := l.db.QueryRowContext(cctx, q, schema, table).Scan(&col, &pk)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return "", nil
		}
		return "", l.classify(ctx, "read the table's keys", err)
	}
	if !identRe.MatchString(col) {
		return "", nil
	}
	return col, nil
}

func (l *Locker) quoteCol(c string) string {
	if l.dialect.name() == "mysql" {
		return "`" + c + "`"
	}
	return `"` + c + `"`
}

func (l *Locker) uniqueInfo(ti *tableInfo, name string, held bool) *lock.Info {
	info := &lock.Info{Name: name, Key: fmt.Sprintf("%s[%s=%s]", l.table, ti.keyColumn, quoteSQL(name)), Format: lock.FormatNone,
		FormatDetail: lock.FormatNone.Describe(), Waiters: -1, Backend: l.Backend(), Notes: []string{uniqueKeyNote}}
	if held {
		h := &lock.Holder{Token: name}
		h.SetTTLLeft(-1)
		info.Held, info.Format, info.FormatDetail, info.Holder = true, FormatUniqueKey, DescribeFormat(FormatUniqueKey), h
	}
	return info
}

func (l *Locker) inspectUniqueKey(ctx context.Context, ti *tableInfo, name string) (*lock.Info, error) {
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s = %s", l.qtable, l.quoteCol(ti.keyColumn), l.dialect.ph(1))
	var n int
	if _, err := l.queryRow(ctx, false, "inspect "+name, q, []any{name}, &n); err != nil {
		return nil, err
	}
	return l.uniqueInfo(ti, name, n > 0), nil
}

func (l *Locker) listUniqueKey(ctx context.Context, ti *tableInfo, prefix string) ([]lock.Info, error) {
	col := l.quoteCol(ti.keyColumn)
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s LIKE %s ESCAPE '!'", col, l.qtable, col, l.dialect.ph(1))
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	rows, err := l.db.QueryContext(cctx, q, likePrefix(prefix))
	if err != nil {
		return nil, l.classify(ctx, "list", err)
	}
	defer rows.Close()
	var out []lock.Info
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, l.classify(ctx, "list", err)
		}
		if strings.HasPrefix(name, prefix) {
			out = append(out, *l.uniqueInfo(ti, name, true))
		}
	}
	return out, l.classify(ctx, "list", rows.Err())
}

// breakUniqueKey deletes the lock's row. IfToken is the name itself (the only
// identity such a row has).
func (l *Locker) breakUniqueKey(ctx context.Context, ti *tableInfo, name string, opt lock.BreakOptions) (*lock.Info, error) {
	info, err := l.inspectUniqueKey(ctx, ti, name)
	if err != nil {
		return nil, err
	}
	if opt.IfToken != "" && opt.IfToken != name {
		return nil, lock.NotHeld(&lock.NotHeldError{Name: name, Token: opt.IfToken, Reason: lock.LostExpired,
			Detail: "a unique-key row has no holder token: --if-token must be the name"})
	}
	if !info.Held {
		return info, nil
	}
	if !opt.Raw && opt.IfToken == "" {
		return nil, errs.Usage("lock %q: breaking it deletes the row %s of table %s; dsctl did not touch it", name, info.Key, l.table).
			WithHint("a unique-key row has no owner nor expiry to check: if this table really is a lock table, add --raw (or --if-token %s) to delete the row", lock.QuoteCommand([]string{name}))
	}
	q := fmt.Sprintf("DELETE FROM %s WHERE %s = %s", l.qtable, l.quoteCol(ti.keyColumn), l.dialect.ph(1))
	if _, err := l.exec(ctx, true, "break "+name, q, name); err != nil {
		return nil, err
	}
	return info, nil
}
