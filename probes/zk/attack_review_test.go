package zk

// Adversarial review of `dsctl zk watch` (issue 11): each TestAttack... test makes
// changes a watcher must account for and asserts the exact events. Tests that expose a
// confirmed bug are skipped unless DSCTL_ATTACK=1 (the finding number is in the skip
// message); run them with
//
//	DSCTL_ATTACK=1 go test -race -count=1 -run 'TestAttack' ./probes/zk/
//
// The others are regression tests for claims that held.

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	zkt "github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
	"github.com/dsctl/dsctl/probes/zk/zktest"
)

func attackGuard(t *testing.T, finding string) {
	t.Helper()
	if os.Getenv("DSCTL_ATTACK") == "" {
		t.Skip(finding + " (set DSCTL_ATTACK=1 to run)")
	}
}

// multi runs ops as one transaction: every watch notification it triggers is sent
// after the whole transaction committed, so a watcher's re-read sees its final state.
func multi(t *testing.T, c *Client, ops ...interface{}) {
	t.Helper()
	if _, err := c.Conn().Multi(ops...); err != nil {
		t.Fatalf("multi: %v", err)
	}
}

func mkCreate(p string) *gozk.CreateRequest {
	return &gozk.CreateRequest{Path: p, Data: []byte("x"), Acl: gozk.WorldACL(gozk.PermAll)}
}
func mkSet(p string) *gozk.SetDataRequest {
	return &gozk.SetDataRequest{Path: p, Data: []byte("v"), Version: -1}
}
func mkDelete(p string) *gozk.DeleteRequest { return &gozk.DeleteRequest{Path: p, Version: -1} }

// kidsAccounted sums the child changes events show for path: names added and removed
// by children_changed, plus the Missed of children gaps (what cversion moved by).
func kidsAccounted(evs []Event, path string) int64 {
	var n int64
	for _, ev := range evs {
		if ev.Path != path {
			continue
		}
		switch {
		case ev.Type == EventChildrenChanged:
			n += int64(len(ev.Added) + len(ev.Removed))
		case ev.Type == EventGap && ev.Change == EventChildrenChanged:
			n += ev.Missed
		}
	}
	return n
}

func describe(evs []Event) string {
	s := ""
	for _, ev := range evs {
		s += fmt.Sprintf("\n  %s %s change=%s v%d->%d cv%d->%d missed=%d +%v -%v src=%s %s",
			ev.Type, ev.Path, ev.Change, ev.OldVersion, ev.Version, ev.OldCversion, ev.Cversion, ev.Missed, ev.Added, ev.Removed, ev.Source, ev.Message)
	}
	return s
}

// settle waits for the watcher to process what is in flight: it touches a sentinel
// node under the same watch and waits for its event (notifications arrive in zxid
// order on one session, so everything earlier has been delivered).
func settle(t *testing.T, c *Client, col *collector, sentinel string) []Event {
	t.Helper()
	before := accounted(col.snapshot())[sentinel]
	if _, err := c.Set(context.Background(), sentinel, []byte("s"), -1); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 10*time.Second, "sentinel "+sentinel, func(evs []Event) bool { return accounted(evs)[sentinel] > before })
	time.Sleep(300 * time.Millisecond) // re-reads scheduled by earlier notifications
	return col.snapshot()
}

// Finding 1: a child of a --recursive root deleted and created again before the
// parent's children are re-read is never watched again: its NodeDeleted removes it
// from the watched set, and the parent's re-read shows the same names (only a
// children gap of 2), so nothing re-arms the new node. Every later change to it is
// silently lost, and no created event is printed. Fixed: every listed child not
// watched is armed, not only added names.
func TestAttackRecreatedChildStaysWatched(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		a, s := root+"/a", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{a, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkDelete(a), mkCreate(a))
		settle(t, c, col, s)
		if _, err := c.Set(ctx, a, []byte("after"), -1); err != nil {
			t.Fatal(err)
		}
		evs := settle(t, c, col, s)
		if count(evs, EventDeleted, a) != 1 || count(evs, EventCreated, a) != 1 || accounted(evs)[a] != 1 {
			t.Fatalf("after delete+create of %s and one set: want 1 deleted, 1 created, 1 data change; got %d, %d, %d:%s",
				a, count(evs, EventDeleted, a), count(evs, EventCreated, a), accounted(evs)[a], describe(evs))
		}
	})
}

