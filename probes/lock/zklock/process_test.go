//go:build unix

package zklock_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// TestHelperHolder is the holder process of the process tests (it runs only when they
// start it): it takes the lock, renews it every 100ms printing the new local deadline,
// and reports when a renewal says the lock is lost (locktest.RunHolder).
func TestHelperHolder(t *testing.T) {
	if os.Getenv("ZKLOCK_HELPER") != "1" {
		t.Skip("helper process for the process tests")
	}
	ctx := context.Background()
	open := func() (lock.Locker, error) {
		return zklock.New(ctx, endpoint.Dialer{Timeout: 2 * time.Second}, zklock.Options{Endpoint: endpoint.ZooKeeper{
			Servers: strings.Split(os.Getenv("ZKLOCK_SERVERS"), ","), SessionTimeout: endpoint.Duration(2 * time.Second)}})
	}
	locktest.RunHolder(ctx, open, os.Getenv("ZKLOCK_NAME"), lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner}, nil)
}

func startHolder(t *testing.T, servers []string, name string) *locktest.HolderProcess {
	t.Helper()
	return locktest.StartHolder(t, "ZKLOCK_HELPER=1", "ZKLOCK_SERVERS="+strings.Join(servers, ","), "ZKLOCK_NAME="+name)
}

// A holder killed with SIGKILL: the next waiter holds within the session timeout + one
// tick of expiry checking (two on an ensemble) + 200ms, and not before the holder's last local deadline.
// A holder stopped with SIGSTOP past the session timeout: the waiter takes it; resumed,
// the holder's renewal says it lost the lock to that waiter.
func TestHolderProcessKilledOrStopped(t *testing.T) {
	const session, tick = 2 * time.Second, 500 * time.Millisecond
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
				ctx := context.Background()
				name := locktest.Name(t, "proc")
				p := startHolder(t, tg.Servers, name)
				waiter := newLocker(t, tg)
				time.Sleep(300 * time.Millisecond) // a few renewals
				signalled := time.Now()
				p.Signal(t, sig)
				le, err := waiter.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(15 * time.Second), Owner: owner})
				if err != nil {
					t.Fatal(err)
				}
				took := time.Now()
				// ZooKeeper rounds session expiry up to the next tick; on an ensemble a
				// follower reports its sessions to the leader once a tick as well.
				limit := session + tick + 200*time.Millisecond
				if tg.Embedded == nil {
					limit += tick
				}
				if d := took.Sub(signalled); d > limit {
					t.Errorf("the waiter held %s after the holder's %s; want within %s", d, sig, limit)
				}
				p.CheckTookAfterDeadline(t, took)
				t.Logf("%s: next holder after %s", sig, took.Sub(signalled).Round(time.Millisecond))
				if sig == syscall.SIGSTOP {
					if line := p.Resume(t); line != "lost "+string(lock.LostTaken) {
						t.Fatalf("resumed holder: %q, want lost taken", line)
					}
				}
				_ = waiter.Release(ctx, name, le.Token)
			})
		})
	}
}
