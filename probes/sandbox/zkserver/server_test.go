package zkserver

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// Tests of what only the embedded server has (test hooks, the demo tree, options) or
// what the shared ensemble cannot be pushed into without disturbing others.

func startServer(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestExpireSessionHook(t *testing.T) {
	s := startServer(t, Options{})
	owner := connect(t, s.Addr(), 4*time.Second)
	w := connect(t, s.Addr(), 4*time.Second)
	mustCreate(t, owner, "/svc", nil, 0)
	e := mustCreate(t, owner, "/svc/m-", []byte("a"), zk.FlagEphemeralSequential)
	var info *SessionInfo
	for _, si := range s.Sessions() {
		if si.ID == owner.SessionID() {
			info = &si
		}
	}
	if info == nil || !info.Connected || info.Timeout != 4*time.Second || len(info.Ephemerals) != 1 || info.Ephemerals[0] != e {
		t.Fatalf("Sessions() = %+v", s.Sessions())
	}
	_, _, ch, _ := w.ChildrenW("/svc")
	from := owner.rec.len()
	if !s.ExpireSession(owner.SessionID()) {
		t.Fatal("ExpireSession: no such session")
	}
	expectEvent(t, ch, zk.EventNodeChildrenChanged, "/svc")
	if ok, _, _ := w.Exists(e); ok {
		t.Fatal("ephemeral survived expiry")
	}
	if owner.rec.waitFor(from, 10*time.Second, func(e zk.Event) bool { return e.State == zk.StateExpired }) < 0 {
		t.Fatal("client not told its session expired")
	}
	if s.ExpireSession(owner.SessionID()) {
		t.Fatal("expired twice")
	}
}

func TestDisconnectSessionHookKeepsTheSession(t *testing.T) {
	s := startServer(t, Options{})
	c := connect(t, s.Addr(), 4*time.Second)
	other := connect(t, s.Addr(), 4*time.Second)
	mustCreate(t, c, "/e", nil, zk.FlagEphemeral)
	mustCreate(t, other, "/n", nil, 0)
	_, _, ch, _ := c.GetW("/n")
	from := c.rec.len()
	if !s.DisconnectSession(c.SessionID()) {
		t.Fatal("DisconnectSession: not connected")
	}
	if c.rec.waitFor(from, 5*time.Second, func(e zk.Event) bool { return e.State == zk.StateHasSession }) < 0 {
		t.Fatal("no reconnect")
	}
	if _, err := other.Set("/n", []byte("x"), -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDataChanged, "/n")
	if ok, st, _ := other.Exists("/e"); !ok || st.EphemeralOwner != c.SessionID() {
		t.Fatal("ephemeral lost on a reconnect")
	}
}

func TestSessionExpiresOnItsOwnWithinTimeoutPlusATick(t *testing.T) {
	s := startServer(t, Options{TickTime: 100 * time.Millisecond})
	rc := dialRaw(t, s.Addr(), 300, 0, nil) // min is 2 ticks: 200ms; asks 300ms
	if rc.timeout != 300 {
		t.Fatalf("negotiated %d", rc.timeout)
	}
	rc.mustCall(opCreate, createBody("/e", nil, flagEphemeral))
	// Silent from now on: no pings.
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(s.Sessions()); n != 0 {
		t.Fatalf("%d sessions left 5s after a 300ms session went silent", n)
	}
	if _, ok := rc.call(opExists, pathWatch("/e", false)); ok {
		t.Fatal("the expired session's connection still answers")
	}
}

func TestSeedDemo(t *testing.T) {
	s := startServer(t, Options{})
	d, err := s.SeedDemo(DemoOptions{ConfigInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedDemo(DemoOptions{}); err == nil {
		t.Fatal("second SeedDemo succeeded")
	}
	c := connect(t, s.Addr(), 4*time.Second)
	members, _, err := c.Children("/services/checkout/members")
	if err != nil || len(members) != 3 || len(d.Services["checkout"]) != 3 {
		t.Fatalf("checkout members %v %v %v", members, d.Services, err)
	}
	for _, m := range d.Services["checkout"] {
		data, st, err := c.Get(m)
		if err != nil || st.EphemeralOwner != d.SessionID || !strings.Contains(string(data), `"host":"10.0.1.`) {
			t.Fatalf("member %s: %q %+v %v", m, data, st, err)
		}
	}
	queue, _, err := c.Children(DemoLockPath)
	if err != nil || len(queue) != 3 || len(d.LockQueue) != 3 {
		t.Fatalf("lock queue %v %v", queue, err)
	}
	curator := `^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lock-000000000[0-2]$`
	for i, p := range d.LockQueue {
		name := strings.TrimPrefix(p, DemoLockPath+"/")
		if !regexpMatch(curator, name) || !strings.HasSuffix(name, "-lock-000000000"+string(rune('0'+i))) {
			t.Fatalf("lock node %d: %q", i, name)
		}
	}
	_, st, ch, err := c.GetW(DemoConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDataChanged, DemoConfigPath)
	if _, st2, _ := c.Get(DemoConfigPath); st2.Version <= st.Version {
		t.Fatalf("config version %d -> %d", st.Version, st2.Version)
	}
	for _, si := range s.Sessions() {
		if si.ID == d.SessionID && (!si.Internal || len(si.Ephemerals) != 8) {
			t.Fatalf("demo session %+v", si)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	z := s.Zxid()
	time.Sleep(150 * time.Millisecond)
	if s.Zxid() != z {
		t.Fatal("config kept changing after Close")
	}
}

func TestContainersAndTTLNodesAreReaped(t *testing.T) {
	s := startServer(t, Options{ContainerCheckInterval: 50 * time.Millisecond})
	c := connect(t, s.Addr(), 4*time.Second)
	if _, err := c.CreateContainer("/box", nil, zk.FlagContainer, openACL); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateContainer("/never-used", nil, zk.FlagContainer, openACL); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, "/box/x", nil, 0)
	if _, err := c.CreateTTL("/ttl", nil, zk.FlagTTL, openACL, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	if ok, _, _ := c.Exists("/box"); !ok {
		t.Fatal("container with a child was reaped")
	}
	_, _, ch, _ := c.ExistsW("/box")
	if err := c.Delete("/box/x", -1); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, zk.EventNodeDeleted, "/box")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _, _ := c.Exists("/ttl"); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _, _ := c.Exists("/ttl"); ok {
		t.Fatal("TTL node outlived its TTL")
	}
	if ok, _, _ := c.Exists("/never-used"); !ok {
		t.Fatal("a container that never had children was reaped (ZooKeeper keeps it)")
	}
}

func TestDisableExtendedTypes(t *testing.T) {
	s := startServer(t, Options{DisableExtendedTypes: true})
	c := connect(t, s.Addr(), 4*time.Second)
	_, err := c.CreateTTL("/ttl", nil, zk.FlagTTL, openACL, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "-6") {
		t.Fatalf("TTL without extended types: %v, want Unimplemented (-6)", err)
	}
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	s := startServer(t, Options{})
	for name, payload := range map[string][]byte{
		"oversized": binary.BigEndian.AppendUint32(nil, maxFrame+1),
		"not jute":  frame4([]byte{0, 0}),
	} {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, s.Addr(), 4000, 0, nil)
			_, _ = rc.nc.Write(payload)
			_ = rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(rc.nc); err != nil {
				t.Fatalf("want a clean close: %v", err)
			}
		})
	}
	rc := dialRaw(t, s.Addr(), 4000, 0, nil)
	if r := rc.mustCall(opReconfig, nil); r.code != CodeUnimplemented {
		t.Fatalf("reconfig: %d, want Unimplemented", r.code)
	}
	if r := rc.mustCall(opAuth, func(w *writer) { w.int(0); w.string("sasl"); w.buffer([]byte("x"), false) }); r.code != CodeAuthFailed {
		t.Fatalf("unknown auth scheme: %d, want AuthFailed", r.code)
	}
	if _, ok := rc.call(opPing, nil); ok {
		t.Fatal("connection kept after AuthFailed (ZooKeeper closes it)")
	}
}

func TestFourLetterWordsDescribeTheServer(t *testing.T) {
	s := startServer(t, Options{})
	c := connect(t, s.Addr(), 4*time.Second)
	mustCreate(t, c, "/e", nil, zk.FlagEphemeral)
	_, _, _, _ = c.GetW("/e")
	srvr := fourLetterWord(t, s.Addr(), "srvr")
	if !strings.Contains(srvr, "Node count: 6\n") || !strings.Contains(srvr, "Connections: 2\n") || !strings.HasPrefix(srvr, "Zookeeper version: "+Version+"\n") {
		t.Fatalf("srvr:\n%s", srvr)
	}
	mntr := fourLetterWord(t, s.Addr(), "mntr")
	for _, want := range []string{"zk_server_state\tstandalone\n", "zk_ephemerals_count\t1\n", "zk_watch_count\t1\n", "zk_znode_count\t6\n", "zk_global_sessions\t1\n"} {
		if !strings.Contains(mntr, want) {
			t.Errorf("mntr lacks %q:\n%s", want, mntr)
		}
	}
	if got := fourLetterWord(t, s.Addr(), "isro"); got != "rw" {
		t.Errorf("isro: %q", got)
	}
	if got := fourLetterWord(t, s.Addr(), "wchs"); got != "1 connections watching 1 paths\nTotal watches:1\n" {
		t.Errorf("wchs: %q", got)
	}
	if got := fourLetterWord(t, s.Addr(), "stat"); !strings.Contains(got, "Clients:\n /127.0.0.1:") || !strings.Contains(got, "Mode: standalone") {
		t.Errorf("stat:\n%s", got)
	}
	if got := fourLetterWord(t, s.Addr(), "dump"); !strings.Contains(got, "Sessions with Ephemerals (1):") || !strings.Contains(got, "\t/e\n") {
		t.Errorf("dump:\n%s", got)
	}
	if got := fourLetterWord(t, s.Addr(), "conf"); !strings.Contains(got, "tickTime=500\n") || !strings.Contains(got, "maxSessionTimeout=10000\n") {
		t.Errorf("conf:\n%s", got)
	}
	if got := fourLetterWord(t, s.Addr(), "xyzw"); got != "" {
		t.Errorf("unknown word answered: %q", got)
	}
}

func TestStartRefusesABusyPort(t *testing.T) {
	s := startServer(t, Options{})
	if _, err := Start(context.Background(), Options{Addr: s.Addr()}); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Fatalf("second server on %s: %v", s.Addr(), err)
	}
}

func TestCloseDoesNotWaitForSilentConnections(t *testing.T) {
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", s.Addr()) // connects, never says a word
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	connect(t, s.Addr(), 4*time.Second)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a connection that never sent its handshake")
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
}
