package zkserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// The conformance suite: each case runs against the embedded server and the real
// ensemble with the same assertions, so any difference fails one of the two runs.
// Cases use unique paths under their own parent and delete them afterwards.
var conformance = []struct {
	name string
	run  func(t *testing.T, tg target)
}{
	{"CreateModesAndStat", testCreateModesAndStat},
	{"SequentialNumbering", testSequentialNumbering},
	{"Errors", testErrors},
	{"InvalidPathsOnTheWire", testInvalidPathsOnTheWire},
	{"DataAndVersions", testDataAndVersions},
	{"ZxidsMonotonic", testZxidsMonotonic},
	{"WatchTypes", testWatchTypes},
	{"WatchOrderOnTheWire", testWatchOrderOnTheWire},
	{"DeleteFiresOneEventPerConnection", testDeleteFiresOneEventPerConnection},
	{"Multi", testMulti},
	{"EphemeralsGoOnClose", testEphemeralsGoOnClose},
	{"EphemeralsGoOnExpiry", testEphemeralsGoOnExpiry},
	{"ReconnectKeepsSessionAndRearmsWatches", testReconnectKeepsSessionAndRearmsWatches},
	{"SessionHandshake", testSessionHandshake},
	{"ProtectedEphemeralSequential", testProtectedEphemeralSequential},
	{"LockRecipe", testLockRecipe},
	{"ACLs", testACLs},
	{"ContainerAndTTL", testContainerAndTTL},
	{"Create2AndGetChildren2", testCreate2AndGetChildren2},
	{"FourLetterWords", testFourLetterWords},
	{"PersistentWatches", testPersistentWatches},
	{"MultiRead", testMultiRead},
	{"ReplyBodies", testReplyBodies},
	{"SystemNodesHaveEmptyData", testSystemNodesHaveEmptyData},
}

func TestConformance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		for _, c := range conformance {
			t.Run(c.name, func(t *testing.T) { c.run(t, tg) })
		}
	})
}

func mustCreate(t *testing.T, c *client, p string, data []byte, flags int32) string {
	t.Helper()
	got, err := c.Create(p, data, flags, openACL)
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	return got
}

func mustStat(t *testing.T, c *client, p string) *zk.Stat {
	t.Helper()
	ok, st, err := c.Exists(p)
	if err != nil || !ok {
		t.Fatalf("exists %s: %v %v", p, ok, err)
	}
	return st
}

func testCreateModesAndStat(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	before := mustStat(t, c, b)

	p := mustCreate(t, c, b+"/persistent", []byte("hello"), 0)
	e := mustCreate(t, c, b+"/ephemeral", []byte("x"), zk.FlagEphemeral)
	s := mustCreate(t, c, b+"/seq-", nil, zk.FlagSequence)
	es := mustCreate(t, c, b+"/eseq-", nil, zk.FlagEphemeral|zk.FlagSequence)
	if p != b+"/persistent" || e != b+"/ephemeral" || s != b+"/seq-0000000002" || es != b+"/eseq-0000000003" {
		t.Fatalf("created paths %s %s %s %s", p, e, s, es)
	}
	st := mustStat(t, c, p)
	if st.Czxid != st.Mzxid || st.Czxid != st.Pzxid || st.Czxid <= before.Czxid {
		t.Fatalf("new node zxids: %+v (parent czxid %d)", st, before.Czxid)
	}
	if st.Ctime != st.Mtime || st.Ctime == 0 || st.Version != 0 || st.Cversion != 0 || st.Aversion != 0 ||
		st.EphemeralOwner != 0 || st.DataLength != 5 || st.NumChildren != 0 {
		t.Fatalf("persistent stat %+v", st)
	}
	for _, eph := range []string{e, es} {
		if got := mustStat(t, c, eph).EphemeralOwner; got != c.SessionID() {
			t.Fatalf("%s ephemeralOwner 0x%x, want the session 0x%x", eph, got, c.SessionID())
		}
	}
	if got := mustStat(t, c, s).EphemeralOwner; got != 0 {
		t.Fatalf("sequential ephemeralOwner 0x%x", got)
	}
	parent := mustStat(t, c, b)
	last := mustStat(t, c, es)
	if parent.NumChildren != 4 || parent.Cversion != 4 || parent.Pzxid != last.Czxid || parent.Mzxid != before.Mzxid || parent.Version != 0 {
		t.Fatalf("parent after 4 creates: %+v (last child czxid %d)", parent, last.Czxid)
	}
	kids, _, err := c.Children(b)
	slices.Sort(kids)
	if err != nil || !slices.Equal(kids, []string{"ephemeral", "eseq-0000000003", "persistent", "seq-0000000002"}) {
		t.Fatalf("children %v %v", kids, err)
	}
}

func testSequentialNumbering(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	other := mustCreate(t, c, b+"/other", nil, 0)
	// The suffix is 10 digits counting the children ever created under the parent
	// (ZooKeeper's internal cversion); deletions do not count. The cversion clients
	// see counts both: 2 * creates - children (DataNode.copyStat).
	steps := []struct {
		do   func() string
		want string
	}{
		{func() string { return mustCreate(t, c, b+"/n-", nil, zk.FlagSequence) }, "/n-0000000001"},
		{func() string { return mustCreate(t, c, b+"/x", nil, 0) }, "/x"},
		{func() string { return mustCreate(t, c, b+"/n-", nil, zk.FlagSequence) }, "/n-0000000003"},
		{func() string {
			if err := c.Delete(b+"/x", -1); err != nil {
				t.Fatal(err)
			}
			return "/x"
		}, "/x"},
		{func() string { return mustCreate(t, c, b+"/", nil, zk.FlagSequence) }, "/0000000004"},
		{func() string { return mustCreate(t, c, b+"/other/n-", nil, zk.FlagSequence) }, "/other/n-0000000000"},
		{func() string { return mustCreate(t, c, b+"/n-", nil, zk.FlagEphemeral|zk.FlagSequence) }, "/n-0000000005"},
	}
	for i, s := range steps {
		if got := strings.TrimPrefix(s.do(), b); got != s.want {
			t.Fatalf("step %d: %s, want %s", i, got, s.want)
		}
	}
	if st := mustStat(t, c, b); st.Cversion != 2*6-5 || st.NumChildren != 5 {
		t.Fatalf("parent after 6 creates and a delete: cversion %d, %d children", st.Cversion, st.NumChildren)
	}
	// Made by hand, this is the 7th create: the next sequential name is this one.
	if _, err := c.Create(b+"/n-0000000007", nil, 0, openACL); err != nil {
		t.Fatal(err)
	}
	// The next sequential create would take the name just made by hand.
	if _, err := c.Create(b+"/n-", nil, zk.FlagSequence, openACL); !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("sequential create onto an existing name: %v, want node exists", err)
	}
	_ = other
}

