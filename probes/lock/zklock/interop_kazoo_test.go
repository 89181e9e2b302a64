package zklock_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// These tests run kazoo 2.11.0's Lock (PyPI, in the venv scripts/interop/setup builds)
// against the real ensemble, contending with dsctl's zklock in this process.
//
// Who waits for whom: every recipe here takes the lowest sequence number as the holder
// and watches its predecessor, but each one decides which children are contenders by
// their names:
//   - dsctl reads _c_<uuid>-lock-<seq> (its own, Curator's, go-zookeeper's) and kazoo's
//     <uuid>__lock__<seq>, ordered by sequence: it waits for all of them.
//   - kazoo's Lock counts only names matching its patterns, `__lock__` by default: it
//     ignores dsctl's and Curator's nodes unless given extra_lock_patterns=["-lock-"]
//     (kazoo >= 2.7.1), after which it orders them by sequence too.
//   - Curator sorts all children by the text after the last "lock-": a kazoo node has
//     none, so it sorts by its whole name, after every "-lock-" node whatever its
//     sequence. Curator therefore jumps ahead of a kazoo holder.
// So dsctl <-> kazoo (with the pattern) exclude each other both ways, dsctl <-> Curator
// both ways, kazoo (with the pattern) waits for Curator, but Curator does not wait for
// kazoo. The tests below prove each of these, the failing combinations included.

// dsctl and kazoo's Lock (with extra_lock_patterns=["-lock-"]) exclude each other both
// ways, one handoff at a time, and inspect names the kazoo holder and the mixed queue.
func TestInteropKazooLockHandoffAndInspect(t *testing.T) {
	locktest.InteropDir(t, "kazoo")
	handoffBothWays(t, handoffCase{who: "kazoo", format: zklock.FormatKazoo,
		start: startKazoo,
		checkHolder: func(t *testing.T, node string, info *lock.Info) {
			if !strings.Contains(node, "__lock__") {
				t.Fatalf("kazoo's node %q", node)
			}
			// kazoo writes the identifier the application passed (the contender's --side).
			if o := info.Holder.Owner; o == nil || o.Tool != "kazoo" || o.Label != "kazoo" {
				t.Fatalf("inspect's owner of a kazoo holder: %+v", o)
			}
		}})
}

// dsctl and kazoo loop on the same lock at once: no overlap, each side gets it every
// time, and the lock goes back and forth.
func TestInteropKazooLockContention(t *testing.T) {
	locktest.InteropDir(t, "kazoo")
	contendWithDsctl(t, "kazoo", "kazoo", startKazoo)
}

// Without extra_lock_patterns kazoo does not see dsctl's node and takes the lock while
// dsctl holds it: the marker check catches the overlap (this is why the pattern is
// required, and proof that the check detects overlaps).
func TestInteropKazooWithoutPatternIgnoresDsctl(t *testing.T) {
	locktest.InteropDir(t, "kazoo")
	ctx := context.Background()
	l := newInteropLocker(t)
	name := locktest.Name(t, "kazoo-nopattern")
	m := locktest.NewMarker(t)
	le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	leave, v := m.Enter("dsctl " + le.Token)
	if v != "" {
		t.Fatal(v)
	}
	defer func() { leave(); _ = l.Release(ctx, name, le.Token) }()
	kz := startKazoo(t, contenderArgs(t, l.Root()+"/"+name, m.Path, 1, 0, "--no-foreign-patterns", "--blocking", "no")...)
	code, last := kz.Wait(t, 30*time.Second)
	if code != 3 || last != "done acquired=1 violations=1" || !kz.Seen("violation") || !strings.Contains(kz.Events(), "taken by: dsctl "+le.Token) {
		t.Fatalf("kazoo without extra_lock_patterns while dsctl holds: exit %d, last %q; %s", code, last, kz.Report())
	}
}

