package zklock_test

// The harness of the interoperability tests with the real libraries
// (interop_curator_test.go, interop_kazoo_test.go): contenders built by
// scripts/interop/setup run as processes against the real ensemble, dsctl runs in this
// process, and all of them prove exclusion with one critical-section marker file:
// whoever holds the lock creates it with O_EXCL right after acquiring and deletes it
// right before releasing, so two holders at once make a create fail (a violation).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// interopDir is where scripts/interop/setup put the contenders: DSCTL_TEST_INTEROP_DIR.
// Unset: the test skips (scripts/test sets it in its interop phase, after the main run,
// like the fault tests' DSCTL_TEST_FAULTS). Set but the contender or its runtime is
// missing: skip, or fail under CI=true.
func interopDir(t *testing.T, part string) string {
	t.Helper()
	dir := os.Getenv("DSCTL_TEST_INTEROP_DIR")
	if dir == "" {
		t.Skip("interop test: set DSCTL_TEST_INTEROP_DIR with `eval \"$(scripts/interop/setup)\"` (Java 17 + Maven, Python 3); scripts/test runs these in its interop phase")
	}
	var want string
	switch part {
	case "curator":
		want = filepath.Join(dir, "curator", "curator-contender.jar")
	case "kazoo":
		want = filepath.Join(dir, "venv", "bin", "python")
	case "shedlock":
		want = filepath.Join(dir, "shedlock", "shedlock-contender.jar")
	}
	tool := map[string]string{"curator": "java", "shedlock": "java", "kazoo": "python3"}[part]
	_, toolErr := exec.LookPath(tool)
	_, fileErr := os.Stat(want)
	if (toolErr == nil || part == "kazoo") && fileErr == nil {
		return dir
	}
	msg := fmt.Sprintf("%s interop contender not available (%s: %v; %s on PATH: %v): run `eval \"$(scripts/interop/setup)\"`",
		part, want, fileErr, tool, toolErr == nil)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, but CI=true: the interop tests must run", msg)
	}
	t.Skip(msg)
	return ""
}

// zkConnect is the real ensemble's connect string (the libraries take one string).
func zkConnect(t *testing.T) []string { return testenv.List(t, testenv.ZK) }

// libProc is one library process (a contender): its stdout events, in order, and its exit.
type libProc struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
	done   chan struct{}
	err    error
	stderr bytes.Buffer
}

