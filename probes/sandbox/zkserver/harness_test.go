package zkserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/testenv"
)

// target is one ZooKeeper the conformance suite runs against: the real ensemble from
// scripts/services, or this package's embedded server. Every case runs against both.
type target struct {
	name string
	addr string  // one server: raw-protocol cases and go-zookeeper clients use it
	srv  *Server // nil for the real ensemble
}

// targets gives the embedded server always, and the real ensemble when DSCTL_TEST_ZK
// is set (without it the real half skips with a message, and fails under CI=true).
func forEachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	t.Run("embedded", func(t *testing.T) {
		srv, err := Start(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		fn(t, target{name: "embedded", addr: srv.Addr(), srv: srv})
	})
	t.Run("ensemble", func(t *testing.T) {
		servers := testenv.List(t, testenv.ZK)
		fn(t, target{name: "ensemble", addr: servers[0]})
	})
}

type silentLogger struct{}

func (silentLogger) Printf(string, ...any) {}

// recorder drains a session's event channel (go-zookeeper drops events when its small
// buffer is full) and keeps them in order for assertions.
type recorder struct {
	mu     sync.Mutex
	cond   *sync.Cond
	events []zk.Event
}

func record(ch <-chan zk.Event) *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		for ev := range ch {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.cond.Broadcast()
			r.mu.Unlock()
		}
	}()
	return r
}

// waitFor returns the index of the first event from index from on that matches, or -1
// after the timeout.
func (r *recorder) waitFor(from int, timeout time.Duration, match func(zk.Event) bool) int {
	deadline := time.Now().Add(timeout)
	stop := time.AfterFunc(timeout, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer stop.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for i := from; i < len(r.events); i++ {
			if match(r.events[i]) {
				return i
			}
		}
		if time.Now().After(deadline) {
			return -1
		}
		r.cond.Wait()
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// watchEvents are the node events (not session states) recorded from index from.
func (r *recorder) watchEvents(from int) []zk.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []zk.Event
	for _, ev := range r.events[from:] {
		if ev.Type != zk.EventSession {
			out = append(out, ev)
		}
	}
	return out
}

type client struct {
	*zk.Conn
	rec *recorder
}

// connect opens a go-zookeeper session to addr and waits until it has a session.
func connect(t *testing.T, addr string, timeout time.Duration) *client {
	t.Helper()
	c, ch, err := zk.Connect([]string{addr}, timeout, zk.WithLogger(silentLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{Conn: c, rec: record(ch)}
	if cl.rec.waitFor(0, 10*time.Second, func(e zk.Event) bool { return e.State == zk.StateHasSession }) < 0 {
		c.Close()
		t.Fatalf("no session with %s within 10s", addr)
	}
	t.Cleanup(c.Close)
	return cl
}

// base makes a unique parent node for one case and deletes its subtree afterwards.
func base(t *testing.T, c *client) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	p := "/dsctl-zkconf-" + name + "-" + hex.EncodeToString(b[:])
	if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	t.Cleanup(func() { deleteTree(c.Conn, p) })
	return p
}

func deleteTree(c *zk.Conn, p string) {
	kids, _, err := c.Children(p)
	if err != nil {
		return
	}
	for _, k := range kids {
		deleteTree(c, p+"/"+k)
	}
	_ = c.Delete(p, -1)
}

var openACL = zk.WorldACL(zk.PermAll)

// proxy sits between a client and a server so a test can cut the client off (the
// server sees a dead connection, the session lives until its timeout) and let it
// back, identically for both targets.
type proxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	paused   bool
	conns    []net.Conn
}

func newProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	go p.loop()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) loop() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.paused {
			p.mu.Unlock()
			down.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			down.Close()
			continue
		}
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, down); up.Close(); down.Close() }()
		go func() { _, _ = io.Copy(down, up); up.Close(); down.Close() }()
	}
}

// cut closes every proxied connection (a network blip).
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// pause cuts and refuses new connections until resume (a partitioned client).
func (p *proxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	p.cut()
}

