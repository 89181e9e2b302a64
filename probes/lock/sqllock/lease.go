package sqllock

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Backoff of MySQL lease-mode waiters: full jitter over base * 2^n, capped.
const (
	backoffBase = 2 * time.Millisecond
	backoffCap  = 250 * time.Millisecond
	// notifyFallback bounds a PostgreSQL waiter's sleep when no NOTIFY comes (a
	// release made by a client that does not notify, e.g. another tool).
	notifyFallback = 2 * time.Second
)

// row is a lock row of the dsctl table, with times computed by the database.
type row struct {
	found       bool
	token       sql.NullString
	owner       sql.NullString
	fence       int64
	ttlMs       int64
	acqMicros   sql.NullInt64
	leftMicros  sql.NullInt64 // expires_at - database now
	sessionID   sql.NullInt64
	breakMicros sql.NullInt64
	breakBy     sql.NullString
	breakReason sql.NullString
	breakToken  sql.NullString
	breakFence  sql.NullInt64
}

func (r *row) dest() []any {
	return []any{&r.token, &r.owner, &r.fence, &r.ttlMs, &r.acqMicros, &r.leftMicros, &r.sessionID,
		&r.breakMicros, &r.breakBy, &r.breakReason, &r.breakToken, &r.breakFence}
}

// held reports a live lease by the database's clock.
func (r *row) held() bool {
	return r.found && r.token.Valid && r.token.String != "" && r.leftMicros.Valid && r.leftMicros.Int64 > 0
}

func (r *row) holder() *lock.Holder {
	h := &lock.Holder{Token: r.token.String, Fence: lock.FencingToken(r.fence)}
	if r.owner.Valid {
		var o lock.Owner
		if json.Unmarshal([]byte(r.owner.String), &o) == nil {
			h.Owner = &o
		}
	}
	if r.acqMicros.Valid {
		h.AcquiredAt = time.UnixMicro(r.acqMicros.Int64).UTC()
	}
	h.SetTTLLeft(time.Duration(r.leftMicros.Int64) * time.Microsecond)
	return h
}

func (r *row) lastBreak() *lock.Break {
	if !r.breakMicros.Valid {
		return nil
	}
	return &lock.Break{At: time.UnixMicro(r.breakMicros.Int64).UTC(), By: r.breakBy.String, Reason: r.breakReason.String,
		Token: r.breakToken.String, Fence: lock.FencingToken(r.breakFence.Int64)}
}

// rowSelect reads one lock row.
func (l *Locker) rowSelect() string {
	d := l.dialect
	return fmt.Sprintf(`SELECT token, owner, fence, ttl_ms, %s, %s, session_id, %s, break_by, break_reason, break_token, break_fence FROM %s WHERE name = %s`,
		d.epochMicros("acquired_at"), d.leftMicros("expires_at"), d.epochMicros("break_at"), l.qtable, d.ph(1))
}

func (l *Locker) readRow(ctx context.Context, name string) (*row, error) {
	r := &row{}
	found, err := l.queryRow(ctx, false, "read lock "+name, l.rowSelect(), []any{name}, r.dest()...)
	if err != nil {
		return nil, err
	}
	r.found = found
	return r, nil
}

// validate checks the inputs of Acquire before any I/O.
func (l *Locker) validate(name string, ttl time.Duration, label string) error {
	if err := l.validateName(name); err != nil {
		return err
	}
	if err := lock.ValidateTTL(ttl); err != nil {
		return err
	}
	return lock.ValidateLabel(label)
}

func (l *Locker) validateName(name string) error {
	if err := lock.ValidateName(name); err != nil {
		return err
	}
	if l.format == FormatUniqueKey {
		return errs.Usage("--format unique-key: dsctl does not take, renew or release locks in unique-key table %s (no expiry: a crashed holder would keep the lock forever)", l.table).
			WithHint("use dsctl's own table (drop --format) to take locks; inspect, list and break work on unique-key tables")
	}
	if l.format == FormatShedLock && len([]rune(name)) > shedlockNameLen {
		return errs.Usage("lock name %q is %d characters long; a ShedLock table's name column holds %d", name, len([]rune(name)), shedlockNameLen).
			WithHint("use a shorter name (ShedLock's documented table has name VARCHAR(%d))", shedlockNameLen)
	}
	return nil
}