func startContender(t *testing.T, name string, cmd *exec.Cmd) *libProc {
	t.Helper()
	c := &libProc{name: name, cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %s: %v", name, cmd, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// next waits (bounded) for the first event at index >= *from that starts with prefix
// and returns it; *from moves past it.
func (c *libProc) next(t *testing.T, from *int, prefix string, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		for ; *from < len(c.lines); *from++ {
			if l := c.lines[*from]; strings.HasPrefix(l, prefix) {
				*from++
				c.mu.Unlock()
				return l
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
			c.mu.Lock()
			n := len(c.lines)
			c.mu.Unlock()
			if *from >= n {
				t.Fatalf("%s exited (%v) before %q; events:\n%s\nstderr:\n%s", c.name, c.err, prefix, c.events(), c.stderr.String())
			}
		case <-deadline:
			t.Fatalf("%s: no %q within %s; events:\n%s\nstderr:\n%s", c.name, prefix, within, c.events(), c.stderr.String())
		}
	}
}

// seen reports whether any event so far starts with prefix.
func (c *libProc) seen(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (c *libProc) events() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// wait waits (bounded) for the process to exit and returns its exit code and last line.
func (c *libProc) wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		t.Fatalf("%s still running after %s; events:\n%s\nstderr:\n%s", c.name, within, c.events(), c.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		code = ee.ExitCode()
	} else if c.err != nil {
		t.Fatalf("%s: %v", c.name, c.err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	last := ""
	if len(c.lines) > 0 {
		last = c.lines[len(c.lines)-1]
	}
	return code, last
}

// contenderArgs are the arguments both contenders take.
func contenderArgs(t *testing.T, path, marker string, iterations int, hold time.Duration, extra ...string) []string {
	return append([]string{"--connect", strings.Join(zkConnect(t), ","), "--path", path, "--marker", marker,
		"--iterations", fmt.Sprint(iterations), "--hold-ms", fmt.Sprint(hold.Milliseconds()), "--wait-ms", "30000"}, extra...)
}

func startCurator(t *testing.T, args ...string) *libProc {
	t.Helper()
	dir := interopDir(t, "curator")
	return startContender(t, "curator", exec.Command("java", append([]string{"-Xmx128m", "-XX:TieredStopAtLevel=1", "-jar",
		filepath.Join(dir, "curator", "curator-contender.jar")}, args...)...))
}

func startKazoo(t *testing.T, args ...string) *libProc {
	t.Helper()
	dir := interopDir(t, "kazoo")
	script, err := filepath.Abs("../../../scripts/interop/kazoo/contender.py")
	if err != nil {
		t.Fatal(err)
	}
	return startContender(t, "kazoo", exec.Command(filepath.Join(dir, "venv", "bin", "python"), append([]string{script}, args...)...))
}

// marker is the shared critical-section marker (see the file comment).
type marker struct{ path string }

func newMarker(t *testing.T) marker { return marker{filepath.Join(t.TempDir(), "critical-section")} }

// enter creates the marker with O_EXCL; a non-empty violation names who was inside.
func (m marker) enter(who string) (leave func(), violation string) {
	f, err := os.OpenFile(m.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		inside, _ := os.ReadFile(m.path)
		return func() {}, fmt.Sprintf("%s found the marker taken by: %s", who, strings.TrimSpace(string(inside)))
	}
	_, _ = f.WriteString(who + "\n")
	_ = f.Close()
	h, err := os.OpenFile(m.path+".history", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, _ = h.WriteString(who + "\n")
		_ = h.Close()
	}
	return func() { _ = os.Remove(m.path) }, ""
}

// sides counts the holders per side and the handoffs between different sides.
func (m marker) sides(t *testing.T) (count map[string]int, handoffs int) {
	t.Helper()
	b, err := os.ReadFile(m.path + ".history")
	if err != nil {
		t.Fatal(err)
	}
	count = map[string]int{}
	prev := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		side, _, _ := strings.Cut(line, " ")
		count[side]++
		if prev != "" && side != prev {
			handoffs++
		}
		prev = side
	}
	return count, handoffs
}

// newInteropLocker is a dsctl Locker on the real ensemble.
func newInteropLocker(t *testing.T) *zklock.Locker {
	t.Helper()
	l, err := zklock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: zkConnect(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// dsctlLoop takes the lock iterations times (waiting up to 30s each), holding it for
// hold inside the marker, and returns the violations it saw.
func dsctlLoop(ctx context.Context, l *zklock.Locker, name string, m marker, iterations int, hold time.Duration) ([]string, error) {
	var violations []string
	for i := 0; i < iterations; i++ {
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: owner})
		if err != nil {
			return violations, fmt.Errorf("dsctl acquire %d: %w", i, err)
		}
		leave, v := m.enter("dsctl " + le.Token)
		if v != "" {
			violations = append(violations, v)
		}
		time.Sleep(hold)
		leave()
		if err := l.Release(ctx, name, le.Token); err != nil {
			return violations, fmt.Errorf("dsctl release %d: %w", i, err)
		}
	}
	return violations, nil
}

// waitQueue polls the lock's queue (bounded) until it has n entries and returns it.
func waitQueue(t *testing.T, l *zklock.Locker, name string, n int) []zklock.QueueEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := l.Queue(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) == n {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue of %s has %d entries after 10s, want %d: %+v", name, len(q), n, q)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tokenOf is the uuid in a protected node name (_c_<uuid>-lock-<seq>) or a kazoo node
// name (<uuid>__lock__<seq>).
func tokenOf(node string) string {
	node = strings.TrimPrefix(node, "_c_")
	if i := strings.Index(node, "__lock__"); i > 0 {
		return node[:i]
	}
	if i := strings.LastIndex(node, "-lock-"); i > 0 {
		return node[:i]
	}
	return node
}

// shows reports whether inspect's answer names s anywhere (its notes or its fields, as
// the JSON output would show them).
func shows(t *testing.T, info *lock.Info, s string) bool {
	t.Helper()
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}

// touch creates a file (the contenders' --release-file).
func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
