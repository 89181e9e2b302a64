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

// handoffCase is one library in the handoff scenario (handoffBothWays).
type handoffCase struct {
	who    string      // the library in messages: "Curator", "kazoo"
	format lock.Format // inspect's format of its mutex
	start  func(t *testing.T, args ...string) *locktest.Contender
	// checkHolder adds the library's own checks of its holder: its node's name and
	// the owner inspect reads from it.
	checkHolder func(t *testing.T, node string, info *lock.Info)
}

// handoffBothWays is the scenario of the libraries' HandoffAndInspect tests. The
// library holds and a dsctl waiter queues behind it: inspect names the library's
// holder and its node, the queue is the library's node then dsctl's in sequence
// order, and dsctl does not get the lock until the library releases. Then dsctl holds
// and a second library process queues behind it: the queue and inspect show dsctl
// holding with the library's waiter, which does not enter until dsctl releases and
// then takes the lock once. The marker proves nobody was inside together.
func handoffBothWays(t *testing.T, c handoffCase) {
	ctx := context.Background()
	l := newInteropLocker(t)
	name := locktest.Name(t, strings.ToLower(c.who))
	path := l.Root() + "/" + name
	m := locktest.NewMarker(t)
	release := filepath.Join(t.TempDir(), "release")

	// The library holds; a dsctl waiter queues behind it.
	lib := c.start(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--release-file", release)...)
	from := 0
	lib.Next(t, &from, "ready", 30*time.Second)
	node := strings.Fields(lib.Next(t, &from, "enter ", 30*time.Second))[2]
	info, err := l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Held || info.Format != c.format || info.Holder == nil || info.Holder.Token != tokenOf(node) || info.Holder.Fence == 0 {
		t.Fatalf("inspect while %s holds %s: %+v", c.who, node, info)
	}
	c.checkHolder(t, node, info)
	if !shows(t, info, path+"/"+node) {
		t.Fatalf("inspect does not name %s's node %s: %+v", c.who, node, info)
	}
	waiter := locktest.AcquireInBackground(t, l, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: owner})
	q := waitQueue(t, l, name, 2)
	if q[0].Format != c.format || !strings.HasSuffix(q[0].Node, "/"+node) || q[1].Format != lock.FormatDsctl || q[0].Seq >= q[1].Seq {
		t.Fatalf("queue while %s holds and dsctl waits: %+v", c.who, q)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Waiters != 1 || info.Format != c.format || !shows(t, info, path+"/"+node) || !shows(t, info, strings.TrimPrefix(q[1].Node, path+"/")) {
		t.Fatalf("inspect with a dsctl waiter (%s) behind %s: %+v", q[1].Node, c.who, info)
	}
	waiter.StillWaiting(t, 200*time.Millisecond, "dsctl acquired while "+c.who+" held")
	locktest.Touch(t, release)
	ours := waiter.Lease(t, 15*time.Second, "dsctl waiter not woken by "+c.who+"'s release")
	leave, v := m.Enter("dsctl " + ours.Token)
	if v != "" {
		t.Fatal(v)
	}
	lib.WaitDone(t, 15*time.Second, 1)

	// dsctl holds; the library queues behind it and takes the lock when dsctl releases.
	lib2 := c.start(t, contenderArgs(t, path, m.Path, 1, 0)...)
	from2 := 0
	lib2.Next(t, &from2, "ready", 30*time.Second)
	q = waitQueue(t, l, name, 2)
	if q[0].Format != lock.FormatDsctl || q[0].Token != ours.Token || q[1].Format != c.format {
		t.Fatalf("queue while dsctl holds and %s waits: %+v", c.who, q)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != lock.FormatDsctl || info.Holder == nil || info.Holder.Token != ours.Token || info.Waiters != 1 ||
		!shows(t, info, strings.TrimPrefix(q[1].Node, path+"/")) {
		t.Fatalf("inspect with a %s waiter behind dsctl: %+v", c.who, info)
	}
	time.Sleep(300 * time.Millisecond)
	if lib2.Seen("enter") {
		t.Fatalf("%s entered while dsctl held:\n%s", c.who, lib2.Events())
	}
	leave()
	if err := l.Release(ctx, name, ours.Token); err != nil {
		t.Fatal(err)
	}
	lib2.Next(t, &from2, "enter ", 15*time.Second)
	lib2.WaitDone(t, 15*time.Second, 1)
}

// contendWithDsctl is the scenario of the libraries' Contention tests: the library
// (who in messages, side in the marker's history) and dsctl loop on the same lock at
// once, 20 holds each: no overlap either way, each side gets it every time it asks,
// and the lock goes back and forth.
func contendWithDsctl(t *testing.T, who, side string, start func(t *testing.T, args ...string) *locktest.Contender) {
	const rounds = 20
	hold := 10 * time.Millisecond
	l := newInteropLocker(t)
	name := locktest.Name(t, side+"-contention")
	m := locktest.NewMarker(t)
	lib := start(t, contenderArgs(t, l.Root()+"/"+name, m.Path, rounds, hold, "--side", side)...)
	from := 0
	lib.Next(t, &from, "ready", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	violations, err := dsctlLoop(ctx, l, name, m, rounds, hold)
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("dsctl saw %d overlaps: %v", len(violations), violations)
	}
	lib.WaitDone(t, time.Minute, rounds)
	count, handoffs := m.Sides(t)
	if count["dsctl"] != rounds || count[side] != rounds {
		t.Fatalf("holds per side %v, want %d each", count, rounds)
	}
	// Both loops ask again right after releasing, so with fair FIFO queues the lock
	// alternates; a quarter of the possible handoffs proves they really contended.
	if handoffs < rounds/2 {
		t.Fatalf("only %d handoffs between dsctl and %s in %d holds: they did not contend", handoffs, who, 2*rounds)
	}
	t.Logf("%d holds each, %d handoffs between dsctl and %s", rounds, handoffs, who)
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