// Finding 2: data changes made just before a delete are not counted: the data
// notification's re-read finds no node, and the deleted event carries the last version
// the watcher saw. The watcher cannot know how many sets there were, but the
// notification proves at least one: no data_changed, no gap, nothing. Fixed: a gap of
// at least 1 whose message says the exact count is unknowable.
func TestAttackChangesBeforeDeleteCounted(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		a, s := root+"/a", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{a, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkSet(a), mkSet(a), mkSet(a), mkDelete(a))
		evs := settle(t, c, col, s)
		if count(evs, EventDeleted, a) != 1 || accounted(evs)[a] < 1 {
			t.Fatalf("3 sets then delete of %s: want deleted once and >= 1 data change accounted (3 made); got %d deleted, %d accounted:%s",
				a, count(evs, EventDeleted, a), accounted(evs)[a], describe(evs))
		}
	})
}

// Like finding 2, for children: a watched node (not --recursive) gets a child that is
// deleted again, then the node itself is deleted, all before the children re-read:
// the notification proves a child created and deleted; a gap of at least 2 says so.
func TestAttackChildChangesBeforeDeleteCounted(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		p, s := root+"/p", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{p, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{p, s}})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkCreate(p+"/x"), mkDelete(p+"/x"), mkDelete(p))
		evs := settle(t, c, col, s)
		if count(evs, EventDeleted, p) != 1 || kidsAccounted(evs, p) != 2 {
			t.Fatalf("child created and deleted, then %s deleted: want deleted once and 2 child changes accounted; got %d deleted, %d accounted:%s",
				p, count(evs, EventDeleted, p), kidsAccounted(evs, p), describe(evs))
		}
	})
}

// Finding 3: a watched path that does not exist, created and deleted before the
// watcher re-reads it, leaves no trace: the NodeCreated notification's re-read finds
// no node and the watcher prints nothing (no created, no deleted, no gap), though
// the notification proves it existed. Fixed: a gap of 2 (created, deleted) when the
// re-read after the created notification finds nothing.
func TestAttackAbsentRootCreateDeleteCounted(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		later := root + "/later"
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{later}})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkCreate(later), mkDelete(later))
		// Wait for the watcher's re-read before creating it again: a creation right
		// after could reach the server first, and then nothing the client gets can tell
		// create-delete-create from one create (notifications carry no zxid): a
		// documented limit, not tested.
		col.waitFor(t, 10*time.Second, "gap "+later, func(evs []Event) bool { return has(evs, EventGap, later) })
		if _, err := c.Create(ctx, later, nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		col.waitFor(t, 10*time.Second, "created "+later, func(evs []Event) bool { return has(evs, EventCreated, later) })
		time.Sleep(300 * time.Millisecond)
		evs := col.snapshot()
		var gapped int64
		for _, ev := range evs {
			if ev.Type == EventGap && ev.Path == later {
				gapped += ev.Missed
			}
		}
		shown := int64(count(evs, EventCreated, later) + count(evs, EventDeleted, later))
		if shown+gapped != 3 {
			t.Fatalf("create, delete, create of %s: want 3 changes accounted, got %d shown + %d in gaps:%s", later, shown, gapped, describe(evs))
		}
	})
}

// Finding 4: a data re-read that lands between a child change and the children re-read
// copies the new cversion into what the watcher knows (mergeDataStat), so the children
// re-read computes its gap from the new cversion: child changes no name difference
// shows (a child created and deleted) are silently not counted, and children_changed
// carries old_cversion == cversion. Fixed: only children reads move the child fields.
func TestAttackCversionAbsorbedByDataRead(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		s := root + "/sentinel"
		if err := c.CreateAll(ctx, []string{s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, s}})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		const rounds = 3
		for i := 0; i < rounds; i++ {
			// set first: the data notification (and re-read) goes out before the children one
			multi(t, c, mkSet(root), mkCreate(fmt.Sprintf("%s/tmp%d", root, i)), mkDelete(fmt.Sprintf("%s/tmp%d", root, i)),
				mkCreate(fmt.Sprintf("%s/kid%d", root, i)))
			settle(t, c, col, s)
		}
		evs := col.snapshot()
		// each round: 1 data change, 3 child changes (cversion +3)
		if got := accounted(evs)[root]; got != rounds {
			t.Errorf("data changes of %s: accounted %d, made %d", root, got, rounds)
		}
		if got := kidsAccounted(evs, root); got != 3*rounds {
			t.Fatalf("child changes of %s: accounted %d, made %d:%s", root, got, 3*rounds, describe(evs))
		}
	})
}

