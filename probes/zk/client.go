// Package zk is dsctl's ZooKeeper client logic: a session with a chroot and a timeout on
// every call, reads (ls, get, stat), a pipelined tree walk, a watcher engine that
// accounts for every change (re-arm after each trigger, gap detection from version and
// cversion jumps, resync after session expiry), and ensemble status from the four-letter
// words or the AdminServer. It prints nothing: results are typed values and events are
// delivered on a channel. The ZooKeeper lock backend and the TUI reuse it.
package zk

import (
	"context"
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
)

// Options say how to open a session.
type Options struct {
	Endpoint endpoint.ZooKeeper
	// Chroot is a path prefix applied to every path (like the Java client's
	// "host:port/app" connect string). Empty or "/" means none.
	Chroot string
}

// Client is one ZooKeeper session. Every call is bounded by the dialer's timeout.
// Session events are never dropped: they are queued without bound for subscribers.
type Client struct {
	conn    *gozk.Conn
	chroot  string
	timeout time.Duration
	servers string

	mu     sync.Mutex
	subs   []subscriber
	closed bool

	// settledAt is when requests may go out on the current connection, on the
	// monotonic clock (nanoseconds since born; 0 while it has no session): at once for
	// the first session and after an expiry, ReconnectSettle after the session comes
	// back on a new connection. Written by trackSession, which go-zookeeper calls on
	// its connection goroutine as the state changes.
	born      time.Time
	settledAt atomic.Int64
	reconnect atomic.Bool // the next session is the same one on a new connection
	attempts  attemptLog
}

// attemptLog records the servers go-zookeeper tries while it has no connection.
type attemptLog struct {
	mu   sync.Mutex
	seq  int64
	prev map[string]int64 // per server, the sequence number of its attempt before last
	last map[string]int64 // per server, the sequence number of its last attempt
}

func (a *attemptLog) add(server string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.prev, a.last = map[string]int64{}, map[string]int64{}
	}
	a.seq++
	if n, ok := a.last[server]; ok {
		a.prev[server] = n
	}
	a.last[server] = a.seq
}

func (a *attemptLog) now() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq
}

// cycledSince reports whether some server was tried twice after start: go-zookeeper
// tries its servers in turn, so every one was tried since then (each name DNS gave it
// counts: one host name may stand for several addresses).
func (a *attemptLog) cycledSince(start int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.prev {
		if n > start {
			return true
		}
	}
	return false
}

// ReconnectSettle is how long requests wait after a session comes back on a new
// connection. Right after the handshake go-zookeeper re-sets its pending watches
// (setWatches with the last zxid seen), reading that zxid while its receive loop may
// be writing it from the replies to requests sent at once: a data race in the library
// (go-zookeeper/zk#35, unfixed in v1.0.4; harmless on the 64-bit targets dsctl ships,
// reported by -race). Requests sent after the settle come after the setWatches, whose
// round trip on a working link is far shorter.
const ReconnectSettle = 50 * time.Millisecond

// ErrNotSent is the error of a request that AwaitSettled kept from going out: the
// connection did not come back (or settle) in time. The server never saw it.
var ErrNotSent = fmt.Errorf("%w (the request was not sent)", gozk.ErrNoServer)

func (c *Client) mono() int64 { return int64(time.Since(c.born)) }

// Settled reports whether the connection has its session and requests sent now do
// not meet go-zookeeper's re-set of its watches (see ReconnectSettle).
func (c *Client) Settled() bool {
	at := c.settledAt.Load()
	return at != 0 && c.mono() >= at
}

// settleLeft is how long the connection, which has its session, is still settling.
func (c *Client) settleLeft() time.Duration {
	at := c.settledAt.Load()
	if at == 0 {
		return ReconnectSettle
	}
	return max(time.Duration(at-c.mono()), 0)
}

