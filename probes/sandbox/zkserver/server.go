package zkserver

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. Zero values take the defaults noted on each field.
type Options struct {
	// Addr is the listen address ("127.0.0.1:0", any free loopback port, by default).
	Addr string
	// TickTime is ZooKeeper's tickTime: the session-expiry check period and the unit of
	// the default session timeout bounds (500ms, as in the project's test ensemble).
	TickTime time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the negotiated session timeout
	// (2 and 20 ticks by default, as in ZooKeeper).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// DisableExtendedTypes refuses TTL nodes with Unimplemented, as a ZooKeeper started
	// without -Dzookeeper.extendedTypesEnabled=true does. By default they are served,
	// as by the project's test ensemble.
	DisableExtendedTypes bool
	// ContainerCheckInterval is how often empty containers and expired TTL nodes are
	// deleted (zookeeper.containerCheckIntervalMs; 60s by default, as in ZooKeeper).
	ContainerCheckInterval time.Duration
	// Logf, when set, receives one line per connection-level event (debugging aid).
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.TickTime <= 0 {
		o.TickTime = 500 * time.Millisecond
	}
	if o.MinSessionTimeout <= 0 {
		o.MinSessionTimeout = 2 * o.TickTime
	}
	if o.MaxSessionTimeout <= 0 {
		o.MaxSessionTimeout = 20 * o.TickTime
	}
	if o.MaxSessionTimeout < o.MinSessionTimeout {
		o.MaxSessionTimeout = o.MinSessionTimeout
	}
	if o.ContainerCheckInterval <= 0 {
		o.ContainerCheckInterval = time.Minute
	}
}

// Server is a running in-process ZooKeeper.
type Server struct {
	opt     Options
	ln      net.Listener
	stop    chan struct{}
	wg      sync.WaitGroup
	started time.Time

	mu       sync.Mutex
	closed   bool
	nodes    map[string]*znode
	zxid     int64
	sessions map[int64]*session
	nextSid  int64
	conns    map[*conn]struct{}
	pending  map[net.Conn]struct{} // accepted, not yet through the handshake
	dataW    *watchTable
	childW   *watchTable
	lat      latency

	received atomic.Int64
	sent     atomic.Int64
}

type latency struct{ min, max, sum, count int64 }

func (l *latency) add(d time.Duration) {
	ms := d.Milliseconds()
	if l.count == 0 || ms < l.min {
		l.min = ms
	}
	if ms > l.max {
		l.max = ms
	}
	l.sum += ms
	l.count++
}

type session struct {
	id         int64
	passwd     []byte
	timeout    time.Duration
	lastSeen   time.Time
	conn       *conn
	ephemerals map[string]struct{}
	auth       []authID
	internal   bool
}

// Start listens on opt.Addr and serves until Close. ctx bounds start-up only.
func Start(ctx context.Context, opt Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opt.defaults()
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("zkserver: listen on %s: %w", opt.Addr, err)
	}
	s := &Server{
		opt:      opt,
		ln:       ln,
		stop:     make(chan struct{}),
		started:  time.Now(),
		sessions: map[int64]*session{},
		conns:    map[*conn]struct{}{},
		pending:  map[net.Conn]struct{}{},
		dataW:    newWatchTable(),
		childW:   newWatchTable(),
	}
	// ZooKeeper's standalone session ids: the start time in ms shifted into the low 56
	// bits (SessionTrackerImpl.initializeNextSessionId with server id 0).
	s.nextSid = int64(uint64(time.Now().UnixMilli()<<24) >> 8)
	s.initTree()
	s.wg.Add(3)
	go s.acceptLoop()
	go s.everyTick(s.opt.TickTime, s.expireSessions)
	go s.everyTick(s.opt.ContainerCheckInterval, s.reapContainers)
	return s, nil
}

