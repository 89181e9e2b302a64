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
	if opt.Permits == 1 {
		// --semaphore 1 on a name that is a semaphore takes one of its leases (a
		// 1-permit semaphore); on any other name it is the mutex (the contract: 1 is
		// a mutex).
		if top, err := l.leases(ctx, dir); err == nil && hasChild(top, semLeases) {
			return l.acquireSemaphore(ctx, name, opt)
		}
		opt.Permits = 0 // the mutex
	}
	if err := lock.ValidateTTL(opt.TTL); err != nil {
		return nil, err
	}
	if err := lock.ValidateLabel(opt.Owner.Label); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := opt.Wait.Deadline(start)
	var uuid string
	data := encodeData(opt.Owner, opt.TTL)
	var nodeTTL time.Duration // a detached lease's node is a TTL node
	if opt.Detached {
		nodeTTL = opt.TTL
		data = encodeWaiting(opt.Owner, opt.TTL, nodeTTL, waitingTouch(opt.TTL))
	}
	var lease *lock.Lease
	var node string
	for requeued := 0; ; requeued++ {
		// A fresh uuid for every queueing: a uuid whose create had an unknown outcome
		// is handed to the cleanup (forget), which deletes any node that carries it,
		// so it must never name a node we go on with.
		node, uuid, err = l.create(ctx, dir, data, nodeTTL)
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
		deleted := l.deleteOrForget(dir, node, uuid)
		if errs.KindOf(err) != errs.KindInterrupted && errors.Is(ctx.Err(), context.Canceled) {
			return nil, errs.New(errs.KindInterrupted, "interrupted while acquiring lock %q", name)
		}
		var e *errs.Error
		if !deleted && opt.Detached && errors.As(err, &e) {
			// Our TTL node outlives this process, which cannot delete it now: it may
			// have been granted (a confirm whose answer was lost). Say how to free it.
			hint := fmt.Sprintf("dsctl could not delete its node %s: if it was granted, it holds the lock until its TTL (%s) unless released, once the ensemble answers, with `dsctl lock release %s --token %s`",
				node, lock.RoundDuration(opt.TTL), lock.QuoteCommand([]string{name}), uuid)
			if e.Hint != "" {
				hint = e.Hint + "; " + hint
			}
			return nil, e.WithHint("%s", hint)
		}
		return nil, err
	}
	return lease, nil
}

