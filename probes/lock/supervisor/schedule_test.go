//go:build unix

package supervisor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

const helperEnv = "DSCTL_SUPERVISOR_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "stamper" {
		os.Exit(stamper(os.Getenv("STAMPS")))
	}
	os.Exit(m.Run())
}

// stamper is a child that ignores SIGTERM, writes its pid, then appends the time
// every 2ms (one write(2) per line) until it is killed.
func stamper(path string) int {
	signal.Ignore(syscall.SIGTERM)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(f, "pid %d\n", os.Getpid())
	for {
		f.WriteString(strconv.FormatInt(time.Now().UnixNano(), 10) + "\n")
		time.Sleep(2 * time.Millisecond)
	}
}

func readStamps(path string) (int, []time.Time) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	pid := 0
	var stamps []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ = strconv.Atoi(v)
		} else if ns, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			stamps = append(stamps, time.Unix(0, ns))
		}
	}
	return pid, stamps
}

// hung makes every renewal hang until the test ends, whatever its context says: a
// client stuck on a blackholed connection that does not honour deadlines. Nothing the
// supervisor does to the child may wait for it.
type hung struct {
	lock.Locker
	once    sync.Once
	release chan struct{}
	calls   chan struct{}
}

func newHung(l lock.Locker) *hung {
	return &hung{Locker: l, release: make(chan struct{}), calls: make(chan struct{}, 100)}
}

func (h *hung) Renew(context.Context, string, string, time.Duration) (*lock.Lease, error) {
	select {
	case h.calls <- struct{}{}:
	default:
	}
	<-h.release
	return nil, errs.Unreachable("redis", "test:1", time.Second, "", context.DeadlineExceeded)
}

func (h *hung) unblock() { h.once.Do(func() { close(h.release) }) }

// runStamper runs the stamper under the lock with the given policy while renewals
// hang, lets another client take the lock as soon as the server expires it, and
// returns the result, the child's writes and when the other holder's Acquire returned.
func runStamper(t *testing.T, onLost supervisor.OnLost, grace time.Duration) (*supervisor.Result, []time.Time, time.Time) {
	t.Helper()
	_, newLocker := backend(t)
	h := newHung(newLocker())
	t.Cleanup(h.unblock)
	other := newLocker()
	file := filepath.Join(t.TempDir(), "stamps")
	self, _ := os.Executable()
	name := "stuck-" + string(onLost)
	o, _ := options(h, name, time.Second, self)
	o.Env = append(os.Environ(), helperEnv+"=stamper", "STAMPS="+file)
	o.OnLost, o.Grace = onLost, grace

	type outcome struct {
		res *supervisor.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := supervisor.Run(ctx, o)
		done <- outcome{res, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, s := readStamps(file); len(s) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never wrote")
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid, _ := readStamps(file)
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL); syscall.Kill(pid, syscall.SIGKILL) })
	next, err := other.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(5 * time.Second)})
	if err != nil {
		t.Fatalf("the other client did not get the lock: %v", err)
	}
	got := time.Now()
	t.Cleanup(func() { other.Release(ctx, name, next.Token) })
	var out outcome
	select {
	case out = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Run still running 5s after the lease of 1s was lost: it waits for the hung renewal")
	}
	if out.err != nil {
		t.Fatal(out.err)
	}
	if len(h.calls) == 0 {
		t.Fatal("no renewal was attempted")
	}
	_, stamps := readStamps(file)
	return out.res, stamps, got
}