// Finding 5: nodes whose ACL is changed mid-watch to deny READ silently stop firing:
// setACL triggers no watch, the server then delivers no notification for the node,
// and the watcher never re-reads it, so no limit event names it.
func TestAttackACLRevokedMidWatchNamed(t *testing.T) {
	// Not fixed: setACL fires no watch and ZooKeeper 3.8 sends no notification to a
	// session without READ on the node, so the watcher gets no signal and issues no
	// read that could fail with NoAuth; naming it would take polling every watched
	// node's aversion (exists needs no permission), which the watcher does not do.
	attackGuard(t, "finding 5: a node whose ACL is changed mid-watch to deny READ goes silent, unnamed (a documented limit: no signal without polling)")
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		x := root + "/x"
		if err := c.CreateAll(ctx, []string{x}, nil, 0); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DSCTL_TEST_ZK_OWNER", "pw")
		owner := connect(t, endpoint.ZooKeeper{Servers: tg.Servers, DigestUser: "owner", DigestPassword: endpoint.Secret{Env: "DSCTL_TEST_ZK_OWNER"}})
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{x}, Data: true})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		if _, err := c.Conn().SetACL(x, gozk.DigestACL(gozk.PermAll, "owner", "pw"), -1); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := owner.Set(ctx, x, []byte("secret"), -1); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			evs := col.snapshot()
			if has(evs, EventLimit, x) || accounted(evs)[x] == 3 {
				// The embedded server gets here by delivering the notifications to a
				// session without READ (a fidelity gap: ZooKeeper 3.8 does not).
				t.Logf("%s: limit event %v, %d changes accounted", tg.Name, has(evs, EventLimit, x), accounted(evs)[x])
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: READ revoked, then 3 sets: neither a limit event naming it nor 3 changes accounted within 5s:%s", x, describe(col.snapshot()))
	})
}

// Finding 6: the resync after a session expiry under-counts nodes created (or deleted
// and created again) meanwhile: missed is 1 (or 2) whatever the new node's version, so
// the sets made to it while unwatched are not counted anywhere. Fixed: 1 + version and
// 2 + version (a node starts at version 0, each set adds 1).
func TestAttackResyncCountsRecreatedNodes(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		r, n := root+"/r", root+"/n"
		if err := c.CreateAll(ctx, []string{r}, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := startProxy(t, tg.Servers[0])
		wc := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(2 * time.Second)})
		sid := wc.SessionID()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		px.Pause()
		col.waitFor(t, 10*time.Second, "disconnected", func(evs []Event) bool { return has(evs, EventDisconnected, "") })
		// r: delete, create, 2 sets = 4 changes; n: create, 3 sets = 4; root: cversion +3
		multi(t, c, mkDelete(r), mkCreate(r), mkSet(r), mkSet(r), mkCreate(n), mkSet(n), mkSet(n), mkSet(n))
		if tg.Embedded != nil {
			tg.Embedded.ExpireSession(sid)
		} else {
			time.Sleep(4 * time.Second) // past the 2s session timeout
		}
		px.Resume()
		evs := col.waitFor(t, 30*time.Second, "resync armed", func(evs []Event) bool {
			for _, ev := range evs {
				if ev.Type == EventArmed && ev.Source == "resync" {
					return true
				}
			}
			return false
		})
		got := map[string]int64{}
		for _, ev := range evs {
			if ev.Type == EventResync {
				got[ev.Path] += ev.Missed
			}
		}
		want := map[string]int64{root: 3, r: 4, n: 4}
		for p, m := range want {
			if got[p] != m {
				t.Errorf("resync %s: missed %d, changes made %d", p, got[p], m)
			}
		}
		if t.Failed() {
			t.Log(describe(evs))
		}
	})
}

