package sqllock

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// sessionLease is a session-mode lease this Locker holds on its own connection.
type sessionLease struct {
	name, token string
	fence       int64
	owner       lock.Owner
	conn        *sql.Conn
	sid         int64 // connection id / backend pid
	ttl         time.Duration
	acquiredAt  time.Time
	expiresAt   time.Time
	ttlEnd      time.Time // real clock: when the holder gives the lease up unless renewed
	timer       *time.Timer

	mu   sync.Mutex // serializes Renew, Release and the TTL timer
	gone bool
}

const sessionNote = "held by this process's database connection (a session lock): renew within the TTL or the lease is given up; the server frees it if the connection ends"

// foreignPoll is how often a PostgreSQL waiter retries a session lock that nobody will
// notify about.
const foreignPoll = 50 * time.Millisecond

// maxGone bounds the memory of tokens given up.
const maxGone = 4096

// tryLockSQL tries the session lock without waiting and returns the session id.
// In the same statement, before the session lock, the connection takes its client
// marker (mysqlClientMarker, pgClientMarkerClass): whoever finds the session lock held
// with no row stamped yet can tell a dsctl client from another program (IF and CASE
// evaluate their condition first). The marker lives as long as the connection: one
// released cleanly goes back to this Locker's pool still marked, which misnames
// nothing (only this Locker's session-mode acquires take session locks on it).
func (l *Locker) tryLockSQL() string {
	if l.dialect.name() == "mysql" {
		return "SELECT IF(GET_LOCK(CONCAT('" + mysqlClientMarker + "', CONNECTION_ID()), 0) IS NULL, 0, COALESCE(GET_LOCK(?, 0), 0)), CONNECTION_ID()"
	}
	return "SELECT COALESCE(CASE WHEN pg_try_advisory_lock(" + pgClientMarkerClass + ", pg_backend_pid()) IS NOT NULL THEN pg_try_advisory_lock($1::bigint)::int END, 0), pg_backend_pid()"
}

// The client marker of a dsctl session-mode connection: on MySQL the user lock
// "dsctl client <connection id>" (a space: never a dsctl lock's name), on PostgreSQL
// the two-key advisory lock (pgClientMarkerClass, backend pid) (dsctl's own locks use
// the one-key bigint form).
const (
	mysqlClientMarker   = "dsctl client "
	pgClientMarkerClass = "1685283700" // "dsct" as a 4-byte integer
)

func (l *Locker) sessionKey(name string) any {
	if l.dialect.name() == "mysql" {
		return UserLockName(name)
	}
	return AdvisoryKey(name)
}

