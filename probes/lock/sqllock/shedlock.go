package sqllock

// ShedLock interoperability (Format shedlock).
//
// ShedLock (net.javacrumbs.shedlock, JDBC providers) keeps one row per lock name:
// shedlock(name VARCHAR(64) PRIMARY KEY, lock_until, locked_at, locked_by). It takes a
// lock by inserting the row, or by updating it WHERE lock_until <= now; it releases by
// setting lock_until = now (rows are never deleted); it extends WHERE locked_by = its
// hostname AND lock_until > now. dsctl does the same, by the database's clock, so a
// shell job under `dsctl lock run --format shedlock` and a service scheduled with
// ShedLock exclude each other.
//
// ShedLock's table has no token column. dsctl proves ownership with locked_by, which
// it writes as "<host> dsctl pid <pid> #<token>" (16 random hex digits): Renew and
// Release accept only such tokens and match "locked_by LIKE '%#<token>'" and
// lock_until > now. A ShedLock client on the same host writes plain "<host>", so it
// can never extend or release dsctl's row, nor dsctl its: Renew and Release refuse
// any other token (a hostname proves nothing); only `lock break --force` frees a
// foreign holder, pinned with --if-token to the locked_by it read.
//
// Limits, stated in every Lease.Note:
//   - No fencing counter: leases carry no fencing token (FencingSafe false, and
//     --require-fencing is refused).
//   - ShedLock's JdbcLockProvider writes lock_until from the application's clock
//     (unless configured with usingDbTime()); dsctl uses the database's. The two
//     exclude each other only as long as those clocks agree to within the lease.
//   - Names are at most 64 characters (ShedLock's documented column), checked before
//     any I/O. On MySQL the column's collation decides whether "Job" and "job" are the
//     same lock (case-insensitive by default).
//   - No break record (no column for it): `lock break` sets lock_until = now.
//   - Time zones: on PostgreSQL lock_until (TIMESTAMP without time zone) holds UTC wall
//     time, as ShedLock writes it; dsctl uses clock_timestamp() AT TIME ZONE 'UTC'
//     whatever the session's TimeZone (timestamptz columns are compared as instants).
//     On MySQL TIMESTAMP columns are instants read in the session zone; a session
//     zone with daylight saving time makes dsctl run its statements in UTC (see
//     shedInit). ShedLock clients must write UTC too (its documented setting).

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// shedlockNameLen is ShedLock's documented name column length.
const shedlockNameLen = 64

const shedlockNote = "ShedLock table: no fencing counter, so no fencing token; ownership is proved by locked_by (ends in #token); expiry by the database's clock, while ShedLock's JdbcLockProvider writes its own clock"

var dsctlLockedBy = regexp.MustCompile(`^(.*) dsctl pid (\d+) #([0-9a-f]{16})$`)

// shedToken is a random 64-bit token in hex (the tail of locked_by).
func shedToken() string { return newToken()[:16] }

