// Package zklock is the ZooKeeper backend of dsctl's lock contract (package lock),
// compatible with Apache Curator's InterProcessMutex recipe:
//
//   - A lock named N lives at <root>/N (root /dsctl/locks by default; the parents are
//     container nodes, so ZooKeeper reaps them once empty, as Curator's are).
//   - Each contender creates a protected ephemeral-sequential node
//     _c_<uuid>-lock-<seq> holding its owner metadata (JSON). The lowest sequence
//     holds the lock; every waiter watches only its predecessor, so one release wakes
//     exactly one waiter (no herd). A create whose outcome is unknown (the reply
//     was lost) hands its uuid to a cleanup that deletes the node if it exists; the
//     retry uses a fresh uuid (the holder token), so no lease ever stands on a node
//     that the cleanup may delete.
//   - The fencing token is the czxid of the holder's node: ZooKeeper's transaction id,
//     strictly increasing across the whole ensemble.
//
// # Leases on sessions
//
// An ephemeral node lives as long as the ZooKeeper session that made it. A Locker has
// one session (timeout from the endpoint, 10s by default, negotiated by the server;
// the negotiated value is read from the handshake). A lease's TTL is enforced by the
// holder itself: a lease that is not renewed within its TTL is given up (its node
// deleted) by the Locker, exactly when another backend's key would expire; a holder
// that dies or is cut off loses it when the server expires its session. The local
// deadline (Lease.ExpiresAt) is the earlier of the two, measured from the send time
// of the last write the leader confirmed (the grant is confirmed by a write on our
// node, as every renewal is):
//
//	sent + min(TTL, session timeout - timeout/3 - tickTime) - drift
//
// and never later than (our last write to the server at least a tick before sent) +
// the session timeout. Why: the leader does not touch a session when it processes a
// write forwarded by a follower; it restarts the session's expiry when the follower
// reports the session's activity in its answer to the leader's ping (every
// tickTime/2), so a follower cut off right after our write leaves the leader counting
// from our previous activity. go-zookeeper writes at least every timeout/3 (its
// pings), so that activity is at most timeout/3 + one tick before sent when this
// process runs normally; the second bound covers a process that did not run. The
// tickTime is read from the connected server's conf four-letter word; when the
// server does not answer it (4lw.commands.whitelist) ZooKeeper's default 2000ms is
// assumed, capped at half the session timeout (the server grants at least two ticks),
// and the lease's note says so: with a larger tickTime the bound is not conservative.
// With the defaults (10s session, tickTime 2s) a lease's local span is about 4.6s.
// Renew writes the node (a write goes through the leader, proving the session is
// alive and the node still exists) and moves both clocks. A TTL timer that fires late (this process did not
// run) gives the lease up but leaves its node to the caller's Release (lock run
// releases once its child is stopped), or deletes it 2s later.
//
// Leases do not outlive the process (Backend.Detached is false): closing the Locker
// ends its session and ZooKeeper deletes its nodes.
//
// # Detached leases
//
// AcquireOptions.Detached (lock acquire --detach) queues a persistent-sequential TTL
// node instead, which outlives the process until its TTL passes without a write. A
// TTL node's TTL cannot be changed, so the waiting node already carries the lease's
// TTL; while it waits it is marked waiting (waiting_touch_ms in its data) and
// rewritten every min(TTL/3, 250ms). A dsctl waiter that finds such a node first in
// the queue, unchanged for 4 touches + 250ms, takes it for the orphan of a process
// that died while waiting and deletes it at the version it saw (so a touch or the
// grant in between wins; an owner that did not run that long finds its node gone and
// queues again). Curator and kazoo waiters do not: behind them an orphan blocks for up
// to its TTL + the container check interval (60s by default). Semaphores cannot be
// detached (their leases are ephemeral).
package zklock

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/zk"
)

// DefaultRoot is where dsctl keeps its locks: lock N is the node DefaultRoot/N.
const DefaultRoot = "/dsctl/locks"

// Formats of lock queues zklock recognises.
const (
	// FormatCurator is Apache Curator's InterProcessMutex (_c_<uuid>-lock-<seq>).
	FormatCurator lock.Format = "curator"
	// FormatGoZK is go-zookeeper's Lock (_c_<32 hex>-lock-<seq>).
	FormatGoZK lock.Format = "go-zookeeper"
	// FormatKazoo is kazoo's Lock (<32 hex>__lock__<seq>).
	FormatKazoo lock.Format = "kazoo"
)