// acquireSQL is the one statement that takes a free or expired lock by the database
// clock. PostgreSQL returns the new fence; MySQL reports it through LAST_INSERT_ID.
func (l *Locker) acquireSQL() string {
	if l.dialect.name() == "mysql" {
		return l.mysqlTakeSQL(false)
	}
	return fmt.Sprintf(`INSERT INTO %s AS t (name, token, owner, fence, ttl_ms, acquired_at, expires_at, session_id)
VALUES ($1, $2, $3, 1, $4::bigint, clock_timestamp(), %s, NULL)
ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, owner = EXCLUDED.owner, fence = t.fence + 1,
  ttl_ms = EXCLUDED.ttl_ms, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at, session_id = NULL
WHERE t.token IS NULL OR t.expires_at <= clock_timestamp()
RETURNING t.fence`, l.qtable, l.dialect.plusMs("$4"))
}

// mysqlFree is the takeover condition of the MySQL acquire statements: the row is free
// or its lease expired by the database clock (UTC_TIMESTAMP is fixed for a statement).
const mysqlFree = "(token IS NULL OR expires_at <= UTC_TIMESTAMP(6))"

// mysqlTakeSQL is the MySQL/MariaDB acquire statement (session: the session-mode stamp,
// which also records the holder's connection id; one more argument). Its arguments are
// name, token, owner, ttl ms, ttl ms[, session id].
//
// Two things it does not rely on:
//   - The order of the ON DUPLICATE KEY UPDATE assignments. MySQL assigns left to
//     right, each assignment seeing the ones before; MariaDB with sql_mode
//     SIMULTANEOUS_ASSIGNMENT makes every assignment see the old row. Every column is
//     assigned under the same condition on the OLD row (mysqlFree, which reads token and
//     expires_at only), and those two columns come last: token under mysqlFree, then
//     expires_at under "token = VALUES(token) OR mysqlFree", which is the same decision
//     whether token already holds its new value (left to right) or not (simultaneous).
//   - "Rows affected" (a DSN with clientFoundRows=true reports a row that was found but
//     left unchanged as affected). The decision comes back through LAST_INSERT_ID, which
//     every path sets exactly once more after the VALUES row: 1 on insert (the fence),
//     fence + 1 on takeover, 0 when the row is held by someone else.
func (l *Locker) mysqlTakeSQL(session bool) string {
	sid, sidNew := "NULL", "NULL"
	if session {
		sid, sidNew = "?", "VALUES(session_id)"
	}
	return fmt.Sprintf(`INSERT INTO %[1]s (name, token, owner, fence, ttl_ms, acquired_at, expires_at, session_id)
VALUES (?, ?, ?, LAST_INSERT_ID(1), ?, UTC_TIMESTAMP(6), %[2]s, %[3]s)
ON DUPLICATE KEY UPDATE
  fence = IF(%[5]s, LAST_INSERT_ID(fence + 1), fence + LAST_INSERT_ID(0)),
  owner = IF(%[5]s, VALUES(owner), owner),
  ttl_ms = IF(%[5]s, VALUES(ttl_ms), ttl_ms),
  acquired_at = IF(%[5]s, VALUES(acquired_at), acquired_at),
  session_id = IF(%[5]s, %[4]s, session_id),
  token = IF(%[5]s, VALUES(token), token),
  expires_at = IF(token = VALUES(token) OR %[5]s, VALUES(expires_at), expires_at)`,
		l.qtable, l.dialect.plusMs("?"), sid, sidNew, mysqlFree)
}

// tryAcquire runs the acquire statement once on q (the pool when nil). ok is false when
// someone else holds the lock. The statement is never abandoned half-way: if the
// caller gave up meanwhile, a lock it got is released again.
func (l *Locker) tryAcquire(ctx context.Context, q queryer, name, token, owner string, ttl time.Duration) (fence int64, ok bool, err error) {
	ms := ttl.Milliseconds()
	if l.dialect.name() == "mysql" {
		args := []any{name, token, owner, ms, ms}
		var res sql.Result
		if q == nil {
			res, err = l.exec(ctx, true, "acquire "+name, l.acquireSQL(), args...)
		} else {
			cctx, cancel := l.bounded(ctx, true)
			l.statements.Add(1)
			res, err = q.ExecContext(cctx, l.acquireSQL(), args...)
			cancel()
			err = l.classify(ctx, "acquire "+name, err)
		}
		if err != nil {
			return 0, false, err
		}
		id, _ := res.LastInsertId() // 0: held by someone else (see mysqlTakeSQL)
		return id, id > 0, nil
	}
	args := []any{name, token, owner, ms}
	var found bool
	if q == nil {
		found, err = l.queryRow(ctx, true, "acquire "+name, l.acquireSQL(), args, &fence)
	} else {
		cctx, cancel := l.bounded(ctx, true)
		l.statements.Add(1)
		err = q.QueryRowContext(cctx, l.acquireSQL(), args...).Scan(&fence)
		cancel()
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil
		}
		found, err = err == nil, l.classify(ctx, "acquire "+name, err)
	}
	if err != nil {
		return 0, false, err
	}
	return fence, found, nil
}