// WaitSettled waits until Settled, ctx ends or until passes, polling; it reports
// whether the connection is settled.
func (c *Client) WaitSettled(ctx context.Context, until time.Time) bool {
	for !c.Settled() {
		if ctx.Err() != nil || !time.Now().Before(until) {
			return false
		}
		wait := 10 * time.Millisecond
		if c.settledAt.Load() != 0 {
			wait = min(wait, c.settleLeft())
		}
		select {
		case <-ctx.Done():
		case <-time.After(max(wait, time.Millisecond)):
		}
	}
	return true
}

// AwaitSettled waits until a request may go out and returns nil, or returns
// ErrNotSent (the request must not be sent: its caller has given up or will):
//   - settled (Settled): nil at once;
//   - settling (the session is back): nil once settled, or at once when the rest of
//     the settle would take more than half the time left before until or ctx's
//     deadline (a short timeout is not spent waiting: the request goes now);
//   - no connection: nil once the session is back and settled; ErrNotSent once
//     go-zookeeper has tried every server since the wait began (as it fails the
//     requests queued meanwhile), or when ctx ends or until passes;
//   - closed: gozk.ErrClosing.
//
// A request made while the connection is down would otherwise wait in go-zookeeper's
// queue and go out with the first packets of the new connection, meeting its
// setWatches, and possibly after its caller was told it failed.
func (c *Client) AwaitSettled(ctx context.Context, until time.Time) error {
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	start := c.attempts.now()
	for !c.Settled() {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		wait := 5 * time.Millisecond
		switch {
		case closed:
			return gozk.ErrClosing
		case ctx.Err() != nil, !time.Now().Before(until):
			return ErrNotSent
		case c.conn.State() == gozk.StateHasSession:
			left := c.settleLeft()
			if 2*left > time.Until(until) {
				return nil
			}
			wait = min(wait, max(left, 100*time.Microsecond))
		case c.attempts.cycledSince(start):
			return ErrNotSent
		}
		time.Sleep(wait)
	}
	return nil
}

// trackSession keeps settledAt for a session event.
func (c *Client) trackSession(ev gozk.Event) {
	if ev.Type != gozk.EventSession {
		return
	}
	switch ev.State {
	case gozk.StateConnecting:
		c.attempts.add(ev.Server)
	case gozk.StateExpired:
		// go-zookeeper drops every watch of an expired session: the next session has
		// none to re-set, so it is settled at once, like the first.
		c.reconnect.Store(false)
	}
	if ev.State != gozk.StateHasSession {
		c.settledAt.Store(0)
		return
	}
	at := c.mono() + 1 // never 0
	if c.reconnect.Swap(true) {
		at += int64(ReconnectSettle)
	}
	c.settledAt.Store(at)
}

// Connect opens a session within the dialer's timeout.
func Connect(ctx context.Context, d endpoint.Dialer, opt Options) (*Client, error) {
	chroot, err := CleanChroot(opt.Chroot)
	if err != nil {
		return nil, err
	}
	ep := opt.Endpoint
	ep.Servers = append([]string(nil), ep.Servers...)
	c := &Client{chroot: chroot, timeout: d.Limit(), born: time.Now()}
	sess, err := connectOrDiagnose(ctx, d, ep, c.dispatch)
	if err != nil {
		return nil, err
	}
	c.conn = sess.Conn
	c.servers = strings.Join(ep.Servers, ",")
	if c.servers == "" {
		c.servers = endpoint.DefaultZooKeeper
	}
	if chroot != "" {
		// A chroot that does not exist makes every later error confusing: say it now.
		ok, _, err := c.existsRaw(ctx, chroot)
		if err != nil {
			c.Close()
			return nil, err
		}
		if !ok {
			c.Close()
			return nil, errs.Usage("zookeeper: chroot %s does not exist on %s", chroot, c.servers).
				WithHint("create it first, or fix --chroot")
		}
	}
	return c, nil
}