// Curator and kazoo: kazoo (with the pattern) waits for a Curator holder, but Curator
// sorts kazoo's node after its own and takes the lock while kazoo holds it. dsctl, which
// orders both by sequence, is the only one of the three that waits for both.
func TestInteropCuratorAndKazoo(t *testing.T) {
	locktest.InteropDir(t, "curator")
	locktest.InteropDir(t, "kazoo")
	l := newInteropLocker(t)

	t.Run("kazoo waits for Curator", func(t *testing.T) {
		name := locktest.Name(t, "cur-kz")
		path := l.Root() + "/" + name
		m := locktest.NewMarker(t)
		release := filepath.Join(t.TempDir(), "release")
		cur := startCurator(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--release-file", release)...)
		from := 0
		cur.Next(t, &from, "enter ", 30*time.Second)
		kz := startKazoo(t, contenderArgs(t, path, m.Path, 1, 0)...)
		kfrom := 0
		kz.Next(t, &kfrom, "ready", 30*time.Second)
		waitQueue(t, l, name, 2)
		time.Sleep(300 * time.Millisecond)
		if kz.Seen("enter") {
			t.Fatalf("kazoo entered while Curator held:\n%s", kz.Events())
		}
		locktest.Touch(t, release)
		kz.Next(t, &kfrom, "enter ", 15*time.Second)
		for _, c := range []*locktest.Contender{cur, kz} {
			c.WaitDone(t, 15*time.Second, 1)
		}
	})

	t.Run("Curator does not wait for kazoo", func(t *testing.T) {
		name := locktest.Name(t, "kz-cur")
		path := l.Root() + "/" + name
		m := locktest.NewMarker(t)
		release := filepath.Join(t.TempDir(), "release")
		kz := startKazoo(t, contenderArgs(t, path, m.Path, 1, 30*time.Second, "--release-file", release)...)
		kfrom := 0
		kz.Next(t, &kfrom, "enter ", 30*time.Second)
		cur := startCurator(t, contenderArgs(t, path, m.Path, 1, 0, "--wait-ms", "10000")...)
		code, last := cur.Wait(t, 30*time.Second)
		locktest.Touch(t, release)
		if code != 3 || last != "done acquired=1 violations=1" || !strings.Contains(cur.Events(), "taken by: kazoo") {
			t.Fatalf("Curator while kazoo holds: exit %d, last %q (expected it to jump the queue: if Curator now waits for kazoo, update the README's interop table); %s",
				code, last, cur.Report())
		}
		kz.WaitDone(t, 15*time.Second, 1)
	})
}

// kazoo's ReadLock nodes (<uuid>__rlock__<seq>) are recognised by inspect and list, and
// a kazoo WriteLock (with the pattern) queues behind the reader.
func TestInteropKazooReadWriteLockInspect(t *testing.T) {
	locktest.InteropDir(t, "kazoo")
	ctx := context.Background()
	l := newInteropLocker(t)
	name := locktest.Name(t, "kazoo-rw")
	path := l.Root() + "/" + name
	m := locktest.NewMarker(t)
	release := filepath.Join(t.TempDir(), "release")
	r := startKazoo(t, contenderArgs(t, path, m.Path+".reader", 1, 30*time.Second, "--recipe", "read", "--release-file", release, "--side", "reader")...)
	rfrom := 0
	reader := strings.Fields(r.Next(t, &rfrom, "enter ", 30*time.Second))[2]
	if !strings.Contains(reader, "__rlock__") {
		t.Fatalf("kazoo's read lock node %q", reader)
	}
	w := startKazoo(t, contenderArgs(t, path, m.Path, 1, 0, "--recipe", "write", "--side", "writer")...)
	wfrom := 0
	w.Next(t, &wfrom, "ready", 30*time.Second)
	info := waitWaiters(t, l, name, 1)
	if !info.Held || info.Format != zklock.FormatKazooRead || info.Holder.Token != tokenOf(strings.Replace(reader, "__rlock__", "__lock__", 1)) ||
		info.Waiters != 1 || !shows(t, info, "kazoo read-write lock: the read lock is held by 1 reader(s)") {
		t.Fatalf("inspect of a kazoo read lock with a writer waiting: %+v", info)
	}
	listed, err := l.List(ctx, lock.ListOptions{Prefix: name})
	if err != nil || len(listed) != 1 || listed[0].Format != zklock.FormatKazooRead {
		t.Fatalf("list of a kazoo read lock: %+v %v", listed, err)
	}
	if w.Seen("enter") {
		t.Fatal("kazoo writer entered while a reader held")
	}
	locktest.Touch(t, release)
	w.Next(t, &wfrom, "enter ", 15*time.Second)
	for _, c := range []*locktest.Contender{r, w} {
		c.WaitDone(t, 15*time.Second, 1)
	}
}