// Options say where the locks live.
type Options struct {
	Endpoint endpoint.ZooKeeper
	// Root is the parent of every lock node; DefaultRoot when empty.
	Root string
}

// Locker implements lock.Locker on one ZooKeeper session.
type Locker struct {
	client  *zk.Client
	conn    *gozk.Conn
	root    string
	timeout time.Duration
	backend lock.Backend

	negotiatedMs atomic.Int64 // session timeout from the last handshake
	activity     *activity    // when we wrote to the server (session_bound.go)
	tickNs       atomic.Int64 // the ensemble's tickTime (learned or assumed)
	tickLearned  atomic.Bool
	requested    time.Duration
	suspended    atomic.Bool // disconnected, session maybe alive

	notifications atomic.Int64 // watch notifications received by waiters

	mu   sync.Mutex
	held map[string]*held // by token
	gone map[string]bool  // tokens given up (expired, released, lost)
	// expired are the tokens given up because the server expired the session.
	expired map[string]bool
	// stale are leases whose TTL timer fired late (this process did not run): their
	// nodes are kept until the caller releases them (after it has stopped whatever
	// the lease guarded) or staleHold has passed.
	stale  map[string]*held
	closed bool

	stopEvents func()
	cleanupMu  sync.Mutex
	cleanup    map[string]string // uuid -> lock path: nodes we may own and must delete
	kick       chan struct{}
	done       chan struct{}
}

// held is a lease this Locker holds.
type held struct {
	name, dir, node string // node is the full path
	token           string
	fence           lock.FencingToken
	session         int64
	owner           lock.Owner
	ttl             time.Duration
	acquiredAt      time.Time
	expiresAt       time.Time
	timer           *time.Timer
	version         int32
	permits         int // > 1: a semaphore lease (semaphore.go)

	mu     sync.Mutex // serializes Renew, Release and the TTL timer
	gone   bool
	ttlEnd time.Time // when the TTL runs out without a renewal (our own expiry)
}

var _ lock.Locker = (*Locker)(nil)

// New opens a session and returns a Locker on it.
func New(ctx context.Context, d endpoint.Dialer, opt Options) (*Locker, error) {
	root := opt.Root
	if root == "" {
		root = DefaultRoot
	}
	root = strings.TrimRight(root, "/")
	if err := zk.ValidatePath(root); err != nil || root == "" {
		return nil, errs.Usage("zookeeper lock root %q is not a valid path", opt.Root).WithHint("use an absolute path such as %s", DefaultRoot)
	}
	l := &Locker{root: root, timeout: d.Limit(), held: map[string]*held{}, gone: map[string]bool{}, expired: map[string]bool{}, stale: map[string]*held{}, cleanup: map[string]string{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), activity: newActivity()}
	l.tickNs.Store(int64(DefaultTickTime))
	l.requested = time.Duration(opt.Endpoint.SessionTimeout)
	if l.requested <= 0 {
		l.requested = endpoint.DefaultZKSession
	}
	d.WrapZooKeeperConn = func(c net.Conn) net.Conn {
		return &handshakeConn{Conn: c, onTimeout: func(ms int64) { l.negotiatedMs.Store(ms) }, onWrite: l.activity.wrote}
	}
	c, err := zk.Connect(ctx, d, zk.Options{Endpoint: opt.Endpoint})
	if err != nil {
		return nil, err
	}
	l.client, l.conn = c, c.Conn()
	tick, learned := learnTick(ctx, l.conn.Server(), l.timeout)
	l.tickNs.Store(int64(tick))
	l.tickLearned.Store(learned)
	events, stop := c.Subscribe()
	l.stopEvents = stop
	servers := append([]string(nil), opt.Endpoint.Servers...)
	if len(servers) == 0 {
		servers = []string{endpoint.DefaultZooKeeper}
	}
	l.backend = lock.Backend{Kind: "zookeeper", Mode: lock.ModeSingle, Endpoints: servers, FencingSafe: true, Notify: true, Detached: false}
	go l.eventLoop(events)
	return l, nil
}

// Backend describes the ensemble and what it promises.
func (l *Locker) Backend() lock.Backend { return l.backend }

