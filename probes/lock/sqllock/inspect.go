package sqllock

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// key says where a lock lives: table and row.
func (l *Locker) key(name string) string {
	return fmt.Sprintf("%s[name=%s]", l.table, quoteSQL(name))
}

func quoteSQL(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Inspect reports the lock's state. The table's format is recognised by its columns
// (dsctl, ShedLock, unique-key); on a dsctl table with no live row for the name, the
// holder of its session lock (GET_LOCK / advisory lock), if any, is shown: a dsctl
// session-mode client taking the lock, or another program.
func (l *Locker) Inspect(ctx context.Context, name string) (*lock.Info, error) {
	return l.inspect(ctx, name, true)
}

// inspect is Inspect; with settle false it names a session lock without a live row
// another program's at once (a waiter that already knows that holder need not wait
// again).
func (l *Locker) inspect(ctx context.Context, name string, settle bool) (*lock.Info, error) {
	if err := lock.ValidateName(name); err != nil {
		return nil, err
	}
	f, err := l.tableFormat(ctx)
	if err != nil {
		return nil, err
	}
	switch f.format {
	case FormatShedLock:
		return l.inspectShedLock(ctx, name)
	case FormatUniqueKey:
		return l.inspectUniqueKey(ctx, f, name)
	}
	r, err := l.readRow(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := l.rowInfo(ctx, name, r)
	if err != nil || info.Held {
		return info, err
	}
	// No live row: someone may hold the name's session lock (GET_LOCK / advisory
	// lock). Session locks are keyed by name only (on MySQL server-wide): the holder
	// may be a dsctl client of this table, of another table or database, or another
	// program. Only this row can tie it to this table.
	sh, err := l.sessionLockHolder(ctx, name)
	if err != nil || sh == nil {
		return info, err
	}
	if l.mode != ModeSession {
		// Lease-mode clients neither take nor wait for session locks: for them the
		// lock is free. Say who holds the session lock anyway.
		info.Notes = append(info.Notes, fmt.Sprintf("session lock %s is held by %s; lease-mode clients do not wait for it, session-mode clients do (see --mode session)",
			l.sessionLockName(name), l.describeSessionHolder(sh)))
		return info, nil
	}
	if r.token.Valid && r.token.String != "" && r.sessionID.Valid && r.sessionID.Int64 == sh.id {
		// The row's lease (expired) is this connection's: a session-mode holder of
		// this table whose lease ran out while its connection lives (a stopped
		// process). It still holds the lock for every session-mode client; `lock
		// break` breaks that lease (with the record) and ends the connection.
		info = l.infoOf(name, r)
		info.Held, info.Format, info.FormatDetail, info.Holder = true, lock.FormatDsctl, DescribeFormat(lock.FormatDsctl), r.holder()
		info.Notes = append(info.Notes, fmt.Sprintf("its lease on the row ran out, but its connection (%s %d) still holds %s (a stopped process?): session-mode clients wait for it; `lock break` ends it",
			l.sessionWord(), sh.id, l.sessionLockName(name)))
		return info, nil
	}
	// A dsctl client (its connection carries dsctl's marker) may be between taking
	// the session lock and stamping the row (one round trip): give it that moment.
	deadline := time.Now().Add(stampGrace)
	for settle && sh.dsctl && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, stampPoll); err != nil {
			return nil, interrupted(ctx, name)
		}
		r, err := l.readRow(ctx, name)
		if err != nil {
			return nil, err
		}
		if r.held() { // stamped (by sh, or by a holder that came and went meanwhile)
			return l.rowInfo(ctx, name, r)
		}
	}
	si := l.sessionInfo(name, sh)
	si.LastFence, si.LastBreak = info.LastFence, info.LastBreak // the row's history
	return si, nil
}

// describeSessionHolder names the holder of a session lock in words.
func (l *Locker) describeSessionHolder(sh *sessionHolder) string {
	who := fmt.Sprintf("%s %d", l.sessionWord(), sh.id)
	if sh.dsctl {
		return who + " (a dsctl session-mode client: taking this lock, or holding this name on another table or database)"
	}
	return who + " (another program)"
}

// stampGrace bounds how long Inspect waits for the holder of a session lock to stamp
// its row before calling it another program's lock; stampPoll is how often it looks.
const (
	stampGrace = 250 * time.Millisecond
	stampPoll  = 10 * time.Millisecond
)