// create makes our queue node, creating the parents (containers) when missing, and
// returns it with its uuid (the holder token). The request is never abandoned on
// cancellation (we wait up to the timeout for its answer, so a cancelled waiter leaves
// nothing behind). When the answer is lost (the connection dropped, or no answer
// within the timeout) the create may or may not have been applied: its uuid is handed
// to the cleanup, which deletes the node if it shows up, and is never used again; a
// retry creates a new node with a fresh uuid. (Going on with a node found by the
// forgotten uuid would race with that cleanup and with the abandoned request's late
// callback, which delete it: a lease on a deleted node, two holders.) With nodeTTL > 0
// the node is a persistent-sequential TTL node (a detached lease) instead of an
// ephemeral one.
func (l *Locker) create(ctx context.Context, dir string, data []byte, nodeTTL time.Duration) (string, string, error) {
	return l.createNode(ctx, dir, "-lock-", data, func(prefix string) (string, error) {
		if nodeTTL > 0 {
			return l.conn.CreateTTL(prefix, data, gozk.FlagPersistentSequentialWithTTL, gozk.WorldACL(gozk.PermAll), nodeTTL)
		}
		return l.conn.Create(prefix, data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	})
}

// createNode creates dir/_c_<uuid><kind><seq> with do, with a fresh uuid on every
// attempt (see create).
func (l *Locker) createNode(ctx context.Context, dir, kind string, data []byte, do func(prefix string) (string, error)) (string, string, error) {
	bg := context.Background()
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 && ctx.Err() != nil {
			break
		}
		uuid := newUUID()
		prefix := dir + "/_c_" + uuid + kind
		lateDone := make(chan struct{})
		p, err := call(bg, l, "create", prefix, func() (string, error) { return do(prefix) }, func(p string, err error) {
			// The late answer of an abandoned create: nobody uses this uuid.
			if err == nil {
				_ = l.deleteNode(context.Background(), p)
			}
			l.forget(dir, uuid)
			close(lateDone)
		})
		switch {
		case err == nil:
			if ctx.Err() != nil {
				_ = l.deleteNode(bg, p)
				return "", "", interrupted(ctx, dir)
			}
			return p, uuid, nil
		case unimplemented(err):
			return "", "", errs.Usage("zookeeper %s does not enable TTL nodes, so a lease cannot outlive this process (--detach)", l.client.Servers()).
				WithHint("start the servers with -Dzookeeper.extendedTypesEnabled=true, or drop --detach: lock acquire then holds the lease in the foreground (or use lock run)")
		case errors.Is(err, gozk.ErrNoNode):
			if perr := l.ensureParents(bg, dir); perr != nil {
				return "", "", perr
			}
			lastErr = err
			continue
		case errs.KindOf(err) == errs.KindUnreachable:
			lastErr = err
			// The create may have been applied before the connection dropped: its
			// node, if any, is deleted by the cleanup (this uuid is dead).
			l.forget(dir, uuid)
			if errors.Is(err, gozk.ErrSessionExpired) || errors.Is(err, gozk.ErrConnectionClosed) {
				l.waitConnected(ctx)
				continue
			}
			if errors.Is(err, gozk.ErrNoServer) {
				// Never sent (zk.ErrNotSent, or go-zookeeper's own flush of its queue
				// while it had no server): no late answer to wait for.
				return "", "", err
			}
			// No answer within the timeout: the late callback deletes the node if
			// the create succeeds after all. Give it one more timeout, so that a
			// failed acquire leaves nothing behind when the answer is merely late.
			select {
			case <-lateDone:
			case <-time.After(l.timeout):
			}
			return "", "", err
		default:
			return "", "", err
		}
	}
	if ctx.Err() != nil {
		return "", "", interrupted(ctx, dir)
	}
	if errors.Is(lastErr, gozk.ErrNoNode) {
		return "", "", errs.New(errs.KindRuntime, "zookeeper: cannot create the lock node %s (its parent keeps disappearing)", dir).Wrap(lastErr)
	}
	return "", "", lastErr
}

// waitConnected waits, up to the timeout, until the session is connected again (a
// create retried at once on a closed connection fails at once again) and settled (no
// request meets go-zookeeper's re-set of its watches: zk.ReconnectSettle).
func (l *Locker) waitConnected(ctx context.Context) {
	l.client.WaitSettled(ctx, time.Now().Add(l.timeout))
}

// reconnectWait paces looking again after requests failed with a lost connection:
// for up to the timeout since the first failure in a row.
type reconnectWait struct {
	l       *Locker
	failing time.Time // since when requests fail; zero: the last one succeeded
}

// again says whether to look again after err, having waited for go-zookeeper to
// reconnect: err is a lost connection (or, with expired, the session's expiry) and
// the failures in a row have not lasted the timeout.
func (r *reconnectWait) again(ctx context.Context, err error, expired bool) bool {
	isExpired := expired && errors.Is(err, gozk.ErrSessionExpired)
	if !(transient(err) || isExpired) || ctx.Err() != nil {
		return false
	}
	if r.failing.IsZero() {
		r.failing = time.Now()
	}
	if time.Since(r.failing) > r.l.timeout {
		return false
	}
	// A request made during the outage would wait in go-zookeeper's queue and go
	// out with the first packets of the new connection: wait for the session here.
	r.l.client.WaitSettled(ctx, r.failing.Add(r.l.timeout))
	return true
}

// ok records a request that succeeded.
func (r *reconnectWait) ok() { r.failing = time.Time{} }

