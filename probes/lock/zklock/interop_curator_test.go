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
	handoffBothWays(t, handoffCase{who: "Curator", format: zklock.FormatCurator, start: startCurator,
		checkHolder: func(t *testing.T, node string, info *lock.Info) {
			// Curator writes the client's IP address as the node's data: inspect shows it.
			if o := info.Holder.Owner; o == nil || o.Tool != "Apache Curator" || net.ParseIP(o.Host) == nil {
				t.Fatalf("inspect's owner of a Curator holder: %+v", o)
			}
		}})
}

// dsctl and Curator loop on the same lock at once: no overlap either way, each side
// gets it every time it asks, and the fair queues hand it back and forth.
func TestInteropCuratorMutexContention(t *testing.T) {
	locktest.InteropDir(t, "curator")
	contendWithDsctl(t, "Curator", "curator", startCurator)
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