// rowInfo is the lock's state from its dsctl row; on a row of a session-mode holder it
// also says whether the holder's session lock is still held.
func (l *Locker) rowInfo(ctx context.Context, name string, r *row) (*lock.Info, error) {
	info := l.infoOf(name, r)
	if info.Held && r.sessionID.Valid {
		alive, err := l.sessionHeld(ctx, name, r.sessionID.Int64)
		if err != nil {
			return nil, err
		}
		if alive {
			info.Notes = append(info.Notes, fmt.Sprintf("session lock %s held by %s %d", l.sessionLockName(name), l.sessionWord(), r.sessionID.Int64))
		} else {
			// The holder may still believe it holds the lock until its local deadline,
			// which the row's lease bounds: dsctl waits for the row to expire.
			info.Notes = append(info.Notes, fmt.Sprintf("the holder's connection (%s %d) ended: its session lock is gone, but dsctl clients wait until the row's lease expires (%s)",
				l.sessionWord(), r.sessionID.Int64, lock.RoundDuration(info.Holder.TTLLeft)))
		}
	}
	return info, nil
}

func (l *Locker) infoOf(name string, r *row) *lock.Info {
	info := &lock.Info{Name: name, Key: l.key(name), Format: lock.FormatNone, FormatDetail: lock.FormatNone.Describe(),
		Waiters: -1, FencingSafe: true, Backend: l.Backend()}
	if r.found {
		info.LastFence = lock.FencingToken(r.fence)
		info.LastBreak = r.lastBreak()
	}
	if r.held() {
		info.Held, info.Format, info.FormatDetail, info.Holder = true, lock.FormatDsctl, DescribeFormat(lock.FormatDsctl), r.holder()
	}
	return info
}

