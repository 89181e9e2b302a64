package sqllock

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// mysqlUserLockMax is MySQL's limit on GET_LOCK names, in characters.
const mysqlUserLockMax = 64

// UserLockName is the MySQL/MariaDB GET_LOCK name of a dsctl session lock: the lock
// name itself when it has at most 64 characters (so `SELECT GET_LOCK('deploy', 10)` in
// a shell script excludes `dsctl lock run --mode session deploy`), else "dsctl-" and
// the first 58 hex digits of its SHA-256.
func UserLockName(name string) string {
	if utf8.RuneCountInString(name) <= mysqlUserLockMax {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "dsctl-" + hex.EncodeToString(sum[:])[:mysqlUserLockMax-6]
}

// AdvisoryKey is the PostgreSQL advisory lock key of a dsctl session lock: the first 8
// bytes of SHA-256("dsctl:" + name), big-endian, as a signed int64 (the one-argument,
// bigint form of pg_advisory_lock; the "dsctl:" namespace keeps it away from small
// keys other programs pick by hand).
func AdvisoryKey(name string) int64 {
	sum := sha256.Sum256([]byte("dsctl:" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// sessionLockName is the session lock of name as the database shows it.
func (l *Locker) sessionLockName(name string) string {
	if l.dialect.name() == "mysql" {
		return "GET_LOCK(" + quoteSQL(UserLockName(name)) + ")"
	}
	return fmt.Sprintf("pg_advisory_lock(%d)", AdvisoryKey(name))
}

func (l *Locker) sessionWord() string {
	if l.dialect.name() == "mysql" {
		return "connection"
	}
	return "backend pid"
}

// advisoryParts splits an int8 advisory key as pg_locks shows it: classid (high 32
// bits), objid (low 32 bits), objsubid 1.
func advisoryParts(key int64) (int64, int64) {
	return int64(uint64(key) >> 32), int64(uint32(uint64(key)))
}

// sessionHeld reports whether session sid holds name's session lock now.
func (l *Locker) sessionHeld(ctx context.Context, name string, sid int64) (bool, error) {
	if l.dialect.name() == "mysql" {
		var holder sql.NullInt64
		if _, err := l.queryRow(ctx, false, "inspect "+name, "SELECT IS_USED_LOCK(?)", []any{UserLockName(name)}, &holder); err != nil {
			return false, err
		}
		return holder.Valid && holder.Int64 == sid, nil
	}
	hi, lo := advisoryParts(AdvisoryKey(name))
	var held bool
	_, err := l.queryRow(ctx, false, "inspect "+name, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND pid = $3::int AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
		[]any{hi, lo, sid}, &held)
	return held, err
}

// sessionHolder describes who holds a session lock (another program's, or a dsctl
// holder whose row is gone).
type sessionHolder struct {
	id    int64
	user  string
	host  string
	app   string
	since sql.NullInt64 // epoch micros, when known
	// dsctl: the holding connection carries dsctl's client marker (tryLockSQL): a
	// dsctl session-mode client, of this table or of another one (session locks are
	// keyed by the name only).
	dsctl bool
}

// sessionLockHolder reports who holds name's session lock, nil if nobody.
func (l *Locker) sessionLockHolder(ctx context.Context, name string) (*sessionHolder, error) {
	if l.dialect.name() == "mysql" {
		return l.mysqlUserLockHolder(ctx, UserLockName(name))
	}
	return l.pgAdvisoryHolder(ctx, AdvisoryKey(name))
}

func (l *Locker) sessionInfo(name string, sh *sessionHolder) *lock.Info {
	f := FormatPGAdvisory
	key := fmt.Sprintf("pg_advisory_lock(%d)", AdvisoryKey(name))
	if l.dialect.name() == "mysql" {
		f, key = FormatMySQLUserLock, "GET_LOCK("+quoteSQL(UserLockName(name))+")"
	}
	id := l.sessionWord() + " " + strconv.FormatInt(sh.id, 10)
	h := &lock.Holder{Token: id, Owner: &lock.Owner{User: sh.user, Host: sh.host, Label: sh.app, Tool: id}}
	h.SetTTLLeft(-1)
	if sh.since.Valid {
		h.AcquiredAt = time.UnixMicro(sh.since.Int64).UTC()
	}
	notes := []string{"held while that connection lives; it has no fencing token"}
	if sh.dsctl {
		// Its connection carries dsctl's marker. Session locks are keyed by name
		// only, so nothing ties it to this table: dsctl treats it as another program's
		// (break needs --raw).
		h.Owner.Tool = "dsctl (" + id + ")"
		notes = append(notes, "held by a dsctl session-mode client with no lease on this table's row: it is taking this lock, or it holds the same name on another table or database (session locks are per name)")
	}
	return &lock.Info{Name: name, Key: key, Held: true, Format: f, FormatDetail: DescribeFormat(f), Holder: h, Waiters: -1,
		Backend: l.Backend(), Notes: notes}
}

func (l *Locker) mysqlUserLockHolder(ctx context.Context, lockName string) (*sessionHolder, error) {
	var id sql.NullInt64
	var marked sql.NullBool
	if _, err := l.queryRow(ctx, false, "inspect", "SELECT h, IS_USED_LOCK(CONCAT('"+mysqlClientMarker+"', h)) = h FROM (SELECT IS_USED_LOCK(?) AS h) AS x",
		[]any{lockName}, &id, &marked); err != nil {
		return nil, err
	}
	if !id.Valid {
		return nil, nil
	}
	sh := &sessionHolder{id: id.Int64, dsctl: marked.Valid && marked.Bool}
	var user, host sql.NullString
	var secs sql.NullInt64
	_, _ = l.queryRow(ctx, false, "inspect", "SELECT user, host, time FROM information_schema.processlist WHERE id = ?", []any{id.Int64}, &user, &host, &secs)
	sh.user, sh.host = user.String, host.String
	return sh, nil
}

func (l *Locker) pgAdvisoryHolder(ctx context.Context, key int64) (*sessionHolder, error) {
	hi, lo := advisoryParts(key)
	sh := &sessionHolder{}
	var user, app, addr sql.NullString
	found, err := l.queryRow(ctx, false, "inspect", `SELECT a.pid, a.usename, a.application_name, COALESCE(host(a.client_addr), 'local'), (EXTRACT(EPOCH FROM a.backend_start) * 1000000)::bigint,
  EXISTS (SELECT 1 FROM pg_locks m WHERE m.locktype = 'advisory' AND m.granted AND m.objsubid = 2 AND m.classid = `+pgClientMarkerClass+`
    AND m.objid = k.pid AND m.pid = k.pid AND m.database = k.database)
FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND k.classid = $1::bigint::oid AND k.objid = $2::bigint::oid
  AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, []any{hi, lo}, &sh.id, &user, &app, &addr, &sh.since, &sh.dsctl)
	if err != nil || !found {
		return nil, err
	}
	sh.user, sh.app, sh.host = user.String, app.String, addr.String
	return sh, nil
}

// listSessionLocks lists the session locks held on the server (PostgreSQL advisory
// locks of this database; MySQL user locks, from performance_schema) that are not the
// session locks of rows already listed.
func (l *Locker) listSessionLocks(ctx context.Context, prefix string, listed []lock.Info) ([]lock.Info, error) {
	if l.dialect.name() == "mysql" {
		return l.listUserLocks(ctx, prefix, listed)
	}
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	rows, err := l.db.QueryContext(cctx, `SELECT k.classid::bigint, k.objid::bigint, k.objsubid, a.pid, a.usename, a.application_name, COALESCE(host(a.client_addr), 'local'),
  (EXTRACT(EPOCH FROM a.backend_start) * 1000000)::bigint
  , k.objsubid = 1 AND EXISTS (SELECT 1 FROM pg_locks m WHERE m.locktype = 'advisory' AND m.granted AND m.objsubid = 2 AND m.classid = `+pgClientMarkerClass+`
    AND m.objid = k.pid AND m.pid = k.pid AND m.database = k.database)
FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
WHERE k.locktype = 'advisory' AND k.granted AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return nil, l.classify(ctx, "list advisory locks", err)
	}
	defer rows.Close()
	var out []lock.Info
	for rows.Next() {
		var hi, lo int64
		var sub int
		sh := &sessionHolder{}
		var user, app, addr sql.NullString
		if err := rows.Scan(&hi, &lo, &sub, &sh.id, &user, &app, &addr, &sh.since, &sh.dsctl); err != nil {
			return nil, l.classify(ctx, "list advisory locks", err)
		}
		sh.user, sh.app, sh.host = user.String, app.String, addr.String
		var name string
		var key int64
		if sub == 1 {
			key = int64(uint64(hi)<<32 | uint64(uint32(lo)))
			name = fmt.Sprintf("advisory:%d", key)
		} else {
			name = fmt.Sprintf("advisory:%d,%d", int32(hi), int32(lo))
		}
		if !strings.HasPrefix(name, prefix) || mineListed(listed, sub == 1, key, sh.id) || (sub == 2 && strconv.FormatInt(hi, 10) == pgClientMarkerClass && lo == sh.id) {
			continue // (or a dsctl client marker)
		}
		info := l.sessionInfo(name, sh)
		info.Key = strings.Replace(name, "advisory:", "pg_advisory_lock(", 1) + ")"
		out = append(out, *info)
	}
	return out, l.classify(ctx, "list advisory locks", rows.Err())
}

// mineListed reports an advisory lock that is the session lock of a listed dsctl row.
func mineListed(listed []lock.Info, int8Key bool, key, pid int64) bool {
	if !int8Key {
		return false
	}
	for _, in := range listed {
		if AdvisoryKey(in.Name) == key {
			return true
		}
	}
	return false
}

// listUserLocks reads MySQL user locks from performance_schema.metadata_locks. With
// performance_schema off (MariaDB's default) they cannot be listed: a backend warning
// says so (inspect of one name still works, through IS_USED_LOCK).
func (l *Locker) listUserLocks(ctx context.Context, prefix string, listed []lock.Info) ([]lock.Info, error) {
	var on sql.NullInt64
	if _, err := l.queryRow(ctx, false, "list user locks", "SELECT @@performance_schema", nil, &on); err != nil {
		return nil, err
	}
	if !on.Valid || on.Int64 == 0 {
		l.warn(perfSchemaOff)
		return nil, nil
	}
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	l.statements.Add(1)
	rows, err := l.db.QueryContext(cctx, `SELECT m.OBJECT_NAME, t.PROCESSLIST_ID, COALESCE(t.PROCESSLIST_USER, ''), COALESCE(t.PROCESSLIST_HOST, '')
FROM performance_schema.metadata_locks m JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID
WHERE m.OBJECT_TYPE = 'USER LEVEL LOCK' AND m.LOCK_STATUS = 'GRANTED'`)
	if err != nil {
		if permissionDenied(err) {
			l.warn("cannot read performance_schema.metadata_locks (permission denied): MySQL user locks of other programs are not listed")
			return nil, nil
		}
		return nil, l.classify(ctx, "list user locks", err)
	}
	defer rows.Close()
	var out []lock.Info
	for rows.Next() {
		var name string
		sh := &sessionHolder{}
		if err := rows.Scan(&name, &sh.id, &sh.user, &sh.host); err != nil {
			return nil, l.classify(ctx, "list user locks", err)
		}
		if !strings.HasPrefix(name, prefix) || name == mysqlClientMarker+strconv.FormatInt(sh.id, 10) {
			continue // (or a dsctl client marker)
		}
		dup := false
		for _, in := range listed {
			if UserLockName(in.Name) == name {
				dup = true
			}
		}
		if !dup {
			out = append(out, *l.sessionInfo(name, sh))
		}
	}
	return out, l.classify(ctx, "list user locks", rows.Err())
}

const perfSchemaOff = "performance_schema is off on this server (MariaDB's default): MySQL user locks (GET_LOCK) of other programs cannot be listed; `lock inspect NAME` still finds one by name (IS_USED_LOCK). Start the server with --performance-schema=ON to list them"

// warn adds a warning to the backend description once.
func (l *Locker) warn(w string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.backend.Warnings {
		if x == w {
			return
		}
	}
	l.backend.Warnings = append(l.backend.Warnings, w)
}

// terminateForeign ends another program's connection that holds a session lock
// (`lock break --raw`).
func (l *Locker) terminateForeign(ctx context.Context, info *lock.Info) error {
	id, err := strconv.ParseInt(strings.TrimPrefix(info.Holder.Token, l.sessionWord()+" "), 10, 64)
	if err != nil {
		return errs.New(errs.KindRuntime, "cannot tell the holder's connection from %q", info.Holder.Token)
	}
	return l.terminate(ctx, id, info.Name)
}

// terminate ends the connection id if it still holds name's session lock:
// KILL CONNECTION on MySQL (after IS_USED_LOCK names it; MySQL connection ids are not
// reused until the 64-bit counter wraps), pg_terminate_backend on PostgreSQL in the
// same statement that finds the backend in pg_locks holding name's advisory key
// (backend pids ARE reused: a pid read from a row or an earlier query may be an
// unrelated connection by now). Its session locks go with it. A connection that no
// longer holds the lock is left alone (nil error).
func (l *Locker) terminate(ctx context.Context, id int64, name string) error {
	var err error
	if l.dialect.name() == "mysql" {
		var held bool
		if held, err = l.sessionHeld(ctx, name, id); err != nil || !held {
			return err
		}
		cctx, cancel := l.bounded(ctx, true)
		l.statements.Add(1)
		_, err = l.db.ExecContext(cctx, "KILL CONNECTION "+strconv.FormatInt(id, 10))
		cancel()
		if err == nil {
			// KILL returns before the killed thread has let go of its user locks: wait
			// (bounded by the timeout) until it has, so the lock is free on return.
			deadline := time.Now().Add(l.timeout)
			for step := 2 * time.Millisecond; time.Now().Before(deadline); step = min(2*step, 50*time.Millisecond) {
				if held, herr := l.sessionHeld(ctx, name, id); herr != nil || !held {
					break
				}
				if sleepCtx(ctx, step) != nil {
					break
				}
			}
		}
	} else {
		// The two-argument form (PostgreSQL 14+) waits until the backend is gone, so
		// its advisory locks are free when this returns.
		hi, lo := advisoryParts(AdvisoryKey(name))
		const q = `SELECT pg_terminate_backend(k.pid%s) FROM pg_locks k
WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND k.classid = $1::bigint::oid AND k.objid = $2::bigint::oid
  AND k.pid = $3::int AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())`
		var ok bool
		var found bool
		found, err = l.queryRow(ctx, true, "terminate", fmt.Sprintf(q, ", $4::bigint"), []any{hi, lo, id, l.timeout.Milliseconds()}, &ok)
		if err != nil && strings.Contains(err.Error(), "does not exist") {
			found, err = l.queryRow(ctx, true, "terminate", fmt.Sprintf(q, ""), []any{hi, lo, id}, &ok)
		}
		if err == nil && found {
			_, _ = l.exec(ctx, true, "notify", "SELECT pg_notify($1, $2)", l.channel, name)
		}
	}
	if err != nil {
		if permissionDenied(err) {
			return errs.New(errs.KindRuntime, "%s %s: not allowed to end %s %d: %s", l.target.Driver, l.target.Name, l.sessionWord(), id, dbMessage(err)).
				WithHint("ending another user's connection needs CONNECTION_ADMIN/SUPER (MySQL) or pg_signal_backend (PostgreSQL)").Wrap(err)
		}
		return l.classify(ctx, "terminate", err)
	}
	return nil
}