// Held: a child deleted and created again with the same name under a non-recursive
// watch: no name changes, a children gap of exactly 2 (cversion +2).
func TestAttackChildRecreatedSameNameGap(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		a, s := root+"/a", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{a, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, s}})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkDelete(a), mkCreate(a))
		evs := settle(t, c, col, s)
		if has(evs, EventChildrenChanged, root) || kidsAccounted(evs, root) != 2 {
			t.Fatalf("delete+create of %s: want only a children gap of 2, got %d accounted:%s", a, kidsAccounted(evs, root), describe(evs))
		}
	})
}

// Held: the same node under two watched roots (root and root/a, both --recursive) is
// one watched node: each change is reported once, never twice.
func TestAttackOverlappingRootsNoDoubleCount(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		a, b, s := root+"/a", root+"/a/b", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{a, b, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, a, b, root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		for i := 0; i < 5; i++ {
			if _, err := c.Set(ctx, b, nil, -1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Create(ctx, b+"/c", nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		evs := settle(t, c, col, s)
		if accounted(evs)[b] != 5 || kidsAccounted(evs, b) != 1 || count(evs, EventCreated, b+"/c") != 1 {
			t.Fatalf("%s: want 5 data changes, 1 child change, 1 created; got %d, %d, %d:%s",
				b, accounted(evs)[b], kidsAccounted(evs, b), count(evs, EventCreated, b+"/c"), describe(evs))
		}
		if evs[0].Type != EventArmed || evs[0].Nodes != 4 {
			t.Errorf("armed: %+v (want 4 nodes: root, a, b, sentinel)", evs[0])
		}
	})
}

// Held: ephemeral children vanishing when their owner's session closes are each
// reported deleted once, and the parent's children account for all of them.
func TestAttackEphemeralsVanish(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		s := root + "/sentinel"
		if err := c.CreateAll(ctx, []string{s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		owner, err := Connect(ctx, dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}})
		if err != nil {
			t.Fatal(err)
		}
		defer owner.Close()
		const n = 5
		for i := 0; i < n; i++ {
			if _, err := owner.Create(ctx, fmt.Sprintf("%s/e%d", root, i), nil, gozk.FlagEphemeral, nil); err != nil {
				t.Fatal(err)
			}
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		owner.Close()
		col.waitFor(t, 10*time.Second, "ephemerals gone", func(evs []Event) bool { return kidsAccounted(evs, root) >= n })
		evs := settle(t, c, col, s)
		for i := 0; i < n; i++ {
			if p := fmt.Sprintf("%s/e%d", root, i); count(evs, EventDeleted, p) != 1 {
				t.Errorf("%s deleted %d times", p, count(evs, EventDeleted, p))
			}
		}
		if kidsAccounted(evs, root) != n {
			t.Fatalf("%s: %d child changes accounted, %d made:%s", root, kidsAccounted(evs, root), n, describe(evs))
		}
	})
}

// Held: a watched root with a child, both deleted and created again in one
// transaction (same names): the root and the child are each reported deleted and
// created once, and both are watched afterwards.
func TestAttackRootRecreatedWithChild(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		top := base(t, c)
		root, k, s := top+"/r", top+"/r/k", top+"/sentinel"
		if err := c.CreateAll(ctx, []string{root, k, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, s}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		multi(t, c, mkDelete(k), mkDelete(root), mkCreate(root), mkCreate(k))
		settle(t, c, col, s)
		for _, p := range []string{root, k} {
			if _, err := c.Set(ctx, p, []byte("after"), -1); err != nil {
				t.Fatal(err)
			}
		}
		evs := settle(t, c, col, s)
		for _, p := range []string{root, k} {
			if count(evs, EventDeleted, p) != 1 || count(evs, EventCreated, p) != 1 || accounted(evs)[p] != 1 {
				t.Errorf("%s: want 1 deleted, 1 created, 1 data change; got %d, %d, %d",
					p, count(evs, EventDeleted, p), count(evs, EventCreated, p), accounted(evs)[p])
			}
		}
		if t.Failed() {
			t.Log(describe(evs))
		}
	})
}