// Root is the parent path of every lock.
func (l *Locker) Root() string { return l.root }

// Client is the session (tests and the benchmark use it).
func (l *Locker) Client() *zk.Client { return l.client }

// SessionTimeout is the session timeout the server granted.
func (l *Locker) SessionTimeout() time.Duration {
	if ms := l.negotiatedMs.Load(); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return l.requested
}

// Notifications is how many watch notifications this Locker's waiters received.
func (l *Locker) Notifications() int64 { return l.notifications.Load() }

// Close ends the session: ZooKeeper deletes every node it made (leases included).
func (l *Locker) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, h := range l.held {
		h.timer.Stop()
	}
	for _, h := range l.stale {
		h.timer.Stop()
	}
	l.mu.Unlock()
	close(l.done)
	l.stopEvents()
	l.client.Close()
	return nil
}

// eventLoop follows the session: disconnected is suspended; a new session (after an
// expiry) means every node of the old one is gone; each (re)connection, once settled
// (zk.ReconnectSettle), retries the deletion of nodes whose fate was unknown.
func (l *Locker) eventLoop(events <-chan zk.Notification) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var settled <-chan time.Time
	cleanup := func() {
		// Not while reconnecting: the deletes would go out with go-zookeeper's re-set
		// of its watches (zk.ReconnectSettle); the session's return schedules them.
		if l.client.Settled() {
			l.runCleanup()
		}
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Type != gozk.EventSession {
				continue
			}
			switch ev.State {
			case gozk.StateDisconnected:
				l.suspended.Store(true)
			case gozk.StateExpired:
				l.sessionLost()
			case gozk.StateHasSession:
				l.suspended.Store(false)
				settled = time.After(zk.ReconnectSettle)
			}
		case <-settled:
			settled = nil
			cleanup()
		case <-l.kick:
			cleanup()
		case <-tick.C:
			cleanup()
		case <-l.done:
			return
		}
	}
}

// Suspended reports whether the connection is down while the session may still live
// (Curator's SUSPENDED): leases stand until their local deadline, renewals fail.
func (l *Locker) Suspended() bool { return l.suspended.Load() }

// sessionLost gives up the leases of the expired session when the server says it
// expired: its ephemeral nodes are gone (Curator's LOST). Only those: the event may be
// handled late (the loop was busy in runCleanup), after a waiter queued again on the
// new session and took the lock there; that lease stands. go-zookeeper zeroes the
// session id before it reports the expiry, so every lease whose session is not the
// current one is on an ended session.
func (l *Locker) sessionLost() {
	l.sessionLostExcept(l.conn.SessionID())
}

func (l *Locker) sessionLostExcept(current int64) {
	l.mu.Lock()
	hs := make([]*held, 0, len(l.held))
	for _, h := range l.held {
		hs = append(hs, h)
	}
	l.mu.Unlock()
	for _, h := range hs {
		h.mu.Lock()
		if !h.gone && (current == 0 || h.session != current) {
			l.drop(h)
			l.mu.Lock()
			l.expired[h.token] = true
			l.mu.Unlock()
		}
		h.mu.Unlock()
	}
}

// handshakeConn reads the negotiated session timeout from the connect response (the
// first frame the server sends: length, protocol version, timeout, session id, ...).
type handshakeConn struct {
	net.Conn
	onTimeout func(ms int64)
	onWrite   func(time.Time)
	head      []byte
	done      bool
}

// Write records the write's start (activity) before sending it.
func (c *handshakeConn) Write(p []byte) (int, error) {
	if c.onWrite != nil {
		c.onWrite(time.Now())
	}
	return c.Conn.Write(p)
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done && n > 0 {
		need := 12 - len(c.head)
		c.head = append(c.head, p[:min(n, need)]...)
		if len(c.head) >= 12 {
			c.done = true
			if ms := int32(binary.BigEndian.Uint32(c.head[8:12])); ms > 0 {
				c.onTimeout(int64(ms))
			}
		}
	}
	return n, err
}

// ---- calls ----

type result[T any] struct {
	v   T
	err error
}

