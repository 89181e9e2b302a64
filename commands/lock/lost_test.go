//go:build unix

package lock_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
)

// stamper is the child of `lock run` in the lost-lease tests: it ignores SIGTERM (as a
// job stuck in a write or with a bad handler does), writes its pid, then appends the
// wall-clock time to DSCTL_LOCK_TEST_STAMPS every 2ms, one write(2) per line, until it
// is killed. The last line is the last moment it was still working under the lock.
func stamper() int {
	signal.Ignore(syscall.SIGTERM)
	f, err := os.OpenFile(os.Getenv("DSCTL_LOCK_TEST_STAMPS"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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

// readStamps returns the stamper's pid and its timestamps.
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
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "pid "); ok {
			pid, _ = strconv.Atoi(v)
			continue
		}
		if ns, err := strconv.ParseInt(line, 10, 64); err == nil {
			stamps = append(stamps, time.Unix(0, ns))
		}
	}
	return pid, stamps
}

// Issue 10, hole 3: the supervisor of `lock run` loses its lease because the network
// to Redis is blackholed (renewals hang, nothing is refused); another client, talking
// to Redis directly, takes the lock as soon as Redis expires it. The child ignores
// SIGTERM and writes a timestamp every 2ms. Its last write must come before the
// earliest moment Redis could have let anyone else in (and so before the next holder
// had the lock), for every --on-lost policy that stops it.
//
// It also measures the overlap (or the gap) for docs/reliability.md:
//
//	go test -count=1 -run TestLostLeaseStopsTheChildBeforeTheNextHolder -v ./commands/lock
func TestLostLeaseStopsTheChildBeforeTheNextHolder(t *testing.T) {
	addr, l := realRedis(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"kill", []string{"--on-lost", "kill"}},
		{"term-default-grace", nil},
		{"term-grace-900ms", []string{"--grace", "900ms"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			proxy := newFaultProxy(t, addr)
			name := locktest.Name(t, "overlap")
			file := filepath.Join(t.TempDir(), "stamps")
			args := append([]string{"lock", "run", name, "--redis", proxy.addr(), "--ttl", "2s"}, c.args...)
			p := start(t, []string{helperEnv + "=stamper", "DSCTL_LOCK_TEST_STAMPS=" + file}, append(args, "--", self)...)
			waitFor(t, "the child's first write", 10*time.Second, func() bool {
				_, s := readStamps(file)
				return len(s) > 0
			})
			child, _ := readStamps(file)
			defer syscall.Kill(child, syscall.SIGKILL)
			defer syscall.Kill(-child, syscall.SIGKILL)

			proxy.blackhole(true)
			cut := time.Now()
			// The earliest moment Redis can drop dsctl's lease: nothing from dsctl
			// reaches it any more, and the lease had at least PTTL left when this
			// request was sent.
			info, err := l.Inspect(context.Background(), name)
			if err != nil || !info.Held || info.Holder == nil {
				t.Fatalf("inspect after the cut: %+v %v", info, err)
			}
			takeover := cut.Add(info.Holder.TTLLeft)
			next, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(20 * time.Second)})
			if err != nil {
				t.Fatalf("the next holder did not get the lock: %v", err)
			}
			got := time.Now()
			defer l.Release(context.Background(), name, next.Token)

			code := p.wait(t, 30*time.Second)
			waitFor(t, "the child to be gone", 5*time.Second, func() bool { return syscall.Kill(child, 0) != nil })
			_, stamps := readStamps(file)
			last := stamps[len(stamps)-1]
			t.Logf("%s: network cut %s after the child started; Redis could drop the lease %s after the cut; the next holder had it %s after the cut",
				c.name, cut.Sub(stamps[0]).Round(time.Millisecond), takeover.Sub(cut).Round(time.Millisecond), got.Sub(cut).Round(time.Millisecond))
			t.Logf("%s: the child's last write came %s after the earliest takeover and %s after the next holder had the lock (negative: before)",
				c.name, last.Sub(takeover).Round(time.Millisecond), last.Sub(got).Round(time.Millisecond))
			t.Logf("dsctl said: %s", strings.TrimSpace(p.stderr.String()))
			if code != 4 {
				t.Errorf("exit %d, want 4", code)
			}
			if !last.Before(takeover) || !last.Before(got) {
				t.Fatalf("the child kept writing %s after Redis could let another holder in (%s after the next holder had the lock)",
					last.Sub(takeover).Round(time.Millisecond), last.Sub(got).Round(time.Millisecond))
			}
		})
	}
}