// acquireSession takes the session lock on a dedicated connection, waiting in GET_LOCK
// (MySQL) or for a NOTIFY (PostgreSQL), then stamps the row with a new fence.
func (l *Locker) acquireSession(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	cctx, cancel := l.bounded(ctx, false)
	conn, err := l.db.Conn(cctx)
	cancel()
	if err != nil {
		return nil, l.classify(ctx, "connect", err)
	}
	keep := false
	defer func() {
		if !keep {
			discard(conn)
		}
	}()
	start := time.Now()
	var waitUntil time.Time // zero: forever
	if !opt.Wait.Forever() {
		waitUntil = start.Add(opt.Wait.Max())
	}
	var sid int64
	var last string
	listening := false
	for attempt := 0; ; attempt++ {
		var got int64
		qctx, qcancel := l.bounded(ctx, true)
		l.statements.Add(1)
		err := conn.QueryRowContext(qctx, l.tryLockSQL(), l.sessionKey(name)).Scan(&got, &sid)
		qcancel()
		if err != nil {
			return nil, l.classify(ctx, "acquire "+name, err)
		}
		if got == 1 {
			lease, err := l.grantSession(ctx, conn, sid, name, opt, waitUntil)
			if err != nil {
				return nil, err
			}
			if lease != nil {
				keep = true
				return lease, nil
			}
			// The row is held by a lease-mode holder of the same name: wait for it.
		}
		// Settle (see inspect) only the first time a holder without a row is seen: a
		// PostgreSQL waiter polls another program's advisory lock every foreignPoll.
		info, err := l.inspect(ctx, name, !strings.HasPrefix(last, l.sessionWord()+" "))
		if err != nil {
			return nil, err
		}
		h := info.Holder
		if h == nil {
			h = &lock.Holder{Token: "unknown"}
		}
		if h.Token != last {
			last = h.Token
			if opt.OnWait != nil && info.Held {
				opt.OnWait(h)
			}
		}
		waited := time.Since(start)
		if opt.Wait.Zero() || (!opt.Wait.Forever() && waited >= opt.Wait.Max()) {
			return nil, lock.NotAcquired(&lock.NotAcquiredError{Name: name, Holder: info.Holder, Wait: opt.Wait, Waited: waited})
		}
		limit := l.timeout - l.timeout/5 // a server-side wait must end before the read timeout
		if !opt.Wait.Forever() {
			limit = min(limit, opt.Wait.Max()-waited)
		}
		if h.TTLLeft > 0 {
			limit = min(limit, h.TTLLeft+time.Millisecond)
		} else if l.dialect.name() == "postgres" {
			// A session lock without a live row: another program's, or a dsctl holder
			// past its lease whose connection the server is about to end (idle
			// timeout). Neither sends a NOTIFY: poll.
			limit = min(limit, foreignPoll)
		}
		if opt.Strategy == lock.WaitPoll {
			if err := sleepCtx(ctx, min(limit, max(opt.PollInterval, time.Millisecond))); err != nil {
				return nil, interrupted(ctx, name)
			}
			continue
		}
		if l.dialect.name() == "mysql" {
			// Wait inside GET_LOCK: the server grants it the moment the holder releases.
			secs := math.Max(0.001, limit.Seconds())
			var got2 sql.NullInt64
			l.statements.Add(1)
			err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", UserLockName(name), secs).Scan(&got2)
			if err != nil {
				if ctx.Err() != nil {
					return nil, interrupted(ctx, name) // the connection is discarded: a late grant dies with it
				}
				return nil, l.classify(ctx, "acquire "+name, err)
			}
			if got2.Valid && got2.Int64 == 1 {
				lease, err := l.grantSession(ctx, conn, sid, name, opt, waitUntil)
				if err != nil {
					return nil, err
				}
				if lease != nil {
					keep = true
					return lease, nil
				}
			}
			continue
		}
		if !listening {
			l.statements.Add(1)
			if _, err := conn.ExecContext(ctx, "LISTEN "+quoteIdent(l.channel)); err != nil {
				return nil, l.classify(ctx, "listen", err)
			}
			listening = true
			continue
		}
		ln := &listener{l: l, conn: conn}
		if err := ln.wait(ctx, name, min(limit, notifyFallback)); err != nil {
			return nil, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// discard closes a dedicated connection for good (its session locks end with it).
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// grantSession stamps the row of a session lock just taken on conn: new token, owner,
// fence + 1, this session's id. The row is taken only when it is free or its lease has
// expired by the database clock: a previous holder whose connection ended (killed,
// reset, crashed) may still believe it holds the lock until its local deadline, which
// the row's expires_at bounds. So the new holder keeps the session lock and waits for
// the row's expiry (within its --wait); a row held by a live lease-mode holder of the
// same name is not waited for here (nil lease: the session lock is released again).
func (l *Locker) grantSession(ctx context.Context, conn *sql.Conn, sid int64, name string, opt lock.AcquireOptions, waitUntil time.Time) (*lock.Lease, error) {
	token := newToken()
	ownerJSON, _ := json.Marshal(opt.Owner)
	ms := opt.TTL.Milliseconds()
	d := l.dialect
	cctx, cancel := l.bounded(ctx, true)
	defer cancel()
	var fence int64
	var sent, mono time.Time
	for attempt := 0; ; attempt++ {
		// The lease starts with the stamp: the row's expiry and the local deadline are
		// both measured from it.
		sent, mono = l.now(), time.Now()
		took, f, err := l.stampSession(ctx, conn, sid, name, token, string(ownerJSON), ms)
		if err != nil {
			return nil, err
		}
		if took && expiredOnArrival(mono, opt.TTL) { // see Acquire
			_, _ = l.releaseRow(cctx, conn, name, token, false)
			l.unlockSession(cctx, conn, name)
			return nil, nil
		}
		if took {
			fence = f
			break
		}
		r, err := l.readRow(ctx, name)
		if err != nil {
			return nil, err
		}
		left := time.Duration(r.leftMicros.Int64) * time.Microsecond
		wait := left + time.Millisecond
		if !waitUntil.IsZero() {
			wait = min(wait, time.Until(waitUntil))
		}
		if attempt > 2 || !r.held() || !r.sessionID.Valid || wait <= 0 {
			l.unlockSession(cctx, conn, name)
			return nil, nil
		}
		if opt.OnWait != nil && attempt == 0 {
			opt.OnWait(r.holder())
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, interrupted(ctx, name) // the connection is discarded, and its lock with it
		}
	}
	if d.name() == "mysql" {
		// The server ends the connection (and frees the lock) if the holder stops
		// talking for longer than its TTL: MySQL counts whole seconds.
		l.statements.Add(1)
		_, _ = conn.ExecContext(cctx, fmt.Sprintf("SET SESSION wait_timeout = %d", int64(math.Ceil(opt.TTL.Seconds()))))
	} else {
		l.statements.Add(1)
		_, _ = conn.ExecContext(cctx, "UNLISTEN *")
		// The server ends the connection if it stays idle for longer than the TTL
		// (PostgreSQL 14+; older servers ignore it and rely on the holder's timer).
		l.statements.Add(1)
		_, _ = conn.ExecContext(cctx, fmt.Sprintf("SET idle_session_timeout = %d", opt.TTL.Milliseconds()))
	}
	if ctx.Err() != nil {
		_, _ = l.releaseRow(context.Background(), conn, name, token, false)
		return nil, interrupted(ctx, name)
	}
	h := &sessionLease{name: name, token: token, fence: fence, owner: opt.Owner, conn: conn, sid: sid, ttl: opt.TTL,
		acquiredAt: sent, expiresAt: deadline(sent, opt.TTL), ttlEnd: time.Now().Add(opt.TTL)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errs.New(errs.KindRuntime, "%s: the locker was closed", l.target.Driver)
	}
	h.mu.Lock()
	h.timer = time.AfterFunc(opt.TTL, func() { l.expireSession(h) })
	l.held[token] = h
	l.mu.Unlock()
	lease := l.sessionLeaseOf(h)
	h.mu.Unlock()
	return lease, nil
}

// stampSession writes the grant into the row when it is free or expired (one
// statement); took is false when the row holds a live lease.
func (l *Locker) stampSession(ctx context.Context, conn *sql.Conn, sid int64, name, token, owner string, ms int64) (took bool, fence int64, err error) {
	d := l.dialect
	cctx, cancel := l.bounded(ctx, true)
	defer cancel()
	l.statements.Add(1)
	if d.name() == "mysql" {
		q := l.mysqlTakeSQL(true)
		res, err := conn.ExecContext(cctx, q, name, token, owner, ms, ms, sid)
		if err != nil {
			return false, 0, l.classify(ctx, "acquire "+name, err)
		}
		fence, _ = res.LastInsertId() // 0: the row holds a live lease (see mysqlTakeSQL)
		return fence > 0, fence, nil
	}
	q := fmt.Sprintf(`INSERT INTO %s AS t (name, token, owner, fence, ttl_ms, acquired_at, expires_at, session_id)
VALUES ($1, $2, $3, 1, $4::bigint, clock_timestamp(), %s, $5)
ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, owner = EXCLUDED.owner, fence = t.fence + 1,
  ttl_ms = EXCLUDED.ttl_ms, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at, session_id = EXCLUDED.session_id
WHERE t.token IS NULL OR t.expires_at <= clock_timestamp()
RETURNING t.fence, pg_backend_pid()`, l.qtable, d.plusMs("$4"))
	var pid int64
	err = conn.QueryRowContext(cctx, q, name, token, owner, ms, sid).Scan(&fence, &pid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, 0, nil
	case err != nil:
		return false, 0, l.classify(ctx, "acquire "+name, err)
	}
	if pid != sid {
		// The advisory lock was taken by backend sid, this statement ran on another: a
		// transaction-pooling proxy (PgBouncer pool_mode=transaction) hands each
		// statement to any server connection, so no session lock can be held.
		_, _ = l.releaseRow(cctx, conn, name, token, false)
		return false, 0, errs.Usage("%s %s: --mode session needs one server session per connection, but two statements on one connection ran on backends %d and %d (a transaction-pooling proxy such as PgBouncer?)",
			l.target.Driver, l.target.Name, sid, pid).
			WithHint("use --mode lease (rows work through any pooler), or connect directly or through session pooling for --mode session; the advisory lock taken on backend %d is freed when that server connection is reset or closed", sid)
	}
	return true, fence, nil
}

func (l *Locker) unlockSession(ctx context.Context, conn *sql.Conn, name string) {
	q := "SELECT RELEASE_LOCK(?)"
	if l.dialect.name() == "postgres" {
		q = "SELECT pg_advisory_unlock($1::bigint)::int"
	}
	var out sql.NullInt64
	l.statements.Add(1)
	_ = conn.QueryRowContext(ctx, q, l.sessionKey(name)).Scan(&out)
}

func (l *Locker) sessionLeaseOf(h *sessionLease) *lock.Lease {
	return &lock.Lease{Name: h.name, Token: h.token, Fence: lock.FencingToken(h.fence), FencingSafe: true, TTL: h.ttl, TTLMs: h.ttl.Milliseconds(),
		AcquiredAt: h.acquiredAt, ExpiresAt: h.expiresAt, Owner: h.owner, Backend: l.Backend(),
		Note: sessionNote + "; " + l.sessionLockName(h.name)}
}

// expireSession gives up a lease whose TTL passed without a renewal.
func (l *Locker) expireSession(h *sessionLease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	if left := time.Until(h.ttlEnd); left > 0 {
		h.timer.Reset(left)
		return
	}
	l.giveUp(h)
}

// giveUp frees the session lock and the row, then drops the lease (h.mu held).
func (l *Locker) giveUp(h *sessionLease) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, _ = l.releaseRow(ctx, h.conn, h.name, h.token, false)
	l.unlockSession(ctx, h.conn, h.name)
	l.dropSession(h, false)
	if l.dialect.name() == "postgres" {
		_, _ = l.exec(ctx, true, "notify", "SELECT pg_notify($1, $2)", l.channel, h.name)
	}
}

// dropSession forgets a lease and gives its connection back to the pool (reuse: the
// session lock is released and the session settings reset) or closes it for good
// (h.mu held).
func (l *Locker) dropSession(h *sessionLease, reuse bool) {
	h.gone = true
	if h.timer != nil {
		h.timer.Stop()
	}
	if reuse {
		_ = h.conn.Close()
	} else {
		discard(h.conn)
	}
	l.mu.Lock()
	delete(l.held, h.token)
	if len(l.gone) >= maxGone {
		clear(l.gone)
	}
	l.gone[h.token] = true
	l.mu.Unlock()
}

func (l *Locker) lookup(token string) (*sessionLease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[token]
	return h, ok || l.gone[token]
}

// foreignSession refuses to renew or release a session lease held by another process.
func (l *Locker) foreignSession(ctx context.Context, name, token, what string) error {
	r, err := l.readRow(ctx, name)
	if err != nil {
		return err
	}
	if r.held() && r.token.String == token {
		return errs.Usage("lock %q: token %s is held by another process's database connection (--mode session); only that process can %s it", name, lock.ShortToken(token), what).
			WithHint("session locks live with their connection; use dsctl lock run, or `dsctl lock break --if-token %s %s`", token, lock.QuoteCommand([]string{name}))
	}
	return nil
}

// renewSession checks the connection with a statement on it that moves the row's
// expiry: an error on the connection means the session (and its lock) is gone.
func (l *Locker) renewSession(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	h, known := l.lookup(token)
	if h == nil {
		if !known {
			if err := l.foreignSession(ctx, name, token, "renew"); err != nil {
				return nil, err
			}
		}
		return nil, l.notHeld(ctx, name, token)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone || h.name != name {
		return nil, l.notHeld(ctx, name, token)
	}
	if time.Now().After(h.ttlEnd) {
		l.giveUp(h)
		return nil, l.notHeld(ctx, name, token)
	}
	d := l.dialect
	sent := l.now()
	ms := ttl.Milliseconds()
	cctx, cancel := l.bounded(ctx, true)
	defer cancel()
	var n int64
	var err error
	l.statements.Add(1)
	if d.name() == "mysql" {
		var res sql.Result
		res, err = h.conn.ExecContext(cctx, fmt.Sprintf(`UPDATE %s SET expires_at = %s, ttl_ms = ? WHERE name = ? AND token = ? AND session_id = CONNECTION_ID() AND expires_at > UTC_TIMESTAMP(6)`, l.qtable, d.plusMs("?")),
			ms, ms, name, token)
		if err == nil {
			n, _ = res.RowsAffected()
		}
	} else {
		var res sql.Result
		res, err = h.conn.ExecContext(cctx, fmt.Sprintf(`UPDATE %s SET expires_at = %s, ttl_ms = $2::bigint WHERE name = $1 AND token = $3 AND session_id = pg_backend_pid() AND expires_at > clock_timestamp()`, l.qtable, d.plusMs("$2")),
			name, ms, token)
		if err == nil {
			n, _ = res.RowsAffected()
		}
	}
	if err != nil {
		if tableMissing(err) || columnMissing(err) || permissionDenied(err) {
			return nil, l.classify(ctx, "renew "+name, err)
		}
		// The connection failed: its session, and the session lock with it, is gone
		// (killed server-side, idle timeout, restart) or unusable. Either way this
		// process can no longer prove it holds the lock.
		l.dropSession(h, false)
		return nil, l.connectionLost(ctx, name, token, err)
	}
	if n == 0 { // broken (the row no longer names this token) or expired by the database clock: never renewed
		l.giveUp(h)
		return nil, l.notHeld(ctx, name, token)
	}
	if ttl != h.ttl {
		l.statements.Add(1)
		if d.name() == "mysql" {
			_, _ = h.conn.ExecContext(cctx, fmt.Sprintf("SET SESSION wait_timeout = %d", int64(math.Ceil(ttl.Seconds()))))
		} else {
			_, _ = h.conn.ExecContext(cctx, fmt.Sprintf("SET idle_session_timeout = %d", ttl.Milliseconds()))
		}
	}
	h.ttl = ttl
	h.acquiredAt = sent
	h.expiresAt = deadline(sent, ttl)
	h.ttlEnd = time.Now().Add(ttl)
	h.timer.Reset(ttl)
	return l.sessionLeaseOf(h), nil
}

// releaseSession frees the row first (so that a new holder's row is never mistaken
// for ours), then the session lock, then (PostgreSQL) notifies the waiters, and closes
// the connection.
func (l *Locker) releaseSession(ctx context.Context, name, token string) error {
	h, known := l.lookup(token)
	if h == nil {
		if !known {
			if err := l.foreignSession(ctx, name, token, "release"); err != nil {
				return err
			}
		}
		return l.notHeld(ctx, name, token)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone || h.name != name {
		return l.notHeld(ctx, name, token)
	}
	if time.Now().After(h.ttlEnd) {
		l.giveUp(h)
		return l.notHeld(ctx, name, token)
	}
	cctx, cancel := l.bounded(ctx, true)
	defer cancel()
	d := l.dialect
	var n int64
	var err error
	if d.name() == "postgres" {
		// One round trip: free the row, the advisory lock, notify (delivered at commit,
		// after the unlock) and lift the idle timeout so the connection can be reused.
		q := fmt.Sprintf(`WITH r AS (UPDATE %s SET token = NULL, owner = NULL, session_id = NULL, expires_at = clock_timestamp() WHERE name = $1 AND token = $2 RETURNING 1)
SELECT (SELECT count(*) FROM r), pg_advisory_unlock($3::bigint)::int, pg_notify($4, $1)::text, set_config('idle_session_timeout', '0', false)`, l.qtable)
		var unlocked int
		var x1, x2 string
		l.statements.Add(1)
		err = h.conn.QueryRowContext(cctx, q, name, token, AdvisoryKey(name), l.channel).Scan(&n, &unlocked, &x1, &x2)
	} else {
		q := fmt.Sprintf(`UPDATE %s SET token = NULL, owner = NULL, session_id = NULL, expires_at = UTC_TIMESTAMP(6) WHERE name = ? AND token = ?`, l.qtable)
		l.statements.Add(1)
		var res sql.Result
		res, err = h.conn.ExecContext(cctx, q, name, token)
		if err == nil {
			n, _ = res.RowsAffected()
			l.unlockSession(cctx, h.conn, name)
			l.statements.Add(1)
			_, err = h.conn.ExecContext(cctx, "SET SESSION wait_timeout = @@GLOBAL.wait_timeout")
		}
	}
	if err != nil {
		l.dropSession(h, false)
		if tableMissing(err) || columnMissing(err) || permissionDenied(err) {
			return l.classify(ctx, "release "+name, err)
		}
		return l.connectionLost(ctx, name, token, err)
	}
	l.dropSession(h, true)
	if n == 0 { // broken meanwhile
		return l.notHeld(ctx, name, token)
	}
	return nil
}

// connectionLost is the error of a session-mode holder whose connection failed with
// err: the row, read on another connection, tells whether `lock break` ended it (the
// break record names this token), another holder has it now, or it just ended.
func (l *Locker) connectionLost(ctx context.Context, name, token string, err error) error {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired,
		Detail: fmt.Sprintf("the database connection holding %s ended (%s)", l.sessionLockName(name), dbMessage(err))}
	r, rerr := l.readRow(context.WithoutCancel(ctx), name)
	switch {
	case rerr != nil:
	case r.breakToken.Valid && r.breakToken.String == token:
		// broken (and perhaps taken since, the usual reason to break): say who broke it
		e.Reason, e.Break, e.Detail = lock.LostBroken, r.lastBreak(), ""
		if r.held() && r.token.String != token {
			e.Current = r.holder()
		}
	case r.held() && r.token.String != token:
		e.Reason, e.Current = lock.LostTaken, r.holder()
	}
	return lock.NotHeld(e)
}
