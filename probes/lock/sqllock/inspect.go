package sqllock

import (
	"context"
	"fmt"
	"sort"
	"strconv"
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
	// (Whatever this Locker's mode: `lock inspect` and `lock break` run in lease mode
	// unless told otherwise, and must still see a session-mode holder.)
	// Someone may hold the session lock of this name without a live row: another
	// program, or a dsctl client that has just taken it and is stamping the row (one
	// round trip later). Give the latter that moment before naming another program.
	sh, err := l.sessionLockHolder(ctx, name)
	if err != nil || sh == nil {
		return info, nil
	}
	deadline := time.Now().Add(stampGrace)
	for settle && time.Now().Before(deadline) {
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
	if sh.dsctl {
		return l.unstampedInfo(name, l.sessionLockName(name), r, sh), nil
	}
	return l.sessionInfo(name, sh), nil
}

// unstampedInfo describes a session lock held by a dsctl client whose row is not
// stamped: one paused between its two steps, or whose lease ran out while its
// connection lives (a stopped process). It is dsctl's lock, held, with no token yet;
// `lock break` ends that connection.
func (l *Locker) unstampedInfo(name, sessionLock string, r *row, sh *sessionHolder) *lock.Info {
	info := l.infoOf(name, r)
	id := l.sessionWord() + " " + strconv.FormatInt(sh.id, 10)
	h := &lock.Holder{Token: id, Owner: &lock.Owner{User: sh.user, Host: sh.host, Label: sh.app, Tool: "dsctl (" + id + ")"}}
	h.SetTTLLeft(-1)
	if sh.since.Valid {
		h.AcquiredAt = time.UnixMicro(sh.since.Int64).UTC()
	}
	info.Held, info.Format, info.FormatDetail, info.Holder = true, lock.FormatDsctl, DescribeFormat(lock.FormatDsctl), h
	info.Notes = append(info.Notes, fmt.Sprintf("session lock %s held by dsctl's %s with no lease on the row: that client is taking the lock (between its two steps), or its lease ran out while its connection lives (a stopped process); `lock break` ends that connection",
		sessionLock, id))
	return info
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
		if strings.HasPrefix(h.Token, l.sessionWord()+" ") {
			// A dsctl client holding the session lock with no lease on the row
			// (unstampedInfo): end its connection, if it still holds the session lock
			// (its stamp then fails: it never holds the lease).
			sid, _ := strconv.ParseInt(strings.TrimPrefix(h.Token, l.sessionWord()+" "), 10, 64)
			// First the break record, naming the connection, on a row with no live
			// lease: the client's failing stamp reads it (brokenBeforeStamp), and
			// inspect shows who broke what.
			if err := l.recordUnstampedBreak(ctx, name, h.Token, sid, opt); err != nil {
				return nil, err
			}
			if err := l.terminate(ctx, sid, name); err != nil {
				return nil, err
			}
			// It may have stamped its row just before its connection ended (a race
			// with this break): it then holds a lease on a dead connection. Break that
			// row too, with the record, so its holder is told who broke it and the
			// next client need not wait out its TTL.
			r, err := l.readRow(ctx, name)
			if err != nil {
				return nil, err
			}
			if r.held() && r.sessionID.Valid && r.sessionID.Int64 == sid {
				if _, err := l.breakRow(ctx, name, r.token.String, opt); err != nil {
					return nil, err
				}
				info.Holder = r.holder()
			}
			return info, nil
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

// recordUnstampedBreak writes the break record of a dsctl client that holds the session
// lock with no live lease on the row (holder: "connection N" / "backend pid N"), on a
// row that holds no live lease (created free if missing). The record names the client's
// own expired lease when the row still carries it (a client stopped past its TTL: told
// it was broken when it renews), else the connection (a client between its two steps:
// told by its failing stamp). A row stamped meanwhile is left alone (Break then breaks
// it).
func (l *Locker) recordUnstampedBreak(ctx context.Context, name, holder string, sid int64, opt lock.BreakOptions) error {
	by, reason := truncateRunes(opt.By, byLen), truncateRunes(opt.Reason, reasonLen)
	if l.dialect.name() == "mysql" {
		const free = "(token IS NULL OR expires_at <= UTC_TIMESTAMP(6))"
		q := fmt.Sprintf(`INSERT INTO %s (name, fence, ttl_ms, expires_at, break_at, break_by, break_reason, break_token, break_fence)
VALUES (?, 0, 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, ?, 0)
ON DUPLICATE KEY UPDATE break_fence = IF(%[2]s, fence, break_fence), break_by = IF(%[2]s, VALUES(break_by), break_by),
  break_reason = IF(%[2]s, VALUES(break_reason), break_reason),
  break_token = IF(%[2]s, IF(token IS NOT NULL AND session_id = ?, token, VALUES(break_token)), break_token),
  break_at = IF(%[2]s, VALUES(break_at), break_at)`, l.qtable, free)
		_, err := l.exec(ctx, true, "break "+name, q, name, by, reason, holder, sid)
		return err
	}
	q := fmt.Sprintf(`INSERT INTO %s AS t (name, fence, ttl_ms, expires_at, break_at, break_by, break_reason, break_token, break_fence)
VALUES ($1, 0, 0, clock_timestamp(), clock_timestamp(), $2, $3, $4, 0)
ON CONFLICT (name) DO UPDATE SET break_at = EXCLUDED.break_at, break_by = EXCLUDED.break_by, break_reason = EXCLUDED.break_reason,
  break_token = CASE WHEN t.token IS NOT NULL AND t.session_id = $5 THEN t.token ELSE EXCLUDED.break_token END, break_fence = t.fence
WHERE t.token IS NULL OR t.expires_at <= clock_timestamp()`, l.qtable)
	_, err := l.exec(ctx, true, "break "+name, q, name, by, reason, holder, sid)
	return err
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