// connectOrDiagnose opens the session; when none comes within a quarter of the timeout
// (at most 500ms), it asks the servers with a four-letter word whether they are
// ZooKeeper at all, and fails at once with a usage error when none is (go-zookeeper
// would retry a Redis port until the timeout).
func connectOrDiagnose(ctx context.Context, d endpoint.Dialer, ep endpoint.ZooKeeper, onEvent func(gozk.Event)) (*endpoint.ZKSession, error) {
	probe := make([]string, 0, len(ep.Servers))
	for _, s := range ep.Servers {
		s = strings.TrimSpace(s)
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(s, "2181")
		}
		probe = append(probe, s)
	}
	if len(probe) == 0 {
		probe = []string{endpoint.DefaultZooKeeper}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type connected struct {
		s   *endpoint.ZKSession
		err error
	}
	done := make(chan connected, 1)
	go func() {
		s, err := d.ConnectZooKeeperWithCallback(cctx, ep, onEvent)
		done <- connected{s, err}
	}()
	early := time.NewTimer(min(d.Limit()/4, 500*time.Millisecond))
	defer early.Stop()
	diagnosed := make(chan error, 1)
	started := false
	for {
		select {
		case r := <-done:
			if r.err != nil && !started && errs.KindOf(r.err) == errs.KindUnreachable && ctx.Err() == nil {
				if diag := diagnoseNotZooKeeper(ctx, probe, d.Limit()); diag != nil {
					return nil, diag
				}
			}
			return r.s, r.err
		case <-early.C:
			started = true
			go func() { diagnosed <- diagnoseNotZooKeeper(cctx, probe, d.Limit()) }()
		case diag := <-diagnosed:
			if diag != nil {
				cancel()
				if r := <-done; r.s != nil {
					r.s.Close()
				}
				return nil, diag
			}
		}
	}
}

// Conn is the underlying go-zookeeper connection (paths on it are not chrooted).
func (c *Client) Conn() *gozk.Conn { return c.conn }

// Chroot is the prefix applied to every path ("" for none).
func (c *Client) Chroot() string { return c.chroot }

// Timeout is the bound on each call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Servers is the connect string, for messages.
func (c *Client) Servers() string { return c.servers }

// SessionID is the current session's id.
func (c *Client) SessionID() int64 { return c.conn.SessionID() }

// Close ends the session. go-zookeeper waits up to a second for the server to
// acknowledge; Close returns at once and lets that finish in the background.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, q := range subs {
		q.close()
	}
	if !c.Settled() && c.conn.State() == gozk.StateHasSession {
		// The close request is a request too: not with the re-set of the watches.
		time.Sleep(c.settleLeft())
	}
	done := make(chan struct{})
	go func() { c.conn.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.timeout):
	}
}

// Notification is an event go-zookeeper reported and when it reached the client.
type Notification struct {
	gozk.Event
	Received time.Time
}

// subscriber receives every event dispatched; push must never block.
type subscriber interface {
	push(Notification)
	close()
}

// Subscribe returns every event go-zookeeper reports from now on (session state
// changes and watch notifications), in order and without loss, until cancel is called
// or the client is closed (then the channel is closed).
func (c *Client) Subscribe() (events <-chan Notification, cancel func()) {
	q := newEventQueue()
	return q.out, c.subscribe(q)
}

// SubscribeInbox is Subscribe for a consumer that pulls: the inbox holds every event
// dispatched so far. go-zookeeper dispatches a notification on its receive goroutine
// before it hands over any reply that follows it on the wire, so taking the inbox
// after a reply arrived yields every notification the server sent before that reply.
func (c *Client) SubscribeInbox() (in *Inbox, cancel func()) {
	in = newInbox()
	return in, c.subscribe(in)
}

