//go:build unix

package locktest

// The holder-process harness of the backends' process tests: a test re-runs its own
// binary (os.Args[0] -test.run=^TestHelperHolder$) with an environment that tells the
// helper test what to hold, so the holder is a real process the test can SIGKILL or
// SIGSTOP. The child (RunHolder) prints one event per line on stdout:
//
//	held <token> <fence> <local deadline, unix ns>
//	renewed <local deadline, unix ns>
//	lost <reason>
//	error <message>
//
// plus whatever the backend's tick prints (sqllock: "write ok|rejected <fence>").

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

	"github.com/dsctl/dsctl/probes/lock"
)

// RunHolder is the helper process's body: it opens a Locker, takes name with o, prints
// "held", then every 100ms calls tick (when set) and renews for o.TTL, printing
// "renewed" with the new local deadline, until a renewal says the lock is lost: then it
// prints "lost <reason>" and exits 0. Failing to open or take the lock prints "error"
// and exits 1. It never returns.
func RunHolder(ctx context.Context, open func() (lock.Locker, error), name string, o lock.AcquireOptions, tick func(le *lock.Lease)) {
	l, err := open()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	le, err := l.Acquire(ctx, name, o)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("held", le.Token, le.Fence, le.ExpiresAt.UnixNano())
	for {
		time.Sleep(100 * time.Millisecond)
		if tick != nil {
			tick(le)
		}
		r, err := l.Renew(ctx, name, le.Token, o.TTL)
		if nh, ok := lock.AsNotHeld(err); ok {
			fmt.Println("lost", nh.Reason)
			os.Exit(0)
		}
		if err == nil {
			fmt.Println("renewed", r.ExpiresAt.UnixNano())
		}
	}
}

// HolderProcess is a holder started by StartHolder: its process and the events it
// printed.
type HolderProcess struct {
	Cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	held  chan string
	lost  chan string
}

// StartHolder starts the test binary's TestHelperHolder with env added to this
// process's environment, and waits (at most 10s) until it holds the lock. The process
// is killed (resumed first, should it be stopped) when the test ends.
func StartHolder(t *testing.T, env ...string) *HolderProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &HolderProcess{Cmd: cmd, held: make(chan string, 1), lost: make(chan string, 1)}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT); _ = cmd.Process.Kill(); _ = cmd.Wait() })
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
		t.Fatalf("the holder process did not take the lock: %v", p.Lines())
	}
	return p
}

// Lines is a copy of the events the holder printed so far.
func (p *HolderProcess) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Signal sends sig to the holder process.
func (p *HolderProcess) Signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Deadline is the holder's last reported local deadline.
func (p *HolderProcess) Deadline(t *testing.T) time.Time {
	t.Helper()
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

// CheckTookAfterDeadline fails the test when the next holder took the lock (at took)
// before the holder process's last local deadline.
func (p *HolderProcess) CheckTookAfterDeadline(t *testing.T, took time.Time) {
	t.Helper()
	if dl := p.Deadline(t); took.Before(dl) {
		t.Errorf("the waiter held at %s, before the holder's local deadline %s", took.Format("15:04:05.000"), dl.Format("15:04:05.000"))
	}
}

// Resume continues a stopped holder and returns its "lost <reason>" line, failing the
// test when it does not report the loss within 10s.
func (p *HolderProcess) Resume(t *testing.T) string {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGCONT)
	select {
	case line := <-p.lost:
		return line
	case <-time.After(10 * time.Second):
		t.Fatal("the resumed holder did not learn it lost the lock")
		return ""
	}
}

// Saw reports whether any event so far starts with prefix.
func (p *HolderProcess) Saw(prefix string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
