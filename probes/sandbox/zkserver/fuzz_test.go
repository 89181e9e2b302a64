package zkserver

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// FuzzRequest feeds arbitrary request packets to a session: the server must answer or
// close the connection, never panic, and keep its tree consistent.
func FuzzRequest(f *testing.F) {
	seed := func(op int32, body func(*writer)) []byte {
		w := &writer{}
		w.int(1)
		w.int(op)
		if body != nil {
			body(w)
		}
		return w.b
	}
	f.Add(seed(opCreate, createBody("/a", []byte("x"), flagEphemeralSequential)))
	f.Add(seed(opCreateTTL, func(w *writer) { createBody("/t", nil, flagPersistentTTL)(w); w.long(5) }))
	f.Add(seed(opDelete, func(w *writer) { w.string("/a"); w.int(-1) }))
	f.Add(seed(opSetData, func(w *writer) { w.string("/"); w.buffer([]byte("x"), false); w.int(0) }))
	f.Add(seed(opGetChildren2, pathWatch("/zookeeper", true)))
	f.Add(seed(opSetWatches2, func(w *writer) {
		w.long(0)
		for range 5 {
			w.strings([]string{"/", "/x"})
		}
	}))
	f.Add(seed(opAddWatch, func(w *writer) { w.string("/"); w.int(1) }))
	f.Add(seed(opMulti, func(w *writer) {
		w.int(opCreate)
		w.bool(false)
		w.int(-1)
		createBody("/m", nil, 0)(w)
		w.int(opCheck)
		w.bool(false)
		w.int(-1)
		w.string("/m")
		w.int(3)
		w.int(-1)
		w.bool(true)
		w.int(-1)
	}))
	f.Add(seed(opAuth, func(w *writer) { w.int(0); w.string("digest"); w.buffer([]byte("u:p"), false) }))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 14, 0xff, 0xff})

	srv, err := Start(context.Background(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, frame []byte) {
		mu.Lock()
		defer mu.Unlock()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := &conn{s: srv, nc: a, dataW: map[string]struct{}{}, childW: map[string]struct{}{}, connected: time.Now()}
		c.cond = sync.NewCond(&c.mu)
		srv.mu.Lock()
		ss := srv.newSession(4 * time.Second)
		ss.conn, c.sess = c, ss
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.handle(c, frame)
		srv.mu.Lock()
		srv.dropWatches(c)
		delete(srv.conns, c)
		if srv.sessions[ss.id] != nil {
			ss.conn = nil
			srv.killSession(ss)
		}
		checkTree(t, srv)
		srv.mu.Unlock()
	})
}

// checkTree asserts that every node's parent lists it and every listed child exists.
func checkTree(t *testing.T, s *Server) {
	for p, n := range s.nodes {
		if p != "/" {
			parent, name := parentOf(p)
			pn := s.nodes[parent]
			if pn == nil {
				t.Fatalf("%s has no parent", p)
			}
			if _, ok := pn.children[name]; !ok {
				t.Fatalf("%s not listed by its parent", p)
			}
		}
		for k := range n.children {
			child := p + "/" + k
			if p == "/" {
				child = "/" + k
			}
			if s.nodes[child] == nil {
				t.Fatalf("%s lists missing child %s", p, k)
			}
		}
		if ephemeralKind(n.stat.EphemeralOwner) == kindEphemeral && s.sessions[n.stat.EphemeralOwner] == nil {
			t.Fatalf("%s outlived its session", p)
		}
	}
}

// FuzzHandshake feeds arbitrary connect requests: answered or refused, never a panic.
func FuzzHandshake(f *testing.F) {
	w := &writer{}
	w.int(0)
	w.long(0)
	w.int(4000)
	w.long(0)
	w.buffer(make([]byte, 16), false)
	w.bool(false)
	f.Add(w.b)
	f.Add(w.b[:len(w.b)-1])
	f.Add([]byte{0, 0, 0, 0, 0xff})
	srv, err := Start(context.Background(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	f.Fuzz(func(t *testing.T, frame []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := &conn{s: srv, nc: a, dataW: map[string]struct{}{}, childW: map[string]struct{}{}, connected: time.Now()}
		c.cond = sync.NewCond(&c.mu)
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if srv.handshake(c, frame) && c.sess != nil {
			if c.sess.timeout < srv.opt.MinSessionTimeout || c.sess.timeout > srv.opt.MaxSessionTimeout {
				t.Fatalf("negotiated %s", c.sess.timeout)
			}
			c.sess.conn = nil
			srv.killSession(c.sess)
		}
	})
}
