package zklock_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// These tests run Apache Curator 5.9.0 (scripts/interop/curator, built by
// scripts/interop/setup) against the real ensemble, contending with dsctl's zklock in
// this process. dsctl's node is Curator's own (_c_<uuid>-lock-<seq>, the lowest
// sequence holds, each waiter watches its predecessor), so exclusion holds both ways.

// dsctl and Curator's InterProcessMutex exclude each other both ways, one handoff at a
// time, and inspect names the Curator holder and shows the mixed queue in order.
func TestInteropCuratorMutexHandoffAndInspect(t *testing.T) {
	locktest.InteropDir(t, "curator")
	ctx := context.Background()
	l := newInteropLocker(t)
	name := locktest.Name(t, "curator")
	path := l.Root() + "/" + name
	m := locktest.NewMarker(t)
	release := filepath.Join(t.TempDir(), "release")

	// Curator holds; a dsctl waiter queues behind it.
	cur := startCurator(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--release-file", release)...)
	from := 0
	cur.Next(t, &from, "ready", 30*time.Second)
	node := strings.Fields(cur.Next(t, &from, "enter ", 30*time.Second))[2]
	info, err := l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Held || info.Format != zklock.FormatCurator || info.Holder == nil || info.Holder.Token != tokenOf(node) || info.Holder.Fence == 0 {
		t.Fatalf("inspect while Curator holds %s: %+v", node, info)
	}
	// Curator writes the client's IP address as the node's data: inspect shows it.
	if o := info.Holder.Owner; o == nil || o.Tool != "Apache Curator" || net.ParseIP(o.Host) == nil {
		t.Fatalf("inspect's owner of a Curator holder: %+v", o)
	}
	if !shows(t, info, path+"/"+node) {
		t.Fatalf("inspect does not name Curator's node %s: %+v", node, info)
	}
	waiter := locktest.AcquireInBackground(t, l, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second), Owner: owner})
	q := waitQueue(t, l, name, 2)
	if q[0].Format != zklock.FormatCurator || !strings.HasSuffix(q[0].Node, "/"+node) || q[1].Format != lock.FormatDsctl || q[0].Seq >= q[1].Seq {
		t.Fatalf("queue while Curator holds and dsctl waits: %+v", q)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Waiters != 1 || info.Format != zklock.FormatCurator || !shows(t, info, strings.TrimPrefix(q[1].Node, path+"/")) {
		t.Fatalf("inspect with a dsctl waiter (%s) behind Curator: %+v", q[1].Node, info)
	}
	waiter.StillWaiting(t, 200*time.Millisecond, "Curator")
	locktest.Touch(t, release)
	ours := waiter.Lease(t, 15*time.Second, "Curator's release")
	leave, v := m.Enter("dsctl " + ours.Token)
	if v != "" {
		t.Fatal(v)
	}
	cur.WaitDone(t, 15*time.Second, 1)

	// dsctl holds; Curator queues behind it and takes the lock when dsctl releases.
	cur2 := startCurator(t, contenderArgs(t, path, m.Path, 1, 0)...)
	from2 := 0
	cur2.Next(t, &from2, "ready", 30*time.Second)
	q = waitQueue(t, l, name, 2)
	if q[0].Format != lock.FormatDsctl || q[0].Token != ours.Token || q[1].Format != zklock.FormatCurator {
		t.Fatalf("queue while dsctl holds and Curator waits: %+v", q)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != lock.FormatDsctl || info.Holder.Token != ours.Token || info.Waiters != 1 ||
		!shows(t, info, strings.TrimPrefix(q[1].Node, path+"/")) {
		t.Fatalf("inspect with a Curator waiter behind dsctl: %+v", info)
	}
	time.Sleep(300 * time.Millisecond)
	if cur2.Seen("enter") {
		t.Fatalf("Curator entered while dsctl held:\n%s", cur2.Events())
	}
	leave()
	if err := l.Release(ctx, name, ours.Token); err != nil {
		t.Fatal(err)
	}
	cur2.Next(t, &from2, "enter ", 15*time.Second)
	cur2.WaitDone(t, 15*time.Second, 1)
}

// dsctl and Curator loop on the same lock at once: no overlap either way, each side
// gets it every time it asks, and the fair queues hand it back and forth.
func TestInteropCuratorMutexContention(t *testing.T) {
	locktest.InteropDir(t, "curator")
	const rounds = 20
	hold := 10 * time.Millisecond
	l := newInteropLocker(t)
	name := locktest.Name(t, "curator-contention")
	m := locktest.NewMarker(t)
	cur := startCurator(t, contenderArgs(t, l.Root()+"/"+name, m.Path, rounds, hold)...)
	from := 0
	cur.Next(t, &from, "ready", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	violations, err := dsctlLoop(ctx, l, name, m, rounds, hold)
	if err != nil {
		t.Fatal(err)
	}
	if len(violations) > 0 {
		t.Fatalf("dsctl saw %d overlaps: %v", len(violations), violations)
	}
	cur.WaitDone(t, time.Minute, rounds)
	count, handoffs := m.Sides(t)
	if count["dsctl"] != rounds || count["curator"] != rounds {
		t.Fatalf("holds per side %v, want %d each", count, rounds)
	}
	// Both loops ask again right after releasing, so with fair FIFO queues the lock
	// alternates; a quarter of the possible handoffs proves they really contended.
	if handoffs < rounds/2 {
		t.Fatalf("only %d handoffs between dsctl and Curator in %d holds: they did not contend", handoffs, 2*rounds)
	}
	t.Logf("%d holds each, %d handoffs between dsctl and Curator", rounds, handoffs)
}

// Curator's InterProcessReadWriteLock and InterProcessSemaphoreV2 are recognised by
// inspect: the holder, its format, and the queue.
func TestInteropCuratorReadWriteLockAndSemaphoreInspect(t *testing.T) {
	locktest.InteropDir(t, "curator")
	ctx := context.Background()
	l := newInteropLocker(t)

	t.Run("rwlock", func(t *testing.T) {
		name := locktest.Name(t, "curator-rw")
		path := l.Root() + "/" + name
		m := locktest.NewMarker(t)
		release := filepath.Join(t.TempDir(), "release")
		w := startCurator(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--recipe", "write", "--release-file", release, "--side", "writer")...)
		from := 0
		node := strings.Fields(w.Next(t, &from, "enter ", 30*time.Second))[2]
		if !strings.Contains(node, "__WRIT__") {
			t.Fatalf("Curator's write lock node %q", node)
		}
		r := startCurator(t, contenderArgs(t, path, m.Path+".reader", 1, 0, "--recipe", "read", "--side", "reader")...)
		rfrom := 0
		r.Next(t, &rfrom, "ready", 30*time.Second)
		info := waitWaiters(t, l, name, 1)
		if !info.Held || info.Format != zklock.FormatCuratorRW || info.Holder.Token != strings.TrimSuffix(strings.TrimPrefix(node, "_c_"), node[strings.Index(node, "-__WRIT__"):]) ||
			info.Waiters != 1 || !shows(t, info, "the write lock is held by "+node) || !shows(t, info, "__READ__") {
			t.Fatalf("inspect of a Curator write lock with a reader waiting: %+v", info)
		}
		if r.Seen("enter") {
			t.Fatal("Curator reader entered while the writer held")
		}
		listed, err := l.List(ctx, lock.ListOptions{Prefix: name})
		if err != nil || len(listed) != 1 || listed[0].Name != name || listed[0].Format != zklock.FormatCuratorRW {
			t.Fatalf("list of a Curator write lock: %+v %v", listed, err)
		}
		locktest.Touch(t, release)
		r.Next(t, &rfrom, "enter ", 15*time.Second)
		for _, c := range []*locktest.Contender{w, r} {
			c.WaitDone(t, 15*time.Second, 1)
		}
	})

	t.Run("semaphore", func(t *testing.T) {
		name := locktest.Name(t, "curator-sem")
		path := l.Root() + "/" + name
		m := locktest.NewMarker(t)
		release := filepath.Join(t.TempDir(), "release")
		// Two leases: two holders at once, a third waits for a lease.
		var holders []*locktest.Contender
		var leases []string
		for i := 0; i < 2; i++ {
			c := startCurator(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--recipe", "semaphore", "--leases", "2", "--release-file", release, "--side", fmt.Sprint("holder", i))...)
			from := 0
			leases = append(leases, strings.Fields(c.Next(t, &from, "enter ", 30*time.Second))[2])
			holders = append(holders, c)
		}
		// (The waiter's marker is its own: the break below makes it a third holder on
		// purpose, beside the broken one that still believes it holds.)
		waiter := startCurator(t, contenderArgs(t, path, m.Path+".waiter", 1, 0, "--recipe", "semaphore", "--leases", "2", "--side", "waiter")...)
		wfrom := 0
		waiter.Next(t, &wfrom, "ready", 30*time.Second)
		info := waitWaiters(t, l, name, 1)
		if !info.Held || info.Format != zklock.FormatCuratorSemaphore || info.Waiters != 1 || !shows(t, info, leases[0]) || !shows(t, info, leases[1]) {
			t.Fatalf("inspect of a Curator semaphore with 2 leases held and one waiter: %+v", info)
		}
		if info.Holder.Token != tokenOfLease(leases[0]) && info.Holder.Token != tokenOfLease(leases[1]) {
			t.Fatalf("semaphore holder %q is neither lease %v", info.Holder.Token, leases)
		}
		if waiter.Seen("enter") {
			t.Fatal("a third holder entered a 2-lease semaphore")
		}
		// List names the semaphore itself, not its leases/ and locks/ children.
		listed, err := l.List(ctx, lock.ListOptions{Prefix: name})
		if err != nil || len(listed) != 1 || listed[0].Name != name || listed[0].Format != zklock.FormatCuratorSemaphore {
			t.Fatalf("list of a Curator semaphore: %+v %v", listed, err)
		}
		// break of one lease (the holder inspect reports, the oldest): the waiter gets a
		// lease at once.
		broken, err := l.Break(ctx, name, lock.BreakOptions{Reason: "interop test", By: "test", IfToken: info.Holder.Token})
		if err != nil || broken.Holder == nil || broken.Holder.Token != info.Holder.Token {
			t.Fatalf("break of a Curator semaphore: %+v %v", broken, err)
		}
		waiter.Next(t, &wfrom, "enter ", 15*time.Second)
		locktest.Touch(t, release)
		for _, c := range append(holders, waiter) {
			c.WaitDone(t, 15*time.Second, 1)
		}
	})
}

func tokenOfLease(node string) string {
	node = strings.TrimPrefix(node, "_c_")
	if i := strings.LastIndex(node, "-lease-"); i > 0 {
		return node[:i]
	}
	return node
}
