package zk

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	zkt "github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

func TestReadsTreeAndChroot(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx := context.Background()
		root := base(t, c)
		paths := []string{root + "/a", root + "/a/x", root + "/a/y", root + "/a-b", root + "/c"}
		if err := c.CreateAll(ctx, paths, []byte(`{"k":1}`), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, root+"/a/x", []byte("v2"), -1); err != nil {
			t.Fatal(err)
		}
		n, err := c.Get(ctx, root+"/a/x")
		if err != nil || string(n.Data) != "v2" || n.Stat.Version != 1 {
			t.Fatalf("get: %q %+v %v", n.Data, n.Stat, err)
		}
		kids, st, err := c.Children(ctx, root)
		if err != nil || strings.Join(kids, ",") != "a,a-b,c" || st.NumChildren != 3 {
			t.Fatalf("children: %v %+v %v", kids, st, err)
		}
		tr, err := c.Walk(ctx, root, WalkOptions{MaxDepth: -1})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range tr.Nodes {
			got = append(got, strings.TrimPrefix(n.Path, root)+fmt.Sprintf(":%d", n.Stat.NumChildren))
		}
		want := ":3,/a:2,/a/x:0,/a/y:0,/a-b:0,/c:0"
		if strings.Join(got, ",") != want {
			t.Fatalf("walk order/counts: got %s, want %s", strings.Join(got, ","), want)
		}
		// Depth 0: the root only, its children counted but not listed.
		tr, err = c.Walk(ctx, root, WalkOptions{MaxDepth: 0})
		if err != nil || len(tr.Nodes) != 1 || tr.Nodes[0].Cut != "depth" || tr.Unlisted != 3 {
			t.Fatalf("depth 0: %+v %v", tr, err)
		}
		// A cap of 3 lists the root's 3 children but not /a's 2.
		tr, err = c.Walk(ctx, root, WalkOptions{MaxDepth: -1, MaxNodes: 4})
		if err != nil || !tr.Truncated || len(tr.Nodes) != 4 || tr.Unlisted != 2 {
			t.Fatalf("max-nodes: truncated=%v nodes=%d unlisted=%d %v", tr.Truncated, len(tr.Nodes), tr.Unlisted, err)
		}
		// The same reads through a chroot.
		cc, err := Connect(ctx, dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}, Chroot: root})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		kids, _, err = cc.Children(ctx, "/a")
		if err != nil || strings.Join(kids, ",") != "x,y" {
			t.Fatalf("chroot children: %v %v", kids, err)
		}
		created, err := cc.Create(ctx, "/d", nil, gozk.FlagSequence, nil)
		if err != nil || !strings.HasPrefix(created, "/d") || strings.HasPrefix(created, root) {
			t.Fatalf("chroot create returned %q, %v", created, err)
		}
		if _, err := Connect(ctx, dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}, Chroot: root + "/nope"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("missing chroot: want usage error, got %v", err)
		}
	})
}

func TestBadInput(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx := context.Background()
		root := base(t, c)
		for _, p := range []string{"", "rel", "/a/", "/a//b", "/a/../b", "/a/\x01"} {
			if _, err := c.Get(ctx, p); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "invalid path") {
				t.Errorf("path %q: want usage 'invalid path', got %v", p, err)
			}
		}
		_, err := c.Get(ctx, root+"/missing")
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), root+"/missing: no such node") || !ErrNoNode(err) {
			t.Errorf("missing node: %v", err)
		}
		// A node only the digest user may read.
		t.Setenv("DSCTL_TEST_ZK_DIGEST", "s3cret")
		authed := connect(t, endpoint.ZooKeeper{Servers: tg.Servers, DigestUser: "dsctl-owner", DigestPassword: endpoint.Secret{Env: "DSCTL_TEST_ZK_DIGEST"}})
		if _, err := authed.Create(ctx, root+"/private", []byte("x"), 0, gozk.DigestACL(gozk.PermAll, "dsctl-owner", "s3cret")); err != nil {
			t.Fatal(err)
		}
		if n, err := authed.Get(ctx, root+"/private"); err != nil || string(n.Data) != "x" {
			t.Fatalf("owner read: %q %v", n.Data, err)
		}
		_, err = c.Get(ctx, root+"/private")
		if errs.KindOf(err) != errs.KindRuntime || !strings.Contains(err.Error(), "not authorized") || !strings.Contains(err.Error(), "--digest-user") {
			t.Errorf("no auth: %v", err)
		}
		if tg.Embedded != nil {
			return // the rest does not involve the target: once, beside the ensemble, is enough
		}
		// A server that is not ZooKeeper: a clear error (unreachable: ZooKeeper is not at
		// that address, exit 6 like every backend), well within the timeout.
		redis := testenv.List(t, testenv.Redis)[0]
		start := time.Now()
		_, err = Connect(ctx, endpoint.Dialer{Timeout: 2 * time.Second}, Options{Endpoint: endpoint.ZooKeeper{Servers: []string{redis}}})
		if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), "not a ZooKeeper server") || !strings.Contains(err.Error(), "Redis") {
			t.Errorf("redis as zookeeper: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("redis as zookeeper took %s", d)
		}
	})
}