// List reports the held locks whose name starts with opt.Prefix, sorted by name; with
// opt.Foreign also the session locks of other programs (advisory locks, user locks).
func (l *Locker) List(ctx context.Context, opt lock.ListOptions) ([]lock.Info, error) {
	f, err := l.tableFormat(ctx)
	if err != nil {
		return nil, err
	}
	var out []lock.Info
	switch f.format {
	case FormatShedLock:
		out, err = l.listShedLock(ctx, opt.Prefix)
	case FormatUniqueKey:
		out, err = l.listUniqueKey(ctx, f, opt.Prefix)
	default:
		out, err = l.listDsctl(ctx, opt.Prefix)
	}
	if err != nil {
		return nil, err
	}
	if opt.Foreign {
		more, err := l.listSessionLocks(ctx, opt.Prefix, out)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (l *Locker) listDsctl(ctx context.Context, prefix string) ([]lock.Info, error) {
	d := l.dialect
	q := fmt.Sprintf(`SELECT name, token, owner, fence, ttl_ms, %s, %s, session_id, %s, break_by, break_reason, break_token, break_fence
FROM %s WHERE name LIKE %s ESCAPE '!' AND token IS NOT NULL AND expires_at > %s`,
		d.epochMicros("acquired_at"), d.leftMicros("expires_at"), d.epochMicros("break_at"), l.qtable, d.ph(1), d.now())
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	s, err := l.stmt(cctx, q)
	if err != nil {
		return nil, l.classify(ctx, "list", err)
	}
	l.statements.Add(1)
	rows, err := s.QueryContext(cctx, likePrefix(prefix))
	if err != nil {
		return nil, l.classify(ctx, "list", err)
	}
	defer rows.Close()
	var out []lock.Info
	for rows.Next() {
		var name string
		r := &row{found: true}
		if err := rows.Scan(append([]any{&name}, r.dest()...)...); err != nil {
			return nil, l.classify(ctx, "list", err)
		}
		if !strings.HasPrefix(name, prefix) { // LIKE may fold case on some collations
			continue
		}
		info := l.infoOf(name, r)
		if !info.Held {
			continue
		}
		out = append(out, *info)
	}
	if err := rows.Err(); err != nil {
		return nil, l.classify(ctx, "list", err)
	}
	return out, nil
}

// Break frees the lock whoever holds it (only while opt.IfToken holds, when given),
// keeps a record of the break in the row (break_at, break_by, break_reason,
// break_token, break_fence), wakes the waiters, and returns what it was before. In
// session mode the holder's connection is terminated, which frees its session lock.
func (l *Locker) Break(ctx context.Context, name string, opt lock.BreakOptions) (*lock.Info, error) {
	if err := lock.ValidateName(name); err != nil {
		return nil, err
	}
	if err := lock.ValidateLabel(opt.Reason); err != nil {
		return nil, errs.Usage("--reason: %v", strings.TrimPrefix(err.Error(), "--owner text "))
	}
	f, err := l.tableFormat(ctx)
	if err != nil {
		return nil, err
	}
	switch f.format {
	case FormatShedLock:
		return l.breakShedLock(ctx, name, opt)
	case FormatUniqueKey:
		return l.breakUniqueKey(ctx, f, name, opt)
	}
	for attempt := 0; attempt < 5; attempt++ {
		info, err := l.Inspect(ctx, name)
		if err != nil {
			return nil, err
		}
		if info.Format != lock.FormatDsctl && info.Format != lock.FormatNone {
			if !opt.Raw {
				return nil, errs.Usage("lock %q is held by another program's session lock (%s); dsctl did not touch it", name, DescribeFormat(info.Format)).
					WithHint("to end that program's connection anyway, add --raw; see `dsctl lock inspect %s`", lock.QuoteCommand([]string{name}))
			}
			return info, l.terminateForeign(ctx, info)
		}
		if !info.Held {
			if opt.IfToken != "" {
				return nil, l.notHeld(ctx, name, opt.IfToken)
			}
			return info, nil
		}
		h := info.Holder
		if opt.IfToken != "" && h.Token != opt.IfToken {
			return nil, l.notHeld(ctx, name, opt.IfToken)
		}
		// A session-mode holder (whatever this Locker's mode: `lock break` runs in lease
		// mode by default) also holds the session lock on its connection: freeing the row
		// alone would leave GET_LOCK / the advisory lock held.
		var sid int64
		if r, err := l.readRow(ctx, name); err == nil && r.sessionID.Valid && r.token.String == h.Token {
			sid = r.sessionID.Int64
		}
		ok, err := l.breakRow(ctx, name, h.Token, opt)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // changed holders meanwhile: look again
		}
		if sid > 0 {
			// End the holder's connection if it still holds the session lock (checked in
			// the same statement on PostgreSQL, where pids are reused).
			if err := l.terminate(ctx, sid, name); err != nil {
				return nil, err
			}
		}
		return info, nil
	}
	return nil, errs.New(errs.KindRuntime, "%s: lock %q changed holders five times while breaking it; nothing more was changed", l.target.Driver, name)
}

// breakRow frees the row of token, writing the break record, and notifies.
func (l *Locker) breakRow(ctx context.Context, name, token string, opt lock.BreakOptions) (bool, error) {
	d := l.dialect
	by, reason := truncateRunes(opt.By, byLen), truncateRunes(opt.Reason, reasonLen)
	if d.name() == "mysql" {
		q := fmt.Sprintf(`UPDATE %s SET break_at = UTC_TIMESTAMP(6), break_by = ?, break_reason = ?, break_token = token, break_fence = fence,
  token = NULL, owner = NULL, session_id = NULL, expires_at = UTC_TIMESTAMP(6) WHERE name = ? AND token = ?`, l.qtable)
		res, err := l.exec(ctx, true, "break "+name, q, by, reason, name, token)
		if err != nil {
			return false, err
		}
		n, _ := res.RowsAffected()
		return n > 0, nil
	}
	q := fmt.Sprintf(`WITH r AS (UPDATE %s SET break_at = clock_timestamp(), break_by = $3, break_reason = $4, break_token = token, break_fence = fence,
  token = NULL, owner = NULL, session_id = NULL, expires_at = clock_timestamp() WHERE name = $1 AND token = $2 RETURNING name)
SELECT pg_notify($5, r.name)::text FROM r`, l.qtable)
	var out string
	return l.queryRow(ctx, true, "break "+name, q, []any{name, token, by, reason, l.channel}, &out)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// tableInfo is the recognised format of the Locker's table.
type tableInfo struct {
	format  lock.Format
	columns []string
	// keyColumn is the unique column of a unique-key table.
	keyColumn string
}

// tableFormat recognises the table by its columns: dsctl's or ShedLock's; a
// unique-key table (a unique string column: the lock name) only when the Locker's
// Format says so. Any other table is refused (shapeError). A missing table is the
// usage error that says to run `dsctl lock sql init`.
func (l *Locker) tableFormat(ctx context.Context) (*tableInfo, error) {
	l.mu.Lock()
	cached := l.tinfo
	l.mu.Unlock()
	if cached != nil && time.Since(l.tinfoAt) < 10*time.Second {
		return cached, nil
	}
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, l.classify(ctx, "inspect", noTableErr{})
	}
	ti := &tableInfo{columns: cols}
	switch {
	case len(missingColumns(dsctlColumns, cols)) == 0:
		ti.format = lock.FormatDsctl
	case len(missingColumns(shedlockColumns, cols)) == 0:
		ti.format = FormatShedLock
	case l.format == FormatUniqueKey:
		// Only when asked for: any table with a unique text column (users.email) has
		// this shape, and Break deletes rows of it.
		key, err := l.uniqueKeyColumn(ctx)
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errs.Usage("%s %s: the table %s has no single-column unique key on a text column, so it is not a unique-key lock table (it has %s)",
				l.target.Driver, l.target.Name, l.table, strings.Join(cols, ", ")).
				WithHint("point --table at the lock table (e.g. method_lock with a UNIQUE method_name)")
		}
		ti.format, ti.keyColumn = FormatUniqueKey, key
	default:
		return nil, l.shapeError(ctx, nil)
	}
	if ti.format != l.format && l.format == FormatShedLock {
		return nil, l.shapeError(ctx, nil)
	}
	l.mu.Lock()
	l.tinfo, l.tinfoAt = ti, time.Now()
	l.mu.Unlock()
	return ti, nil
}