func TestHungRenewalDoesNotDelayTheKill(t *testing.T) {
	for _, c := range []struct {
		onLost supervisor.OnLost
		grace  time.Duration
		exit   int
	}{{supervisor.OnLostKill, 0, 137}, {supervisor.OnLostTerm, 200 * time.Millisecond, 137}} {
		t.Run(string(c.onLost), func(t *testing.T) {
			res, stamps, got := runStamper(t, c.onLost, c.grace)
			if res.Lost == nil || res.ExitCode != c.exit {
				t.Fatalf("result %+v lost %+v", res, res.Lost)
			}
			last := stamps[len(stamps)-1]
			end := res.Lease.ExpiresAt
			// The server dropped the lease no earlier than the acquire request was sent
			// plus the TTL (no renewal succeeded): nobody else held it before then.
			takeover := res.Lease.AcquiredAt.Add(res.Lease.TTL)
			t.Logf("child's last write %s before the lease's local end, %s before anyone else could take the lock, %s before the next holder had it; %s",
				end.Sub(last).Round(time.Millisecond), takeover.Sub(last).Round(time.Millisecond), got.Sub(last).Round(time.Millisecond), res.Lost.Action)
			if !last.Before(end) {
				t.Errorf("the child wrote %s past the lease's local end", last.Sub(end))
			}
			if !last.Before(takeover) || !last.Before(got) {
				t.Errorf("the child wrote after the lease could have been taken over")
			}
			if res.Lost.Reason != lock.LostUnreachable || !strings.Contains(res.Lost.Why, "no renewal succeeded") {
				t.Errorf("lost %+v", res.Lost)
			}
			if !strings.Contains(res.Lost.Action, "SIGKILL") || !strings.Contains(res.Lost.Action, "before the lease's end") {
				t.Errorf("action %q does not say when the child was stopped", res.Lost.Action)
			}
			if c.onLost == supervisor.OnLostTerm {
				if !strings.Contains(res.Lost.Action, "SIGTERM") {
					t.Errorf("action %q: no SIGTERM", res.Lost.Action)
				}
				// SIGTERM went out --grace before the SIGKILL, both before the lease's end.
				if res.Lost.TermSent.IsZero() || res.Lost.KillSent.Sub(res.Lost.TermSent) < c.grace-10*time.Millisecond {
					t.Errorf("SIGTERM at %s, SIGKILL at %s: not --grace %s apart", res.Lost.TermSent, res.Lost.KillSent, c.grace)
				}
			}
			if !res.Lost.KillSent.Before(end) {
				t.Errorf("SIGKILL sent at %s, after the lease's local end %s", res.Lost.KillSent, end)
			}
		})
	}
}

// With --on-lost ignore the child runs on, and the loss is declared at the lease's
// local end, not later.
func TestHungRenewalWithIgnoreDeclaresTheLossAtTheDeadline(t *testing.T) {
	_, newLocker := backend(t)
	h := newHung(newLocker())
	t.Cleanup(h.unblock)
	o, _ := options(h, "ignored", 500*time.Millisecond, "sleep", "1.5")
	o.OnLost = supervisor.OnLostIgnore
	res, err := runWithin(t, o, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost == nil || res.ExitCode != 0 || errs.KindOf(res.Err()) != errs.KindLockLost {
		t.Fatalf("result %+v lost %+v", res, res.Lost)
	}
	if d := res.Lost.At.Sub(res.Lease.ExpiresAt); d < 0 || d > 500*time.Millisecond {
		t.Fatalf("loss declared %s after the lease's local end", d)
	}
	if !strings.Contains(res.Lost.Action, "left running") {
		t.Fatalf("action %q", res.Lost.Action)
	}
}

// runWithin runs the supervisor and fails the test if it has not returned within d.
func runWithin(t *testing.T, o supervisor.Options, d time.Duration) (*supervisor.Result, error) {
	t.Helper()
	type outcome struct {
		res *supervisor.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := supervisor.Run(ctx, o)
		done <- outcome{res, err}
	}()
	select {
	case out := <-done:
		return out.res, out.err
	case <-time.After(d):
		t.Fatalf("Run still running after %s", d)
	}
	return nil, nil
}

func TestGraceMustBeUnderHalfTheTTL(t *testing.T) {
	m, newLocker := backend(t)
	o, _ := options(newLocker(), "grace", 2*time.Second, "true")
	o.Grace = time.Second
	_, err := runWithin(t, o, 5*time.Second)
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "--grace 1s") || !strings.Contains(err.Error(), "--ttl 2s") {
		t.Fatalf("err = %v, want a usage error naming --grace and --ttl", err)
	}
	if len(m.Keys()) != 0 {
		t.Fatalf("keys %v: the lock was taken with a bad --grace", m.Keys())
	}
	// Without an explicit grace the default fits any TTL.
	o.Grace = 0
	o.Acquire.TTL = 200 * time.Millisecond
	if res, err := runWithin(t, o, 5*time.Second); err != nil || res.Err() != nil {
		t.Fatalf("default grace with a 200ms TTL: %v %v", err, res.Err())
	}
}