// Held: children created and deleted at full speed (unique names, 8 writers, 400
// create+delete pairs, plus one multi of 50 creates) under a --recursive root: the
// root's children_changed names plus its children gaps equal the cversion moves made,
// and every surviving child is watched (a set on each is seen).
func TestAttackChildChurnAccounted(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		top := base(t, c)
		root, s := top+"/churn", top+"/sentinel"
		if err := c.CreateAll(ctx, []string{root, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, s}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		const writers, pairs = 8, 50
		errc := make(chan error, writers)
		for g := 0; g < writers; g++ {
			go func() {
				for i := 0; i < pairs; i++ {
					p := fmt.Sprintf("%s/w%d-%d", root, g, i)
					if _, err := c.Create(ctx, p, nil, 0, nil); err != nil {
						errc <- err
						return
					}
					if err := c.Delete(ctx, p, -1); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for g := 0; g < writers; g++ {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		var ops []interface{}
		var survivors []string
		for i := 0; i < 50; i++ {
			p := fmt.Sprintf("%s/m%02d", root, i)
			ops = append(ops, mkCreate(p))
			survivors = append(survivors, p)
		}
		multi(t, c, ops...)
		made := int64(writers*pairs*2 + len(survivors))
		col.waitFor(t, 20*time.Second, "churn accounted", func(evs []Event) bool { return kidsAccounted(evs, root) >= made })
		for _, p := range survivors {
			if _, err := c.Set(ctx, p, nil, -1); err != nil {
				t.Fatal(err)
			}
		}
		evs := settle(t, c, col, s)
		if got := kidsAccounted(evs, root); got != made {
			t.Errorf("%s: %d child changes accounted, %d made", root, got, made)
		}
		for _, p := range survivors {
			if count(evs, EventCreated, p) != 1 || accounted(evs)[p] != 1 {
				t.Errorf("%s: %d created, %d data changes (want 1, 1)", p, count(evs, EventCreated, p), accounted(evs)[p])
			}
		}
	})
}

// Finding 7: a node's deletion is lost when its NodeDeleted notification is handled
// before the reply of the read that armed the watch (replies and notifications reach
// the event loop on two channels, so their order is not the server's): onZKEvent
// ignores NodeDeleted for a node not yet known to exist, then the stale reply marks it
// existing and prints created. The node stays "watched" forever (a ghost: the summary
// counts it) and its deleted event is never printed. Seen under -race in the churn
// test; this test churns until a ghost appears (up to 10 rounds). Fixed: notifications
// are taken before each reply is applied, and a NodeDeleted for a node with a read in
// flight makes a re-read decide.
func TestAttackChurnNoGhostNodes(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		top := base(t, c)
		root, s := top+"/churn", top+"/sentinel"
		if err := c.CreateAll(ctx, []string{root, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root, s}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		const writers, pairs = 8, 50
		for round := 0; round < 10; round++ {
			errc := make(chan error, writers)
			for g := 0; g < writers; g++ {
				go func() {
					for i := 0; i < pairs; i++ {
						p := fmt.Sprintf("%s/r%d-w%d-%d", root, round, g, i)
						if _, err := c.Create(ctx, p, nil, 0, nil); err != nil {
							errc <- err
							return
						}
						if err := c.Delete(ctx, p, -1); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			for g := 0; g < writers; g++ {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			evs := settle(t, c, col, s)
			var ghosts []string
			for _, ev := range evs {
				if ev.Type == EventCreated && count(evs, EventDeleted, ev.Path) == 0 {
					ghosts = append(ghosts, ev.Path)
				}
			}
			if sum := w.Summary(); len(ghosts) > 0 || sum.Watched != 2 {
				t.Fatalf("round %d: every churned node is gone, but %d nodes are watched; created without deleted: %v", round, sum.Watched, ghosts)
			}
		}
	})
}

// Held: a value near ZooKeeper's 1 MB limit is delivered whole with --data.
func TestAttackLargeValue(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		x := root + "/big"
		if err := c.CreateAll(ctx, []string{x}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{x}, Data: true})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		big := make([]byte, 1000*1024)
		for i := range big {
			big[i] = byte('a' + i%26)
		}
		if _, err := c.Set(ctx, x, big, -1); err != nil {
			t.Fatal(err)
		}
		evs := col.waitFor(t, 10*time.Second, "data_changed "+x, func(evs []Event) bool { return has(evs, EventDataChanged, x) })
		for _, ev := range evs {
			if ev.Type == EventDataChanged && string(ev.Data) != string(big) {
				t.Fatalf("data_changed carries %d bytes, want %d", len(ev.Data), len(big))
			}
		}
	})
}

// Reconnect within the session after an outage during which: /x was set 3 times, /y
// deleted and created again (then set once), /z created, /w deleted. After the
// reconnect every change is accounted exactly once (watch re-set by go-zookeeper plus
// dsctl's verifying re-read must not double count), and /y and /z are watched.
func TestAttackReconnectAccountsOutage(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		x, y, z, wn, s := root+"/x", root+"/y", root+"/z", root+"/w", root+"/sentinel"
		if err := c.CreateAll(ctx, []string{x, y, wn, s}, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := startProxy(t, tg.Servers[0])
		wc := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(8 * time.Second)})
		sid := wc.SessionID()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		px.Pause()
		col.waitFor(t, 10*time.Second, "disconnected", func(evs []Event) bool { return has(evs, EventDisconnected, "") })
		multi(t, c, mkSet(x), mkSet(x), mkSet(x), mkDelete(y), mkCreate(y), mkSet(y), mkCreate(z), mkDelete(wn))
		px.Resume()
		col.waitFor(t, 20*time.Second, "reconnected", func(evs []Event) bool { return has(evs, EventReconnected, "") })
		time.Sleep(500 * time.Millisecond) // the verifying re-read (after ReconnectSettle) and re-set watches
		for _, p := range []string{y, z} {
			if _, err := c.Set(ctx, p, []byte("after"), -1); err != nil {
				t.Fatal(err)
			}
		}
		evs := settle(t, c, col, s)
		if wc.SessionID() != sid || has(evs, EventSessionExpired, "") {
			t.Fatalf("the session should have survived")
		}
		acc := accounted(evs)
		check := func(what string, got, want int64) {
			t.Helper()
			if got != want {
				t.Errorf("%s: got %d, want %d", what, got, want)
			}
		}
		check("/x data changes", acc[x], 3)
		check("/y deleted", int64(count(evs, EventDeleted, y)), 1)
		check("/y created", int64(count(evs, EventCreated, y)), 1)
		check("/y data changes (1 during the outage, 1 after)", acc[y], 2)
		check("/z created", int64(count(evs, EventCreated, z)), 1)
		check("/z data changes after", acc[z], 1)
		check("/w deleted", int64(count(evs, EventDeleted, wn)), 1)
		check("root child changes (-y +y +z -w)", kidsAccounted(evs, root), 4)
		var gapMissed int64
		for _, ev := range evs {
			if ev.Type == EventGap {
				gapMissed += ev.Missed
			}
		}
		sum := w.Summary()
		check("summary events", sum.Events, int64(len(evs)))
		check("summary missed", sum.Missed, gapMissed)
		if t.Failed() {
			t.Log(describe(evs))
		}
	})
}

