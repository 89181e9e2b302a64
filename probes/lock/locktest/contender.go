package locktest

// The harness of the interoperability tests with the real libraries (zklock: Curator
// and kazoo; sqllock: ShedLock): contenders built by scripts/interop/setup run as
// processes against the real servers, dsctl runs in the test's process, and all of them
// prove exclusion with one critical-section marker file: whoever holds the lock creates
// it with O_EXCL right after acquiring and deletes it right before releasing, so two
// holders at once make a create fail (a violation). Every holder also appends a line
// "<side> <who>" to MARKER.history while inside, so the order of holders can be read
// back. The contenders print one event per line on stdout ("ready", "enter ...",
// "exit ...", "violation ...", "done acquired=N violations=V"); see scripts/interop.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// InteropDir is where scripts/interop/setup put the contenders: DSCTL_TEST_INTEROP_DIR,
// checked to hold part ("curator", "shedlock" or "kazoo") and its runtime. Unset: the
// test skips (scripts/test sets it in its interop phase, after the main run, like the
// fault tests' DSCTL_TEST_FAULTS). Set but the contender or its runtime is missing:
// skip, or fail under CI=true.
func InteropDir(t *testing.T, part string) string {
	t.Helper()
	dir := os.Getenv("DSCTL_TEST_INTEROP_DIR")
	if dir == "" {
		t.Skip("interop test: set DSCTL_TEST_INTEROP_DIR with `eval \"$(scripts/interop/setup)\"` (Java 17 + Maven, Python 3); scripts/test runs these in its interop phase")
	}
	var want string
	switch part {
	case "curator", "shedlock":
		want = ContenderJar(dir, part)
	case "kazoo":
		want = filepath.Join(dir, "venv", "bin", "python")
	default:
		t.Fatalf("InteropDir: unknown contender %q", part)
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

// ContenderJar is the jar scripts/interop/setup builds for a Java contender (curator,
// shedlock) under dir.
func ContenderJar(dir, part string) string {
	return filepath.Join(dir, part, part+"-contender.jar")
}

// JavaCommand runs a contender jar with a small heap and the quick-start JIT.
func JavaCommand(jar string, args ...string) *exec.Cmd {
	return exec.Command("java", append([]string{"-Xmx128m", "-XX:TieredStopAtLevel=1", "-jar", jar}, args...)...)
}

// Contender is one library process: its stdout events, in order, and its exit.
type Contender struct {
	Name   string
	Cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
	done   chan struct{}
	err    error
	stderr lockedBuffer
}

// lockedBuffer is the process's stderr: exec copies into it while a failing test may
// read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartContender starts cmd and collects its events; it is killed, if still running,
// when the test ends.
func StartContender(t *testing.T, name string, cmd *exec.Cmd) *Contender {
	t.Helper()
	c := &Contender{Name: name, Cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{})}
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

// Next waits (bounded) for the first event at index >= *from that starts with prefix
// and returns it; *from moves past it.
func (c *Contender) Next(t *testing.T, from *int, prefix string, within time.Duration) string {
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
				t.Fatalf("%s exited (%v) before %q; %s", c.Name, c.err, prefix, c.Report())
			}
		case <-deadline:
			t.Fatalf("%s: no %q within %s; %s", c.Name, prefix, within, c.Report())
		}
	}
}

// Seen reports whether any event so far starts with prefix.
func (c *Contender) Seen(prefix string) bool { return c.Count(prefix) > 0 }

// Count is how many events so far start with prefix.
func (c *Contender) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// Events are the events so far, one a line.
func (c *Contender) Events() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// Stderr is what the process wrote on stderr so far (all of it once it exited).
func (c *Contender) Stderr() string { return c.stderr.String() }

// Report is the events and stderr, for a failure message.
func (c *Contender) Report() string {
	return fmt.Sprintf("events:\n%s\nstderr:\n%s", c.Events(), c.Stderr())
}

// Wait waits (bounded) for the process to exit and returns its exit code and last line.
func (c *Contender) Wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		t.Fatalf("%s still running after %s; %s", c.Name, within, c.Report())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		code = ee.ExitCode()
	} else if c.err != nil {
		t.Fatalf("%s: %v", c.Name, c.err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	last := ""
	if len(c.lines) > 0 {
		last = c.lines[len(c.lines)-1]
	}
	return code, last
}

// WaitDone waits (bounded) for the process to exit and fails the test unless it exited
// 0 with "done acquired=<acquired> violations=0" as its last event.
func (c *Contender) WaitDone(t *testing.T, within time.Duration, acquired int) {
	t.Helper()
	want := fmt.Sprintf("done acquired=%d violations=0", acquired)
	if code, last := c.Wait(t, within); code != 0 || last != want {
		t.Fatalf("%s exit %d, last %q, want exit 0 and %q; %s", c.Name, code, last, want, c.Report())
	}
}

// Marker is the shared critical-section marker file (see the file comment).
type Marker struct{ Path string }

// NewMarker is a marker in a fresh temporary directory.
func NewMarker(t *testing.T) Marker { return Marker{filepath.Join(t.TempDir(), "critical-section")} }

// Enter creates the marker with O_EXCL and records who in the history; a non-empty
// violation names who was inside. leave deletes the marker.
func (m Marker) Enter(who string) (leave func(), violation string) {
	f, err := os.OpenFile(m.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		inside, _ := os.ReadFile(m.Path)
		return func() {}, fmt.Sprintf("%s found the marker taken by: %s", who, strings.TrimSpace(string(inside)))
	}
	_, _ = f.WriteString(who + "\n")
	_ = f.Close()
	if h, err := os.OpenFile(m.Path+".history", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		_, _ = h.WriteString(who + "\n")
		_ = h.Close()
	}
	return func() { _ = os.Remove(m.Path) }, ""
}

// Sides counts the holders per side (the history's first word) and the handoffs
// between different sides.
func (m Marker) Sides(t *testing.T) (count map[string]int, handoffs int) {
	t.Helper()
	b, err := os.ReadFile(m.Path + ".history")
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

// Touch creates an empty file (the contenders' --release-file).
func Touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Waiter is an Acquire running in the background (a waiter queued behind a holder).
type Waiter struct{ got chan *lock.Lease }

// AcquireInBackground starts l.Acquire(name, o) in a goroutine; an error fails the test.
func AcquireInBackground(t *testing.T, l lock.Locker, name string, o lock.AcquireOptions) *Waiter {
	w := &Waiter{got: make(chan *lock.Lease, 1)}
	go func() {
		le, err := l.Acquire(context.Background(), name, o)
		if err != nil {
			t.Error(err)
		}
		w.got <- le
	}()
	return w
}

// StillWaiting fails the test with failure when the waiter's Acquire returned within d.
func (w *Waiter) StillWaiting(t *testing.T, d time.Duration, failure string) {
	t.Helper()
	select {
	case <-w.got:
		t.Fatal(failure)
	case <-time.After(d):
	}
}

// Lease waits (at most within) for the waiter's lease; when it does not come in time
// the test fails with failure, when the Acquire failed (already reported) it ends.
func (w *Waiter) Lease(t *testing.T, within time.Duration, failure string) *lock.Lease {
	t.Helper()
	var le *lock.Lease
	select {
	case le = <-w.got:
	case <-time.After(within):
		t.Fatal(failure)
	}
	if le == nil {
		t.FailNow()
	}
	return le
}