// Acquire takes the lock, waiting as opt.Wait says.
func (l *Locker) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	if err := l.validate(name, opt.TTL, opt.Owner.Label); err != nil {
		return nil, err
	}
	if opt.RequireFencing && !l.Backend().FencingSafe {
		return nil, errs.Usage("--require-fencing: %s locks in ShedLock table %s carry no fencing token", l.target.Driver, l.table).
			WithHint("ShedLock's table has no fencing counter; use dsctl's own table (drop --format shedlock) for fenced work")
	}
	if opt.Fair {
		return nil, errs.Usage("--fair: SQL locks have no waiter queue; waiters race for the row when it is freed").
			WithHint("drop --fair, or use ZooKeeper or Redis for first-come-first-served order")
	}
	if err := l.shapeOK(ctx); err != nil { // checked once per Locker (in New)
		return nil, err
	}
	switch {
	case l.format == FormatShedLock:
		return l.acquireShedLock(ctx, name, opt)
	case l.mode == ModeSession:
		return l.acquireSession(ctx, name, opt)
	}
	ownerJSON, _ := json.Marshal(opt.Owner)
	token := newToken()
	start := l.now()
	w := &waiter{l: l, name: name, opt: opt, start: time.Now()}
	defer w.close()
	for {
		sent, mono := l.now(), time.Now()
		fence, ok, err := l.tryAcquire(ctx, w.q(), name, token, string(ownerJSON), opt.TTL)
		if err != nil {
			return nil, w.fail(ctx, err, token)
		}
		if ok {
			if ctx.Err() != nil { // the caller gave up while the statement ran
				l.releaseQuietly(name, token, true)
				return nil, interrupted(ctx, name)
			}
			if expiredOnArrival(mono, opt.TTL) {
				// The answer came after the lease's local deadline: someone may hold the
				// lock (with a larger fence) already. Drop it and try again.
				l.releaseQuietly(name, token, true)
				token = newToken()
				if err := w.spin(ctx); err != nil {
					return nil, err
				}
				continue
			}
			return &lock.Lease{Name: name, Token: token, Fence: lock.FencingToken(fence), FencingSafe: true,
				TTL: opt.TTL, TTLMs: opt.TTL.Milliseconds(), AcquiredAt: sent, ExpiresAt: deadline(sent, opt.TTL),
				Owner: opt.Owner, Backend: l.Backend()}, nil
		}
		r, err := l.readRow(ctx, name)
		if err != nil {
			return nil, w.fail(ctx, err, token)
		}
		if !r.held() {
			if err := w.spin(ctx); err != nil {
				return nil, err
			}
			continue // freed between the two statements: try again at once
		}
		h := r.holder()
		if err := w.waitFor(ctx, h, l.now().Sub(start)); err != nil {
			return nil, err
		}
	}
}

// expiredOnArrival reports a grant whose answer came after the lease's conservative
// local deadline (request sent at mono, real clock).
func expiredOnArrival(mono time.Time, ttl time.Duration) bool {
	return time.Since(mono) >= ttl-lock.ClockDrift(ttl)
}

// releaseQuietly frees a lease nobody will use (the caller gave up, or its answer came
// too late), within the dialer's timeout whatever the caller's context says. With wait
// it returns when the release is done, so a caller that closes the Locker right after
// (the CLI on its way out) does not strand the lock for its TTL; without (the database
// seems unreachable: the release may take the whole timeout) it runs in the
// background, and Close waits for it (bounded by the timeout).
func (l *Locker) releaseQuietly(name, token string, wait bool) {
	rel := func() {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		defer cancel()
		_ = l.Release(ctx, name, token) // ShedLock tokens go to releaseShedLock
	}
	if wait {
		rel()
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.pending.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.pending.Done()
		rel()
	}()
}

