//go:build unix

package supervisor_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// The supervisor is backend-neutral; these tests drive it with the Redis backend on
// miniredis (TTLs on the wall clock) and real child processes.

var ctx = context.Background()

func backend(t *testing.T) (*miniredis.Miniredis, func() lock.Locker) {
	m := miniredis.RunT(t)
	m.ClockTTL(true)
	return m, func() lock.Locker {
		l, err := redislock.New(endpoint.Dialer{Timeout: time.Second}, endpoint.Redis{Addrs: []string{m.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
}

func options(l lock.Locker, name string, ttl time.Duration, argv ...string) (supervisor.Options, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return supervisor.Options{
		Locker:  l,
		Name:    name,
		Acquire: lock.AcquireOptions{TTL: ttl, Owner: lock.CurrentOwner(os.Getpid(), lock.QuoteCommand(argv), "", "test")},
		Command: argv,
		Env:     append(os.Environ(), "DSCTL_LOCK_TOKEN=stale-from-a-parent"),
		Stdout:  out,
		Stderr:  out,
	}, out
}

func TestExitCodePassesThroughAndTheLockIsReleased(t *testing.T) {
	_, newLocker := backend(t)
	l := newLocker()
	o, _ := options(l, "job", time.Second, "sh", "-c", "exit 7")
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var st *errs.ExitStatus
	if res.ExitCode != 7 || !errors.As(res.Err(), &st) || st.Code != 7 || res.Lost != nil {
		t.Fatalf("result %+v, err %v", res, res.Err())
	}
	if info, _ := l.Inspect(ctx, "job"); info.Held {
		t.Fatal("lock still held after the child exited")
	}
	o.Command = []string{"true"}
	if res, err := supervisor.Run(ctx, o); err != nil || res.Err() != nil {
		t.Fatalf("exit 0: %v %v", err, res.Err())
	}
}

func TestChildGetsNameTokenAndFence(t *testing.T) {
	_, newLocker := backend(t)
	o, out := options(newLocker(), "env-job", time.Second, "sh", "-c", "env | grep ^DSCTL_LOCK_ | sort")
	// An outer lock's variables (eval "$(dsctl lock acquire ... -o env)") are not passed
	// on; the user's own DSCTL_LOCK_* names are.
	o.Env = append(os.Environ(), "DSCTL_LOCK_NAME=outer", "DSCTL_LOCK_EXPIRES=2026-01-01T00:00:00Z", "DSCTL_LOCK_FENCE=1",
		"DSCTL_LOCK_USERVAR=kept")
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want := "DSCTL_LOCK_FENCE=" + res.Lease.Fence.String() + "\nDSCTL_LOCK_NAME=env-job\nDSCTL_LOCK_TOKEN=" + res.Lease.Token +
		"\nDSCTL_LOCK_USERVAR=kept\n"
	if out.String() != want {
		t.Fatalf("child env:\n%s\nwant:\n%s", out, want)
	}
}

func TestShellModeAndDirectModeDiffer(t *testing.T) {
	_, newLocker := backend(t)
	l := newLocker()
	o, out := options(l, "sh-job", time.Second, "echo", "$DSCTL_LOCK_NAME", "|", "wc", "-c")
	if _, err := supervisor.Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "$DSCTL_LOCK_NAME | wc -c\n" {
		t.Fatalf("without --shell the words went through a shell: %q", got)
	}
	out.Reset()
	o.Shell = true
	if _, err := supervisor.Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "7" { // "sh-job\n"
		t.Fatalf("with --shell: %q", got)
	}
}

func TestUnknownCommandDoesNotTakeTheLock(t *testing.T) {
	m, newLocker := backend(t)
	o, _ := options(newLocker(), "nope", time.Second, "/no/such/binary-dsctl")
	_, err := supervisor.Run(ctx, o)
	var se *supervisor.StartError
	if !errors.As(err, &se) || se.Code != 127 {
		t.Fatalf("err = %v, want start error 127", err)
	}
	if len(m.Keys()) != 0 {
		t.Fatalf("keys %v: the lock was taken for a command that cannot run", m.Keys())
	}
}

func TestRenewsEveryThirdOfTheTTL(t *testing.T) {
	_, newLocker := backend(t)
	l, other := newLocker(), newLocker()
	o, _ := options(l, "long", 300*time.Millisecond, "sleep", "1.2")
	done := make(chan *supervisor.Result)
	go func() {
		res, err := supervisor.Run(ctx, o)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(900 * time.Millisecond) // three TTLs in: held only thanks to renewals
	info, err := other.Inspect(ctx, "long")
	if err != nil || !info.Held {
		t.Fatalf("lock not held while the child runs: %+v %v", info, err)
	}
	res := <-done
	if res.Err() != nil || res.Renewals < 3 || res.Lost != nil {
		t.Fatalf("result %+v (%v), want >= 3 renewals and exit 0", res, res.Err())
	}
}

func runAndBreak(t *testing.T, onLost supervisor.OnLost, script string) (*supervisor.Result, time.Duration) {
	_, newLocker := backend(t)
	l, breaker := newLocker(), newLocker()
	o, _ := options(l, "victim", time.Second, "sh", "-c", script)
	o.OnLost = onLost
	go func() {
		time.Sleep(200 * time.Millisecond)
		if _, err := breaker.Break(ctx, "victim", lock.BreakOptions{By: "ops@test", Reason: "stuck job"}); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return res, time.Since(start)
}

func TestLostLeaseTerminatesTheChildAndSaysWhy(t *testing.T) {
	res, took := runAndBreak(t, supervisor.OnLostTerm, "sleep 30")
	if res.Lost == nil || res.Lost.Reason != lock.LostBroken || !strings.Contains(res.Lost.Why, "stuck job") {
		t.Fatalf("lost = %+v", res.Lost)
	}
	if res.ExitCode != 143 || res.Signal != "SIGTERM" || took > 3*time.Second {
		t.Fatalf("child exit %d signal %q after %s", res.ExitCode, res.Signal, took)
	}
	err := res.Err()
	if errs.KindOf(err) != errs.KindLockLost || !strings.Contains(err.Error(), "broken by ops@test") ||
		!strings.Contains(err.Error(), "SIGTERM at once and exited") {
		t.Fatalf("error: %v", err)
	}
}

func TestChildIgnoringSIGTERMIsKilledAfterGrace(t *testing.T) {
	res, took := runAndBreak(t, supervisor.OnLostTerm, "trap '' TERM; sleep 30")
	if res.Lost == nil || res.ExitCode != 137 || !strings.Contains(res.Lost.Action, "SIGKILL") {
		t.Fatalf("result %+v lost %+v", res, res.Lost)
	}
	if took > 3*time.Second {
		t.Fatalf("took %s with the default grace of 250ms", took)
	}
}

func TestOnLostKillAndIgnore(t *testing.T) {
	res, _ := runAndBreak(t, supervisor.OnLostKill, "trap '' TERM; sleep 30")
	if res.ExitCode != 137 || res.Lost == nil || res.Lost.Action != "the child was killed (SIGKILL) at once" {
		t.Fatalf("kill: %+v %+v", res, res.Lost)
	}
	res, _ = runAndBreak(t, supervisor.OnLostIgnore, "sleep 1; exit 3")
	if res.ExitCode != 3 || res.Lost == nil || !strings.Contains(res.Lost.Action, "left running") ||
		!strings.Contains(res.Lost.Action, "exited with code 3") || errs.KindOf(res.Err()) != errs.KindLockLost {
		t.Fatalf("ignore: %+v %+v", res, res.Lost)
	}
}

func TestLostLeaseKillsTheWholeProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	res, _ := runAndBreak(t, supervisor.OnLostTerm, "sleep 30 & echo $! > "+pidFile+"; wait")
	if res.Lost == nil {
		t.Fatal("not lost")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived the lost lease", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSignalsAreForwardedToTheChild(t *testing.T) {
	_, newLocker := backend(t)
	o, out := options(newLocker(), "sig", time.Second, "sh", "-c", "trap 'echo got TERM; exit 42' TERM; sleep 30 & wait")
	sigs := make(chan os.Signal, 1)
	o.Signals = sigs
	time.AfterFunc(300*time.Millisecond, func() { sigs <- syscall.SIGTERM })
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 42 || len(res.Forwarded) != 1 || !strings.Contains(out.String(), "got TERM") || res.Lost != nil {
		t.Fatalf("result %+v output %q", res, out)
	}
}

// flaky makes Renew fail (as an unreachable server would) while fail is set.
type flaky struct {
	lock.Locker
	fail atomic.Bool
}

func (f *flaky) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	if f.fail.Load() {
		<-ctx.Done() // hangs, like a paused server, until the caller gives up
		return nil, errs.Unreachable("redis", "test:1", time.Second, "", ctx.Err())
	}
	return f.Locker.Renew(ctx, name, token, ttl)
}

func TestRenewalFailuresAreRetriedWithinTheLease(t *testing.T) {
	_, newLocker := backend(t)
	f := &flaky{Locker: newLocker()}
	var events []string
	o, _ := options(f, "flaky", 600*time.Millisecond, "sleep", "1.5")
	o.OnEvent = func(e supervisor.Event) { events = append(events, e.What) }
	f.fail.Store(true)
	time.AfterFunc(300*time.Millisecond, func() { f.fail.Store(false) }) // back before the lease ends
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != nil || res.Err() != nil || res.Renewals < 2 {
		t.Fatalf("result %+v lost %+v events %v", res, res.Lost, events)
	}
}

func TestRenewalFailingPastTheLeaseIsLost(t *testing.T) {
	_, newLocker := backend(t)
	f := &flaky{Locker: newLocker()}
	o, _ := options(f, "down", 400*time.Millisecond, "sleep", "30")
	f.fail.Store(true)
	start := time.Now()
	res, err := supervisor.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost == nil || res.Lost.Reason != lock.LostUnreachable || res.ExitCode != 143 {
		t.Fatalf("result %+v lost %+v", res, res.Lost)
	}
	// Lost when the lease runs out (about 400ms after the acquire), not at
	// the child's end (30s); the margin is for a loaded CI machine.
	if d := res.Lost.At.Sub(start); d > 1500*time.Millisecond {
		t.Fatalf("lost after %s with a 400ms lease", d)
	}
}

func TestParseOnLost(t *testing.T) {
	for in, want := range map[string]supervisor.OnLost{"": "term", "TERM": "term", "kill": "kill", "ignore": "ignore"} {
		if got, err := supervisor.ParseOnLost(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := supervisor.ParseOnLost("stop"); errs.KindOf(err) != errs.KindUsage {
		t.Errorf("stop: %v", err)
	}
}
