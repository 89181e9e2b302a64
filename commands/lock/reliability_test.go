//go:build unix

package lock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// These tests run the real dsctl binary as separate processes against the real Redis
// servers of scripts/services, and kill, stop and signal those processes.

var binary string // built once in TestMain

const helperEnv = "DSCTL_LOCK_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "writer":
		os.Exit(writer())
	case "stamper":
		os.Exit(stamper())
	}
	if strings.HasPrefix(os.Getenv("DSCTL_LOCK_NAME"), "locktest/") {
		// Started by one of these tests' `lock run` but not as a helper: running the
		// tests here would start more `lock run`s of this binary, recursively.
		fmt.Fprintln(os.Stderr, "lock tests: started under `lock run` without "+helperEnv+"; refusing to recurse")
		os.Exit(3)
	}
	dir, err := os.MkdirTemp("", "dsctl-lock-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dsctl")
	build := exec.Command("go", "build", "-o", binary, "github.com/dsctl/dsctl/cmd/dsctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dsctl for the process tests:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running dsctl process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("%v still running after %s\nstdout: %s\nstderr: %s", p.cmd.Args, within, p.stdout, p.stderr)
	}
	return -1
}

func realRedis(t *testing.T) (string, *redislock.Locker) {
	addr := testenv.List(t, testenv.Redis)[0]
	l, err := redislock.New(endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.Redis{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return addr, l
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func held(l lock.Locker, name string) func() bool {
	return func() bool {
		info, err := l.Inspect(context.Background(), name)
		return err == nil && info.Held
	}
}

// 8 processes x 100 `dsctl lock run` critical sections that read-increment-write a
// shared file and log their fencing token: the count is exact, no section ever finds
// another inside, and the tokens strictly increase in the order the sections ran.
func TestMutualExclusion8ProcessesX100(t *testing.T) {
	addr, _ := realRedis(t)
	name := locktest.Name(t, "mutex")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "count"), []byte("0\n"), 0o644)
	script := `mkdir "$D/inside" 2>/dev/null || echo overlap >> "$D/overlaps"
n=$(cat "$D/count"); echo $((n+1)) > "$D/count"
echo "$DSCTL_LOCK_FENCE" >> "$D/fences"
rmdir "$D/inside"`
	const workers, rounds = 8, 100
	var wg sync.WaitGroup
	errs := make(chan string, workers*rounds)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				cmd := exec.Command(binary, "lock", "run", name, "--redis", addr, "--ttl", "10s", "--wait", "2m", "--shell", "--", script)
				cmd.Env = append(os.Environ(), "D="+dir)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Sprintf("%v: %s", err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	t.Logf("%d critical sections in %s", workers*rounds, time.Since(start).Round(time.Millisecond))
	count, _ := os.ReadFile(filepath.Join(dir, "count"))
	if strings.TrimSpace(string(count)) != strconv.Itoa(workers*rounds) {
		t.Fatalf("count = %s, want %d: increments were lost", count, workers*rounds)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "overlaps")); err == nil {
		t.Fatalf("%d overlapping critical sections", strings.Count(string(b), "\n"))
	}
	fences, _ := os.ReadFile(filepath.Join(dir, "fences"))
	lines := strings.Fields(string(fences))
	if len(lines) != workers*rounds {
		t.Fatalf("%d fencing tokens logged, want %d", len(lines), workers*rounds)
	}
	var last uint64
	for i, l := range lines {
		f, err := strconv.ParseUint(l, 10, 64)
		if err != nil || f <= last {
			t.Fatalf("fencing token %d: %q after %d: not strictly increasing", i, l, last)
		}
		last = f
	}
}

// A holder killed with SIGKILL cannot release; the next waiter holds the lock within
// the TTL plus 200ms.
func TestKilledHolderIsReplacedWithinTTL(t *testing.T) {
	addr, l := realRedis(t)
	name := locktest.Name(t, "kill")
	pidFile := filepath.Join(t.TempDir(), "child")
	holder := start(t, nil, "lock", "run", name, "--redis", addr, "--ttl", "1s", "--", "sh", "-c", "echo $$ > "+pidFile+"; exec sleep 30")
	waitFor(t, "the holder", 5*time.Second, held(l, name))
	defer killGroupFromFile(pidFile)
	waiter := start(t, nil, "lock", "acquire", name, "--redis", addr, "--ttl", "5s", "--wait", "10s", "-o", "json")
	waitFor(t, "the waiter to register", 5*time.Second, func() bool {
		info, err := l.Inspect(context.Background(), name)
		return err == nil && info.Waiters == 1
	})
	time.Sleep(500 * time.Millisecond) // let the holder renew at least once more
	killed := time.Now()
	holder.cmd.Process.Kill()
	if code := waiter.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, waiter.stderr)
	}
	var lease lock.Lease
	if err := json.Unmarshal([]byte(waiter.stdout.String()), &lease); err != nil {
		t.Fatal(err)
	}
	took := lease.AcquiredAt.Sub(killed)
	t.Logf("next holder took the lock %s after the SIGKILL (TTL 1s)", took.Round(time.Millisecond))
	if took < 0 || took > time.Second+200*time.Millisecond {
		t.Fatalf("next holder took the lock %s after the kill; want within TTL 1s + 200ms", took)
	}
	l.Release(context.Background(), name, lease.Token)
}