// initTree creates the nodes every ZooKeeper starts with, with the stats a fresh
// standalone 3.8 server shows for them. Their data is empty, not null (a null buffer
// on the wire is a different answer: Curator's EnsembleTracker fails on a null
// /zookeeper/config with a NullPointerException).
func (s *Server) initTree() {
	s.nodes = map[string]*znode{
		"/":                 {data: []byte{}, acl: WorldACL, children: map[string]struct{}{"zookeeper": {}}},
		"/zookeeper":        {data: []byte{}, acl: WorldACL, children: map[string]struct{}{"quota": {}, "config": {}}},
		"/zookeeper/quota":  {data: []byte{}, acl: WorldACL, children: map[string]struct{}{}},
		"/zookeeper/config": {data: []byte{}, acl: []ACL{{Perms: PermRead, Scheme: "world", ID: "anyone"}}, children: map[string]struct{}{}, stat: Stat{Aversion: -1}},
	}
}

// Addr is the host:port clients connect to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: the listener, every connection and the background work.
// Sessions end without their ephemerals being deleted (the data is discarded).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	for c := range s.conns {
		c.kill()
	}
	for nc := range s.pending {
		_ = nc.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) logf(format string, args ...any) {
	if s.opt.Logf != nil {
		s.opt.Logf(format, args...)
	}
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.pending[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(nc)
		}()
	}
}

// everyTick calls f with the tick's time, holding s.mu, every interval until Close.
// The caller has added it to s.wg.
func (s *Server) everyTick(interval time.Duration, f func(now time.Time)) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			f(now)
			s.mu.Unlock()
		}
	}
}

// expireSessions expires sessions not heard from within their timeout; called every
// tick, as ZooKeeper's SessionTracker checks (so expiry lands between timeout and
// timeout + tickTime).
func (s *Server) expireSessions(now time.Time) {
	var due []*session
	for _, ss := range s.sessions {
		if !ss.internal && now.Sub(ss.lastSeen) > ss.timeout {
			due = append(due, ss)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	for _, ss := range due {
		s.logf("zkserver: session 0x%x expired", ss.id)
		s.killSession(ss)
	}
}

// reapContainers is ZooKeeper's ContainerManager: it deletes containers that had
// children and have none left, and TTL nodes without children not modified within
// their TTL.
func (s *Server) reapContainers(now time.Time) {
	var due []string
	for p, n := range s.nodes {
		if len(n.children) > 0 {
			continue
		}
		switch ephemeralKind(n.stat.EphemeralOwner) {
		case kindContainer:
			if n.stat.Cversion > 0 {
				due = append(due, p)
			}
		case kindTTL:
			ttl := n.stat.EphemeralOwner &^ ttlEphemeralOwnerMask
			if now.UnixMilli()-n.stat.Mtime > ttl {
				due = append(due, p)
			}
		}
	}
	sort.Strings(due)
	for _, p := range due {
		t := s.begin()
		t.removeNode(p)
		t.commit()
	}
}

// ---- sessions ----

func (s *Server) newSession(timeout time.Duration) *session {
	s.nextSid++
	ss := &session{id: s.nextSid, timeout: timeout, lastSeen: time.Now(), ephemerals: map[string]struct{}{}}
	ss.passwd = make([]byte, 16)
	_, _ = rand.Read(ss.passwd)
	s.zxid++ // createSession is a transaction
	s.sessions[ss.id] = ss
	return ss
}

// killSession ends a session as a closeSession transaction: its ephemerals are
// deleted under one zxid (watchers see NodeDeleted and NodeChildrenChanged) and its
// connection, if any, is closed. The caller holds s.mu.
func (s *Server) killSession(ss *session) int64 {
	if c := ss.conn; c != nil {
		s.dropWatches(c)
		ss.conn = nil
		c.sess = nil
		c.kill()
	}
	t := s.begin()
	paths := make([]string, 0, len(ss.ephemerals))
	for p := range ss.ephemerals {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t.removeNode(p)
	}
	t.commit()
	delete(s.sessions, ss.id)
	return t.zxid
}

func (s *Server) negotiate(requested time.Duration) time.Duration {
	return min(max(requested, s.opt.MinSessionTimeout), s.opt.MaxSessionTimeout)
}

// ---- connections ----

type conn struct {
	s    *Server
	nc   net.Conn
	sess *session
	ip   string

	mu      sync.Mutex
	cond    *sync.Cond
	queue   [][]byte
	closing bool // writer flushes the queue, then closes
	dead    bool // close now, unsent replies dropped

	dataW  map[string]struct{}
	childW map[string]struct{}

	received, sent atomic.Int64
	connected      time.Time
}

func (c *conn) enqueue(frame []byte) {
	c.mu.Lock()
	if !c.dead && !c.closing {
		c.queue = append(c.queue, frame)
		c.cond.Signal()
	}
	c.mu.Unlock()
}

// closeAfterFlush sends what is queued, then closes.
func (c *conn) closeAfterFlush() {
	c.mu.Lock()
	c.closing = true
	c.cond.Signal()
	c.mu.Unlock()
}

// kill closes at once (session expired, server closing).
func (c *conn) kill() {
	c.mu.Lock()
	c.dead = true
	c.cond.Signal()
	c.mu.Unlock()
	_ = c.nc.Close()
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing && !c.dead {
			c.cond.Wait()
		}
		batch, dead, closing := c.queue, c.dead, c.closing
		c.queue = nil
		c.mu.Unlock()
		if dead {
			_ = c.nc.Close()
			return
		}
		for _, f := range batch {
			if _, err := w.Write(f); err != nil {
				_ = c.nc.Close()
				return
			}
		}
		if err := w.Flush(); err != nil {
			_ = c.nc.Close()
			return
		}
		n := int64(len(batch))
		c.sent.Add(n)
		c.s.sent.Add(n)
		if closing {
			_ = c.nc.Close()
			return
		}
	}
}

var fourLetterWords = map[string]bool{
	"ruok": true, "isro": true, "srvr": true, "stat": true, "mntr": true, "conf": true,
	"cons": true, "wchs": true, "envi": true, "dump": true,
}

func (s *Server) serve(nc net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.pending, nc)
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(nc, 64<<10)
	_ = nc.SetReadDeadline(time.Now().Add(s.opt.MaxSessionTimeout + 10*time.Second))
	var head [4]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		_ = nc.Close()
		return
	}
	if fourLetterWords[string(head[:])] {
		s.received.Add(1)
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(nc, s.fourLetter(string(head[:]), nc))
		_ = nc.Close()
		return
	}
	c := &conn{s: s, nc: nc, dataW: map[string]struct{}{}, childW: map[string]struct{}{}, connected: time.Now()}
	c.cond = sync.NewCond(&c.mu)
	if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		c.ip = host
	}
	frame, err := readFrame(br, head[:])
	if err != nil {
		_ = nc.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	delete(s.pending, nc)
	ok := s.handshake(c, frame)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.writeLoop()
	}()
	if !ok {
		s.detach(c, true)
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	for {
		frame, err := readFrame(br, nil)
		if err != nil {
			s.detach(c, false)
			return
		}
		if !s.handle(c, frame) {
			s.detach(c, true)
			return
		}
	}
}