// call runs fn (a blocking go-zookeeper request) bounded by the timeout and ctx.
// An abandoned request finishes in the background; late, when set, gets its result.
func call[T any](ctx context.Context, l *Locker, what, path string, fn func() (T, error), late func(T, error)) (T, error) {
	ch := make(chan result[T], 1)
	deadline := time.Now().Add(l.timeout)
	go func() {
		// Never with go-zookeeper's re-set of its watches (zk.ReconnectSettle): while
		// the connection is down or just back, the request waits for it to settle;
		// and never after the caller has given up (zk.ErrNotSent: not sent at all).
		if err := l.client.AwaitSettled(ctx, deadline); err != nil {
			var zero T
			ch <- result[T]{zero, err}
			return
		}
		v, err := fn()
		ch <- result[T]{v, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var zero T
	abandon := func() {
		if late != nil {
			go func() { r := <-ch; late(r.v, r.err) }()
		}
	}
	select {
	case r := <-ch:
		if errors.Is(r.err, zk.ErrNotSent) && ctx.Err() != nil {
			abandon()
			return zero, ctxErr(ctx, l, what, path)
		}
		return r.v, l.classify(what, path, r.err)
	case <-timer.C:
		abandon()
		return zero, errs.Unreachable("zookeeper", l.client.Servers(), l.timeout,
			fmt.Sprintf("%s %s got no answer; is the ensemble up and in quorum? try dsctl zk status", what, path), nil)
	case <-ctx.Done():
		abandon()
		return zero, ctxErr(ctx, l, what, path)
	}
}

// ctxErr is the error of a call whose ctx ended.
func ctxErr(ctx context.Context, l *Locker, what, path string) error {
	return zk.ContextError(ctx, l.client.Servers(), l.timeout, what, path)
}

// getNode reads a node's data and stat through call.
func (l *Locker) getNode(ctx context.Context, path string) ([]byte, *gozk.Stat, error) {
	type dataStat struct {
		data []byte
		st   *gozk.Stat
	}
	r, err := call(ctx, l, "get", path, func() (dataStat, error) {
		data, st, err := l.conn.Get(path)
		return dataStat{data, st}, err
	}, nil)
	return r.data, r.st, err
}

// getChildren lists a node's children through call.
func (l *Locker) getChildren(ctx context.Context, path string) ([]string, error) {
	return call(ctx, l, "list", path, func() ([]string, error) {
		kids, _, err := l.conn.Children(path)
		return kids, err
	}, nil)
}

// classify keeps the errors callers test for (no node, exists, not empty) as they are
// and turns the rest into typed errors naming the path.
func (l *Locker) classify(what, path string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gozk.ErrNoNode), errors.Is(err, gozk.ErrNodeExists), errors.Is(err, gozk.ErrNotEmpty), errors.Is(err, gozk.ErrBadVersion),
		unimplemented(err):
		return err
	case errors.Is(err, gozk.ErrNoAuth):
		return errs.New(errs.KindRuntime, "zookeeper: %s %s: not authorized by the node's ACL", what, path).
			WithHint("authenticate with the context's zookeeper.digest_user, or pick another lock root").Wrap(err)
	case errors.Is(err, gozk.ErrInvalidPath), errors.Is(err, gozk.ErrBadArguments):
		return errs.Usage("zookeeper: invalid lock path %q", path).WithHint("lock names are like deploy-prod or jobs/nightly").Wrap(err)
	case errors.Is(err, gozk.ErrNoChildrenForEphemerals):
		return errs.Usage("zookeeper: %s is an ephemeral node, not a lock", parentOf(path)).
			WithHint("pick another lock name; see dsctl zk stat %s", parentOf(path)).Wrap(err)
	case errors.Is(err, gozk.ErrConnectionClosed), errors.Is(err, gozk.ErrClosing), errors.Is(err, gozk.ErrNoServer):
		return errs.Unreachable("zookeeper", l.client.Servers(), l.timeout, "the connection was lost; is the ensemble up? try dsctl zk status", err)
	case errors.Is(err, gozk.ErrSessionExpired):
		return errs.Unreachable("zookeeper", l.client.Servers(), l.timeout, "the session expired; retry", err)
	}
	return errs.New(errs.KindRuntime, "zookeeper: %s %s: %v", what, path, err).Wrap(err)
}

func parentOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// ---- names, nodes and data ----