// TestWatchAccountsForEveryChange writes 10,000 changes at full speed into 100 nodes
// and checks that, per node, changes shown + changes counted in gaps == changes written.
func TestWatchAccountsForEveryChange(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		const nodes, perNode = 100, 100
		var paths []string
		for i := 0; i < nodes; i++ {
			paths = append(paths, fmt.Sprintf("%s/n%03d", root, i))
		}
		if err := c.CreateAll(ctx, paths, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		writer := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		var wg sync.WaitGroup
		errc := make(chan error, nodes)
		for _, p := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perNode; i++ {
					if _, err := writer.Set(ctx, p, []byte(fmt.Sprint(i)), -1); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		col.waitFor(t, 60*time.Second, "every node accounted for", func(evs []Event) bool {
			acc := accounted(evs)
			for _, p := range paths {
				if acc[p] < perNode {
					return false
				}
			}
			return true
		})
		time.Sleep(200 * time.Millisecond) // anything extra would be an over-count
		evs := col.snapshot()
		acc := accounted(evs)
		shown, gaps := 0, 0
		for _, p := range paths {
			if acc[p] != perNode {
				t.Errorf("%s: accounted %d changes, wrote %d", p, acc[p], perNode)
			}
		}
		for _, ev := range evs {
			switch ev.Type {
			case EventDataChanged:
				shown++
			case EventGap:
				gaps++
			}
		}
		sum := w.Summary()
		t.Logf("%d changes written: %d shown as data_changed, %d in %d gap events (summary: %d events, missed %d)",
			nodes*perNode, shown, sum.Missed, gaps, sum.Events, sum.Missed)
		if int64(shown)+sum.Missed != nodes*perNode {
			t.Errorf("shown %d + missed %d != written %d", shown, sum.Missed, nodes*perNode)
		}
	})
}

// TestWatchChildrenAndRecursive checks creation, deletion and child events.
func TestWatchChildrenAndRecursive(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		if err := c.CreateAll(ctx, []string{root + "/a"}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, root + "/later"}, Recursive: true, Depth: 2, Data: true})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.Create(ctx, root+"/a/b", []byte("hello"), 0, nil)
		must(err)
		col.waitFor(t, 10*time.Second, "created /a/b", func(evs []Event) bool { return has(evs, EventCreated, root+"/a/b") })
		_, err = c.Create(ctx, root+"/a/b/deep", nil, 0, nil) // depth 3: reported as a child, not watched
		must(err)
		_, err = c.Set(ctx, root+"/a/b", []byte("world"), -1)
		must(err)
		_, err = c.Create(ctx, root+"/later", []byte("root appears"), 0, nil)
		must(err)
		evs := col.waitFor(t, 10*time.Second, "data_changed /a/b and created /later", func(evs []Event) bool {
			return has(evs, EventDataChanged, root+"/a/b") && has(evs, EventCreated, root+"/later") &&
				has(evs, EventChildrenChanged, root+"/a/b")
		})
		for _, ev := range evs {
			if ev.Type == EventDataChanged && ev.Path == root+"/a/b" && (string(ev.Data) != "world" || ev.OldVersion != 0 || ev.Version != 1) {
				t.Errorf("data_changed: %+v", ev)
			}
			if ev.Path == root+"/a/b/deep" {
				t.Errorf("depth 3 node must not be watched: %+v", ev)
			}
		}
		must(c.Delete(ctx, root+"/a/b/deep", -1))
		must(c.Delete(ctx, root+"/a/b", -1))
		must(c.Delete(ctx, root+"/later", -1))
		evs = col.waitFor(t, 10*time.Second, "deleted /a/b and /later", func(evs []Event) bool {
			return has(evs, EventDeleted, root+"/a/b") && has(evs, EventDeleted, root+"/later")
		})
		if n := count(evs, EventDeleted, root+"/a/b"); n != 1 {
			t.Errorf("deleted /a/b reported %d times", n)
		}
		// The root that was deleted is watched again for creation.
		_, err = c.Create(ctx, root+"/later", nil, 0, nil)
		must(err)
		col.waitFor(t, 10*time.Second, "second created /later", func(evs []Event) bool { return count(evs, EventCreated, root+"/later") == 2 })
	})
}

func has(evs []Event, typ EventType, path string) bool { return count(evs, typ, path) > 0 }

func count(evs []Event, typ EventType, path string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && ev.Path == path {
			n++
		}
	}
	return n
}

// TestWatchReconnectWithinSession drops the connection (a private proxy), writes while
// the watcher is cut off, and checks the reconnect is reported and every change is
// accounted for.
func TestWatchReconnectWithinSession(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		if err := c.CreateAll(ctx, []string{root + "/x"}, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := startProxy(t, tg.Servers[0])
		wc := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(6 * time.Second)})
		sid := wc.SessionID()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		px.Pause()
		col.waitFor(t, 10*time.Second, "disconnected", func(evs []Event) bool { return has(evs, EventDisconnected, "") })
		for i := 0; i < 5; i++ {
			if _, err := c.Set(ctx, root+"/x", []byte("v"), -1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Create(ctx, root+"/y", nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		px.Resume()
		evs := col.waitFor(t, 20*time.Second, "reconnected, 5 changes of /x and /y created", func(evs []Event) bool {
			return has(evs, EventReconnected, "") && accounted(evs)[root+"/x"] == 5 && has(evs, EventCreated, root+"/y")
		})
		if wc.SessionID() != sid || has(evs, EventSessionExpired, "") {
			t.Fatalf("the session should have survived: %x -> %x", sid, wc.SessionID())
		}
	})
}