// readFrame reads one length-prefixed packet; a length beyond jute.maxbuffer closes
// the connection, as ZooKeeper does.
func readFrame(br *bufio.Reader, head []byte) ([]byte, error) {
	if head == nil {
		head = make([]byte, 4)
		if _, err := io.ReadFull(br, head); err != nil {
			return nil, err
		}
	}
	n := int32(binary.BigEndian.Uint32(head))
	if n < 0 || n > maxFrame {
		return nil, errors.New("zkserver: packet length out of range")
	}
	frame := make([]byte, n)
	_, err := io.ReadFull(br, frame)
	return frame, err
}

// detach ends a connection. Its watches go (ZooKeeper ties them to the connection;
// a client re-sends them with setWatches after reconnecting); its session stays
// until it expires or is re-attached.
func (s *Server) detach(c *conn, flush bool) {
	s.mu.Lock()
	s.dropWatches(c)
	delete(s.conns, c)
	if c.sess != nil && c.sess.conn == c {
		c.sess.conn = nil
		c.sess.lastSeen = time.Now()
	}
	s.mu.Unlock()
	if flush {
		c.closeAfterFlush()
	} else {
		c.kill()
	}
}

// handshake answers a ConnectRequest: a new session, or the re-attachment of an
// existing one by id and password. An unknown or expired session, or a wrong
// password, gets timeout 0 and session id 0 (clients report "session expired"), and
// a client that has seen a later zxid than ours is refused by closing the socket.
func (s *Server) handshake(c *conn, frame []byte) bool {
	r := reader{b: frame}
	_ = r.int() // protocol version
	lastZxid := r.long()
	timeout := time.Duration(r.int()) * time.Millisecond
	sid := r.long()
	passwd := r.buffer()
	// A trailing readOnly flag may follow: this server is never read-only, so it has
	// nothing to honour.
	if r.err != nil {
		return false
	}
	if lastZxid > s.zxid {
		s.logf("zkserver: refusing client that has seen zxid 0x%x, ours is 0x%x", lastZxid, s.zxid)
		return false
	}
	s.received.Add(1)
	c.received.Add(1)
	var ss *session
	if sid == 0 {
		ss = s.newSession(s.negotiate(timeout))
	} else if old := s.sessions[sid]; old != nil && !old.internal && slices.Equal(old.passwd, passwd) {
		ss = old
		ss.timeout = s.negotiate(timeout)
		if prev := ss.conn; prev != nil && prev != c {
			s.dropWatches(prev)
			delete(s.conns, prev)
			prev.sess = nil
			prev.kill()
		}
	}
	w := &writer{}
	w.int(0) // protocol version
	if ss == nil {
		w.int(0)
		w.long(0)
		w.buffer(make([]byte, 16), false)
		w.bool(false)
		c.enqueue(frame4(w.b))
		return false
	}
	ss.conn = c
	ss.lastSeen = time.Now()
	c.sess = ss
	w.int(int32(ss.timeout.Milliseconds()))
	w.long(ss.id)
	w.buffer(ss.passwd, false)
	w.bool(false)
	c.enqueue(frame4(w.b))
	return true
}