// lockPath maps a lock name to its node, refusing names ZooKeeper cannot store.
func (l *Locker) lockPath(name string) (string, error) {
	if err := lock.ValidateName(name); err != nil {
		return "", err
	}
	p := l.root + "/" + name
	if err := zk.ValidatePath(p); err != nil {
		return "", errs.Usage("lock name %q is not a valid ZooKeeper path below %s: %v", name, l.root, err).
			WithHint("names are slash-separated like jobs/nightly, without a leading or trailing slash, // or . and .. segments")
	}
	return p, nil
}

// nodeData is what dsctl writes in its lock nodes.
type nodeData struct {
	Dsctl int        `json:"dsctl"` // format version (1)
	Owner lock.Owner `json:"owner"`
	TTLMs int64      `json:"ttl_ms"`
	// NodeTTLMs is the TTL the node was created with, for a detached lease (a TTL
	// node, not tied to a session); 0 for an ephemeral node.
	NodeTTLMs int64 `json:"node_ttl_ms,omitempty"`
	// WaitingTouchMs is set while a detached acquirer waits (its TTL node is queued,
	// not granted): it rewrites the node every WaitingTouchMs. A waiting node left
	// unchanged for longer than staleWaiting(WaitingTouchMs) is an orphan (its
	// process died) and other dsctl acquirers delete it (at the version they saw).
	WaitingTouchMs int64 `json:"waiting_touch_ms,omitempty"`
}

func encodeData(o lock.Owner, ttl time.Duration) []byte {
	b, _ := json.Marshal(nodeData{Dsctl: 1, Owner: o, TTLMs: ttl.Milliseconds()})
	return b
}

// encodeDetached is the data of a detached lease's TTL node created with nodeTTL.
func encodeDetached(o lock.Owner, ttl, nodeTTL time.Duration) []byte {
	b, _ := json.Marshal(nodeData{Dsctl: 1, Owner: o, TTLMs: ttl.Milliseconds(), NodeTTLMs: nodeTTL.Milliseconds()})
	return b
}

// encodeWaiting is the data of a detached acquirer's TTL node while it waits.
func encodeWaiting(o lock.Owner, ttl, nodeTTL, touch time.Duration) []byte {
	b, _ := json.Marshal(nodeData{Dsctl: 1, Owner: o, TTLMs: ttl.Milliseconds(), NodeTTLMs: nodeTTL.Milliseconds(), WaitingTouchMs: max(touch.Milliseconds(), 1)})
	return b
}

// waitingTouch is how often a waiting detached acquirer rewrites its node.
func waitingTouch(ttl time.Duration) time.Duration { return min(ttl/3, 250*time.Millisecond) }

// staleWaiting is how long a waiting detached node that its owner rewrites every
// touch must stay unchanged before other acquirers take it for an orphan.
func staleWaiting(touch time.Duration) time.Duration { return 4*touch + 250*time.Millisecond }

// unimplemented reports ZooKeeper's Unimplemented answer (a TTL node on a server
// without zookeeper.extendedTypesEnabled); go-zookeeper has no error value for it.
func unimplemented(err error) bool {
	return err != nil && strings.HasSuffix(err.Error(), "unknown error: -6")
}

func decodeData(b []byte) (nodeData, bool) {
	var d nodeData
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &d) != nil || d.Dsctl < 1 {
		return nodeData{}, false
	}
	return d, true
}

// newUUID is a random (version 4) UUID in Curator's form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// member is one node of a lock queue.
type member struct {
	name   string // child name
	token  string // the uuid
	seq    int64
	format lock.Format // by name; dsctl is decided from the data
}

// seqOf reads the sequence number ZooKeeper appends to a sequential node's name: its
// last 10 characters, all digits.
func seqOf(child string) (int64, bool) {
	if len(child) < 10 {
		return 0, false
	}
	var seq int64
	for _, r := range child[len(child)-10:] {
		if r < '0' || r > '9' {
			return 0, false
		}
		seq = seq*10 + int64(r-'0')
	}
	return seq, true
}

