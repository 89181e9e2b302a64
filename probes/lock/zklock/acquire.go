package zklock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// errNodeGone: our queue node vanished while we waited.
var errNodeGone = errors.New("queue node gone")

// maxGone bounds the memory of tokens this Locker gave up (expired or released).
const maxGone = 4096

// Acquire takes the lock: it queues a protected ephemeral-sequential node and waits,
// watching only its predecessor, until the node is the lowest.
func (l *Locker) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	if opt.Permits > 1 || opt.Permits < 0 {
		return l.acquireSemaphore(ctx, name, opt) // semaphore.go
	}
	dir, err := l.lockPath(name)
	if err != nil {
		return nil, err
	}
	if err := lock.ValidateTTL(opt.TTL); err != nil {
		return nil, err
	}
	if err := lock.ValidateLabel(opt.Owner.Label); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := opt.Wait.Deadline(start)
	uuid := newUUID()
	data := encodeData(opt.Owner, opt.TTL)
	var nodeTTL time.Duration // a detached lease's node is a TTL node
	if opt.Detached {
		nodeTTL = opt.TTL
		data = encodeDetached(opt.Owner, opt.TTL, nodeTTL)
	}
	var lease *lock.Lease
	var node string
	for requeued := 0; ; requeued++ {
		node, err = l.create(ctx, dir, uuid, data, nodeTTL)
		if err != nil {
			return nil, err
		}
		lease, err = l.wait(ctx, name, dir, node, uuid, opt, start, deadline)
		// Our waiting node vanished (the session expired while we waited): queue
		// again, at the back, while the wait lasts.
		if errors.Is(err, errNodeGone) && requeued < 3 && ctx.Err() == nil && (opt.Wait.Forever() || time.Now().Before(deadline)) {
			continue
		}
		break
	}
	if err != nil {
		// Whatever went wrong, our node must not stay in the queue.
		dctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		if derr := l.deleteNode(dctx, node); derr != nil {
			l.forget(dir, uuid)
		}
		cancel()
		if errs.KindOf(err) != errs.KindInterrupted && errors.Is(ctx.Err(), context.Canceled) {
			return nil, errs.New(errs.KindInterrupted, "interrupted while acquiring lock %q", name)
		}
		return nil, err
	}
	return lease, nil
}

// create makes our queue node, creating the parents (containers) when missing. The
// request is never abandoned on cancellation (we wait up to the timeout for its
// answer, so a cancelled waiter leaves nothing behind); when the answer is lost, the
// node is looked up by its uuid. With nodeTTL > 0 the node is a persistent-sequential
// TTL node (a detached lease) instead of an ephemeral one.
func (l *Locker) create(ctx context.Context, dir, uuid string, data []byte, nodeTTL time.Duration) (string, error) {
	prefix := dir + "/_c_" + uuid + "-lock-"
	bg := context.Background()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 && ctx.Err() != nil {
			break
		}
		p, err := call(bg, l, "create", prefix, func() (string, error) {
			if nodeTTL > 0 {
				return l.conn.CreateTTL(prefix, data, gozk.FlagPersistentSequentialWithTTL, gozk.WorldACL(gozk.PermAll), nodeTTL)
			}
			return l.conn.Create(prefix, data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
		}, func(p string, err error) {
			if err == nil {
				_ = l.deleteNode(context.Background(), p)
			}
			l.forget(dir, uuid)
		})
		switch {
		case err == nil:
			if ctx.Err() != nil {
				_ = l.deleteNode(bg, p)
				return "", interrupted(ctx, dir)
			}
			return p, nil
		case unimplemented(err):
			return "", errs.Usage("zookeeper %s does not enable TTL nodes, so a lease cannot outlive this process (--detach)", l.client.Servers()).
				WithHint("start the servers with -Dzookeeper.extendedTypesEnabled=true, or drop --detach: lock acquire then holds the lease in the foreground (or use lock run)")
		case errors.Is(err, gozk.ErrNoNode):
			if perr := l.ensureParents(bg, dir); perr != nil {
				return "", perr
			}
			lastErr = err
			continue
		case errs.KindOf(err) == errs.KindUnreachable:
			lastErr = err
			// The create may have been applied before the connection dropped: find it.
			if p, ok := l.findOwn(ctx, dir, uuid); ok {
				if ctx.Err() != nil {
					_ = l.deleteNode(bg, p)
					return "", interrupted(ctx, dir)
				}
				return p, nil
			}
			if errors.Is(err, gozk.ErrSessionExpired) || errors.Is(err, gozk.ErrConnectionClosed) {
				continue
			}
			return "", err // no answer within the timeout: the late callback cleans up
		default:
			return "", err
		}
	}
	if ctx.Err() != nil {
		return "", interrupted(ctx, dir)
	}
	if errors.Is(lastErr, gozk.ErrNoNode) {
		return "", errs.New(errs.KindRuntime, "zookeeper: cannot create the lock node %s (its parent keeps disappearing)", dir).Wrap(lastErr)
	}
	return "", lastErr
}