// frame4 prefixes a payload with its length.
func frame4(payload []byte) []byte {
	out := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	copy(out[4:], payload)
	return out
}

// reply queues a response: ReplyHeader(xid, zxid, err) and, when err is 0, the body.
func (c *conn) reply(xid int32, zxid int64, code Code, body func(*writer)) {
	w := &writer{b: make([]byte, 4, 64)}
	w.int(xid)
	w.long(zxid)
	w.int(int32(code))
	if code == CodeOK && body != nil {
		body(w)
	}
	binary.BigEndian.PutUint32(w.b, uint32(len(w.b)-4))
	c.enqueue(w.b)
}

func (c *conn) event(typ int32, path string) {
	c.reply(xidWatchEvent, -1, CodeOK, func(w *writer) {
		w.int(typ)
		w.int(stateSyncConnected)
		w.string(path)
	})
}

// ---- hooks for tests and the sandbox ----

// SessionInfo describes a live session.
type SessionInfo struct {
	ID         int64
	Timeout    time.Duration
	Connected  bool
	Internal   bool // owned by the server (the demo's members and lock holders)
	Ephemerals []string
}

// Sessions lists the live sessions by id.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		info := SessionInfo{ID: ss.id, Timeout: ss.timeout, Connected: ss.conn != nil, Internal: ss.internal}
		for p := range ss.ephemerals {
			info.Ephemerals = append(info.Ephemerals, p)
		}
		sort.Strings(info.Ephemerals)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExpireSession expires a session now, as if its timeout had passed: its ephemerals
// are deleted, watchers are told, its connection is closed and its next reconnect is
// told the session expired. False when no such session lives.
func (s *Server) ExpireSession(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[id]
	if ss == nil {
		return false
	}
	s.killSession(ss)
	return true
}

// DisconnectSession closes a session's connection without ending the session (a
// network blip): the client reconnects, re-attaches and re-sends its watches. False
// when the session is unknown or not connected.
func (s *Server) DisconnectSession(id int64) bool {
	s.mu.Lock()
	ss := s.sessions[id]
	if ss == nil || ss.conn == nil {
		s.mu.Unlock()
		return false
	}
	c := ss.conn
	s.mu.Unlock()
	s.detach(c, false)
	return true
}

// Zxid is the last transaction id.
func (s *Server) Zxid() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.zxid
}