func testErrors(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	mustCreate(t, c, b+"/a", []byte("a"), 0)
	mustCreate(t, c, b+"/a/child", nil, 0)
	mustCreate(t, c, b+"/eph", nil, zk.FlagEphemeral)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"create under missing parent", errOf(c.Create(b+"/missing/x", nil, 0, openACL)), zk.ErrNoNode},
		{"create existing", errOf(c.Create(b+"/a", nil, 0, openACL)), zk.ErrNodeExists},
		{"create root", errOf(c.Create("/", nil, 0, openACL)), zk.ErrNodeExists},
		{"create under ephemeral", errOf(c.Create(b+"/eph/x", nil, 0, openACL)), zk.ErrNoChildrenForEphemerals},
		{"create with empty ACL", errOf(c.Create(b+"/acl", nil, 0, []zk.ACL{})), zk.ErrInvalidACL},
		{"create with bad world id", errOf(c.Create(b+"/acl", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "nobody"}})), zk.ErrInvalidACL},
		{"create with unknown scheme", errOf(c.Create(b+"/acl", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "nope", ID: "x"}})), zk.ErrInvalidACL},
		{"create with auth scheme, unauthenticated", errOf(c.Create(b+"/acl", nil, 0, zk.AuthACL(zk.PermAll))), zk.ErrInvalidACL},
		{"delete non-empty", c.Delete(b+"/a", -1), zk.ErrNotEmpty},
		{"delete bad version", c.Delete(b+"/a/child", 3), zk.ErrBadVersion},
		{"delete missing", c.Delete(b+"/nope", -1), zk.ErrNoNode},
		{"delete under missing parent", c.Delete(b+"/nope/x", -1), zk.ErrNoNode},
		{"delete /zookeeper", c.Delete("/zookeeper", -1), zk.ErrBadArguments},
		{"delete /zookeeper/quota", c.Delete("/zookeeper/quota", -1), zk.ErrBadArguments},
		{"set bad version", errOf(c.Set(b+"/a", nil, 7)), zk.ErrBadVersion},
		{"set missing", errOf(c.Set(b+"/nope", nil, -1)), zk.ErrNoNode},
		{"get missing", errOf2(c.Get(b + "/nope")), zk.ErrNoNode},
		{"children of missing", errOf2(c.Children(b + "/nope")), zk.ErrNoNode},
		{"getACL of missing", errOf2(c.GetACL(b + "/nope")), zk.ErrNoNode},
		{"setACL of missing", errOf(c.SetACL(b+"/nope", openACL, -1)), zk.ErrNoNode},
		{"setACL bad version", errOf(c.SetACL(b+"/a", openACL, 4)), zk.ErrBadVersion},
		{"setACL empty", errOf(c.SetACL(b+"/a", []zk.ACL{}, -1)), zk.ErrInvalidACL},
		{"write /zookeeper/config", errOf(c.Set("/zookeeper/config", []byte("x"), -1)), zk.ErrNoAuth},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if ok, st, err := c.Exists(b + "/nope"); ok || st == nil || err != nil {
		t.Errorf("exists missing: %v %v %v, want false, an empty stat, no error", ok, st, err)
	}
	if p, err := c.Sync(b + "/nope"); err != nil || p != b+"/nope" {
		t.Errorf("sync of a missing path: %q %v (ZooKeeper syncs any path)", p, err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func errOf2[T, U any](_ T, _ U, err error) error { return err }

// testInvalidPathsOnTheWire sends what go-zookeeper refuses on the client side.
func testInvalidPathsOnTheWire(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	// The parent is looked up before the new path is validated: a bad component
	// before the last one is a missing parent.
	for _, tc := range []struct {
		path string
		want Code
	}{
		{b + "/", CodeBadArguments}, {"relative", CodeBadArguments}, {b + "/.", CodeBadArguments}, {b + "/..", CodeBadArguments},
		{b + "/x\x01y", CodeBadArguments}, {b + "/x\u00a0\u0085", CodeBadArguments}, {b + "/\ue000", CodeBadArguments},
		{b + "/\U0001F600", CodeBadArguments}, {b + "/bad\xffutf8", CodeBadArguments}, {b + "/a\x00b", CodeBadArguments},
		{b + "//x", CodeNoNode}, {b + "/./x", CodeNoNode}, {b + "/../x", CodeNoNode}, {"/zookeeper/", CodeBadArguments},
	} {
		r := rc.mustCall(opCreate, createBody(tc.path, nil, 0))
		if r.code != tc.want {
			t.Errorf("create %q: code %d, want %d", tc.path, r.code, tc.want)
		}
	}
	// Sequential names are validated after the suffix: "/base/" + seq is valid.
	r := rc.mustCall(opCreate, createBody(b+"/", nil, flagSequential))
	if r.code != CodeOK || r.body.string() != b+"/0000000000" {
		t.Errorf("sequential create of %q/: code %d", b, r.code)
	}
	for _, tc := range []struct {
		op   int32
		body func(*writer)
		want Code
	}{
		{opDelete, func(w *writer) { w.string("relative"); w.int(-1) }, CodeBadArguments},
		{opDelete, func(w *writer) { w.string("/"); w.int(-1) }, CodeBadArguments},
		{opDelete, func(w *writer) { w.string("/zookeeper/config"); w.int(-1) }, CodeBadArguments},
		{opSetData, func(w *writer) { w.string(b + "/"); w.buffer(nil, true); w.int(-1) }, CodeBadArguments},
		{opExists, pathWatch(b+"/a\x00b", false), CodeBadArguments},
		{opGetData, pathWatch("relative", false), CodeNoNode},
		{opGetChildren, pathWatch(b+"//", false), CodeNoNode},
		{opCreate, createBody(b+"/flags", nil, 7), CodeBadArguments},
		{opCreate, createBody(b+"/flags", nil, -1), CodeBadArguments},
	} {
		if r := rc.mustCall(tc.op, tc.body); r.code != tc.want {
			t.Errorf("op %d: code %d, want %d", tc.op, r.code, tc.want)
		}
	}
}

func testDataAndVersions(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	n := mustCreate(t, c, b+"/n", nil, 0)
	d, st, err := c.Get(n)
	if err != nil || d != nil || st.DataLength != 0 {
		t.Fatalf("created with null data: %q (nil %v) %+v %v", d, d == nil, st, err)
	}
	e := mustCreate(t, c, b+"/empty", []byte{}, 0)
	if d, _, _ := c.Get(e); d == nil || len(d) != 0 {
		t.Fatalf("created with empty data: %q nil=%v, want empty non-null", d, d == nil)
	}
	created := mustStat(t, c, n)
	st1, err := c.Set(n, []byte("one"), 0)
	if err != nil || st1.Version != 1 || st1.DataLength != 3 || st1.Mzxid <= created.Mzxid || st1.Czxid != created.Czxid || st1.Pzxid != created.Pzxid {
		t.Fatalf("set v0: %+v %v", st1, err)
	}
	if _, err := c.Set(n, []byte("stale"), 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("set with stale version: %v", err)
	}
	st2, err := c.Set(n, []byte("two!"), -1)
	if err != nil || st2.Version != 2 || st2.Mzxid <= st1.Mzxid || st2.Mtime < st1.Mtime {
		t.Fatalf("set any version: %+v %v", st2, err)
	}
	d, st, err = c.Get(n)
	if err != nil || string(d) != "two!" || *st != *st2 {
		t.Fatalf("get after sets: %q %+v %v (set returned %+v)", d, st, err, st2)
	}
	big := make([]byte, 512<<10)
	for i := range big {
		big[i] = byte(i)
	}
	if _, err := c.Set(n, big, 2); err != nil {
		t.Fatalf("set 512 KiB: %v", err)
	}
	if d, st, _ := c.Get(n); len(d) != len(big) || st.DataLength != int32(len(big)) || d[1000] != big[1000] {
		t.Fatalf("512 KiB round trip: %d bytes, stat %d", len(d), st.DataLength)
	}
	if err := c.Delete(n, 2); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("delete with stale version: %v", err)
	}
	if err := c.Delete(n, 3); err != nil {
		t.Fatalf("delete with current version: %v", err)
	}
}

func testZxidsMonotonic(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	var last int64
	for i := range 20 {
		p := mustCreate(t, c, fmt.Sprintf("%s/n%02d", b, i), nil, 0)
		st := mustStat(t, c, p)
		if st.Czxid <= last {
			t.Fatalf("czxid %d after %d", st.Czxid, last)
		}
		last = st.Czxid
		ps := mustStat(t, c, b)
		if ps.Pzxid != st.Czxid {
			t.Fatalf("parent pzxid %d, last child czxid %d", ps.Pzxid, st.Czxid)
		}
		set, err := c.Set(p, []byte("v"), 0)
		if err != nil || set.Mzxid <= last {
			t.Fatalf("mzxid %d after czxid %d: %v", set.Mzxid, last, err)
		}
		last = set.Mzxid
	}
	if err := c.Delete(b+"/n00", -1); err != nil {
		t.Fatal(err)
	}
	if ps := mustStat(t, c, b); ps.Pzxid <= last || ps.Cversion != 21 || ps.NumChildren != 19 {
		t.Fatalf("parent after a delete: %+v (last zxid %d)", ps, last)
	}
}

func expectEvent(t *testing.T, ch <-chan zk.Event, typ zk.EventType, path string) {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.Type != typ || ev.Path != path {
			t.Fatalf("event %v %s, want %v %s", ev.Type, ev.Path, typ, path)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v event for %s within 5s", typ, path)
	}
}

func testWatchTypes(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	w := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	n := b + "/n"

	ok, _, ch, err := w.ExistsW(n)
	if err != nil || ok {
		t.Fatal(ok, err)
	}
	mustCreate(t, c, n, nil, 0)
	expectEvent(t, ch, zk.EventNodeCreated, n)

	_, _, ch, _ = w.GetW(n)
	if _, err := c.Set(n, []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDataChanged, n)

	_, _, ch, _ = w.ExistsW(n)
	if _, err := c.Set(n, []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDataChanged, n)

	_, _, ch, _ = w.ChildrenW(b)
	mustCreate(t, c, n+"-2", nil, 0)
	expectEvent(t, ch, zk.EventNodeChildrenChanged, b)

	_, _, ch, _ = w.ChildrenW(b)
	if err := c.Delete(n+"-2", -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeChildrenChanged, b)

	// A data change does not fire a child watch, nor a child change a data watch.
	_, _, chw, _ := w.ChildrenW(n)
	_, _, dw, _ := w.GetW(b)
	if _, err := c.Set(n, []byte("z"), -1); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, n+"/kid", nil, 0)
	expectEvent(t, chw, zk.EventNodeChildrenChanged, n)
	select {
	case ev := <-dw:
		t.Fatalf("data watch on the parent fired: %+v", ev)
	default:
	}

	_, _, ch, _ = w.GetW(n + "/kid")
	_, _, cch, _ := w.ChildrenW(n + "/kid")
	if err := c.Delete(n+"/kid", -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDeleted, n+"/kid")
	expectEvent(t, cch, zk.EventNodeDeleted, n+"/kid")

	// Watches are one-shot: after firing, further changes send nothing. The session
	// channel shows every event in order; a later sentinel proves nothing came between.
	deleted := w.rec.waitFor(0, 5*time.Second, func(e zk.Event) bool { return e.Type == zk.EventNodeDeleted && e.Path == n+"/kid" })
	if deleted < 0 {
		t.Fatal("the session channel did not show the deletion")
	}
	from := deleted + 1
	_, _, _, _ = w.GetW(n)
	for i := range 3 {
		if _, err := c.Set(n, []byte{byte(i)}, -1); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, _ = w.ExistsW(b + "/sentinel")
	mustCreate(t, c, b+"/sentinel", nil, 0)
	if w.rec.waitFor(from, 5*time.Second, func(e zk.Event) bool { return e.Path == b+"/sentinel" }) < 0 {
		t.Fatal("no sentinel event")
	}
	got := w.rec.watchEvents(from)
	want := []zk.Event{{Type: zk.EventNodeDataChanged, Path: n}, {Type: zk.EventNodeCreated, Path: b + "/sentinel"}}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want one data change then the sentinel", got)
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Path != want[i].Path {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// testWatchOrderOnTheWire checks the stream of events a connection receives, in order.
func testWatchOrderOnTheWire(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	n := b + "/n"
	rc.mustCall(opExists, pathWatch(n, true))
	rc.mustCall(opGetChildren, pathWatch(b, true))
	mustCreate(t, c, n, nil, 0)
	rc.mustCall(opSync, pathBody(b))
	rc.mustCall(opGetData, pathWatch(n, true))
	rc.mustCall(opGetChildren, pathWatch(b, true))
	rc.mustCall(opExists, pathWatch(b+"/m", true))
	// One multi: set n, create m, delete n; the events follow the operations.
	if _, err := c.Multi(&zk.SetDataRequest{Path: n, Data: []byte("x"), Version: -1},
		&zk.CreateRequest{Path: b + "/m", Acl: openACL}, &zk.DeleteRequest{Path: n, Version: -1}); err != nil {
		t.Fatal(err)
	}
	rc.mustCall(opSync, pathBody(b))
	want := []rawEvent{
		{evNodeCreated, n}, {evNodeChildrenChanged, b},
		{evNodeDataChanged, n}, {evNodeCreated, b + "/m"}, {evNodeChildrenChanged, b},
	}
	if !slices.Equal(rc.events, want) {
		t.Fatalf("events %v, want %v", rc.events, want)
	}
	// A connection's own write: the event comes before the write's reply.
	rc.events = nil
	rc.mustCall(opGetData, pathWatch(b+"/m", true))
	if len(rc.events) != 0 {
		t.Fatalf("stray events %v", rc.events)
	}
	rc.mustCall(opSetData, func(w *writer) { w.string(b + "/m"); w.buffer([]byte("own"), false); w.int(-1) })
	if want := []rawEvent{{evNodeDataChanged, b + "/m"}}; !slices.Equal(rc.events, want) {
		t.Fatalf("events before the reply to our own setData: %v, want %v", rc.events, want)
	}
}

// testDeleteFiresOneEventPerConnection: a connection watching a node's data and its
// children is told once that the node was deleted (go-zookeeper fans that one event
// out to both watchers, which hides the difference).
func testDeleteFiresOneEventPerConnection(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	n := mustCreate(t, c, b+"/n", nil, 0)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	rc.mustCall(opGetData, pathWatch(n, true))
	rc.mustCall(opExists, pathWatch(n, true))
	rc.mustCall(opGetChildren, pathWatch(n, true))
	if err := c.Delete(n, -1); err != nil {
		t.Fatal(err)
	}
	rc.mustCall(opSync, pathBody(b))
	if want := []rawEvent{{evNodeDeleted, n}}; !slices.Equal(rc.events, want) {
		t.Fatalf("events %v, want %v", rc.events, want)
	}
}

func testMulti(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	mustCreate(t, c, b+"/a", []byte("a"), 0)

	res, err := c.Multi(
		&zk.CreateRequest{Path: b + "/new", Data: []byte("n"), Acl: openACL},
		&zk.SetDataRequest{Path: b + "/a", Data: []byte("a2"), Version: 0},
		&zk.CheckVersionRequest{Path: b + "/a", Version: 1},
		&zk.CreateRequest{Path: b + "/s-", Acl: openACL, Flags: zk.FlagSequence},
		&zk.CreateRequest{Path: b + "/s-", Acl: openACL, Flags: zk.FlagSequence},
		&zk.DeleteRequest{Path: b + "/new", Version: 0},
	)
	if err != nil || len(res) != 6 {
		t.Fatalf("multi: %v %+v", err, res)
	}
	if res[0].String != b+"/new" || res[3].String != b+"/s-0000000002" || res[4].String != b+"/s-0000000003" {
		t.Fatalf("multi create results %q %q %q", res[0].String, res[3].String, res[4].String)
	}
	if res[1].Stat == nil || res[1].Stat.Version != 1 || res[1].Stat.DataLength != 2 {
		t.Fatalf("multi setData stat %+v", res[1].Stat)
	}
	// One transaction: the nodes it made share its zxid.
	s2, s3 := mustStat(t, c, b+"/s-0000000002"), mustStat(t, c, b+"/s-0000000003")
	if s2.Czxid != s3.Czxid || s2.Czxid != res[1].Stat.Mzxid {
		t.Fatalf("multi zxids: %d %d %d", s2.Czxid, s3.Czxid, res[1].Stat.Mzxid)
	}
	if ok, _, _ := c.Exists(b + "/new"); ok {
		t.Fatal("created and deleted in one multi, but exists")
	}

	before := mustStat(t, c, b)
	res, err = c.Multi(
		&zk.CreateRequest{Path: b + "/x", Acl: openACL},
		&zk.SetDataRequest{Path: b + "/a", Data: []byte("a3"), Version: -1},
		&zk.CheckVersionRequest{Path: b + "/a", Version: 7},
		&zk.DeleteRequest{Path: b + "/a", Version: -1},
	)
	if !errors.Is(err, zk.ErrBadVersion) || len(res) != 4 {
		t.Fatalf("failing multi: %v %+v", err, res)
	}
	if res[0].Error != nil || res[1].Error != nil || !errors.Is(res[2].Error, zk.ErrBadVersion) || res[3].Error == nil ||
		!strings.Contains(res[3].Error.Error(), "-2") {
		t.Fatalf("per-op results: %v %v %v %v (want ok, ok, bad version, runtime inconsistency -2)", res[0].Error, res[1].Error, res[2].Error, res[3].Error)
	}
	if ok, _, _ := c.Exists(b + "/x"); ok {
		t.Fatal("failed multi left its create behind")
	}
	if d, st, _ := c.Get(b + "/a"); string(d) != "a2" || st.Version != 1 {
		t.Fatalf("failed multi changed /a: %q v%d", d, st.Version)
	}
	if after := mustStat(t, c, b); after.Cversion != before.Cversion || after.Pzxid != before.Pzxid {
		t.Fatalf("failed multi changed the parent: %+v -> %+v", before, after)
	}
	// The next sequential name is as if the failed multi never ran.
	if p := mustCreate(t, c, b+"/s-", nil, zk.FlagSequence); p != fmt.Sprintf("%s/s-%010d", b, (before.Cversion+before.NumChildren)/2) {
		t.Fatalf("sequential after failed multi: %s (cversion %d)", p, before.Cversion)
	}

	res, err = c.Multi(&zk.DeleteRequest{Path: b + "/missing", Version: -1}, &zk.CreateRequest{Path: b + "/y", Acl: openACL})
	if !errors.Is(err, zk.ErrNoNode) || !errors.Is(res[0].Error, zk.ErrNoNode) || res[1].Error == nil {
		t.Fatalf("multi failing on its first op: %v %+v", err, res)
	}
}

func testEphemeralsGoOnClose(t *testing.T, tg target) {
	owner := connect(t, tg.addr, 4*time.Second)
	w := connect(t, tg.addr, 4*time.Second)
	b := base(t, w)
	e1 := mustCreate(t, owner, b+"/e1", nil, zk.FlagEphemeral)
	e2 := mustCreate(t, owner, b+"/e-", nil, zk.FlagEphemeral|zk.FlagSequence)
	mustCreate(t, owner, b+"/keep", nil, 0)
	_, _, d1, _ := w.ExistsW(e1)
	_, _, d2, _ := w.GetW(e2)
	_, _, cw, _ := w.ChildrenW(b)
	before := mustStat(t, w, b)
	owner.Close()
	expectEvent(t, d1, zk.EventNodeDeleted, e1)
	expectEvent(t, d2, zk.EventNodeDeleted, e2)
	expectEvent(t, cw, zk.EventNodeChildrenChanged, b)
	kids, st, err := w.Children(b)
	if err != nil || !slices.Equal(kids, []string{"keep"}) {
		t.Fatalf("after close: %v %v", kids, err)
	}
	// Both deletions are one closeSession transaction.
	if st.Cversion != before.Cversion+2 || st.Pzxid <= before.Pzxid {
		t.Fatalf("parent after close: %+v (before %+v)", st, before)
	}
	if tg.srv != nil {
		for _, s := range tg.srv.Sessions() {
			if s.ID == owner.SessionID() {
				t.Fatalf("closed session still listed: %+v", s)
			}
		}
	}
}

// testEphemeralsGoOnExpiry partitions a client (through a proxy) past its session
// timeout: the server expires the session, deletes its ephemerals and tells the
// watchers; when the client gets back it learns the session expired.
func testEphemeralsGoOnExpiry(t *testing.T, tg target) {
	px := newProxy(t, tg.addr)
	owner := connect(t, px.addr(), time.Second)
	w := connect(t, tg.addr, 4*time.Second)
	b := base(t, w)
	e := mustCreate(t, owner, b+"/e", []byte("held"), zk.FlagEphemeral)
	_, _, ch, _ := w.GetW(e)
	start := time.Now()
	px.pause()
	expectEventWithin(t, ch, zk.EventNodeDeleted, e, 10*time.Second)
	if gone := time.Since(start); gone < 900*time.Millisecond {
		t.Fatalf("ephemeral deleted %s after the partition, before the 1s session timeout", gone)
	}
	from := owner.rec.len()
	px.resume()
	if owner.rec.waitFor(from, 10*time.Second, func(e zk.Event) bool { return e.State == zk.StateExpired }) < 0 {
		t.Fatal("the client was not told its session expired")
	}
}

func expectEventWithin(t *testing.T, ch <-chan zk.Event, typ zk.EventType, path string, d time.Duration) {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.Type != typ || ev.Path != path {
			t.Fatalf("event %v %s, want %v %s", ev.Type, ev.Path, typ, path)
		}
	case <-time.After(d):
		t.Fatalf("no %v event for %s within %s", typ, path, d)
	}
}

// testReconnectKeepsSessionAndRearmsWatches cuts a client's connection briefly: it
// re-attaches to its session (ephemerals kept), and the watches it re-sends fire at
// once for what changed while it was away and stay armed for the rest.
func testReconnectKeepsSessionAndRearmsWatches(t *testing.T, tg target) {
	px := newProxy(t, tg.addr)
	cl := connect(t, px.addr(), 4*time.Second)
	other := connect(t, tg.addr, 4*time.Second)
	b := base(t, other)
	e := mustCreate(t, cl, b+"/e", nil, zk.FlagEphemeral)
	changed := mustCreate(t, other, b+"/changed", nil, 0)
	quiet := mustCreate(t, other, b+"/quiet", nil, 0)
	gone := mustCreate(t, other, b+"/gone", nil, 0)
	_, _, chChanged, _ := cl.GetW(changed)
	_, _, chQuiet, _ := cl.GetW(quiet)
	_, _, chGone, _ := cl.ChildrenW(gone)
	_, _, chBorn, _ := cl.ExistsW(b + "/born")
	sid := cl.SessionID()

	from := cl.rec.len()
	px.pause()
	if cl.rec.waitFor(from, 5*time.Second, func(e zk.Event) bool { return e.State == zk.StateDisconnected }) < 0 {
		t.Fatal("client did not notice the cut")
	}
	if _, err := other.Set(changed, []byte("while away"), -1); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(gone, -1); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, other, b+"/born", nil, 0)
	px.resume()
	if cl.rec.waitFor(from, 10*time.Second, func(e zk.Event) bool { return e.State == zk.StateHasSession }) < 0 {
		t.Fatal("client did not reconnect")
	}
	if cl.SessionID() != sid {
		t.Fatalf("session changed: 0x%x -> 0x%x", sid, cl.SessionID())
	}
	expectEvent(t, chChanged, zk.EventNodeDataChanged, changed)
	expectEvent(t, chGone, zk.EventNodeDeleted, gone)
	expectEvent(t, chBorn, zk.EventNodeCreated, b+"/born")
	if st := mustStat(t, other, e); st.EphemeralOwner != sid {
		t.Fatalf("ephemeral after reconnect: owner 0x%x", st.EphemeralOwner)
	}
	select {
	case ev := <-chQuiet:
		t.Fatalf("unchanged node's watch fired on reconnect: %+v", ev)
	default:
	}
	if _, err := other.Set(quiet, []byte("now"), -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, chQuiet, zk.EventNodeDataChanged, quiet)
}

// testSessionHandshake checks timeout negotiation and re-attachment on the wire.
func testSessionHandshake(t *testing.T, tg target) {
	// The project's ensemble and the embedded default both use tickTime 500ms: the
	// timeout is clamped to [2, 20] ticks.
	for _, tc := range []struct{ ask, want int32 }{{100, 1000}, {4000, 4000}, {60000, 10000}} {
		rc := dialRaw(t, tg.addr, tc.ask, 0, nil)
		if rc.timeout != tc.want || rc.sid == 0 || len(rc.passwd) != 16 {
			t.Errorf("asked %dms: got %dms, session 0x%x, password %d bytes", tc.ask, rc.timeout, rc.sid, len(rc.passwd))
		}
		rc.mustCall(opCloseSession, nil)
	}
	first := dialRaw(t, tg.addr, 4000, 0, nil)
	if r := first.mustCall(opPing, nil); r.code != CodeOK {
		t.Fatalf("ping: %d", r.code)
	}
	wrong := append([]byte{}, first.passwd...)
	wrong[0] ^= 0xff
	bad := dialRaw(t, tg.addr, 4000, first.sid, wrong)
	if bad.sid != 0 || bad.timeout != 0 {
		t.Fatalf("re-attach with a wrong password: session 0x%x timeout %d, want 0 and 0", bad.sid, bad.timeout)
	}
	again := dialRaw(t, tg.addr, 6000, first.sid, first.passwd)
	if again.sid != first.sid || again.timeout != 6000 || !slices.Equal(again.passwd, first.passwd) {
		t.Fatalf("re-attach: session 0x%x timeout %d", again.sid, again.timeout)
	}
	// The connection the session moved away from is closed.
	if _, ok := first.call(opExists, pathWatch("/", false)); ok {
		t.Fatal("old connection still answers after its session re-attached elsewhere")
	}
	r := again.mustCall(opCloseSession, nil)
	if r.code != CodeOK {
		t.Fatalf("closeSession: %d", r.code)
	}
	if late := dialRaw(t, tg.addr, 4000, first.sid, first.passwd); late.sid != 0 || late.timeout != 0 {
		t.Fatalf("re-attach to a closed session: 0x%x %d", late.sid, late.timeout)
	}
	// A client that has seen a later zxid than the server is refused: the socket closes
	// without a reply (it must try another server).
	nc, err := net.DialTimeout("tcp", tg.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w := &writer{}
	w.int(0)
	w.long(1 << 62)
	w.int(4000)
	w.long(0)
	w.buffer(make([]byte, 16), false)
	w.bool(false)
	_, _ = nc.Write(frame4(w.b))
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
		t.Fatalf("client from the future: %d bytes, %v; want the connection closed", len(b), err)
	}
}

var protectedName = regexp.MustCompile(`^_c_[0-9a-f]{32}-lock-[0-9]{10}$`)

func testProtectedEphemeralSequential(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	p, err := c.CreateProtectedEphemeralSequential(b+"/lock-", []byte("me"), openACL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(p, b+"/")
	if !protectedName.MatchString(name) || !strings.HasSuffix(name, "-lock-0000000000") {
		t.Fatalf("protected name %q", name)
	}
	if st := mustStat(t, c, p); st.EphemeralOwner != c.SessionID() || st.DataLength != 2 {
		t.Fatalf("protected node stat %+v", st)
	}
}

func testLockRecipe(t *testing.T, tg target) {
	a := connect(t, tg.addr, 4*time.Second)
	bc := connect(t, tg.addr, 4*time.Second)
	b := base(t, a)
	la := zk.NewLock(a.Conn, b+"/mutex", openACL)
	lb := zk.NewLock(bc.Conn, b+"/mutex", openACL)
	if err := la.Lock(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- lb.Lock() }()
	// b queues behind a: two protected nodes, a's first.
	deadline := time.Now().Add(5 * time.Second)
	var kids []string
	for time.Now().Before(deadline) {
		kids, _, _ = a.Children(b + "/mutex")
		if len(kids) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(kids) != 2 {
		t.Fatalf("queue %v, want 2 nodes", kids)
	}
	for _, k := range kids {
		if !protectedName.MatchString(k) {
			t.Fatalf("lock node %q", k)
		}
	}
	select {
	case err := <-got:
		t.Fatalf("second session got the lock while the first held it (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := la.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second session did not get the lock within 5s of the release")
	}
	kids, _, _ = a.Children(b + "/mutex")
	if len(kids) != 1 || !strings.HasSuffix(kids[0], "-lock-0000000001") {
		t.Fatalf("queue after handoff %v", kids)
	}
	if err := lb.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func testACLs(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	acl, st, err := c.GetACL(b)
	if err != nil || len(acl) != 1 || acl[0] != openACL[0] || st.Aversion != 0 {
		t.Fatalf("default ACL %+v %+v %v", acl, st, err)
	}
	owner := connect(t, tg.addr, 4*time.Second)
	if err := owner.AddAuth("digest", []byte("alice:secret")); err != nil {
		t.Fatal(err)
	}
	p, err := owner.Create(b+"/private", []byte("s3cret"), 0, zk.DigestACL(zk.PermAll, "alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	// Runs before the base's cleanup: only alice may list what she protected.
	t.Cleanup(func() { deleteTree(owner.Conn, p); _ = owner.Delete(b+"/mine", -1) })
	if _, err := owner.Create(b+"/mine", nil, 0, zk.AuthACL(zk.PermRead|zk.PermWrite)); err != nil {
		t.Fatalf("create with the auth scheme after AddAuth: %v", err)
	}
	acl, _, err = c.GetACL(b + "/mine")
	if err == nil {
		t.Fatalf("getACL without READ or ADMIN: %+v", acl)
	}
	acl, _, err = owner.GetACL(b + "/mine")
	// Without ADMIN on the node, the digest's hash is hidden.
	if err != nil || len(acl) != 1 || acl[0].Scheme != "digest" || acl[0].ID != "alice:x" || acl[0].Perms != zk.PermRead|zk.PermWrite {
		t.Fatalf("auth scheme stored as %+v %v", acl, err)
	}
	acl, _, err = owner.GetACL(b + "/private")
	if err != nil || len(acl) != 1 || acl[0] != zk.DigestACL(zk.PermAll, "alice", "secret")[0] {
		t.Fatalf("digest ACL read with ADMIN: %+v %v", acl, err)
	}
	if _, _, err := c.Get(p); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("read without auth: %v", err)
	}
	if _, err := c.Set(p, nil, -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("write without auth: %v", err)
	}
	if ok, _, err := c.Exists(p); !ok || err != nil {
		t.Fatalf("exists needs no permission: %v %v", ok, err)
	}
	if d, _, err := owner.Get(p); err != nil || string(d) != "s3cret" {
		t.Fatalf("read with auth: %q %v", d, err)
	}
	if _, err := c.Create(p+"/x", nil, 0, openACL); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("create under without auth: %v", err)
	}
	st, err = owner.SetACL(p, openACL, 0)
	if err != nil || st.Aversion != 1 || st.Version != 0 {
		t.Fatalf("setACL: %+v %v", st, err)
	}
	if _, err := owner.SetACL(p, openACL, 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("setACL with stale aversion: %v", err)
	}
	if d, _, err := c.Get(p); err != nil || string(d) != "s3cret" {
		t.Fatalf("read after opening the ACL: %q %v", d, err)
	}
	if err := c.Delete(b+"/mine", -1); err != nil {
		t.Fatalf("delete needs DELETE on the parent only: %v", err)
	}
}

func testContainerAndTTL(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	p, err := c.CreateContainer(b+"/box", []byte("c"), zk.FlagContainer, openACL)
	if err != nil || p != b+"/box" {
		t.Fatalf("container: %q %v", p, err)
	}
	if st := mustStat(t, c, p); st.EphemeralOwner != 0 || st.DataLength != 1 {
		t.Fatalf("container stat %+v: ephemeralOwner is shown as 0", st)
	}
	mustCreate(t, c, p+"/e", nil, zk.FlagEphemeral) // containers may have ephemeral children
	p, err = c.CreateTTL(b+"/ttl", nil, zk.FlagTTL, openACL, time.Hour)
	if err != nil || p != b+"/ttl" {
		t.Fatalf("TTL node (the test ensemble enables extended types): %q %v", p, err)
	}
	if st := mustStat(t, c, p); st.EphemeralOwner != 0 {
		t.Fatalf("TTL stat %+v", st)
	}
	p, err = c.CreateTTL(b+"/ttl-", nil, zk.FlagPersistentSequentialWithTTL, openACL, time.Hour)
	if err != nil || p != b+"/ttl-0000000002" {
		t.Fatalf("sequential TTL node: %q %v", p, err)
	}
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	for _, tc := range []struct {
		flags int32
		ttl   int64
		want  Code
	}{
		{flagPersistentTTL, 0, CodeBadArguments},
		{flagPersistentTTL, maxTTL + 1, CodeBadArguments},
		{flagPersistent, 1000, CodeBadArguments},
	} {
		r := rc.mustCall(opCreateTTL, func(w *writer) {
			w.string(b + "/t")
			w.buffer(nil, true)
			w.acls(WorldACL)
			w.int(tc.flags)
			w.long(tc.ttl)
		})
		if r.code != tc.want {
			t.Errorf("createTTL flags %d ttl %d: code %d, want %d", tc.flags, tc.ttl, r.code, tc.want)
		}
	}
}

func testCreate2AndGetChildren2(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	r := rc.mustCall(opCreate2, createBody(b+"/n", []byte("abc"), flagEphemeral))
	if r.code != CodeOK {
		t.Fatalf("create2: %d", r.code)
	}
	path, st := r.body.string(), readStat(r.body)
	if path != b+"/n" || st.EphemeralOwner != rc.sid || st.DataLength != 3 || st.Czxid != r.zxid || st.Version != 0 {
		t.Fatalf("create2 result %q %+v (reply zxid %d)", path, st, r.zxid)
	}
	if got := mustStat(t, c, b+"/n"); *got != zk.Stat(st) {
		t.Fatalf("create2 stat %+v, exists says %+v", st, got)
	}
	r = rc.mustCall(opGetChildren2, pathWatch(b, false))
	kids, pst := r.body.strings(), readStat(r.body)
	if r.code != CodeOK || !slices.Equal(kids, []string{"n"}) || pst.NumChildren != 1 || pst.Cversion != 1 || pst.Pzxid != st.Czxid {
		t.Fatalf("getChildren2: %d %v %+v", r.code, kids, pst)
	}
	r = rc.mustCall(opGetAllChildren, pathBody(b))
	if r.code != CodeOK || r.body.int() != 1 {
		t.Fatalf("getAllChildrenNumber: %d", r.code)
	}
	r = rc.mustCall(opGetEphemerals, pathBody(b))
	if eph := r.body.strings(); r.code != CodeOK || !slices.Equal(eph, []string{b + "/n"}) {
		t.Fatalf("getEphemerals: %d %v", r.code, eph)
	}
}

func testFourLetterWords(t *testing.T, tg target) {
	if got := fourLetterWord(t, tg.addr, "ruok"); got != "imok" {
		t.Fatalf("ruok: %q", got)
	}
	srvr := fourLetterWord(t, tg.addr, "srvr")
	for _, want := range []string{"Zookeeper version: 3.8.0-", "Latency min/avg/max: ", "Received: ", "Sent: ", "Connections: ", "Outstanding: ", "Zxid: 0x", "Mode: ", "Node count: "} {
		if !strings.Contains(srvr, "\n"+want) && !strings.HasPrefix(srvr, want) {
			t.Errorf("srvr lacks %q:\n%s", want, srvr)
		}
	}
	mntr := fourLetterWord(t, tg.addr, "mntr")
	for _, key := range []string{"zk_version", "zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_num_alive_connections", "zk_avg_latency", "zk_outstanding_requests"} {
		if !regexp.MustCompile(`(?m)^` + key + `\t\S`).MatchString(mntr) {
			t.Errorf("mntr lacks %s:\n%s", key, mntr)
		}
	}
	if tg.srv != nil && (!strings.Contains(srvr, "Mode: standalone\n") || !strings.Contains(mntr, "zk_server_state\tstandalone\n")) {
		t.Errorf("embedded server is standalone:\n%s", srvr)
	}
}

// testPersistentWatches: addWatch (ZooKeeper 3.6+; go-zookeeper lacks it, Curator's
// CuratorCache uses it) on the wire.
func testPersistentWatches(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	p := b + "/p"
	tree := b + "/tree"
	mustCreate(t, c, tree, nil, 0)
	// The reply carries an ErrorResponse(0): the Java client reads it.
	if r := rc.mustCall(opAddWatch, func(w *writer) { w.string(p); w.int(0) }); r.code != CodeOK || len(r.body.b) != 4 || r.body.int() != 0 {
		t.Fatalf("addWatch persistent: %d, body %v", r.code, r.body.b)
	}
	if r := rc.mustCall(opAddWatch, func(w *writer) { w.string(tree); w.int(1) }); r.code != CodeOK {
		t.Fatalf("addWatch recursive: %d", r.code)
	}
	mustCreate(t, c, p, nil, 0)
	for i := range 2 {
		if _, err := c.Set(p, []byte{byte(i)}, -1); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, c, p+"/kid", nil, 0)
	mustCreate(t, c, tree+"/a", nil, 0)
	mustCreate(t, c, tree+"/a/b", nil, 0)
	if _, err := c.Set(tree+"/a/b", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(tree+"/a/b", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(tree, []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	rc.mustCall(opSync, pathBody(b))
	want := []rawEvent{
		{evNodeCreated, p}, {evNodeDataChanged, p}, {evNodeDataChanged, p}, {evNodeChildrenChanged, p},
		{evNodeCreated, tree + "/a"}, {evNodeCreated, tree + "/a/b"}, {evNodeDataChanged, tree + "/a/b"},
		{evNodeDeleted, tree + "/a/b"}, {evNodeDataChanged, tree},
	}
	if !slices.Equal(rc.events, want) {
		t.Fatalf("events\n%v\nwant\n%v", rc.events, want)
	}
	if r := rc.mustCall(opAddWatch, func(w *writer) { w.string(p); w.int(2) }); r.code != CodeMarshallingError {
		t.Fatalf("addWatch with mode 2: %d, want MarshallingError (-5)", r.code)
	}
	if r := rc.mustCall(opExists, pathWatch(p, false)); r.code != CodeOK {
		t.Fatalf("exists after a bad addWatch: %d", r.code)
	}
}

func testMultiRead(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	mustCreate(t, c, b+"/a", []byte("A"), 0)
	mustCreate(t, c, b+"/a/k", nil, 0)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	r := rc.mustCall(opMultiRead, func(w *writer) {
		for _, o := range []struct {
			op   int32
			path string
		}{{opGetData, b + "/a"}, {opGetChildren, b + "/a"}, {opGetData, b + "/missing"}, {opGetChildren, b}} {
			w.int(o.op)
			w.bool(false)
			w.int(-1)
			w.string(o.path)
			w.bool(false)
		}
		w.int(-1)
		w.bool(true)
		w.int(-1)
	})
	if r.code != CodeOK {
		t.Fatalf("multiRead: %d", r.code)
	}
	body := r.body
	h := func() (int32, Code) { typ, _, code := body.int(), body.bool(), Code(body.int()); return typ, code }
	if typ, code := h(); typ != opGetData || code != 0 || string(body.buffer()) != "A" || readStat(body).NumChildren != 1 {
		t.Fatalf("multiRead getData: %d %d", typ, code)
	}
	if typ, code := h(); typ != opGetChildren || code != 0 || !slices.Equal(body.strings(), []string{"k"}) {
		t.Fatalf("multiRead getChildren: %d %d", typ, code)
	}
	if typ, code := h(); typ != opError || code != CodeNoNode || Code(body.int()) != CodeNoNode {
		t.Fatalf("multiRead missing: %d %d", typ, code)
	}
	if typ, code := h(); typ != opGetChildren || code != 0 || !slices.Equal(body.strings(), []string{"a"}) {
		t.Fatalf("multiRead getChildren of the base: %d %d", typ, code)
	}
	if _, done, _ := body.int(), body.bool(), body.int(); !done || body.err != nil {
		t.Fatalf("multiRead: no done header (%v)", body.err)
	}
}

// testReplyBodies pins the size of each reply's body, which clients decode strictly
// (the Java client fails on a missing ErrorResponse, go-zookeeper on a missing stat).
func testReplyBodies(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	b := base(t, c)
	rc := dialRaw(t, tg.addr, 4000, 0, nil)
	const stat = 68
	n := b + "/n"
	for _, tc := range []struct {
		name string
		op   int32
		body func(*writer)
		code Code
		size int
	}{
		{"create", opCreate, createBody(n, []byte("x"), 0), CodeOK, 4 + len(n)},
		{"create2", opCreate2, createBody(n+"2", nil, 0), CodeOK, 4 + len(n) + 1 + stat},
		{"create error", opCreate, createBody(n, nil, 0), CodeNodeExists, 0},
		{"exists", opExists, pathWatch(n, true), CodeOK, stat},
		{"exists missing", opExists, pathWatch(n+"x", false), CodeNoNode, 0},
		{"getData", opGetData, pathWatch(n, false), CodeOK, 4 + 1 + stat},
		{"getChildren", opGetChildren, pathWatch(b, true), CodeOK, 4 + (4 + 1) + (4 + 2)},
		{"getChildren2", opGetChildren2, pathWatch(b, false), CodeOK, 4 + (4 + 1) + (4 + 2) + stat},
		{"setData", opSetData, func(w *writer) { w.string(n); w.buffer([]byte("y"), false); w.int(-1) }, CodeOK, stat},
		{"getACL", opGetACL, pathBody(n), CodeOK, 4 + 4 + 4 + 5 + 4 + 6 + stat},
		{"setACL", opSetACL, func(w *writer) { w.string(n); w.acls(WorldACL); w.int(-1) }, CodeOK, stat},
		{"sync", opSync, pathBody(n), CodeOK, 4 + len(n)},
		{"checkWatches", opCheckWatches, func(w *writer) { w.string(b); w.int(1) }, CodeOK, 0},
		{"removeWatches", opRemoveWatches, func(w *writer) { w.string(b); w.int(3) }, CodeOK, 0},
		{"removeWatches none", opRemoveWatches, func(w *writer) { w.string(b); w.int(3) }, CodeNoWatcher, 0},
		{"setWatches", opSetWatches, func(w *writer) { w.long(0); w.strings(nil); w.strings(nil); w.strings(nil) }, CodeOK, 0},
		{"getAllChildrenNumber", opGetAllChildren, pathBody(b), CodeOK, 4},
		{"delete", opDelete, func(w *writer) { w.string(n + "2"); w.int(-1) }, CodeOK, 0},
		{"ping", opPing, nil, CodeOK, 0},
		{"auth", opAuth, func(w *writer) { w.int(0); w.string("digest"); w.buffer([]byte("u:p"), false) }, CodeOK, 0},
		{"closeSession", opCloseSession, nil, CodeOK, 0},
	} {
		r := rc.mustCall(tc.op, tc.body)
		if r.code != tc.code || len(r.body.b) != tc.size {
			t.Errorf("%s: code %d, body %d bytes; want %d and %d", tc.name, r.code, len(r.body.b), tc.code, tc.size)
		}
	}
}

// The nodes every server starts with hold empty data, not null: the two are different
// answers on the wire, and Curator's EnsembleTracker fails (NullPointerException) on a
// null /zookeeper/config.
func testSystemNodesHaveEmptyData(t *testing.T, tg target) {
	c := connect(t, tg.addr, 4*time.Second)
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		data, _, err := c.Get(p)
		if err != nil || data == nil {
			t.Errorf("get %s: null data (%v), want an empty buffer", p, err)
		}
		if p != "/zookeeper/config" && len(data) != 0 {
			t.Errorf("get %s: %q, want empty", p, data)
		}
	}
}