// Finding 8 (low): a node created while --max-nodes is reached is reported once
// (limit) and then never watched, even after deletions free room under the cap: its
// later changes are silently not shown (the parent still reports child names).
// Fixed: once room is freed it is watched and reported armed (not created).
func TestAttackMaxNodesFreedSlot(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		a, b, late := root+"/a", root+"/b", root+"/late"
		if err := c.CreateAll(ctx, []string{a, b}, nil, 0); err != nil {
			t.Fatal(err)
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1, MaxNodes: 3})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		if _, err := c.Create(ctx, late, nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		col.waitFor(t, 10*time.Second, "limit "+late, func(evs []Event) bool { return has(evs, EventLimit, late) })
		if err := c.Delete(ctx, a, -1); err != nil {
			t.Fatal(err)
		}
		col.waitFor(t, 10*time.Second, "deleted "+a, func(evs []Event) bool { return has(evs, EventDeleted, a) })
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Set(ctx, late, []byte("now"), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, b, []byte("sync"), -1); err != nil {
			t.Fatal(err)
		}
		col.waitFor(t, 10*time.Second, "data_changed "+b, func(evs []Event) bool { return has(evs, EventDataChanged, b) })
		time.Sleep(300 * time.Millisecond)
		evs := col.snapshot()
		if !has(evs, EventArmed, late) || has(evs, EventCreated, late) || accounted(evs)[late] != 1 {
			t.Fatalf("%s: room under --max-nodes 3 freed by deleting %s, then set once: %d changes shown:%s", late, a, accounted(evs)[late], describe(evs))
		}
	})
}

