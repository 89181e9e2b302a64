//go:build unix

package sqllock_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

const helperTTL = 2 * time.Second

// fencedWrite is the resource of the process tests: a row that accepts a write only
// with a fence at least as large as the last one it saw.
func fencedWrite(db interface {
	Exec(string, ...any) (interface{ RowsAffected() (int64, error) }, error)
}, mysqlDB bool, res string, fence lock.FencingToken) bool {
	q := "UPDATE " + res + " SET fence = ? WHERE id = 1 AND fence <= ?"
	if !mysqlDB {
		q = "UPDATE " + res + " SET fence = $1 WHERE id = 1 AND fence <= $1"
	}
	args := []any{int64(fence), int64(fence)}
	if !mysqlDB {
		args = args[:1]
	}
	r, err := db.Exec(q, args...)
	if err != nil {
		return false
	}
	n, _ := r.RowsAffected()
	return n == 1
}

type dbAdapter struct{ l *sqllock.Locker }

func (a dbAdapter) Exec(q string, args ...any) (interface{ RowsAffected() (int64, error) }, error) {
	return a.l.DB().Exec(q, args...)
}

// TestHelperHolder is the holder process of the process tests (it runs only when they
// start it): it takes the lock, then every 100ms writes to the fenced resource and
// renews, printing what happened (locktest.RunHolder).
func TestHelperHolder(t *testing.T) {
	if os.Getenv("SQLLOCK_HELPER") != "1" {
		t.Skip("helper process for the process tests")
	}
	ctx := context.Background()
	dsn := os.Getenv("SQLLOCK_DSN")
	var l *sqllock.Locker
	open := func() (lock.Locker, error) {
		var err error
		l, err = sqllock.New(ctx, endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn),
			sqllock.Options{Mode: sqllock.Mode(os.Getenv("SQLLOCK_MODE")), Table: os.Getenv("SQLLOCK_TABLE")})
		return l, err
	}
	res := os.Getenv("SQLLOCK_RES")
	locktest.RunHolder(ctx, open, os.Getenv("SQLLOCK_NAME"), lock.AcquireOptions{TTL: helperTTL, Owner: owner}, func(le *lock.Lease) {
		if fencedWrite(dbAdapter{l}, isMySQL(dsn), res, le.Fence) {
			fmt.Println("write ok", le.Fence)
		} else {
			fmt.Println("write rejected", le.Fence)
		}
	})
}

func startHolder(t *testing.T, dsn string, mode sqllock.Mode, name, res string) *locktest.HolderProcess {
	t.Helper()
	return locktest.StartHolder(t, "SQLLOCK_HELPER=1", "SQLLOCK_DSN="+dsn, "SQLLOCK_MODE="+string(mode),
		"SQLLOCK_TABLE="+table("locks"), "SQLLOCK_NAME="+name, "SQLLOCK_RES="+res)
}

// A holder killed with SIGKILL, or stopped with SIGSTOP past its lease:
//   - lease mode: the next holder gets the lock once the row's lease has run out by the
//     database clock, never before the holder's last local deadline; resumed, the old
//     holder's write with its fence is rejected by the fenced resource and its renewal
//     says it lost the lock to the new holder.
//   - session mode: SIGKILL closes the connection, which frees the session lock at
//     once, but the next dsctl holder still waits for the row's lease to expire (the
//     holder's local deadline comes before it); a stopped holder's idle connection is
//     ended by the server after the TTL (wait_timeout / idle_session_timeout).
func TestHolderProcessKilledOrStopped(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		for _, mode := range []sqllock.Mode{sqllock.ModeLease, sqllock.ModeSession} {
			for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
				t.Run(string(mode)+"/"+sig.String(), func(t *testing.T) {
					ctx := context.Background()
					waiter := newLocker(t, dsn, sqllock.Options{Mode: mode})
					res := table("res")
					resTable(t, waiter, dsn, res)
					name := locktest.Name(t, "proc")
					p := startHolder(t, dsn, mode, name, res)
					time.Sleep(300 * time.Millisecond) // a few renewals and writes
					signalled := time.Now()
					p.Signal(t, sig)
					le, err := waiter.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(15 * time.Second), Owner: owner})
					if err != nil {
						t.Fatal(err)
					}
					took := time.Now()
					limit := helperTTL + time.Second
					if mode == sqllock.ModeSession && isMySQL(dsn) && sig == syscall.SIGSTOP {
						limit += 2 * time.Second // wait_timeout is checked about once a second or so
					}
					if d := took.Sub(signalled); d > limit {
						t.Errorf("the waiter held %s after the holder's %s; want within %s", d, sig, limit)
					}
					p.CheckTookAfterDeadline(t, took)
					t.Logf("%s %s: next holder after %s (fence %d)", mode, sig, took.Sub(signalled).Round(time.Millisecond), le.Fence)
					if !fencedWrite(dbAdapter{waiter}, isMySQL(dsn), res, le.Fence) {
						t.Fatal("the new holder's fenced write was rejected")
					}
					if sig == syscall.SIGSTOP {
						if line := p.Resume(t); mode == sqllock.ModeLease && line != "lost "+string(lock.LostTaken) {
							t.Fatalf("resumed holder: %q, want lost taken", line)
						}
						if !p.Saw("write rejected") {
							t.Fatalf("the resumed holder's stale write was not rejected: %v", p.Lines())
						}
					}
					_ = waiter.Release(ctx, name, le.Token)
				})
			}
		}
	})
}

// resTable creates the fenced resource (one row, fence 0).
func resTable(t *testing.T, l *sqllock.Locker, dsn, res string) {
	t.Helper()
	remember(dsn, res)
	db := l.DB()
	if _, err := db.Exec("CREATE TABLE IF NOT EXISTS " + res + " (id INT PRIMARY KEY, fence BIGINT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	_, _ = db.Exec("DELETE FROM " + res)
	if _, err := db.Exec("INSERT INTO " + res + " (id, fence) VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
}

// `lock run` in session mode: the connection holding the lock is killed server-side
// while the child runs; the supervisor's next renewal finds the lock lost, stops the
// child, and the run ends with exit 4 (KindLockLost).
func TestRunSessionConnectionKilledStopsChild(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "run")
		type out struct {
			r   *supervisor.Result
			err error
		}
		done := make(chan out, 1)
		started := make(chan struct{}, 1)
		go func() {
			r, err := supervisor.Run(ctx, supervisor.Options{Locker: l, Name: name,
				Acquire: lock.AcquireOptions{TTL: 3 * time.Second, Owner: owner}, Command: []string{"sleep", "30"},
				Stdout: io.Discard, Stderr: io.Discard,
				OnEvent: func(e supervisor.Event) {
					if e.What == "acquired" {
						select {
						case started <- struct{}{}:
						default:
						}
					}
				}})
			done <- out{r, err}
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the child did not start")
		}
		time.Sleep(200 * time.Millisecond)
		killed := killSessionConn(t, l, dsn, name)
		var o out
		select {
		case o = <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("the run did not end after its connection was killed")
		}
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.r.Lost == nil || errs.KindOf(o.r.Err()) != errs.KindLockLost || o.r.Signal == "" {
			t.Fatalf("result %+v (lost %+v), err %v", o.r, o.r.Lost, o.r.Err())
		}
		t.Logf("child stopped %s after the kill: %v", time.Since(killed).Round(time.Millisecond), o.r.Err())
		if d := time.Since(killed); d > 3*time.Second {
			t.Fatalf("the child ran %s after the connection was killed", d)
		}
	})
}