// TestWatchSessionExpiry cuts the watcher off past its session timeout (a private
// proxy refuses it), makes changes meanwhile, and checks: session_expired, then
// resync events with exactly those changes, then the watches work again.
func TestWatchSessionExpiry(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		if err := c.CreateAll(ctx, []string{root + "/keep", root + "/gone", root + "/set", root + "/quiet"}, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := startProxy(t, tg.Servers[0])
		wc := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(2 * time.Second)})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		px.Pause()
		col.waitFor(t, 10*time.Second, "disconnected", func(evs []Event) bool { return has(evs, EventDisconnected, "") })
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 3; i++ {
			_, err := c.Set(ctx, root+"/set", []byte("v"), -1)
			must(err)
		}
		must(c.Delete(ctx, root+"/gone", -1))
		_, err = c.Create(ctx, root+"/new", nil, 0, nil)
		must(err)
		time.Sleep(4 * time.Second) // past the 2s session timeout: the server expires it
		px.Resume()
		evs := col.waitFor(t, 30*time.Second, "session_expired and the resync", func(evs []Event) bool {
			for _, ev := range evs {
				if ev.Type == EventArmed && ev.Source == "resync" {
					return true
				}
			}
			return false
		})
		if !has(evs, EventSessionExpired, "") {
			t.Fatal("no session_expired event")
		}
		var resync []string
		for _, ev := range evs {
			if ev.Type == EventResync {
				resync = append(resync, fmt.Sprintf("%s %s %d", strings.TrimPrefix(ev.Path, root), ev.Change, ev.Missed))
			}
		}
		want := []string{" children_changed 2", "/gone deleted 1", "/new created 1", "/set data_changed 3"}
		if strings.Join(resync, ";") != strings.Join(want, ";") {
			t.Fatalf("resync:\n got %q\nwant %q", resync, want)
		}
		// Re-armed: a change after the resync is seen.
		_, err = c.Set(ctx, root+"/new", []byte("after"), -1)
		must(err)
		col.waitFor(t, 10*time.Second, "data_changed /new after resync", func(evs []Event) bool { return has(evs, EventDataChanged, root+"/new") })
		if s := w.Summary(); s.Expirations != 1 || s.Resyncs != 1 {
			t.Errorf("summary: %+v", s)
		}
	})
}

// TestWatchACLAndChroot watches through a chroot, anonymously, a subtree holding a
// node only a digest user may read: ZooKeeper notifies no session without READ
// permission, so arming says that node is not readable; the rest is watched, with
// paths relative to the chroot.
func TestWatchACLAndChroot(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		t.Setenv("DSCTL_TEST_ZK_OWNER", "pw")
		owner := connect(t, endpoint.ZooKeeper{Servers: tg.Servers, DigestUser: "owner", DigestPassword: endpoint.Secret{Env: "DSCTL_TEST_ZK_OWNER"}})
		acl := gozk.DigestACL(gozk.PermAll, "owner", "pw")
		if _, err := owner.Create(ctx, root+"/private", []byte("s"), 0, acl); err != nil {
			t.Fatal(err)
		}
		if _, err := owner.Create(ctx, root+"/private/kid", nil, 0, acl); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = owner.Delete(context.Background(), root+"/private/kid", -1) }) // only the owner may list it
		wc, err := Connect(ctx, dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}, Chroot: root})
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{"/"}, Recursive: true, Depth: -1, Data: true})
		if err != nil {
			t.Fatalf("arming over a node the ACL hides: %v", err)
		}
		col := collect(w)
		evs := col.waitFor(t, 5*time.Second, "armed", func(evs []Event) bool { return has(evs, EventArmed, "") })
		if !strings.Contains(evs[0].Message, "1 not readable by this session") || evs[0].Nodes != 2 {
			t.Fatalf("armed: %+v", evs[0])
		}
		if _, err := c.Create(ctx, root+"/open", []byte("o"), 0, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, root+"/open", []byte("p"), -1); err != nil {
			t.Fatal(err)
		}
		evs = col.waitFor(t, 10*time.Second, "created and changed /open", func(evs []Event) bool {
			return has(evs, EventCreated, "/open") && accounted(evs)["/open"] == 1
		})
		for _, ev := range evs {
			if strings.HasPrefix(ev.Path, root) {
				t.Errorf("path not relative to the chroot: %+v", ev)
			}
			if ev.Type == EventChildrenChanged && (ev.Path != "/" || strings.Join(ev.Added, ",") != "open") {
				t.Errorf("children_changed: %+v", ev)
			}
		}
	})
}