func isShedToken(t string) bool {
	if len(t) != 16 {
		return false
	}
	for _, r := range t {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// lockedBy is what dsctl writes in locked_by (at most 255 characters).
func (l *Locker) lockedBy(pid int, token string) string {
	tail := fmt.Sprintf(" dsctl pid %d #%s", pid, token)
	return truncateRunes(l.host, 255-len(tail)) + tail
}

// shedNow is the database clock in the representation of ShedLock's columns. MySQL:
// NOW(6), in the session time zone like the TIMESTAMP columns it is compared with.
// PostgreSQL: ShedLock's documented columns are TIMESTAMP without time zone holding
// UTC wall time (ShedLock writes timezone('utc', CURRENT_TIMESTAMP), or the
// application's clock through a UTC calendar), so dsctl writes and compares
// clock_timestamp() AT TIME ZONE 'UTC', whatever the session's TimeZone; a table whose
// lock_until is timestamptz holds instants and is compared with clock_timestamp().
func (l *Locker) shedNow() string {
	if l.dialect.name() == "mysql" {
		return "NOW(6)"
	}
	if l.shedTZ.Load() {
		return "clock_timestamp()"
	}
	return "(clock_timestamp() AT TIME ZONE 'UTC')"
}

// shedReleaseNow is the database clock truncated to milliseconds, written into
// lock_until on release and break: ShedLock compares with its own millisecond clock,
// so a release never leaves lock_until a fraction of a millisecond ahead of it.
func (l *Locker) shedReleaseNow() string {
	if l.dialect.name() == "mysql" {
		return "NOW(3)"
	}
	return "date_trunc('milliseconds', " + l.shedNow() + ")"
}

func (l *Locker) shedPlusMs(ms string) string {
	if l.dialect.name() == "mysql" {
		return "NOW(6) + INTERVAL (" + ms + " * 1000) MICROSECOND"
	}
	return l.shedNow() + " + (" + ms + ")::bigint * interval '1 millisecond'"
}

// shedInit learns, once per Locker, how the ShedLock table keeps time. PostgreSQL:
// timestamp or timestamptz lock_until. MySQL: TIMESTAMP columns are stored as instants
// but written and read in the session time zone; with a zone that has daylight saving
// time (SYSTEM on a DST host, a named zone) the hour repeated in autumn is ambiguous
// and a lease written then can come back an hour short. Such sessions run every
// ShedLock statement after SET time_zone = '+00:00' (one more statement); UTC and
// fixed offsets need nothing. A missing table is left to the statements' own errors.
func (l *Locker) shedInit(ctx context.Context) error {
	l.mu.Lock()
	done := l.shedChecked
	l.mu.Unlock()
	if done {
		return nil
	}
	if l.dialect.name() == "mysql" {
		var tz, sys string
		if _, err := l.queryRow(ctx, false, "read the session time zone", "SELECT @@SESSION.time_zone, @@system_time_zone", nil, &tz, &sys); err != nil {
			return err
		}
		l.utcSession.Store(!fixedZone(tz, sys))
	} else {
		schema, table := splitTable(l.table)
		var typ string
		found, err := l.queryRow(ctx, false, "read the table's columns", `SELECT data_type FROM information_schema.columns
WHERE table_schema = COALESCE(NULLIF($1, ''), current_schema()) AND table_name = $2 AND column_name = 'lock_until'`, []any{schema, table}, &typ)
		if err != nil || !found {
			return err
		}
		l.shedTZ.Store(typ == "timestamp with time zone")
	}
	l.mu.Lock()
	l.shedChecked = true
	l.mu.Unlock()
	return nil
}

var fixedOffset = regexp.MustCompile(`^[+-]\d{1,2}:\d{2}$`)

// fixedZone reports a MySQL session time zone without daylight saving time: UTC or a
// fixed offset, or SYSTEM on a UTC host.
func fixedZone(tz, system string) bool {
	utc := func(z string) bool {
		switch strings.ToUpper(z) {
		case "UTC", "GMT", "ETC/UTC", "ETC/GMT", "UNIVERSAL", "ZULU", "COORDINATED UNIVERSAL TIME":
			return true
		}
		return false
	}
	switch {
	case fixedOffset.MatchString(tz), utc(tz):
		return true
	case strings.EqualFold(tz, "SYSTEM"):
		return utc(system)
	}
	return false
}

// splitTable splits "schema.table" ("" schema for a plain name).
func splitTable(t string) (string, string) {
	if i := strings.IndexByte(t, '.'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return "", t
}

// ownToken refuses a Renew or Release with a token dsctl did not issue: a ShedLock
// client's locked_by (e.g. its hostname, which inspect shows as the holder) proves
// nothing, since every process on that host writes the same. Foreign holders are
// freed only by Break (--force, with --if-token to pin the holder).
func (l *Locker) ownToken(name, token, what string) error {
	if isShedToken(token) {
		return nil
	}
	return errs.Usage("lock %q: %q is not a dsctl token (16 hex digits, the tail of locked_by); dsctl does not %s a ShedLock holder it did not create", name, token, what).
		WithHint("to free another program's ShedLock row, use `dsctl lock break --force --if-token %s %s` on the ShedLock table", lock.QuoteCommand([]string{token}), lock.QuoteCommand([]string{name}))
}

// ownerMatch is the WHERE condition proving ownership by token, and its argument: the
// "#token" tail of locked_by for a dsctl token, locked_by itself for another holder
// (Break only).
func ownerMatch(ph, token string) (string, string) {
	if isShedToken(token) {
		return "locked_by LIKE " + ph, "%#" + token
	}
	return "locked_by = " + ph, token
}

func (l *Locker) acquireShedLock(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	if err := l.shedInit(ctx); err != nil {
		return nil, err
	}
	token := shedToken()
	by := l.lockedBy(opt.Owner.PID, token)
	d := l.dialect
	var q string
	if d.name() == "mysql" {
		// As mysqlTakeSQL: the same decision whatever the assignment order
		// (SIMULTANEOUS_ASSIGNMENT), lock_until last; and the outcome comes back through
		// LAST_INSERT_ID, not "rows affected" (clientFoundRows): 1 when the row was
		// inserted or taken over, 0 when someone else holds it.
		q = fmt.Sprintf(`INSERT INTO %[1]s (name, lock_until, locked_at, locked_by) VALUES (?, %[2]s, %[3]s, CONCAT(?, IF(LAST_INSERT_ID(1) = 1, '', '')))
ON DUPLICATE KEY UPDATE
  locked_at = IF(%[4]s, VALUES(locked_at), locked_at),
  locked_by = IF(%[4]s, VALUES(locked_by), IF(LAST_INSERT_ID(0) = 0, locked_by, locked_by)),
  lock_until = IF(locked_by = VALUES(locked_by) OR %[4]s, VALUES(lock_until), lock_until)`,
			l.qtable, l.shedPlusMs("?"), l.shedNow(), "lock_until <= "+l.shedNow())
	} else {
		q = fmt.Sprintf(`INSERT INTO %s AS t (name, lock_until, locked_at, locked_by) VALUES ($1, %s, %s, $3)
ON CONFLICT (name) DO UPDATE SET lock_until = EXCLUDED.lock_until, locked_at = EXCLUDED.locked_at, locked_by = EXCLUDED.locked_by
WHERE t.lock_until <= %s
RETURNING 1`, l.qtable, l.shedPlusMs("$2"), l.shedNow(), l.shedNow())
	}
	w := &waiter{l: l, name: name, opt: opt, start: time.Now()}
	defer w.close()
	ms := opt.TTL.Milliseconds()
	for {
		sent, mono := l.now(), time.Now()
		var ok bool
		var err error
		if d.name() == "mysql" {
			var res sql.Result
			res, err = l.exec(ctx, true, "acquire "+name, q, name, ms, by)
			if err == nil {
				id, _ := res.LastInsertId()
				ok = id == 1
			}
		} else {
			var one int
			ok, err = l.queryRow(ctx, true, "acquire "+name, q, []any{name, ms, by}, &one)
		}
		if err != nil {
			if errs.KindOf(err) == errs.KindUnreachable {
				l.releaseQuietly(name, token, false)
			}
			return nil, w.fail(ctx, err, "")
		}
		if ok {
			if ctx.Err() != nil {
				l.releaseQuietly(name, token, true)
				return nil, interrupted(ctx, name)
			}
			if expiredOnArrival(mono, opt.TTL) { // see Acquire
				l.releaseQuietly(name, token, true)
				token = shedToken()
				by = l.lockedBy(opt.Owner.PID, token)
				if err := w.spin(ctx); err != nil {
					return nil, err
				}
				continue
			}
			return &lock.Lease{Name: name, Token: token, FencingSafe: false, TTL: opt.TTL, TTLMs: ms, AcquiredAt: sent,
				ExpiresAt: deadline(sent, opt.TTL), Owner: opt.Owner, Backend: l.Backend(), Note: shedlockNote}, nil
		}
		h, err := l.shedHolder(ctx, name)
		if err != nil {
			return nil, w.fail(ctx, err, "")
		}
		if h == nil {
			if err := w.spin(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err := w.waitFor(ctx, h, 0); err != nil {
			return nil, err
		}
	}
}

// shedRow is one row of a ShedLock table, with times computed by the database.
type shedRow struct {
	name       string
	lockedBy   string
	atMicros   sql.NullInt64
	leftMicros int64
}

func (l *Locker) shedSelect(where string) string {
	d := l.dialect
	if d.name() == "mysql" {
		return fmt.Sprintf(`SELECT name, locked_by, CAST(UNIX_TIMESTAMP(locked_at) * 1000000 AS SIGNED), TIMESTAMPDIFF(MICROSECOND, NOW(6), lock_until) FROM %s WHERE %s`, l.qtable, where)
	}
	return fmt.Sprintf(`SELECT name, locked_by, (EXTRACT(EPOCH FROM locked_at) * 1000000)::bigint, (EXTRACT(EPOCH FROM (lock_until - %s)) * 1000000)::bigint FROM %s WHERE %s`, l.shedNow(), l.qtable, where)
}

func (r *shedRow) holder() *lock.Holder {
	h := &lock.Holder{Token: r.lockedBy}
	o := &lock.Owner{Host: r.lockedBy}
	if m := dsctlLockedBy.FindStringSubmatch(r.lockedBy); m != nil {
		h.Token = m[3]
		o = &lock.Owner{Host: m[1], Tool: "dsctl"}
		fmt.Sscan(m[2], &o.PID)
	}
	h.Owner = o
	if r.atMicros.Valid {
		h.AcquiredAt = time.UnixMicro(r.atMicros.Int64).UTC()
	}
	h.SetTTLLeft(time.Duration(r.leftMicros) * time.Microsecond)
	return h
}

// shedHolder is the live holder of name, nil when free.
func (l *Locker) shedHolder(ctx context.Context, name string) (*lock.Holder, error) {
	r := &shedRow{}
	found, err := l.queryRow(ctx, false, "read lock "+name, l.shedSelect("name = "+l.dialect.ph(1)), []any{name},
		&r.name, &r.lockedBy, &r.atMicros, &r.leftMicros)
	if err != nil || !found || r.leftMicros <= 0 {
		return nil, err
	}
	return r.holder(), nil
}

func (l *Locker) renewShedLock(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	if err := l.ownToken(name, token, "renew"); err != nil {
		return nil, err
	}
	if err := l.shedInit(ctx); err != nil {
		return nil, err
	}
	d := l.dialect
	cond, arg := ownerMatch(d.ph(3), token)
	q := fmt.Sprintf(`UPDATE %s SET lock_until = %s WHERE name = %s AND %s AND lock_until > %s`,
		l.qtable, l.shedPlusMs(d.ph(1)), d.ph(2), cond, l.shedNow())
	sent := l.now()
	res, err := l.exec(ctx, true, "renew "+name, q, ttl.Milliseconds(), name, arg)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// MySQL counts changed rows only (dsctl never opens connections with
		// clientFoundRows): a renewal that writes the lock_until already there (a
		// column of whole seconds, as some ShedLock tables have, renewed within the
		// same second) changes nothing and still holds. Ask whether it does.
		held := false
		if d.name() == "mysql" {
			var one int
			hcond, harg := ownerMatch(d.ph(2), token)
			hq := fmt.Sprintf(`SELECT 1 FROM %s WHERE name = %s AND %s AND lock_until > %s`, l.qtable, d.ph(1), hcond, l.shedNow())
			found, err := l.queryRow(ctx, true, "renew "+name, hq, []any{name, harg}, &one)
			if err != nil {
				return nil, err
			}
			held = found
		}
		if !held {
			return nil, l.shedNotHeld(ctx, name, token)
		}
	}
	return &lock.Lease{Name: name, Token: token, TTL: ttl, TTLMs: ttl.Milliseconds(), AcquiredAt: sent,
		ExpiresAt: deadline(sent, ttl), Backend: l.Backend(), Note: shedlockNote}, nil
}

func (l *Locker) releaseShedLock(ctx context.Context, name, token string) error {
	if err := l.ownToken(name, token, "release"); err != nil {
		return err
	}
	if err := l.shedInit(ctx); err != nil {
		return err
	}
	d := l.dialect
	cond, arg := ownerMatch(d.ph(2), token)
	q := fmt.Sprintf(`UPDATE %s SET lock_until = %s WHERE name = %s AND %s AND lock_until > %s`,
		l.qtable, l.shedReleaseNow(), d.ph(1), cond, l.shedNow())
	res, err := l.exec(ctx, true, "release "+name, q, name, arg)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return l.shedNotHeld(ctx, name, token)
	}
	if d.name() == "postgres" {
		_, _ = l.exec(ctx, true, "notify", "SELECT pg_notify($1, $2)", l.channel, name)
	}
	return nil
}

func (l *Locker) shedNotHeld(ctx context.Context, name, token string) error {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired}
	h, err := l.shedHolder(ctx, name)
	if err != nil {
		return err
	}
	if h != nil && h.Token != token {
		e.Reason, e.Current = lock.LostTaken, h
	}
	return lock.NotHeld(e)
}

func (l *Locker) inspectShedLock(ctx context.Context, name string) (*lock.Info, error) {
	if err := l.shedInit(ctx); err != nil {
		return nil, err
	}
	info := &lock.Info{Name: name, Key: l.key(name), Format: lock.FormatNone, FormatDetail: lock.FormatNone.Describe(),
		Waiters: -1, Backend: l.Backend(), Notes: []string{"ShedLock tables keep no break record and no fencing counter"}}
	h, err := l.shedHolder(ctx, name)
	if err != nil {
		return nil, err
	}
	if h != nil {
		info.Held, info.Holder, info.Format, info.FormatDetail = true, h, FormatShedLock, DescribeFormat(FormatShedLock)
	}
	return info, nil
}

func (l *Locker) listShedLock(ctx context.Context, prefix string) ([]lock.Info, error) {
	if err := l.shedInit(ctx); err != nil {
		return nil, err
	}
	d := l.dialect
	q := l.shedSelect(fmt.Sprintf("name LIKE %s ESCAPE '!' AND lock_until > %s", d.ph(1), l.shedNow()))
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	var rows *sql.Rows
	var err error
	if l.utcSession.Load() { // see shedInit
		c, cerr := l.db.Conn(cctx)
		if cerr != nil {
			return nil, l.classify(ctx, "list", cerr)
		}
		defer c.Close()
		l.statements.Add(2)
		if _, err = c.ExecContext(cctx, "SET time_zone = '+00:00'"); err == nil {
			rows, err = c.QueryContext(cctx, q, likePrefix(prefix))
		}
	} else {
		var s *sql.Stmt
		if s, err = l.stmt(cctx, q); err != nil {
			return nil, l.classify(ctx, "list", err)
		}
		l.statements.Add(1)
		rows, err = s.QueryContext(cctx, likePrefix(prefix))
	}
	if err != nil {
		return nil, l.classify(ctx, "list", err)
	}
	defer rows.Close()
	var out []lock.Info
	for rows.Next() {
		r := &shedRow{}
		if err := rows.Scan(&r.name, &r.lockedBy, &r.atMicros, &r.leftMicros); err != nil {
			return nil, l.classify(ctx, "list", err)
		}
		if r.leftMicros <= 0 || !strings.HasPrefix(r.name, prefix) {
			continue
		}
		out = append(out, lock.Info{Name: r.name, Key: l.key(r.name), Held: true, Format: FormatShedLock,
			FormatDetail: DescribeFormat(FormatShedLock), Holder: r.holder(), Waiters: -1, Backend: l.Backend()})
	}
	return out, l.classify(ctx, "list", rows.Err())
}

// breakShedLock sets lock_until = now on the row of the holder it read (compare on
// locked_by and locked_at), so a new holder is never broken by mistake.
func (l *Locker) breakShedLock(ctx context.Context, name string, opt lock.BreakOptions) (*lock.Info, error) {
	for attempt := 0; attempt < 5; attempt++ {
		info, err := l.inspectShedLock(ctx, name)
		if err != nil {
			return nil, err
		}
		if !info.Held {
			if opt.IfToken != "" {
				return nil, l.shedNotHeld(ctx, name, opt.IfToken)
			}
			return info, nil
		}
		if opt.IfToken != "" && info.Holder.Token != opt.IfToken {
			return nil, l.shedNotHeld(ctx, name, opt.IfToken)
		}
		d := l.dialect
		cond, arg := ownerMatch(d.ph(2), info.Holder.Token)
		// Also pin locked_at: a ShedLock client writes the same locked_by (its hostname)
		// every time, so only locked_at tells its next lease from the one read.
		at := "CAST(UNIX_TIMESTAMP(locked_at) * 1000000 AS SIGNED)"
		if d.name() == "postgres" {
			at = "(EXTRACT(EPOCH FROM locked_at) * 1000000)::bigint"
		}
		q := fmt.Sprintf(`UPDATE %s SET lock_until = %s WHERE name = %s AND %s AND %s = %s AND lock_until > %s`,
			l.qtable, l.shedReleaseNow(), d.ph(1), cond, at, d.ph(3), l.shedNow())
		res, err := l.exec(ctx, true, "break "+name, q, name, arg, info.Holder.AcquiredAt.UnixMicro())
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		if d.name() == "postgres" {
			_, _ = l.exec(ctx, true, "notify", "SELECT pg_notify($1, $2)", l.channel, name)
		}
		return info, nil
	}
	return nil, errs.New(errs.KindRuntime, "%s: lock %q changed holders five times while breaking it; nothing more was changed", l.target.Driver, name)
}