func interrupted(ctx context.Context, dir string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "interrupted while queueing on %s", dir)
	}
	return errs.Unreachable("zookeeper", "", 0, "", ctx.Err())
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
	var refresh <-chan time.Time
	if opt.Detached {
		// Our TTL node must outlive the wait, and show it is not an orphan: touch
		// it every waitingTouch (other acquirers delete a waiting node unchanged for
		// staleWaiting).
		tk := time.NewTicker(waitingTouch(opt.TTL))
		defer tk.Stop()
		refresh = tk.C
	}
	var orphan orphanWatch
	rw := reconnectWait{l: l}
	// A session expiry is retried too: go-zookeeper opens a new session, and the
	// next listing no longer finds an ephemeral node of ours (errNodeGone, which
	// Acquire queues again for while the wait lasts); a detached acquirer's TTL node
	// outlives the session and is found.
	retry := func(err error) bool { return rw.again(ctx, err, true) }
	// Lost confirmations are bounded on their own clock, from the first: the listing
	// between two of them succeeds and resets rw (a link that drops after every
	// setData must not keep the acquire going).
	confirm := reconnectWait{l: l}
	checked := false
	for {
		sent := time.Now()
		ms, others, err := l.queue(ctx, dir)
		if err != nil {
			if retry(err) {
				continue
			}
			return nil, err
		}
		rw.ok()
		if !checked {
			// Our node exists now: if a semaphore's lease exists too, its acquirer's
			// own check (after its lease node was made) may have missed our node, so
			// this one must not (see semaphoreRound).
			if err := l.refuseSemaphore(ctx, name, dir, others); err != nil {
				return nil, err
			}
			checked = true
		}
		// A dsctl mutex is a writer: it waits for every node before it, of any lock
		// kind that queues here (Curator's read-write lock, kazoo's ReadLock).
		ms, _ = foreignMembers(ms, others)
		idx := -1
		for i, m := range ms {
			switch {
			case dir+"/"+m.name == node:
				idx = i
			case l.forgotten(m.token):
				// A node of ours whose create had an unknown outcome (its uuid is
				// dead): it must not hold or block anyone.
				_ = l.deleteNode(ctx, dir+"/"+m.name)
			}
		}
		if idx < 0 {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our queue node under %s disappeared while waiting (its session expired, or another client deleted it, e.g. lock break)", dir).
				WithHint("retry; see dsctl lock inspect %s", name).Wrap(errNodeGone)
		}
		if idx == 0 {
			var lease *lock.Lease
			if opt.Detached {
				lease, err = l.takeDetached(ctx, name, node, uuid, opt)
			} else {
				lease, err = l.take(ctx, name, dir, node, uuid, opt, sent)
			}
			// The confirming write's answer was lost with the connection: look
			// again (it is a plain rewrite of our node's data, safe to repeat, and
			// the lease is counted from the write that is answered).
			if err != nil && confirm.again(ctx, err, true) {
				continue
			}
			return lease, err
		}
		// The lowest node may be the waiting TTL node of a detached acquirer whose
		// process died: nothing else would ever delete it before its TTL.
		if l.reapOrphan(ctx, dir, ms[0], &orphan) {
			continue
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
		var recheck <-chan time.Time
		var rt *time.Timer
		if orphan.node != "" {
			rt = time.NewTimer(time.Until(orphan.since.Add(orphan.stale)) + 10*time.Millisecond)
			recheck = rt.C
		}
		select {
		case ev := <-w.ch:
			// A data change is the predecessor confirming or renewing its lease
			// (a write on its node), not a release: look again, uncounted.
			if ev.Type != gozk.EventNotWatching && ev.Type != gozk.EventNodeDataChanged {
				l.notifications.Add(1)
			}
		case <-timeout:
		case <-recheck:
		case <-refresh:
			_, _ = call(ctx, l, "touch", node, func() (*gozk.Stat, error) {
				return l.conn.Set(node, encodeWaiting(opt.Owner, opt.TTL, opt.TTL, waitingTouch(opt.TTL)), -1)
			}, nil)
		case <-ctx.Done():
			err = interrupted(ctx, dir)
		}
		if t != nil {
			t.Stop()
		}
		if rt != nil {
			rt.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// refuseSemaphore refuses a mutex on a name that is a semaphore: its leases child
// has lease nodes, or it has a leases child and its locks queue has nodes (an
// acquirer). An empty leftover container is no semaphore (ZooKeeper reaps it), nor is
// a lock that merely has another lock below it named leases or locks.
func (l *Locker) refuseSemaphore(ctx context.Context, name, dir string, others []string) error {
	if !hasChild(others, semLeases) {
		return nil
	}
	kids, err := l.leases(ctx, dir+"/"+semLeases)
	if err != nil {
		return err
	}
	what := ""
	for _, k := range kids {
		if m, ok := parseMember(k); ok && m.format == FormatSemaphore {
			what = fmt.Sprintf("%s/%s has %d lease node(s)", dir, semLeases, len(kids))
			break
		}
	}
	if what == "" && hasChild(others, semLocks) {
		if ms, _, err := l.queue(ctx, dir+"/"+semLocks); err != nil {
			return err
		} else if len(ms) > 0 {
			what = fmt.Sprintf("%d acquirer(s) queued on %s/%s", len(ms), dir, semLocks)
		}
	}
	if what == "" {
		return nil
	}
	q := lock.QuoteCommand([]string{name})
	return errs.Usage("lock %q is a semaphore (%s); a mutex cannot share its name", name, what).
		WithHint("take a permit with --semaphore N (the N its holders use), or pick another name; see `dsctl lock inspect %s`", q)
}

// take turns our lowest node into a lease: its czxid is the fence. The grant is
// confirmed by a write on our node, which goes through the leader: a read (the
// listing that found our node first) may come from a follower cut off from the
// leader, serving a state in which our session has already expired there. The lease
// is counted from the send time of that write, and it must still be our session's.
func (l *Locker) take(ctx context.Context, name, dir, node, uuid string, opt lock.AcquireOptions, _ time.Time) (*lock.Lease, error) {
	sent := time.Now()
	st, err := call(ctx, l, "confirm", node, func() (*gozk.Stat, error) {
		return l.conn.Set(node, encodeData(opt.Owner, opt.TTL), -1)
	}, nil)
	if err != nil {
		if errors.Is(err, gozk.ErrNoNode) {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our lock node %s disappeared as we took the lock (its session expired, or another client deleted it)", node).
				Wrap(errNodeGone)
		}
		return nil, err
	}
	if sid := l.conn.SessionID(); st.EphemeralOwner == 0 || st.EphemeralOwner != sid {
		return nil, errs.New(errs.KindRuntime, "zookeeper: our lock node %s belongs to session 0x%x, not to this one (0x%x): the session ended as we took the lock", node, st.EphemeralOwner, sid).
			Wrap(errNodeGone)
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
			return nil, errs.New(errs.KindRuntime, "zookeeper: our lock node %s disappeared as we took the lock (broken, its TTL ran out, or taken for an orphan while this process did not run)", node).
				Wrap(errNodeGone)
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
// Our own TTL is timed here from sent; the session's expiry is timed by the leader
// (sessionEnd, session_bound.go).
func (l *Locker) deadline(sent time.Time, ttl time.Duration) time.Time {
	end := sent.Add(ttl)
	if s := l.sessionEnd(sent); s.Before(end) {
		end = s
	}
	bound := end.Sub(sent)
	if bound <= lock.ClockDrift(bound) {
		// This process did not run for longer than the session's bound before the
		// write: the leader may already be expiring the session. Ends at once.
		return sent
	}
	return sent.Add(bound - lock.ClockDrift(bound))
}

func (l *Locker) leaseOf(h *held) *lock.Lease {
	return semaphoreLease(h.permits, &lock.Lease{Name: h.name, Token: h.token, Fence: h.fence, FencingSafe: true, TTL: h.ttl, TTLMs: h.ttl.Milliseconds(),
		AcquiredAt: h.acquiredAt, ExpiresAt: h.expiresAt, Owner: h.owner, Backend: l.backend,
		Note: "held while this process's ZooKeeper session lives: renew within the TTL or the lease is given up" + l.tickNote()})
}

// tickNote says when the tickTime counted in the lease's bound was assumed.
func (l *Locker) tickNote() string {
	if tick, learned := l.TickTime(); !learned {
		return fmt.Sprintf("; the ensemble's tickTime was not readable (the conf four-letter word is not whitelisted), %s assumed (ZooKeeper's default): "+
			"with a larger tickTime the lease's expires_at is not conservative", lock.RoundDuration(tick))
	}
	return ""
}

// Late TTL timers (see expire).
const (
	// lateFire: a TTL timer that fires this much after the TTL ran out means this
	// process did not run (SIGSTOP, a VM pause, a long GC).
	lateFire = 100 * time.Millisecond
	// staleHold is how long the node of a lease whose timer fired late is kept when
	// the caller does not release it.
	staleHold = 2 * time.Second
)

// expire gives up a lease whose TTL passed without a renewal: its node is deleted
// (or will be, once the session is back).
//
// When the timer fires late, this process was not running: neither was the caller
// that guards something with the lease (lock run's supervisor, whose child may run
// on). Deleting the node now would race with the caller stopping that work: the next
// holder could start while it still runs. So the lease is given up locally (Renew
// fails) but its node stays until the caller releases it, which it does once the work
// is stopped, or until staleHold has passed.
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
	l.giveUp(h)
}

// giveUp drops a lease whose TTL ran out (h.mu held) and deletes its node, or, when
// the TTL ran out more than lateFire ago (this process did not run), keeps the node
// as stale until the caller releases it or staleHold passes (see expire).
func (l *Locker) giveUp(h *held) {
	l.drop(h)
	if time.Since(h.ttlEnd) > lateFire {
		l.mu.Lock()
		if !l.closed {
			l.stale[h.token] = h
			h.timer = time.AfterFunc(staleHold, func() { l.reapStale(h.token) })
		}
		l.mu.Unlock()
		return
	}
	l.deleteOrForget(h.dir, h.node, h.token)
}

// reapStale deletes the node of a stale lease (see expire); true when it was stale.
func (l *Locker) reapStale(token string) bool {
	l.mu.Lock()
	h, ok := l.stale[token]
	delete(l.stale, token)
	l.mu.Unlock()
	if !ok {
		return false
	}
	h.timer.Stop()
	l.deleteOrForget(h.dir, h.node, h.token)
	return true
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
		l.giveUp(h)
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
	if l.reapStale(token) { // expired while this process was not running: its node goes now
		return l.notHeld(ctx, name, dir, token)
	}
	h, known := l.lookup(token)
	if h == nil {
		if !known {
			if err := l.releaseForeign(ctx, name, dir, token); err != errNotQueued {
				return err
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

// errNotQueued: the token names no node of the queue.
var errNotQueued = errors.New("not queued")

// releaseForeign releases a token this Locker did not issue. Only a detached dsctl
// lease (a TTL node with dsctl's owner data, made by lock acquire --detach) is
// released by token from any process: nothing watches it but its TTL. The node of
// another session (a dsctl lease held in the foreground, or a Curator, go-zookeeper
// or kazoo holder, whose token is public: it is in the node's name) is refused: that
// holder never looks at its node again and would go on believing it holds; only
// lock break --force deletes it, with a break record. errNotQueued when the token
// names no queued node.
func (l *Locker) releaseForeign(ctx context.Context, name, dir, token string) error {
	// A new process may be connected to a follower that has not yet applied the
	// acquire that printed the token: sync first, and once more when not found.
	err := l.releaseForeignOnce(ctx, name, dir, token)
	if err == errNotQueued {
		err = l.releaseForeignOnce(ctx, name, dir, token)
	}
	return err
}

func (l *Locker) releaseForeignOnce(ctx context.Context, name, dir, token string) error {
	if err := l.sync(ctx, dir); err != nil {
		return err
	}
	ms, others, err := l.queue(ctx, dir)
	if err != nil {
		return err
	}
	ms, _ = foreignMembers(ms, others)
	for i, m := range ms {
		if m.token != token {
			continue
		}
		e, err := l.entry(ctx, dir, m)
		if errors.Is(err, gozk.ErrNoNode) {
			return errNotQueued
		}
		if err != nil {
			return err
		}
		d, ok := e.data()
		// (A waiting detached node, first because its owner died before taking
		// it, is deleted too: nobody holds it.)
		if ok && d.NodeTTLMs > 0 && e.version >= 0 && i == 0 {
			// A detached lease: delete that node at the version read (a renewal or
			// a break in between is seen).
			_, err := call(ctx, l, "delete", e.Node, func() (struct{}, error) { return struct{}{}, l.conn.Delete(e.Node, e.version) }, nil)
			if errors.Is(err, gozk.ErrNoNode) || errors.Is(err, gozk.ErrBadVersion) {
				return l.notHeld(ctx, name, dir, token)
			}
			return err
		}
		q := lock.QuoteCommand([]string{name})
		what := "a " + describe(e.Format) + " node"
		if ok {
			what = "a dsctl lease held by another process's ZooKeeper session"
		}
		if i > 0 {
			what += " (waiting, not holding)"
		}
		return errs.Usage("lock %q: token %s is %s; only its holder can release it, and this process did not take it; nothing was deleted", name, lock.ShortToken(token), what).
			WithHint("to take the lock away from that holder, `dsctl lock break %s --if-token %s --force` (it records the break); see `dsctl lock inspect %s`", q, token, q)
	}
	return errNotQueued
}

// renewDetached renews a detached lease (a dsctl TTL node) held by token, from any
// process: it rewrites the node at the version read (so a break in between is seen),
// which restarts its TTL on the server. Nil, nil when token does not hold such a lease.
//
// As in acquire, the holder is the first node of the queue counting every lock kind
// that queues there (a detached node waiting behind a Curator or kazoo read lock is
// not held), read after a sync (a new process may be on a lagging follower); a node
// still waiting (waiting_touch_ms) is not held either.
func (l *Locker) renewDetached(ctx context.Context, name, dir, token string, ttl time.Duration) (*lock.Lease, error) {
	if err := l.sync(ctx, dir); err != nil {
		return nil, err
	}
	ms, others, err := l.queue(ctx, dir)
	if err != nil {
		return nil, err
	}
	ms, _ = foreignMembers(ms, others)
	if len(ms) == 0 || ms[0].token != token {
		return nil, nil
	}
	e, err := l.entry(ctx, dir, ms[0])
	if errors.Is(err, gozk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, ok := e.data()
	if !ok || d.NodeTTLMs <= 0 || e.version < 0 || d.WaitingTouchMs > 0 {
		return nil, nil // a session's ephemeral node, not dsctl's, or still waiting
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
	// Reading why (the next holder, the break record) gets its own time.
	ctx, done := lock.WhyContext(ctx)
	defer done()
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

// orphanWatch follows the lowest node of a queue while it is a waiting detached
// node: since when it has been seen unchanged (at version).
type orphanWatch struct {
	node    string
	version int32
	since   time.Time
	stale   time.Duration
}

// reapOrphan deletes the lowest node m when it is a detached acquirer's waiting TTL
// node (never granted: its data says waiting) that this process has seen unchanged
// for longer than its owner's touch allows: its owner died while waiting. The delete
// is at the version seen, so it fails if the owner touched or took it meanwhile;
// and an owner that did not run for that long finds its node gone when it writes it
// (to touch or to take it) and queues again. It reports whether it deleted m.
func (l *Locker) reapOrphan(ctx context.Context, dir string, m member, w *orphanWatch) bool {
	if m.format != FormatCurator || l.isOurs(m.token) {
		*w = orphanWatch{}
		return false
	}
	p := dir + "/" + m.name
	data, st, err := l.getNode(ctx, p)
	if err != nil {
		*w = orphanWatch{}
		return false
	}
	d, ok := decodeData(data)
	if !ok || d.WaitingTouchMs <= 0 || st.EphemeralOwner != 0 {
		*w = orphanWatch{}
		return false
	}
	if w.node != p || w.version != st.Version {
		*w = orphanWatch{node: p, version: st.Version, since: time.Now(), stale: staleWaiting(time.Duration(d.WaitingTouchMs) * time.Millisecond)}
		return false
	}
	if time.Since(w.since) < w.stale {
		return false
	}
	_, err = call(ctx, l, "delete", p, func() (struct{}, error) { return struct{}{}, l.conn.Delete(p, w.version) }, nil)
	*w = orphanWatch{}
	return err == nil || errors.Is(err, gozk.ErrNoNode)
}

// isOurs reports whether token is a lease this Locker holds.
func (l *Locker) isOurs(token string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[token]
	return ok
}