func interrupted(ctx context.Context, name string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "interrupted while acquiring lock %q", name)
	}
	return errs.Unreachable("sql", "", 0, "", ctx.Err())
}

// waiter is one Acquire's waiting state: the holders seen, the backoff, and on
// PostgreSQL the dedicated connection that LISTENs for releases.
type waiter struct {
	l        *Locker
	name     string
	opt      lock.AcquireOptions
	start    time.Time // real clock: --wait is a duration
	last     string    // last holder token seen
	attempts int
	spins    int
	listen   *listener
}

// q is where attempts run: the listening connection once there is one.
func (w *waiter) q() queryer {
	if w.listen != nil {
		return w.listen.conn
	}
	return nil
}

func (w *waiter) close() {
	if w.listen != nil {
		w.listen.close()
		w.listen = nil
	}
}

// fail turns an error during the wait into the caller's error: interrupted when the
// caller gave up. token may have been granted by a statement whose answer was lost.
func (w *waiter) fail(ctx context.Context, err error, token string) error {
	if errs.KindOf(err) == errs.KindUnreachable && token != "" {
		w.l.releaseQuietly(w.name, token, false)
	}
	if ctx.Err() != nil && errs.KindOf(err) != errs.KindInterrupted && errors.Is(ctx.Err(), context.Canceled) {
		return interrupted(ctx, w.name)
	}
	return err
}

// spin bounds the retries of a lock that was free when read but taken when tried.
func (w *waiter) spin(ctx context.Context) error {
	w.spins++
	if w.spins > 1000 {
		return errs.New(errs.KindRuntime, "lock %q: gave up after 1000 attempts that found it free but could not take it", w.name)
	}
	if ctx.Err() != nil {
		return interrupted(ctx, w.name)
	}
	return nil
}

// waitFor waits until the lock may be free: a NOTIFY (PostgreSQL), the end of a
// backoff step (MySQL) or a poll interval, never past the holder's expiry nor the wait's
// deadline. It fails with NotAcquired when the wait is over.
func (w *waiter) waitFor(ctx context.Context, h *lock.Holder, _ time.Duration) error {
	if h.Token != w.last {
		w.last = h.Token
		if w.opt.OnWait != nil {
			w.opt.OnWait(h)
		}
	}
	waited := time.Since(w.start)
	if w.opt.Wait.Zero() || (!w.opt.Wait.Forever() && waited >= w.opt.Wait.Max()) {
		return lock.NotAcquired(&lock.NotAcquiredError{Name: w.name, Holder: h, Wait: w.opt.Wait, Waited: waited})
	}
	sleep := h.TTLLeft + time.Millisecond // the holder's expiry: try then at the latest
	if !w.opt.Wait.Forever() {
		sleep = min(sleep, w.opt.Wait.Max()-waited)
	}
	w.attempts++
	switch {
	case w.opt.Strategy == lock.WaitPoll:
		interval := w.opt.PollInterval
		if interval <= 0 {
			interval = lock.DefaultPollInterval
		}
		sleep = min(sleep, interval)
	case w.l.dialect.name() == "postgres":
		if w.listen == nil {
			ln, err := w.l.listen(ctx)
			if err != nil {
				return w.fail(ctx, err, "")
			}
			w.listen = ln
			return nil // listening now: try again before sleeping (a release may have come between)
		}
		return w.listen.wait(ctx, w.name, min(sleep, notifyFallback))
	default:
		step := backoffBase << min(w.attempts-1, 10)
		step = min(step, backoffCap)
		sleep = min(sleep, max(time.Millisecond, time.Duration(mrand.Int64N(int64(step)+1))))
	}
	t := time.NewTimer(sleep)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return interrupted(ctx, w.name)
	}
}