func newInbox() *Inbox {
	return &Inbox{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (c *Client) subscribe(q subscriber) (cancel func()) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		q.close()
		return func() {}
	}
	c.subs = append(c.subs, q)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		for i, s := range c.subs {
			if s == q {
				c.subs = append(c.subs[:i], c.subs[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		q.close()
	}
}

// Inbox is an unbounded FIFO of notifications that its consumer drains with Take.
type Inbox struct {
	mu     sync.Mutex
	items  []Notification
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

// Ready has a value when notifications may be waiting.
func (in *Inbox) Ready() <-chan struct{} { return in.wake }

// Done is closed when the subscription ends (cancel, or the client closed).
func (in *Inbox) Done() <-chan struct{} { return in.done }

// Take returns the notifications dispatched so far, oldest first, and empties the inbox.
func (in *Inbox) Take() []Notification {
	in.mu.Lock()
	defer in.mu.Unlock()
	items := in.items
	in.items = nil
	return items
}

func (in *Inbox) push(ev Notification) {
	in.mu.Lock()
	if !in.closed {
		in.items = append(in.items, ev)
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *Inbox) close() {
	in.mu.Lock()
	if !in.closed {
		in.closed = true
		close(in.done)
	}
	in.mu.Unlock()
}

// dispatch runs on go-zookeeper's receive goroutine: it must never block.
func (c *Client) dispatch(ev gozk.Event) {
	c.trackSession(ev)
	n := Notification{Event: ev, Received: time.Now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range c.subs {
		q.push(n)
	}
}

// eventQueue is an Inbox that a goroutine feeds into a channel: push never blocks.
type eventQueue struct {
	*Inbox
	out chan Notification
}

func newEventQueue() *eventQueue {
	q := &eventQueue{Inbox: newInbox(), out: make(chan Notification)}
	go q.pump()
	return q
}

func (q *eventQueue) pump() {
	defer close(q.out)
	for {
		batch := q.Take()
		for _, ev := range batch {
			select {
			case q.out <- ev:
			case <-q.done:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.wake:
		case <-q.done:
			return
		}
	}
}

// ---- paths ----

// CleanChroot validates a chroot: "" or "/" means none; otherwise an absolute path
// without a trailing slash.
func CleanChroot(chroot string) (string, error) {
	chroot = strings.TrimSpace(chroot)
	if chroot == "" || chroot == "/" {
		return "", nil
	}
	chroot = strings.TrimRight(chroot, "/")
	if err := ValidatePath(chroot); err != nil {
		return "", errs.Usage("zookeeper: bad chroot %q: %v", chroot, err).WithHint("use an absolute path such as /app")
	}
	return chroot, nil
}

// ValidatePath checks a znode path the way the server does: absolute, no empty,
// "." or ".." segments, no trailing slash (except "/"), no control characters.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case p[0] != '/':
		return errors.New("must start with /")
	case p == "/":
		return nil
	case strings.HasSuffix(p, "/"):
		return errors.New("must not end with /")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return errors.New("empty segment (//)")
		case ".", "..":
			return fmt.Errorf("relative segment %q", seg)
		}
	}
	for _, r := range p {
		if r == 0 || (r > 0 && r <= 0x1f) || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfff0 && r <= 0xffff) {
			return fmt.Errorf("invalid character %q", r)
		}
	}
	return nil
}

// CheckPath validates a user-given path and returns a usage error naming it.
func CheckPath(p string) error {
	if err := ValidatePath(p); err != nil {
		return errs.Usage("zookeeper: invalid path %q: %v", p, err).WithHint("paths are absolute, like /app/config")
	}
	return nil
}

// abs maps a user path to the server path under the chroot.
func (c *Client) abs(p string) string {
	if c.chroot == "" {
		return p
	}
	if p == "/" {
		return c.chroot
	}
	return c.chroot + p
}

// rel maps a server path back to the user's view; ok is false outside the chroot.
func (c *Client) rel(p string) (string, bool) {
	if c.chroot == "" {
		return p, true
	}
	if p == c.chroot {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(p, c.chroot+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// Join appends a child name to a path.
func Join(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// Depth is the number of segments below base (0 for base itself).
func Depth(base, p string) int {
	if p == base {
		return 0
	}
	rest := strings.TrimPrefix(p, base)
	if base == "/" {
		rest = p
	}
	return strings.Count(rest, "/")
}

// ---- calls with a timeout ----

type result[T any] struct {
	v   T
	err error
}

// call runs fn (a blocking go-zookeeper request) and waits at most the timeout. An
// abandoned request finishes in the background (go-zookeeper has no cancellation).
func call[T any](ctx context.Context, c *Client, what, path string, fn func() (T, error)) (T, error) {
	ch := make(chan result[T], 1)
	deadline := time.Now().Add(c.timeout)
	go func() {
		// Not with go-zookeeper's re-set of its watches after a reconnect, and never
		// after the caller has given up (see AwaitSettled).
		if err := c.AwaitSettled(ctx, deadline); err != nil {
			ch <- result[T]{err: err}
			return
		}
		v, err := fn()
		ch <- result[T]{v, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var zero T
	select {
	case r := <-ch:
		if errors.Is(r.err, ErrNotSent) && ctx.Err() != nil {
			return zero, c.ctxErr(ctx, what, path)
		}
		if r.err != nil {
			return r.v, c.classify(what, path, r.err)
		}
		return r.v, nil
	case <-timer.C:
		return zero, errs.Unreachable("zookeeper", c.servers, c.timeout,
			fmt.Sprintf("%s %s got no answer; is the ensemble up and in quorum? try dsctl zk status", what, path), nil)
	case <-ctx.Done():
		return zero, c.ctxErr(ctx, what, path)
	}
}

// ctxErr is the error of a call whose ctx ended.
func (c *Client) ctxErr(ctx context.Context, what, path string) error {
	return ContextError(ctx, c.servers, c.timeout, what, path)
}

// ContextError is the error of a request to servers whose ctx ended: interrupted when
// it was cancelled, unreachable within timeout when its deadline passed.
func ContextError(ctx context.Context, servers string, timeout time.Duration, what, path string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "zookeeper: interrupted during %s %s", what, path)
	}
	return errs.Unreachable("zookeeper", servers, timeout, "", ctx.Err())
}

// ErrNoNode reports whether err means the node does not exist.
func ErrNoNode(err error) bool { return errors.Is(err, gozk.ErrNoNode) }

// ErrNoAuth reports whether err means the ACL denied the request.
func ErrNoAuth(err error) bool { return errors.Is(err, gozk.ErrNoAuth) }

// classify turns a go-zookeeper error into a typed error naming the path.
func (c *Client) classify(what, path string, err error) error {
	switch {
	case errors.Is(err, gozk.ErrNoNode):
		return errs.Usage("zookeeper: %s: no such node", path).
			WithHint("check the path with dsctl zk ls %s", parentOf(path)).Wrap(err)
	case errors.Is(err, gozk.ErrNoAuth):
		return errs.New(errs.KindRuntime, "zookeeper: %s %s: not authorized by the node's ACL", what, path).
			WithHint("authenticate with --digest-user and DSCTL_ZK_DIGEST_PASSWORD (or --digest-password-file), or the context's zookeeper.digest_user").Wrap(err)
	case errors.Is(err, gozk.ErrInvalidPath), errors.Is(err, gozk.ErrBadArguments):
		return errs.Usage("zookeeper: invalid path %q", path).WithHint("paths are absolute, like /app/config").Wrap(err)
	case errors.Is(err, gozk.ErrConnectionClosed), errors.Is(err, gozk.ErrClosing), errors.Is(err, gozk.ErrNoServer):
		return errs.Unreachable("zookeeper", c.servers, c.timeout, "the connection was lost; is the ensemble up? try dsctl zk status", err)
	case errors.Is(err, gozk.ErrSessionExpired):
		return errs.Unreachable("zookeeper", c.servers, c.timeout, "the session expired; retry", err)
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

func (c *Client) existsRaw(ctx context.Context, serverPath string) (bool, *gozk.Stat, error) {
	type es struct {
		ok bool
		st *gozk.Stat
	}
	r, err := call(ctx, c, "exists", serverPath, func() (es, error) {
		ok, st, err := c.conn.Exists(serverPath)
		return es{ok, st}, err
	})
	return r.ok, r.st, err
}