// A network cut shorter than the window before SIGTERM costs nothing: the renewal
// stuck on the dead connection gives up after its bound, a retry on a new connection
// succeeds once the network is back, and the command finishes with its own exit code.
func TestShortNetworkCutKeepsTheLease(t *testing.T) {
	addr, l := realRedis(t)
	proxy := newFaultProxy(t, addr)
	name := locktest.Name(t, "cut")
	// TTL 3s: renewal due 1s after the acquire; SIGTERM would go 2.07s after it.
	p := start(t, nil, "lock", "run", name, "--redis", proxy.addr(), "--ttl", "3s", "-v",
		"--", "sh", "-c", "echo ready; sleep 4; exit 5")
	waitFor(t, "the command to start", 10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "ready") })
	proxy.blackhole(true)
	time.Sleep(1500 * time.Millisecond) // the first renewal hangs in this window
	proxy.blackhole(false)
	if code := p.wait(t, 15*time.Second); code != 5 {
		t.Fatalf("exit %d, want the command's 5: %s", code, p.stderr)
	}
	msg := p.stderr.String()
	if !strings.Contains(msg, "renewal failed") || !strings.Contains(msg, "renewed") || strings.Contains(msg, "lost") {
		t.Fatalf("want a failed renewal, then a successful one, and no loss:\n%s", msg)
	}
	if held(l, name)() {
		t.Fatal("lock still held after the command exited")
	}
}

// The residual no client can close: dsctl itself is stopped (SIGSTOP, a frozen VM)
// while its command keeps running, past the lease's end. Nothing can signal the
// command meanwhile; another holder takes the lock. What covers it is fencing: the
// storage refuses the old holder's writes once it has seen the new fence. When dsctl
// runs again it kills the command at once and exits 4 saying it did not run.
func TestPausedSupervisorIsCoveredByFencing(t *testing.T) {
	addr, _ := realRedis(t)
	name := locktest.Name(t, "residual")
	store := &fencedStore{childPID: map[string]int{}}
	srv := httptest.NewServer(store)
	defer srv.Close()
	self, _ := os.Executable()
	env := func(who string) []string {
		return []string{helperEnv + "=writer", "DSCTL_LOCK_TEST_STORE=" + srv.URL, "DSCTL_LOCK_TEST_WHO=" + who}
	}
	a := start(t, env("A"), "lock", "run", name, "--redis", addr, "--ttl", "1s", "--", self)
	waitFor(t, "A's first write", 5*time.Second, func() bool { return store.count("A", true) > 0 })
	_, pids := store.snapshot()
	child := pids["A"]
	defer syscall.Kill(-child, syscall.SIGKILL)
	a.cmd.Process.Signal(syscall.SIGSTOP) // dsctl only: its command runs on

	b := start(t, append(env("B"), "DSCTL_LOCK_TEST_ONCE=1"), "lock", "run", name, "--redis", addr, "--ttl", "5s", "--wait", "10s", "--", self)
	if code := b.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("B exit %d: %s", code, b.stderr)
	}
	waitFor(t, "A's command to write after B, and be refused", 5*time.Second, func() bool { return store.count("A", false) > 0 })
	resumed := time.Now()
	a.cmd.Process.Signal(syscall.SIGCONT)
	if code := a.wait(t, 5*time.Second); code != 4 {
		t.Fatalf("A exit %d, want 4: %s", code, a.stderr)
	}
	waitFor(t, "A's command to be gone", 2*time.Second, func() bool { return syscall.Kill(child, 0) != nil })
	t.Logf("A's command was stopped %s after dsctl was resumed; %d of its writes were refused by fencing meanwhile",
		time.Since(resumed).Round(time.Millisecond), store.count("A", false))
	msg := a.stderr.String()
	if !strings.Contains(msg, "did not run") || !strings.Contains(msg, "SIGKILL") {
		t.Fatalf("A's message does not say it was stalled and killed: %s", msg)
	}
	writes, _ := store.snapshot()
	seenB := false
	for _, w := range writes {
		seenB = seenB || w.who == "B"
		if seenB && w.who == "A" && w.accepted {
			t.Fatalf("a write with A's old fence was accepted after B's: %+v", writes)
		}
	}
}