func killGroupFromFile(path string) {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(-pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// fencedStore is a test double for the user's storage: it remembers the largest
// fencing token it has seen and refuses writes with a smaller one.
type fencedStore struct {
	mu       sync.Mutex
	max      uint64
	writes   []write
	childPID map[string]int
}

type write struct {
	who      string
	fence    uint64
	accepted bool
}

func (s *fencedStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fence, err := strconv.ParseUint(r.URL.Query().Get("fence"), 10, 64)
	if err != nil {
		http.Error(w, "no fence", http.StatusBadRequest)
		return
	}
	who := r.URL.Query().Get("who")
	pid, _ := strconv.Atoi(r.URL.Query().Get("pid"))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.childPID[who] = pid
	ok := fence >= s.max
	if ok {
		s.max = fence
	}
	s.writes = append(s.writes, write{who, fence, ok})
	if !ok {
		http.Error(w, "stale fencing token", http.StatusConflict)
	}
}

func (s *fencedStore) snapshot() ([]write, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := map[string]int{}
	for k, v := range s.childPID {
		pids[k] = v
	}
	return append([]write(nil), s.writes...), pids
}

func (s *fencedStore) count(who string, accepted bool) int {
	writes, _ := s.snapshot()
	n := 0
	for _, w := range writes {
		if w.who == who && w.accepted == accepted {
			n++
		}
	}
	return n
}

// writer is the child of `lock run` in the fencing test: it writes to the store with
// its fencing token every 20ms (once with DSCTL_LOCK_TEST_ONCE).
func writer() int {
	url := os.Getenv("DSCTL_LOCK_TEST_STORE") + "?fence=" + os.Getenv("DSCTL_LOCK_FENCE") +
		"&who=" + os.Getenv("DSCTL_LOCK_TEST_WHO") + "&pid=" + strconv.Itoa(os.Getpid())
	for {
		resp, err := http.Post(url, "text/plain", nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if os.Getenv("DSCTL_LOCK_TEST_ONCE") != "" {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A holder paused (SIGSTOP, as in a long GC pause or a suspended VM) past its TTL:
// another process takes the lock; when the first resumes, a write it attempts with
// its old fencing token is refused by the storage, its renewal fails, its command is
// terminated and it exits 4.
func TestPausedHolderIsFencedOffAndExits4(t *testing.T) {
	addr, l := realRedis(t)
	name := locktest.Name(t, "pause")
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
	// The whole holder stops: dsctl and its command.
	syscall.Kill(-child, syscall.SIGSTOP)
	a.cmd.Process.Signal(syscall.SIGSTOP)
	paused := time.Now()
	// A's lease runs from its last renewal (every TTL/3), not from the pause: ask
	// Redis how long it has left now; B must not get the lock before that.
	info, err := l.Inspect(context.Background(), name)
	if err != nil || !info.Held || info.Holder.TTLLeft <= 0 || info.Holder.TTLLeft > time.Second {
		t.Fatalf("A's lease right after the pause: %+v %v", info, err)
	}
	left := info.Holder.TTLLeft

	b := start(t, append(env("B"), "DSCTL_LOCK_TEST_ONCE=1"), "lock", "run", name, "--redis", addr, "--ttl", "5s", "--wait", "10s", "--", self)
	if code := b.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("B exit %d: %s", code, b.stderr)
	}
	if got := time.Since(paused); got < left-5*time.Millisecond {
		t.Fatalf("B got the lock %s after A paused, but A's lease had %s left then", got, left)
	}
	if store.count("B", true) != 1 {
		t.Fatal("B's write was not accepted")
	}

	// A's command wakes first and writes with its old token: refused.
	syscall.Kill(-child, syscall.SIGCONT)
	waitFor(t, "A's late write to be refused", 5*time.Second, func() bool { return store.count("A", false) > 0 })
	// Then dsctl wakes: its lease is gone; it stops the command and exits 4.
	a.cmd.Process.Signal(syscall.SIGCONT)
	if code := a.wait(t, 5*time.Second); code != 4 {
		t.Fatalf("A exit %d, want 4: %s", code, a.stderr)
	}
	if msg := a.stderr.String(); !strings.Contains(msg, "lost at") || !strings.Contains(msg, "did not run") {
		t.Fatalf("A's message does not say when and why: %s", msg)
	}
	writes, _ := store.snapshot()
	seenB := false
	for _, w := range writes {
		seenB = seenB || w.who == "B"
		if seenB && w.who == "A" && w.accepted {
			t.Fatalf("a write with A's old token was accepted after B's: %+v", writes)
		}
	}
	if syscall.Kill(child, 0) == nil {
		waitFor(t, "A's command to end", 3*time.Second, func() bool { return syscall.Kill(child, 0) != nil })
	}
	if info, _ := l.Inspect(context.Background(), name); info == nil || info.Held {
		t.Fatalf("lock still held: %+v", info)
	}
}

// SIGTERM and SIGINT sent to `dsctl lock run` reach the command, and its exit code
// comes back unchanged; the lock is released.
func TestSignalsReachTheCommandAndItsExitCodeComesBack(t *testing.T) {
	addr, l := realRedis(t)
	for _, c := range []struct {
		sig  syscall.Signal
		trap string
		want int
	}{{syscall.SIGTERM, "TERM", 42}, {syscall.SIGINT, "INT", 43}} {
		name := locktest.Name(t, c.trap)
		script := fmt.Sprintf(`trap 'exit %d' %s; echo ready; while :; do sleep 0.05; done`, c.want, c.trap)
		p := start(t, nil, "lock", "run", name, "--redis", addr, "--", "sh", "-c", script)
		waitFor(t, "the command to start", 5*time.Second, func() bool { return strings.Contains(p.stdout.String(), "ready") })
		p.cmd.Process.Signal(c.sig)
		if code := p.wait(t, 5*time.Second); code != c.want {
			t.Fatalf("%s: exit %d, want the command's %d; stderr %q", c.trap, code, c.want, p.stderr)
		}
		if held(l, name)() {
			t.Fatalf("%s: lock still held", c.trap)
		}
	}
}

// A waiting `lock run` interrupted by ctrl-C exits 130 without running its command.
func TestInterruptWhileWaitingExits130(t *testing.T) {
	addr, l := realRedis(t)
	name := locktest.Name(t, "int")
	lease, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background(), name, lease.Token)
	marker := filepath.Join(t.TempDir(), "ran")
	p := start(t, nil, "lock", "run", name, "--redis", addr, "--wait", "forever", "--", "touch", marker)
	waitFor(t, "the waiter", 5*time.Second, func() bool {
		info, _ := l.Inspect(context.Background(), name)
		return info != nil && info.Waiters == 1
	})
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 5*time.Second); code != 130 {
		t.Fatalf("exit %d, want 130: %s", code, p.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran without the lock")
	}
	waitFor(t, "the waiter to leave", 2*time.Second, func() bool {
		info, _ := l.Inspect(context.Background(), name)
		return info != nil && info.Waiters == 0
	})
}

// ---- fault tests: they stop and pause the shared Redis servers ----

// Redis restarted (no persistence) while `lock run` holds: the lease is gone, the
// command is terminated, exit 4.
func TestFaultRedisRestartLosesTheLeaseExit4(t *testing.T) {
	testenv.Faults(t)
	addr, _ := realRedis(t)
	name := locktest.Name(t, "restart")
	p := start(t, nil, "lock", "run", name, "--redis", addr, "--ttl", "3s", "--grace", "1s", "--timeout", "1s",
		"--", "sh", "-c", "echo ready; exec sleep 600")
	waitFor(t, "the command to start", 5*time.Second, func() bool { return strings.Contains(p.stdout.String(), "ready") })
	t0 := time.Now()
	testenv.Service(t, "stop", "redis", "1")
	t.Logf("redis 1 stopped in %s", time.Since(t0).Round(time.Millisecond))
	restarted := false
	defer func() {
		if !restarted {
			testenv.Service(t, "start", "redis", "1")
		}
	}()
	testenv.Service(t, "start", "redis", "1")
	restarted = true
	t.Logf("redis 1 restarted %s after the stop began", time.Since(t0).Round(time.Millisecond))
	if code := p.wait(t, 15*time.Second); code != 4 {
		t.Fatalf("exit %d, want 4: %s", code, p.stderr)
	}
	msg := p.stderr.String()
	if !strings.Contains(msg, "lost at") || !(strings.Contains(msg, "no record") || strings.Contains(msg, "could not be reached") || strings.Contains(msg, "no renewal succeeded")) {
		t.Fatalf("message does not say why: %s", msg)
	}
	t.Logf("dsctl said: %s", strings.TrimSpace(msg))
}

// Quorum over 3 servers: with one paused, acquire still works; with two paused it
// fails with exit 3 and a clear message, leaving nothing held on the healthy one.
func TestFaultQuorumWithOneAndTwoPaused(t *testing.T) {
	testenv.Faults(t)
	addrs := testenv.List(t, testenv.Redis)
	all := strings.Join(addrs, ",")
	name := locktest.Name(t, "quorum")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(binary, append([]string{"lock"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}

	// A server that started less than --ttl ago does not vote (it may have forgotten a
	// lease in a restart): an earlier fault test may just have restarted one.
	waitUptime(t, addrs, 11*time.Second) // --ttl 10s, plus a second of uptime rounding
	testenv.Service(t, "pause", "redis", "3")
	paused3 := true
	defer func() {
		if paused3 {
			testenv.Service(t, "resume", "redis", "3")
		}
	}()
	start := time.Now()
	code, out, errOut := run("acquire", name, "--redis", all, "--ttl", "10s", "--timeout", "1s", "-o", "env")
	if code != 0 {
		t.Fatalf("acquire with redis 3 paused: exit %d %s", code, errOut)
	}
	t.Logf("acquire with 1 of 3 paused took %s", time.Since(start).Round(time.Millisecond))
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export DSCTL_LOCK_TOKEN="); ok {
			token = v
		}
	}
	if code, _, errOut := run("release", name, "--redis", all, "--token", token, "--timeout", "1s"); code != 0 {
		t.Fatalf("release with redis 3 paused: exit %d %s", code, errOut)
	}

	testenv.Service(t, "pause", "redis", "2")
	defer testenv.Service(t, "resume", "redis", "2")
	code, _, errOut = run("acquire", name, "--redis", all, "--ttl", "10s", "--timeout", "1s")
	if code != 3 || !strings.Contains(errOut, "1 of 3 servers, need 2") || !strings.Contains(errOut, "no answer within") {
		t.Fatalf("acquire with 2 of 3 paused: exit %d, want 3 with a clear message: %s", code, errOut)
	}
	t.Logf("dsctl said: %s", strings.TrimSpace(errOut))
	healthy, err := redislock.New(endpoint.Dialer{Timeout: time.Second}, endpoint.Redis{Addrs: addrs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	c := healthy.Clients()[0]
	if n := c.Exists(context.Background(), "dsctl:lock:{"+name+"}").Val(); n != 0 {
		t.Fatal("the failed quorum attempt left the lock held on the healthy server")
	}

	testenv.Service(t, "resume", "redis", "2")
	testenv.Service(t, "resume", "redis", "3")
	paused3 = false
	// A paused server may apply the attempt it had buffered once resumed (it expires
	// within the TTL); clean it up for the next run.
	for _, a := range addrs {
		l, _ := redislock.New(endpoint.Dialer{Timeout: time.Second}, endpoint.Redis{Addrs: []string{a}})
		l.Clients()[0].Del(context.Background(), "dsctl:lock:{"+name+"}", "dsctl:lock:{"+name+"}:owner")
		l.Close()
	}
}

// waitUptime waits (bounded) until every Redis server has been up for at least d.
func waitUptime(t *testing.T, addrs []string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d + 5*time.Second)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, err := c.Info(context.Background(), "server").Result()
			up := -1
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "uptime_in_seconds:"); ok {
					up, _ = strconv.Atoi(v)
				}
			}
			if err == nil && time.Duration(up)*time.Second > d {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("redis %s: up %ds, want more than %s (%v)", a, up, d, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		c.Close()
	}
}