// Held: connections dropped repeatedly (moving between members through private
// proxies, one per member) while a writer sets 10 nodes at full speed: after the
// writes, per node, changes shown + gap-counted == changes made, with no double count
// from the re-set watches and the verifying re-reads.
//
// Finding 9 (low): under -race this test failed in about 1 run of 6 on the embedded
// server and 1 of 10 on the ensemble with go-zookeeper#35 (sendSetWatches reads
// lastZxid while recvLoop writes it): the watcher's re-reads issued around a drop sat
// in go-zookeeper's send queue and went out on the new connection while the watches
// were re-set. The accounting held in every run. Fixed: every read waits until the
// connection has settled (Client.AwaitSettled, ReconnectSettle); 32 runs under -race
// since, none failed. It runs by default again.
func TestAttackReconnectStormAccounted(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		const nodes, perNode = 10, 60
		var paths []string
		for i := 0; i < nodes; i++ {
			paths = append(paths, fmt.Sprintf("%s/n%d", root, i))
		}
		if err := c.CreateAll(ctx, paths, nil, 0); err != nil {
			t.Fatal(err)
		}
		var proxies []*zktest.Proxy
		var addrs []string
		for _, srv := range tg.Servers {
			px := startProxy(t, srv)
			proxies = append(proxies, px)
			addrs = append(addrs, px.Addr())
		}
		wc := connect(t, endpoint.ZooKeeper{Servers: addrs, SessionTimeout: endpoint.Duration(10 * time.Second)})
		sid := wc.SessionID()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		drops := 0
		for i := 0; i < perNode; i++ {
			if i%10 == 5 { // cut the watcher off every 10 rounds, writes in flight
				for _, px := range proxies {
					px.DropAll()
				}
				drops++
			}
			for _, p := range paths {
				if _, err := c.Set(ctx, p, nil, -1); err != nil {
					t.Fatal(err)
				}
			}
		}
		col.waitFor(t, 30*time.Second, "every change accounted", func(evs []Event) bool {
			acc := accounted(evs)
			for _, p := range paths {
				if acc[p] < perNode {
					return false
				}
			}
			return true
		})
		time.Sleep(500 * time.Millisecond) // late verifying re-reads would over-count
		evs := col.snapshot()
		acc := accounted(evs)
		for _, p := range paths {
			if acc[p] != perNode {
				t.Errorf("%s: accounted %d, made %d", p, acc[p], perNode)
			}
			checkChain(t, evs, p, perNode)
		}
		if wc.SessionID() != sid {
			t.Errorf("session changed")
		}
		sum := w.Summary()
		t.Logf("%s: %d drops, %d reconnects, %d gaps, %d missed", tg.Name, drops, sum.Reconnects, sum.Gaps, sum.Missed)
		if sum.Reconnects == 0 {
			t.Errorf("no reconnect seen after %d drops", drops)
		}
	})
}

// Session expiry while a writer sets 10 nodes at full speed (before, during and after
// the outage and the resync): per node, data_changed + data gaps + resync version
// differences == the node's final version (every set made). Stale replies from the
// expired session, or changes between the resync's reads, must not be lost or
// double counted.
func TestAttackExpiryUnderLoadAccounted(t *testing.T) {
	attackGuard(t, "held, but slow (about 9 s: a 3.5 s outage on the ensemble)")
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		const nodes = 10
		var paths []string
		for i := 0; i < nodes; i++ {
			paths = append(paths, fmt.Sprintf("%s/n%d", root, i))
		}
		if err := c.CreateAll(ctx, paths, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := startProxy(t, tg.Servers[0])
		wc := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(2 * time.Second)})
		sid := wc.SessionID()
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		stopWrites := hammer(ctx, c, paths)
		time.Sleep(100 * time.Millisecond)
		if tg.Embedded != nil {
			tg.Embedded.ExpireSession(sid)
		} else {
			px.Pause()
			time.Sleep(3500 * time.Millisecond) // past the 2s session timeout
			px.Resume()
		}
		col.waitFor(t, 30*time.Second, "resync armed", func(evs []Event) bool {
			for _, ev := range evs {
				if ev.Type == EventArmed && ev.Source == "resync" {
					return true
				}
			}
			return false
		})
		time.Sleep(200 * time.Millisecond) // writes go on after the resync
		if err := stopWrites(); err != nil {
			t.Fatal(err)
		}
		made := map[string]int64{}
		for _, p := range paths {
			st, err := c.Stat(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			made[p] = int64(st.Version)
		}
		col.waitFor(t, 30*time.Second, "every change accounted", func(evs []Event) bool {
			acc := accounted(evs)
			for _, p := range paths {
				if acc[p] < made[p] {
					return false
				}
			}
			return true
		})
		time.Sleep(500 * time.Millisecond)
		evs := col.snapshot()
		acc := accounted(evs)
		for _, p := range paths {
			if acc[p] != made[p] {
				t.Errorf("%s: accounted %d, made %d", p, acc[p], made[p])
			}
		}
		if s := w.Summary(); s.Expirations != 1 || s.Resyncs != 1 {
			t.Errorf("summary: %d expirations, %d resyncs (want 1, 1)", s.Expirations, s.Resyncs)
		}
		t.Logf("%s: %d sets to node 0", tg.Name, made[paths[0]])
	})
}