// parseMember recognises a queue node by its name; ok is false for anything else.
func parseMember(child string) (member, bool) {
	seq, ok := seqOf(child)
	if !ok || len(child) < 11 {
		return member{}, false
	}
	head := child[:len(child)-10]
	switch {
	case strings.HasPrefix(head, "_c_") && strings.HasSuffix(head, "-lock-"):
		id := strings.TrimSuffix(strings.TrimPrefix(head, "_c_"), "-lock-")
		switch {
		case len(id) == 36 && strings.Count(id, "-") == 4:
			return member{name: child, token: id, seq: seq, format: FormatCurator}, true
		case len(id) == 32 && isHex(id):
			return member{name: child, token: id, seq: seq, format: FormatGoZK}, true
		}
	case strings.HasPrefix(head, "_c_") && strings.HasSuffix(head, "-lease-"): // a semaphore lease (semaphore.go)
		if id := strings.TrimSuffix(strings.TrimPrefix(head, "_c_"), "-lease-"); len(id) == 36 && strings.Count(id, "-") == 4 {
			return member{name: child, token: id, seq: seq, format: FormatSemaphore}, true
		}
	case strings.HasSuffix(head, "__lock__"):
		id := strings.TrimSuffix(head, "__lock__")
		if len(id) == 32 && isHex(id) {
			return member{name: child, token: id, seq: seq, format: FormatKazoo}, true
		}
	}
	return member{}, false
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// queue lists a lock's queue in order (lowest sequence first) and the children that
// are not queue nodes. A missing lock node is an empty queue.
func (l *Locker) queue(ctx context.Context, dir string) (members []member, others []string, err error) {
	children, err := l.getChildren(ctx, dir)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, c := range children {
		if m, ok := parseMember(c); ok {
			members = append(members, m)
		} else {
			others = append(others, c)
		}
	}
	sortMembers(members)
	return members, others, nil
}

func sortMembers(ms []member) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].seq < ms[j-1].seq; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// ---- cleanup of nodes whose fate is unknown ----

// deleteOrForget deletes our node (token uuid, under dir) within the timeout, even
// when the caller's context is done; a node it cannot delete now is left to the
// cleanup (forget).
func (l *Locker) deleteOrForget(dir, node, uuid string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.deleteNode(ctx, node); err != nil {
		l.forget(dir, uuid)
		return false
	}
	return true
}

// forget schedules the deletion of our node with uuid under dir, if it exists: a
// create whose reply was lost, or a delete that could not be sent.
func (l *Locker) forget(dir, uuid string) {
	l.cleanupMu.Lock()
	l.cleanup[uuid] = dir
	l.cleanupMu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// runCleanup deletes the nodes in the cleanup set. An entry stays until the lock is
// listed and the node is found gone or deleted.
func (l *Locker) runCleanup() {
	l.cleanupMu.Lock()
	work := make(map[string]string, len(l.cleanup))
	for k, v := range l.cleanup {
		work[k] = v
	}
	l.cleanupMu.Unlock()
	for uuid, dir := range work {
		l.mu.Lock()
		_, live := l.held[uuid]
		l.mu.Unlock()
		if live {
			// Never delete a lease's own node (a uuid is forgotten only when its
			// create had an unknown outcome, and such a uuid is never used again:
			// this is a safety net).
			l.cleanupMu.Lock()
			delete(l.cleanup, uuid)
			l.cleanupMu.Unlock()
			continue
		}
		if l.deleteByToken(context.Background(), dir, uuid) == nil {
			l.cleanupMu.Lock()
			delete(l.cleanup, uuid)
			l.cleanupMu.Unlock()
		}
	}
}

// forgotten reports whether uuid is in the cleanup set: a node of ours to delete.
func (l *Locker) forgotten(uuid string) bool {
	l.cleanupMu.Lock()
	defer l.cleanupMu.Unlock()
	_, ok := l.cleanup[uuid]
	return ok
}

// PendingCleanup is the number of nodes whose deletion is still to be confirmed.
func (l *Locker) PendingCleanup() int {
	l.cleanupMu.Lock()
	defer l.cleanupMu.Unlock()
	return len(l.cleanup)
}

// deleteByToken deletes the queue node with this uuid under dir, if any.
func (l *Locker) deleteByToken(ctx context.Context, dir, uuid string) error {
	ms, _, err := l.queue(ctx, dir)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.token == uuid {
			return l.deleteNode(ctx, dir+"/"+m.name)
		}
	}
	return nil
}

// deleteNode deletes one node; gone already is fine.
func (l *Locker) deleteNode(ctx context.Context, p string) error {
	_, err := call(ctx, l, "delete", p, func() (struct{}, error) { return struct{}{}, l.conn.Delete(p, -1) }, nil)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil
	}
	return err
}
