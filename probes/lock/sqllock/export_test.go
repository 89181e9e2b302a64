package sqllock

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// ForceUTCSession makes l run its ShedLock statements after SET time_zone = '+00:00',
// as it does for a MySQL session time zone with daylight saving time (the shared test
// server has no time zone tables, so no named zone can be set there).
func ForceUTCSession(l *Locker) {
	l.mu.Lock()
	l.shedChecked = true
	l.mu.Unlock()
	l.utcSession.Store(true)
}

// TakeSessionLock takes name's session lock on a new connection of l, as
// acquireSession's first step does, and returns that connection and its session id.
func TakeSessionLock(ctx context.Context, l *Locker, name string) (*sql.Conn, int64, error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	var got, sid int64
	if err := conn.QueryRowContext(ctx, l.tryLockSQL(), l.sessionKey(name)).Scan(&got, &sid); err != nil || got != 1 {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("session lock of %q not taken (%d): %v", name, got, err)
	}
	return conn, sid, nil
}

// GrantSession is acquireSession's second step: stamp the row of the session lock
// taken on conn.
func GrantSession(ctx context.Context, l *Locker, conn *sql.Conn, sid int64, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	return l.grantSession(ctx, conn, sid, name, opt, time.Time{})
}