func interrupted(ctx context.Context, dir string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "interrupted while queueing on %s", dir)
	}
	return errs.Unreachable("zookeeper", "", 0, "", ctx.Err())
}

// findOwn looks for our node by its uuid, retrying while the session reconnects (up to
// the timeout). Not found after a successful listing means the create did not happen.
func (l *Locker) findOwn(ctx context.Context, dir, uuid string) (string, bool) {
	until := time.Now().Add(l.timeout)
	for time.Now().Before(until) {
		// After a reconnection the server may be a follower that has not yet applied
		// our create: sync it with the leader first, then list.
		if err := l.sync(context.Background(), dir); err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ms, _, err := l.queue(context.Background(), dir)
		if err == nil {
			for _, m := range ms {
				if m.token == uuid {
					return dir + "/" + m.name, true
				}
			}
			return "", false
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.forget(dir, uuid) // unknown: delete it if it shows up
	return "", false
}

// ensureParents creates dir and its missing ancestors as container nodes (as Curator
// does), so ZooKeeper reaps them when the last lock node under them is gone.
func (l *Locker) ensureParents(ctx context.Context, dir string) error {
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	p := ""
	for _, part := range parts {
		p += "/" + part
		path := p
		_, err := call(ctx, l, "create", path, func() (string, error) {
			return l.conn.CreateContainer(path, nil, gozk.FlagContainer, gozk.WorldACL(gozk.PermAll))
		}, nil)
		if err != nil && !errors.Is(err, gozk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// wait runs the queue until our node is the lowest (the lease), the wait runs out, or
// ctx ends. It watches only the predecessor.
func (l *Locker) wait(ctx context.Context, name, dir, node, uuid string, opt lock.AcquireOptions, start, deadline time.Time) (*lock.Lease, error) {
	var lastHolder string
	var failing time.Time // since when requests fail with a lost connection
	var refresh <-chan time.Time
	if opt.Detached { // our TTL node must outlive the wait: touch it every TTL/3
		tk := time.NewTicker(opt.TTL / 3)
		defer tk.Stop()
		refresh = tk.C
	}
	retry := func(err error) bool {
		if !transient(err) || ctx.Err() != nil {
			return false
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		if time.Since(failing) > l.timeout {
			return false
		}
		time.Sleep(50 * time.Millisecond) // go-zookeeper reconnects meanwhile
		return true
	}
	for {
		sent := time.Now()
		ms, _, err := l.queue(ctx, dir)
		if err != nil {
			if retry(err) {
				continue
			}
			return nil, err
		}
		failing = time.Time{}
		idx := -1
		for i, m := range ms {
			switch {
			case dir+"/"+m.name == node:
				idx = i
			case m.token == uuid:
				// A second node of ours: a create whose lost reply we could not
				// confirm, retried. It must not hold or block anyone.
				_ = l.deleteNode(ctx, dir+"/"+m.name)
			}
		}
		if idx < 0 {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our queue node under %s disappeared while waiting (the session expired, or someone deleted it)", dir).
				WithHint("retry; see dsctl lock inspect %s", name).Wrap(errNodeGone)
		}
		if idx == 0 {
			if opt.Detached {
				return l.takeDetached(ctx, name, node, uuid, opt)
			}
			return l.take(ctx, name, dir, node, uuid, opt, sent)
		}
		holder := ms[0]
		if lastHolder != holder.token || (!opt.Wait.Forever() && !time.Now().Before(deadline)) {
			h, err := l.holderInfo(ctx, dir, holder)
			if err != nil && !errors.Is(err, gozk.ErrNoNode) {
				if retry(err) {
					continue
				}
				return nil, err
			}
			if errors.Is(err, gozk.ErrNoNode) {
				continue // it just left
			}
			if !opt.Wait.Forever() && !time.Now().Before(deadline) {
				return nil, lock.NotAcquired(&lock.NotAcquiredError{Name: name, Holder: h, Wait: opt.Wait, Waited: time.Since(start)})
			}
			if opt.OnWait != nil {
				opt.OnWait(h)
			}
			lastHolder = holder.token
		}
		pred := dir + "/" + ms[idx-1].name
		type ew struct {
			ok bool
			ch <-chan gozk.Event
		}
		w, err := call(ctx, l, "watch", pred, func() (ew, error) {
			ok, _, ch, err := l.conn.ExistsW(pred)
			return ew{ok, ch}, err
		}, nil)
		if err != nil {
			if retry(err) {
				continue
			}
			return nil, err
		}
		if !w.ok {
			continue
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if !opt.Wait.Forever() {
			t = time.NewTimer(time.Until(deadline))
			timeout = t.C
		}
		select {
		case ev := <-w.ch:
			if ev.Type != gozk.EventNotWatching {
				l.notifications.Add(1)
			}
		case <-timeout:
		case <-refresh:
			_, _ = call(ctx, l, "touch", node, func() (*gozk.Stat, error) {
				return l.conn.Set(node, encodeDetached(opt.Owner, opt.TTL, opt.TTL), -1)
			}, nil)
		case <-ctx.Done():
			err = interrupted(ctx, dir)
		}
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// take turns our lowest node into a lease: its czxid is the fence.
func (l *Locker) take(ctx context.Context, name, dir, node, uuid string, opt lock.AcquireOptions, sent time.Time) (*lock.Lease, error) {
	st, err := call(ctx, l, "stat", node, func() (*gozk.Stat, error) {
		ok, st, err := l.conn.Exists(node)
		if err == nil && !ok {
			err = gozk.ErrNoNode
		}
		return st, err
	}, nil)
	if err != nil {
		if errors.Is(err, gozk.ErrNoNode) {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our lock node %s disappeared as we took the lock (session expired, or broken)", node)
		}
		return nil, err
	}
	h := &held{name: name, dir: dir, node: node, token: uuid, fence: lock.FencingToken(st.Czxid), session: st.EphemeralOwner,
		owner: opt.Owner, ttl: opt.TTL, acquiredAt: sent, version: st.Version, permits: opt.Permits}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errs.New(errs.KindRuntime, "zookeeper: the locker was closed")
	}
	h.mu.Lock() // the timer's callback waits for the lease to be complete
	h.ttlEnd = sent.Add(opt.TTL)
	h.expiresAt = l.deadline(sent, opt.TTL)
	h.timer = time.AfterFunc(time.Until(h.ttlEnd), func() { l.expire(h) })
	l.held[uuid] = h
	l.mu.Unlock()
	lease := l.leaseOf(h)
	h.mu.Unlock()
	return lease, nil
}

// takeDetached turns our lowest TTL node into a detached lease: it writes the node
// (which restarts its TTL on the server, and proves it is still there), and the lease
// ends TTL after that write was sent. It is not tied to this Locker: renew and
// release work by token from any process, and ZooKeeper deletes the node once its
// TTL has passed without a write (at its next container check).
func (l *Locker) takeDetached(ctx context.Context, name, node, uuid string, opt lock.AcquireOptions) (*lock.Lease, error) {
	sent := time.Now()
	st, err := call(ctx, l, "touch", node, func() (*gozk.Stat, error) {
		return l.conn.Set(node, encodeDetached(opt.Owner, opt.TTL, opt.TTL), -1)
	}, nil)
	if err != nil {
		if errors.Is(err, gozk.ErrNoNode) {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our lock node %s disappeared as we took the lock (broken, or its TTL ran out)", node)
		}
		return nil, err
	}
	return l.detachedLease(name, uuid, opt.Owner, opt.TTL, opt.TTL, st, sent), nil
}

// detachedLease is the lease of a TTL node written at sent with the given TTLs.
func (l *Locker) detachedLease(name, token string, owner lock.Owner, ttl, nodeTTL time.Duration, st *gozk.Stat, sent time.Time) *lock.Lease {
	bound := min(ttl, nodeTTL)
	b := l.backend
	b.Detached = true
	return &lock.Lease{Name: name, Token: token, Fence: lock.FencingToken(st.Czxid), FencingSafe: true, TTL: ttl, TTLMs: ttl.Milliseconds(),
		AcquiredAt: sent, ExpiresAt: sent.Add(bound - lock.ClockDrift(bound)), Owner: owner, Backend: b,
		Note: fmt.Sprintf("a TTL node: it outlives this process until %s after the last renewal, timed on the ZooKeeper leader's wall clock (deleted at the server's next container check after that)", lock.RoundDuration(nodeTTL))}
}

// deadline is the conservative local deadline of a request sent at sent that the
// server answered: before it, neither our own TTL nor the session can have ended.
func (l *Locker) deadline(sent time.Time, ttl time.Duration) time.Time {
	bound := min(ttl, l.SessionTimeout())
	return sent.Add(bound - lock.ClockDrift(bound))
}

func (l *Locker) leaseOf(h *held) *lock.Lease {
	return semaphoreLease(h.permits, &lock.Lease{Name: h.name, Token: h.token, Fence: h.fence, FencingSafe: true, TTL: h.ttl, TTLMs: h.ttl.Milliseconds(),
		AcquiredAt: h.acquiredAt, ExpiresAt: h.expiresAt, Owner: h.owner, Backend: l.backend,
		Note: "held while this process's ZooKeeper session lives: renew within the TTL or the lease is given up"})
}

// expire gives up a lease whose TTL passed without a renewal: its node is deleted
// (or will be, once the session is back).
func (l *Locker) expire(h *held) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return
	}
	if left := time.Until(h.ttlEnd); left > 0 { // renewed meanwhile
		h.timer.Reset(left)
		return
	}
	l.drop(h)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := l.deleteNode(ctx, h.node); err != nil {
		l.forget(h.dir, h.token)
	}
}

// drop forgets a lease (h.mu held).
func (l *Locker) drop(h *held) {
	h.gone = true
	h.timer.Stop()
	l.mu.Lock()
	delete(l.held, h.token)
	if len(l.gone) >= maxGone {
		clear(l.gone)
		clear(l.expired)
	}
	l.gone[h.token] = true
	l.mu.Unlock()
}

func (l *Locker) lookup(token string) (*held, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[token]
	return h, ok || l.gone[token]
}

// Renew extends the lease to ttl from now: it rewrites our node (proving that the node
// exists and that the session is alive) and moves the local deadline.
func (l *Locker) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	dir, err := l.lockPath(name)
	if err != nil {
		return nil, err
	}
	if err := lock.ValidateTTL(ttl); err != nil {
		return nil, err
	}
	token = normalizeToken(token)
	h, known := l.lookup(token)
	if h == nil {
		if !known {
			if lease, err := l.renewDetached(ctx, name, dir, token, ttl); lease != nil || err != nil {
				return lease, err
			}
			if err := l.foreign(ctx, name, dir, token, "renew"); err != nil {
				return nil, err
			}
		}
		return nil, l.notHeld(ctx, name, dir, token)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return nil, l.notHeld(ctx, name, dir, token)
	}
	if h.name != name {
		return nil, l.notHeld(ctx, name, dir, token)
	}
	if time.Now().After(h.ttlEnd) { // the timer is about to give it up
		l.drop(h)
		dctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		if err := l.deleteNode(dctx, h.node); err != nil {
			l.forget(h.dir, h.token)
		}
		cancel()
		return nil, l.notHeld(ctx, name, dir, token)
	}
	sent := time.Now()
	st, err := call(ctx, l, "renew", h.node, func() (*gozk.Stat, error) {
		return l.conn.Set(h.node, encodeData(h.owner, ttl), -1)
	}, nil)
	if errors.Is(err, gozk.ErrNoNode) {
		l.drop(h)
		return nil, l.notHeld(ctx, name, dir, token)
	}
	if err != nil {
		return nil, err // unreachable: the lease stands until its local deadline
	}
	if st.EphemeralOwner != h.session {
		l.drop(h)
		return nil, l.notHeld(ctx, name, dir, token)
	}
	h.version = st.Version
	h.ttl = ttl
	h.acquiredAt = sent
	h.ttlEnd = sent.Add(ttl)
	h.expiresAt = l.deadline(sent, ttl)
	h.timer.Reset(time.Until(h.ttlEnd))
	return l.leaseOf(h), nil
}

// Release deletes our node, which wakes the next waiter (its only watcher).
func (l *Locker) Release(ctx context.Context, name, token string) error {
	dir, err := l.lockPath(name)
	if err != nil {
		return err
	}
	token = normalizeToken(token)
	h, known := l.lookup(token)
	if h == nil {
		if !known {
			// A token from another process: delete its node only while it holds.
			ms, _, err := l.queue(ctx, dir)
			if err != nil {
				return err
			}
			if len(ms) > 0 && ms[0].token == token {
				return l.deleteNode(ctx, dir+"/"+ms[0].name)
			}
		}
		return l.notHeld(ctx, name, dir, token)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone || h.name != name {
		return l.notHeld(ctx, name, dir, token)
	}
	_, err = call(ctx, l, "delete", h.node, func() (struct{}, error) { return struct{}{}, l.conn.Delete(h.node, -1) }, nil)
	switch {
	case err == nil:
		l.drop(h)
		return nil
	case errors.Is(err, gozk.ErrNoNode):
		l.drop(h)
		return l.notHeld(ctx, name, dir, token)
	}
	// Unknown outcome: give the lease up anyway; the node goes when we can reach it.
	l.drop(h)
	l.forget(h.dir, h.token)
	return err
}

// renewDetached renews a detached lease (a dsctl TTL node) held by token, from any
// process: it rewrites the node at the version read (so a break in between is seen),
// which restarts its TTL on the server. Nil, nil when token does not hold such a lease.
func (l *Locker) renewDetached(ctx context.Context, name, dir, token string, ttl time.Duration) (*lock.Lease, error) {
	ms, _, err := l.queue(ctx, dir)
	if err != nil || len(ms) == 0 || ms[0].token != token {
		return nil, err
	}
	e, err := l.entry(ctx, dir, ms[0])
	if errors.Is(err, gozk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, ok := e.data()
	if !ok || d.NodeTTLMs <= 0 || e.version < 0 {
		return nil, nil // a session's ephemeral node, or not dsctl's
	}
	nodeTTL := time.Duration(d.NodeTTLMs) * time.Millisecond
	sent := time.Now()
	st, err := call(ctx, l, "renew", e.Node, func() (*gozk.Stat, error) {
		return l.conn.Set(e.Node, encodeDetached(d.Owner, min(ttl, nodeTTL), nodeTTL), e.version)
	}, nil)
	if errors.Is(err, gozk.ErrNoNode) || errors.Is(err, gozk.ErrBadVersion) {
		return nil, l.notHeld(ctx, name, dir, token)
	}
	if err != nil {
		return nil, err
	}
	return l.detachedLease(name, token, d.Owner, ttl, nodeTTL, st, sent), nil
}

// foreign refuses to renew a lease held by another process's session.
func (l *Locker) foreign(ctx context.Context, name, dir, token, what string) error {
	ms, _, err := l.queue(ctx, dir)
	if err != nil {
		return err
	}
	if len(ms) > 0 && ms[0].token == token {
		return errs.Usage("lock %q: token %s is held by another process's ZooKeeper session; only that process can %s it", name, lock.ShortToken(token), what).
			WithHint("ZooKeeper leases live with their session; use dsctl lock run, or release it from the holder")
	}
	return nil
}

// notHeld explains why token does not hold the lock: someone else holds it, it was
// broken (the break record on the lock node names the token), or it is free.
func (l *Locker) notHeld(ctx context.Context, name, dir, token string) error {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired}
	l.mu.Lock()
	if l.expired[token] {
		e.Detail = "the ZooKeeper session expired, and its ephemeral lock node with it"
	}
	l.mu.Unlock()
	_ = l.sync(ctx, dir)
	ms, _, err := l.queue(ctx, dir)
	if err == nil && len(ms) > 0 {
		if ms[0].token == token {
			e.Detail = "its node is still queued but this process gave it up"
		} else if h, herr := l.holderInfo(ctx, dir, ms[0]); herr == nil {
			e.Reason, e.Current = lock.LostTaken, h
			return lock.NotHeld(e)
		}
	}
	if b, err := l.lastBreak(ctx, dir); err == nil && b != nil && b.Token == token {
		e.Reason, e.Break = lock.LostBroken, b
	}
	return lock.NotHeld(e)
}

// transient reports a lost connection: the session may well live on, so the request
// is worth repeating once go-zookeeper has reconnected.
func transient(err error) bool {
	return errors.Is(err, gozk.ErrConnectionClosed) || errors.Is(err, gozk.ErrNoServer)
}

// normalizeToken accepts a holder token as the uuid or as the node's path or name
// (what `dsctl zk ls` shows) and returns the uuid.
func normalizeToken(token string) string {
	if i := strings.LastIndexByte(token, '/'); i >= 0 {
		token = token[i+1:]
	}
	if m, ok := parseMember(token); ok {
		return m.token
	}
	return token
}
