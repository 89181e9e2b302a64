package sqllock

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// listener is a PostgreSQL connection that LISTENs on the table's channel. A waiter
// tries the lock on it too, so a release between a failed attempt and the wait is
// never missed: the NOTIFY is queued on the connection.
type listener struct {
	l    *Locker
	conn *sql.Conn
}

// quoteIdent quotes a PostgreSQL identifier (the channel name).
func quoteIdent(s string) string {
	out := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(append(out, '"'))
}

func (l *Locker) listen(ctx context.Context) (*listener, error) {
	cctx, cancel := l.bounded(ctx, false)
	defer cancel()
	conn, err := l.db.Conn(cctx)
	if err != nil {
		return nil, l.classify(ctx, "listen", err)
	}
	l.statements.Add(1)
	if _, err := conn.ExecContext(cctx, "LISTEN "+quoteIdent(l.channel)); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = conn.Close()
		return nil, l.classify(ctx, "listen", err)
	}
	return &listener{l: l, conn: conn}, nil
}

// wait returns when a release of name is notified, after d, or when ctx ends.
func (ln *listener) wait(ctx context.Context, name string, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := ln.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx connection")
		}
		pc := c.Conn()
		for {
			n, err := pc.WaitForNotification(wctx)
			if err != nil {
				if pc.IsClosed() {
					return driver.ErrBadConn
				}
				return nil // timed out or cancelled: the caller decides
			}
			ln.l.notifications.Add(1)
			if n.Payload == name {
				return nil
			}
		}
	})
	if ctx.Err() != nil {
		return interrupted(ctx, name)
	}
	if err != nil {
		return ln.l.classify(ctx, "wait for a release of "+name, err)
	}
	return nil
}

// close stops listening and gives the connection back (or drops it if it broke).
func (ln *listener) close() {
	ctx, cancel := context.WithTimeout(context.Background(), ln.l.timeout)
	defer cancel()
	if _, err := ln.conn.ExecContext(ctx, "UNLISTEN *"); err != nil {
		_ = ln.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	// Notifications queued before the UNLISTEN stay on the connection: a later waiter
	// on it may wake once for nothing and simply tries again.
	_ = ln.conn.Close()
}