func (p *proxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// rawConn speaks the wire protocol directly, for what go-zookeeper hides or checks on
// the client side: negotiated timeouts, passwords, invalid paths, create2's stat, the
// exact stream of watch events.
type rawConn struct {
	t       *testing.T
	nc      net.Conn
	br      *bufio.Reader
	xid     int32
	sid     int64
	passwd  []byte
	timeout int32
	events  []rawEvent
}

type rawEvent struct {
	typ  int32
	path string
}

type rawReply struct {
	zxid int64
	code Code
	body *reader
}

func dialRaw(t *testing.T, addr string, timeoutMs int32, sid int64, passwd []byte) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	w := &writer{}
	w.int(0)
	w.long(0)
	w.int(timeoutMs)
	w.long(sid)
	if passwd == nil {
		passwd = make([]byte, 16)
	}
	w.buffer(passwd, false)
	w.bool(false)
	rc.send(w.b)
	r := rc.frame()
	if r == nil {
		return rc // closed by the server
	}
	_ = r.int()
	rc.timeout = r.int()
	rc.sid = r.long()
	rc.passwd = r.buffer()
	return rc
}

func (rc *rawConn) send(payload []byte) {
	_ = rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.nc.Write(frame4(payload)); err != nil {
		rc.t.Fatalf("raw write: %v", err)
	}
}

// frame reads one packet, or nil when the server closed the connection.
func (rc *rawConn) frame() *reader {
	_ = rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head [4]byte
	if _, err := io.ReadFull(rc.br, head[:]); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			rc.t.Fatalf("raw read: no answer within 10s")
		}
		return nil
	}
	b := make([]byte, binary.BigEndian.Uint32(head[:]))
	if _, err := io.ReadFull(rc.br, b); err != nil {
		return nil
	}
	return &reader{b: b}
}

// call sends one request and reads up to its reply, keeping watch events seen on the
// way in rc.events. ok is false when the server closed the connection instead.
func (rc *rawConn) call(op int32, body func(*writer)) (rawReply, bool) {
	rc.xid++
	want := rc.xid
	if op == opPing {
		want = xidPing
	}
	w := &writer{}
	w.int(want)
	w.int(op)
	if body != nil {
		body(w)
	}
	rc.send(w.b)
	for {
		r := rc.frame()
		if r == nil {
			return rawReply{}, false
		}
		xid, zxid, code := r.int(), r.long(), Code(r.int())
		switch xid {
		case xidWatchEvent:
			typ, _ := r.int(), r.int()
			rc.events = append(rc.events, rawEvent{typ, r.string()})
		case want:
			return rawReply{zxid: zxid, code: code, body: r}, true
		}
	}
}

func (rc *rawConn) mustCall(op int32, body func(*writer)) rawReply {
	rc.t.Helper()
	r, ok := rc.call(op, body)
	if !ok {
		rc.t.Fatalf("server closed the connection on op %d", op)
	}
	return r
}

func pathBody(p string) func(*writer) { return func(w *writer) { w.string(p) } }

func pathWatch(p string, watch bool) func(*writer) {
	return func(w *writer) { w.string(p); w.bool(watch) }
}

func createBody(p string, data []byte, flags int32) func(*writer) {
	return func(w *writer) {
		w.string(p)
		w.buffer(data, data == nil)
		w.acls(WorldACL)
		w.int(flags)
	}
}

func readStat(r *reader) Stat {
	return Stat{Czxid: r.long(), Mzxid: r.long(), Ctime: r.long(), Mtime: r.long(), Version: r.int(),
		Cversion: r.int(), Aversion: r.int(), EphemeralOwner: r.long(), DataLength: r.int(), NumChildren: r.int(), Pzxid: r.long()}
}

// fourLetter sends a four-letter word and returns the whole answer.
func fourLetterWord(t *testing.T, addr, cmd string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, cmd); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(nc)
	return string(b)
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
