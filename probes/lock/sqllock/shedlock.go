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
// Release match "locked_by LIKE '%#<token>'" and lock_until > now. A ShedLock client
// on the same host writes plain "<host>", so it can never extend or release dsctl's
// row, nor dsctl its (except through `lock break`).
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

// shedNow is the database clock in the representation of ShedLock's columns: the
// session time zone (TIMESTAMP columns) on MySQL, clock_timestamp() on PostgreSQL
// (compared with TIMESTAMP columns in the session time zone).
func (l *Locker) shedNow() string {
	if l.dialect.name() == "mysql" {
		return "NOW(6)"
	}
	return "clock_timestamp()"
}

// shedReleaseNow is the database clock truncated to milliseconds, written into
// lock_until on release and break: ShedLock compares with its own millisecond clock,
// so a release never leaves lock_until a fraction of a millisecond ahead of it.
func (l *Locker) shedReleaseNow() string {
	if l.dialect.name() == "mysql" {
		return "NOW(3)"
	}
	return "date_trunc('milliseconds', clock_timestamp())"
}

func (l *Locker) shedPlusMs(ms string) string {
	if l.dialect.name() == "mysql" {
		return "NOW(6) + INTERVAL (" + ms + " * 1000) MICROSECOND"
	}
	return "clock_timestamp() + (" + ms + ")::bigint * interval '1 millisecond'"
}

// ownerMatch is the WHERE condition proving ownership by token, and its argument.
func ownerMatch(ph, token string) (string, string) {
	if isShedToken(token) {
		return "locked_by LIKE " + ph, "%#" + token
	}
	return "locked_by = " + ph, token
}

func (l *Locker) acquireShedLock(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	token := shedToken()
	by := l.lockedBy(opt.Owner.PID, token)
	d := l.dialect
	var q string
	if d.name() == "mysql" {
		q = fmt.Sprintf(`INSERT INTO %s (name, lock_until, locked_at, locked_by) VALUES (?, %s, NOW(6), ?)
ON DUPLICATE KEY UPDATE
  locked_by = IF(lock_until <= NOW(6), VALUES(locked_by), locked_by),
  lock_until = IF(locked_by = VALUES(locked_by), VALUES(lock_until), lock_until),
  locked_at = IF(locked_by = VALUES(locked_by), VALUES(locked_at), locked_at)`, l.qtable, l.shedPlusMs("?"))
	} else {
		q = fmt.Sprintf(`INSERT INTO %s AS t (name, lock_until, locked_at, locked_by) VALUES ($1, %s, clock_timestamp(), $3)
ON CONFLICT (name) DO UPDATE SET lock_until = EXCLUDED.lock_until, locked_at = EXCLUDED.locked_at, locked_by = EXCLUDED.locked_by
WHERE t.lock_until <= clock_timestamp()
RETURNING 1`, l.qtable, l.shedPlusMs("$2"))
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
				n, _ := res.RowsAffected()
				ok = n > 0
			}
		} else {
			var one int
			ok, err = l.queryRow(ctx, true, "acquire "+name, q, []any{name, ms, by}, &one)
		}
		if err != nil {
			if errs.KindOf(err) == errs.KindUnreachable {
				go func() { _ = l.releaseShedLock(context.Background(), name, token) }()
			}
			return nil, w.fail(ctx, err, "")
		}
		if ok {
			if ctx.Err() != nil {
				go func() { _ = l.releaseShedLock(context.Background(), name, token) }()
				return nil, interrupted(ctx, name)
			}
			if expiredOnArrival(mono, opt.TTL) { // see Acquire
				go func(token string) { _ = l.releaseShedLock(context.Background(), name, token) }(token)
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
	return fmt.Sprintf(`SELECT name, locked_by, (EXTRACT(EPOCH FROM locked_at) * 1000000)::bigint, (EXTRACT(EPOCH FROM (lock_until - clock_timestamp()::timestamp)) * 1000000)::bigint FROM %s WHERE %s`, l.qtable, where)
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
		return nil, l.shedNotHeld(ctx, name, token)
	}
	return &lock.Lease{Name: name, Token: token, TTL: ttl, TTLMs: ttl.Milliseconds(), AcquiredAt: sent,
		ExpiresAt: deadline(sent, ttl), Backend: l.Backend(), Note: shedlockNote}, nil
}

func (l *Locker) releaseShedLock(ctx context.Context, name, token string) error {
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
	d := l.dialect
	q := l.shedSelect(fmt.Sprintf("name LIKE %s ESCAPE '!' AND lock_until > %s", d.ph(1), l.shedNow()))
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
		q := fmt.Sprintf(`UPDATE %s SET lock_until = %s WHERE name = %s AND %s AND lock_until > %s`, l.qtable, l.shedReleaseNow(), d.ph(1), cond, l.shedNow())
		res, err := l.exec(ctx, true, "break "+name, q, name, arg)
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