// Renew extends the lease of token to ttl from now (database clock). An expired lease
// is never renewed, even when nobody took it.
func (l *Locker) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	if err := l.validateName(name); err != nil {
		return nil, err
	}
	if err := lock.ValidateTTL(ttl); err != nil {
		return nil, err
	}
	switch {
	case l.format == FormatShedLock:
		return l.renewShedLock(ctx, name, token, ttl)
	case l.mode == ModeSession:
		return l.renewSession(ctx, name, token, ttl)
	}
	d := l.dialect
	sent := l.now()
	ms := ttl.Milliseconds()
	var fence int64
	if d.name() == "mysql" {
		q := fmt.Sprintf(`UPDATE %s SET fence = LAST_INSERT_ID(fence), expires_at = %s, ttl_ms = ? WHERE name = ? AND token = ? AND expires_at > UTC_TIMESTAMP(6)`,
			l.qtable, d.plusMs("?"))
		res, err := l.exec(ctx, true, "renew "+name, q, ms, ms, name, token)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, l.notHeld(ctx, name, token)
		}
		fence, _ = res.LastInsertId()
	} else {
		q := fmt.Sprintf(`UPDATE %s SET expires_at = %s, ttl_ms = $2::bigint WHERE name = $1 AND token = $3 AND expires_at > clock_timestamp() RETURNING fence`,
			l.qtable, d.plusMs("$2"))
		found, err := l.queryRow(ctx, true, "renew "+name, q, []any{name, ms, token}, &fence)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, l.notHeld(ctx, name, token)
		}
	}
	return &lock.Lease{Name: name, Token: token, Fence: lock.FencingToken(fence), FencingSafe: true, TTL: ttl, TTLMs: ms,
		AcquiredAt: sent, ExpiresAt: deadline(sent, ttl), Backend: l.Backend()}, nil
}

// Release frees the lock if token holds it (by the database clock) and wakes the
// waiters (PostgreSQL: NOTIFY in the same statement).
func (l *Locker) Release(ctx context.Context, name, token string) error {
	if err := l.validateName(name); err != nil {
		return err
	}
	switch {
	case l.format == FormatShedLock:
		return l.releaseShedLock(ctx, name, token)
	case l.mode == ModeSession:
		return l.releaseSession(ctx, name, token)
	}
	released, err := l.releaseRow(ctx, l.db, name, token, true)
	if err != nil {
		return err
	}
	if !released {
		return l.notHeld(ctx, name, token)
	}
	return nil
}

// releaseRow frees the row of token (live leases only when live is set) and notifies.
func (l *Locker) releaseRow(ctx context.Context, q queryer, name, token string, live bool) (bool, error) {
	d := l.dialect
	cond := ""
	if live {
		cond = " AND expires_at > " + d.now()
	}
	if d.name() == "mysql" {
		sqlText := fmt.Sprintf(`UPDATE %s SET token = NULL, owner = NULL, session_id = NULL, expires_at = UTC_TIMESTAMP(6) WHERE name = ? AND token = ?%s`, l.qtable, cond)
		var res sql.Result
		var err error
		if q == l.db {
			res, err = l.exec(ctx, true, "release "+name, sqlText, name, token)
		} else {
			cctx, cancel := l.bounded(ctx, true)
			l.statements.Add(1)
			res, err = q.ExecContext(cctx, sqlText, name, token)
			cancel()
			err = l.classify(ctx, "release "+name, err)
		}
		if err != nil {
			return false, err
		}
		n, _ := res.RowsAffected()
		return n > 0, nil
	}
	sqlText := fmt.Sprintf(`WITH r AS (UPDATE %s SET token = NULL, owner = NULL, session_id = NULL, expires_at = clock_timestamp() WHERE name = $1 AND token = $2%s RETURNING name)
SELECT pg_notify($3, r.name)::text FROM r`, l.qtable, cond)
	var out string
	if q == l.db {
		return l.queryRow(ctx, true, "release "+name, sqlText, []any{name, token, l.channel}, &out)
	}
	cctx, cancel := l.bounded(ctx, true)
	defer cancel()
	l.statements.Add(1)
	err := q.QueryRowContext(cctx, sqlText, name, token, l.channel).Scan(&out)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, l.classify(ctx, "release "+name, err)
}

// notHeld explains why token does not hold the lock: someone else holds it, it was
// broken (the row's break record names the token), or it is free.
func (l *Locker) notHeld(ctx context.Context, name, token string) error {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired}
	ctx, done := lock.WhyContext(ctx) // reading why gets its own time
	defer done()
	r, err := l.readRow(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case r.held() && r.token.String != token:
		e.Reason, e.Current = lock.LostTaken, r.holder()
	case r.held():
		e.Detail = "its row is still held but this process gave it up"
	case r.breakToken.Valid && r.breakToken.String == token:
		e.Reason, e.Break = lock.LostBroken, r.lastBreak()
	}
	return lock.NotHeld(e)
}

// likePrefix is a LIKE pattern matching names that start with prefix (escape '!').
func likePrefix(prefix string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(prefix) + "%"
}
