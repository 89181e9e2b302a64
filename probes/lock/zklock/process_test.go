//go:build unix

package zklock_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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
// and reports when a renewal says the lock is lost.
func TestHelperHolder(t *testing.T) {
	if os.Getenv("ZKLOCK_HELPER") != "1" {
		t.Skip("helper process for the process tests")
	}
	ctx := context.Background()
	l, err := zklock.New(ctx, endpoint.Dialer{Timeout: 2 * time.Second}, zklock.Options{Endpoint: endpoint.ZooKeeper{
		Servers: strings.Split(os.Getenv("ZKLOCK_SERVERS"), ","), SessionTimeout: endpoint.Duration(2 * time.Second)}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	name := os.Getenv("ZKLOCK_NAME")
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("held", le.Token, le.Fence, le.ExpiresAt.UnixNano())
	for {
		time.Sleep(100 * time.Millisecond)
		r, err := l.Renew(ctx, name, le.Token, 30*time.Second)
		if nh, ok := lock.AsNotHeld(err); ok {
			fmt.Println("lost", nh.Reason)
			os.Exit(0)
		}
		if err == nil {
			fmt.Println("renewed", r.ExpiresAt.UnixNano())
		}
	}
}

type holderProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	held  chan string
	lost  chan string
}

func startHolder(t *testing.T, servers []string, name string) *holderProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ZKLOCK_HELPER=1", "ZKLOCK_SERVERS="+strings.Join(servers, ","), "ZKLOCK_NAME="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &holderProc{cmd: cmd, held: make(chan string, 1), lost: make(chan string, 1)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			switch {
			case strings.HasPrefix(line, "held "):
				p.held <- line
			case strings.HasPrefix(line, "lost "):
				p.lost <- line
			}
		}
	}()
	select {
	case <-p.held:
	case <-time.After(10 * time.Second):
		t.Fatalf("the holder process did not take the lock: %v", p.lines)
	}
	return p
}

// deadline is the holder's last reported local deadline.
func (p *holderProc) deadline(t *testing.T) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		f := strings.Fields(p.lines[i])
		if len(f) > 1 && (f[0] == "renewed" || f[0] == "held") {
			ns, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Unix(0, ns)
		}
	}
	t.Fatal("no deadline reported")
	return time.Time{}
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
				if err := p.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
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
				if dl := p.deadline(t); took.Before(dl) {
					t.Errorf("the waiter held at %s, before the holder's local deadline %s", took.Format("15:04:05.000"), dl.Format("15:04:05.000"))
				}
				t.Logf("%s: next holder after %s", sig, took.Sub(signalled).Round(time.Millisecond))
				if sig == syscall.SIGSTOP {
					_ = p.cmd.Process.Signal(syscall.SIGCONT)
					select {
					case line := <-p.lost:
						if line != "lost "+string(lock.LostTaken) {
							t.Fatalf("resumed holder: %q, want lost taken", line)
						}
					case <-time.After(10 * time.Second):
						t.Fatal("the resumed holder did not learn it lost the lock")
					}
				}
				_ = waiter.Release(ctx, name, le.Token)
			})
		})
	}
}
