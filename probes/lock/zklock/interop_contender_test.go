package zklock_test

// The ZooKeeper side of the interoperability tests with the real libraries
// (interop_curator_test.go, interop_kazoo_test.go): how to start Curator and kazoo
// against the real ensemble, and dsctl's side of the contention. The process harness
// and the critical-section marker they share with the ShedLock tests are in
// locktest (contender.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// zkConnect is the real ensemble's connect string (the libraries take one string).
func zkConnect(t *testing.T) []string { return testenv.List(t, testenv.ZK) }

// contenderArgs are the arguments both contenders take.
func contenderArgs(t *testing.T, path, marker string, iterations int, hold time.Duration, extra ...string) []string {
	return append([]string{"--connect", strings.Join(zkConnect(t), ","), "--path", path, "--marker", marker,
		"--iterations", fmt.Sprint(iterations), "--hold-ms", fmt.Sprint(hold.Milliseconds()), "--wait-ms", "30000"}, extra...)
}

func startCurator(t *testing.T, args ...string) *locktest.Contender {
	t.Helper()
	dir := locktest.InteropDir(t, "curator")
	return locktest.StartContender(t, "curator", locktest.JavaCommand(locktest.ContenderJar(dir, "curator"), args...))
}

func startKazoo(t *testing.T, args ...string) *locktest.Contender {
	t.Helper()
	dir := locktest.InteropDir(t, "kazoo")
	script, err := filepath.Abs("../../../scripts/interop/kazoo/contender.py")
	if err != nil {
		t.Fatal(err)
	}
	return locktest.StartContender(t, "kazoo", exec.Command(filepath.Join(dir, "venv", "bin", "python"), append([]string{script}, args...)...))
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
func dsctlLoop(ctx context.Context, l *zklock.Locker, name string, m locktest.Marker, iterations int, hold time.Duration) ([]string, error) {
	var violations []string
	for i := 0; i < iterations; i++ {
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: owner})
		if err != nil {
			return violations, fmt.Errorf("dsctl acquire %d: %w", i, err)
		}
		leave, v := m.Enter("dsctl " + le.Token)
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

// waitWaiters polls inspect (bounded, 10s) until it reports n waiters and returns its
// last answer, which the caller checks.
func waitWaiters(t *testing.T, l *zklock.Locker, name string, n int) *lock.Info {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := l.Inspect(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Waiters == n || time.Now().After(deadline) {
			return info
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