// checkChain checks that path's data events form an unbroken chain of versions: each
// data_changed starts where the last event ended, a gap covers exactly the versions
// between its old and new, and the chain ends at final.
func checkChain(t *testing.T, evs []Event, path string, final int32) {
	t.Helper()
	last := int32(-1)
	for _, ev := range evs {
		if ev.Path != path {
			continue
		}
		switch {
		case ev.Type == EventDataChanged:
			if last >= 0 && ev.OldVersion != last {
				t.Errorf("%s: data_changed %d -> %d after version %d", path, ev.OldVersion, ev.Version, last)
			}
			last = ev.Version
		case ev.Type == EventGap && ev.Change == EventDataChanged:
			if ev.Version != last || ev.Missed != int64(ev.Version-ev.OldVersion-1) {
				t.Errorf("%s: gap %d -> %d missed %d after version %d", path, ev.OldVersion, ev.Version, ev.Missed, last)
			}
		}
	}
	if last >= 0 && last != final {
		t.Errorf("%s: chain ends at version %d, the node is at %d", path, last, final)
	}
}

// Held: a writer sets 20 nodes at full speed while a 1,000-node tree is armed (the
// watches are set level by level, so some nodes are read before the writes and some
// after): every node's data events form an unbroken version chain from the version
// read at arming to its final version.
func TestAttackChangesDuringArming(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		c := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := base(t, c)
		var all, hot []string
		for i := 0; i < 20; i++ {
			d := fmt.Sprintf("%s/d%02d", root, i)
			all = append(all, d)
			for j := 0; j < 49; j++ {
				all = append(all, fmt.Sprintf("%s/k%02d", d, j))
			}
			hot = append(hot, fmt.Sprintf("%s/k48", d)) // deepest level: armed last
		}
		if err := c.CreateAll(ctx, all, nil, 0); err != nil {
			t.Fatal(err)
		}
		stopWrites := hammer(ctx, c, hot)
		time.Sleep(20 * time.Millisecond)
		wc := connect(t, endpoint.ZooKeeper{Servers: tg.Servers})
		w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		col := collect(w)
		time.Sleep(100 * time.Millisecond)
		if err := stopWrites(); err != nil {
			t.Fatal(err)
		}
		final := map[string]int32{}
		for _, p := range hot {
			st, err := c.Stat(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			final[p] = st.Version
		}
		col.waitFor(t, 30*time.Second, "every hot node at its final version", func(evs []Event) bool {
			at := map[string]int32{}
			for _, ev := range evs {
				if ev.Type == EventDataChanged {
					at[ev.Path] = ev.Version
				}
			}
			for _, p := range hot {
				if at[p] != final[p] {
					return false
				}
			}
			return true
		})
		time.Sleep(300 * time.Millisecond)
		evs := col.snapshot()
		for _, p := range hot {
			checkChain(t, evs, p, final[p])
		}
		if evs[0].Type != EventArmed || evs[0].Nodes != len(all)+1 {
			t.Errorf("armed: %+v", evs[0])
		}
	})
}

// hammer sets each of paths in turn (empty data, any version) in a loop, until the
// function it returns is called (or 100,000 rounds); that function stops the writes and
// returns the first write error.
func hammer(ctx context.Context, c *Client, paths []string) func() error {
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for round := 0; round < 100_000; round++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			for _, p := range paths {
				if _, err := c.Set(ctx, p, nil, -1); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	return func() error {
		close(stop)
		return <-done
	}
}
