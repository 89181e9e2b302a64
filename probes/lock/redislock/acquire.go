package redislock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

const (
	// safetyRecheck bounds how long a notified waiter sleeps without a message: a
	// last line of defence should a release message be lost (go-redis resubscribes
	// after a reconnect, and the resubscription itself wakes the waiter).
	safetyRecheck = time.Minute
	// noTTLRecheck is the retry interval when the holder's key has no expiry.
	noTTLRecheck = time.Second
	quorumNote   = "quorum mode (Redlock): independent servers share no counter, so there is no safe fencing token"
)

// attempt is the outcome of one failed try: who holds the lock, when to try again.
type attempt struct {
	holder  *lock.Holder
	retryIn time.Duration
	detail  string
	// abandon: the token was given back by a release that may still be on its way;
	// the next try must use a new token (and a new waiter id).
	abandon bool
}

// Acquire takes the lock. With opt.Wait it waits: notified by the lock's pub/sub
// channel (subscribed before the retry that follows the first failure, so a release in
// between is not missed; the subscription is the Locker's and stays for its next waits,
// which then register on their first try) or when the holder's TTL runs out; or
// polling every opt.PollInterval with lock.WaitPoll.
func (l *Locker) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	lease, err := l.acquire(ctx, name, opt)
	if err != nil && errs.KindOf(err) != errs.KindInterrupted && errors.Is(ctx.Err(), context.Canceled) {
		return nil, errs.New(errs.KindInterrupted, "interrupted while acquiring lock %q", name)
	}
	return lease, err
}

func (l *Locker) acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	if err := lock.ValidateName(name); err != nil {
		return nil, err
	}
	if err := lock.ValidateTTL(opt.TTL); err != nil {
		return nil, err
	}
	if opt.RequireFencing && !l.backend.FencingSafe {
		return nil, lock.ErrFencingUnavailable(l.backend)
	}
	if err := l.checkServers(ctx); err != nil {
		return nil, err
	}
	if err := l.evictionRisk(); err != nil {
		return nil, err
	}
	poll := opt.PollInterval
	if poll <= 0 {
		poll = lock.DefaultPollInterval
	}
	notify := opt.Strategy != lock.WaitPoll
	token := l.tokens()
	k := keysFor(name)
	fair := ""
	if opt.Fair {
		if l.quorumMode() {
			return nil, errs.Usage("--fair needs a single Redis server: in quorum mode each master keeps its own queue, so no order is shared").
				WithHint("drop --fair, or point --redis at one server")
		}
		fair = "1"
	}
	args := append([]any{token, opt.TTL.Milliseconds(), "", k.base, l.mode(), fair, ""}, ownerFields(opt.Owner)...)
	channel := l.waitChannel(k)
	start := time.Now()
	deadline := opt.Wait.Deadline(start)

	var w *waiter
	registered := false
	defer func() {
		if registered { // gave up: a grant that reaches us from now on is passed on
			l.gaveUp(args[2].(string), token)
		}
		w.close()
		if registered { // leave the waiter list, passing on a late grant (best effort)
			l.leave(context.WithoutCancel(ctx), k, token, args[2].(string))
		}
	}()
	if notify && !opt.Wait.Zero() && l.subscribed(channel) {
		// This Locker already listens on its channel for the lock (it waited before): join
		// as a waiter at no cost, so the first failed try registers us and no second try
		// is needed.
		id := l.waiterID()
		if w, _ = l.subscribe(ctx, channel, id); w != nil {
			args[2], registered = id, true
		}
	}
	seen := ""
	for {
		lease, att, err := l.try(ctx, name, k, token, opt, args)
		if err != nil {
			if !l.quorumMode() {
				// The attempt may have landed without our seeing the reply (timed out,
				// cancelled): give it back, or it stays held by a token nobody has until
				// its TTL runs out. (A quorum round gives back what it may have taken.)
				l.giveBack(l.nodes[0], k, token, opt.TTL)
			}
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, errs.New(errs.KindInterrupted, "interrupted while acquiring lock %q", name)
			}
			return nil, err
		}
		if lease != nil {
			registered = false // the acquire script took us off the list
			return lease, nil
		}
		if att.abandon {
			if registered { // leave under the old token, which passes on a grant made to it
				l.gaveUp(args[2].(string), token)
				w.close()
				w = nil
				l.leave(context.WithoutCancel(ctx), k, token, args[2].(string))
				registered, args[2] = false, ""
			}
			token = l.tokens()
			args[0] = token
		}
		if opt.OnWait != nil && att.holder != nil && att.holder.Token != seen {
			seen = att.holder.Token
			opt.OnWait(att.holder)
		}
		now := time.Now()
		if opt.Wait.Zero() || (!opt.Wait.Forever() && !now.Before(deadline)) {
			return nil, lock.NotAcquired(&lock.NotAcquiredError{Name: name, Holder: att.holder, Wait: opt.Wait,
				Waited: now.Sub(start), Detail: att.detail})
		}
		if !registered {
			// From now on each try (re)registers us as a waiter, so releases hand us the
			// lock (or wake us, in quorum mode) in turn and inspect can count us.
			id := l.waiterID()
			if notify {
				if w, err = l.subscribe(ctx, channel, id); err != nil {
					notify = false // cannot subscribe (ACL without pub/sub?): poll instead
				}
			}
			if !notify {
				id = "p:" + id
				args[6] = poll.Milliseconds() // its request lives until its next poll (plus a margin)
			}
			args[2], registered = id, true
			if notify {
				continue // try again now that no release can be missed
			}
		}
		sleep := poll
		if notify {
			sleep = att.retryIn
		}
		if !opt.Wait.Forever() {
			sleep = min(sleep, deadline.Sub(now))
		}
		if err := w.wait(ctx, sleep); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil, errs.New(errs.KindInterrupted, "interrupted while waiting for lock %q (held by %s)", name, att.holder)
			}
			return nil, lock.NotAcquired(&lock.NotAcquiredError{Name: name, Holder: att.holder, Wait: opt.Wait, Waited: time.Since(start)})
		}
		// A grant only wakes us: the next try confirms on the server that our token
		// holds the lock and dates the lease from the TTL the server has left. No lease
		// is ever returned on the strength of a message (it may be late: a pause, a slow
		// connection, and the lease it announced may be gone by now).
	}
}

// leave takes a waiter off the list on every server, passing on the lock should a
// release have handed it to us meanwhile.
func (l *Locker) leave(ctx context.Context, k keys, token, id string) {
	each(ctx, l.nodes, func(ctx context.Context, n *node) (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, min(l.timeout, time.Second))
		defer cancel()
		_, err := l.runScript(cctx, n, scriptLeave, []string{k.lock, k.owner, k.fence, k.waiters}, token, k.base, l.mode(), id)
		return struct{}{}, err
	})
}

// mode tells the scripts whether a release hands the lock over (one server) or only
// wakes the waiters (quorum mode).
func (l *Locker) mode() string {
	if l.quorumMode() {
		return modeWake
	}
	return modeGrant
}

// try makes one attempt on the server, or on all servers in quorum mode.
func (l *Locker) try(ctx context.Context, name string, k keys, token string, opt lock.AcquireOptions, args []any) (*lock.Lease, *attempt, error) {
	if l.quorumMode() {
		return l.tryQuorum(ctx, name, k, token, opt, args)
	}
	sent := time.Now()
	r, err := l.acquireOn(ctx, l.nodes[0], k, args)
	if err != nil {
		return nil, nil, err
	}
	if r.queued > 0 {
		return nil, &attempt{retryIn: r.retry, detail: fmt.Sprintf("it is free, but --fair leaves it to %d waiter(s) queued earlier", r.queued)}, nil
	}
	if !r.ok {
		return nil, &attempt{holder: r.holder, retryIn: retryAfter(r.holder)}, nil
	}
	lease := l.lease(name, token, r.fence, opt, sent, r.left)
	if time.Now().After(lease.ExpiresAt) { // the reply came after the lease could have ended
		_ = l.releaseOn(context.WithoutCancel(ctx), l.nodes[0], k, token)
		// That release may be applied later still (a reset connection whose bytes are
		// on their way): the token must never be used again, or the release could end
		// a lease taken with it meanwhile.
		return nil, &attempt{detail: fmt.Sprintf("the server answered after %s, longer than --ttl %s allows", time.Since(sent).Round(time.Millisecond), opt.TTL),
			retryIn: time.Millisecond, abandon: true}, nil
	}
	return lease, nil, nil
}

// lease is the lease taken by a request sent at sent, with left of it remaining when
// the server answered (the TTL, unless the lock was handed over earlier).
func (l *Locker) lease(name, token string, f lock.FencingToken, opt lock.AcquireOptions, sent time.Time, left time.Duration) *lock.Lease {
	left = min(left, opt.TTL)
	le := &lock.Lease{Name: name, Token: token, Fence: f, FencingSafe: l.backend.FencingSafe,
		TTL: opt.TTL, TTLMs: opt.TTL.Milliseconds(), AcquiredAt: sent,
		ExpiresAt: sent.Add(left - lock.ClockDrift(opt.TTL)), Owner: opt.Owner, Backend: l.backend}
	if l.quorumMode() {
		le.Fence, le.Note = 0, quorumNote
	}
	return le
}

func retryAfter(h *lock.Holder) time.Duration {
	if h == nil || h.TTLLeft < 0 {
		return noTTLRecheck
	}
	return min(h.TTLLeft+2*time.Millisecond, safetyRecheck)
}

const (
	unknownUptime = time.Duration(-1)
	infoRefused   = time.Duration(-2)
)

type acquired struct {
	ok     bool
	queued int           // fair mode: the lock is free, but this many live waiters came first
	retry  time.Duration // when to try again if queued
	// uptime is how long the server has run (quorum mode; unknownUptime when it cannot
	// tell, infoRefused when INFO is refused): a server that started less than the TTL
	// ago took it, but its vote does not count.
	uptime time.Duration
	fence  lock.FencingToken
	left   time.Duration // of the lease, when the server answered
	holder *lock.Holder
}

func (l *Locker) acquireOn(ctx context.Context, n *node, k keys, args []any) (acquired, error) {
	vals, err := l.runScript(ctx, n, scriptAcquire, []string{k.lock, k.owner, k.fence, k.waiters}, args...)
	if err != nil {
		return acquired{}, err
	}
	if num(vals[0]) == 5 && len(vals) >= 3 {
		return acquired{queued: int(num(vals[2])), retry: time.Duration(num(vals[1])) * time.Millisecond}, nil
	}
	if num(vals[0]) == 1 && len(vals) >= 4 {
		a := acquired{ok: true, fence: fence(vals[1]), left: time.Duration(num(vals[3])) * time.Millisecond, uptime: unknownUptime}
		if len(vals) >= 5 {
			switch up := num(vals[4]); {
			case up >= 0:
				a.uptime = time.Duration(up) * time.Second
			case up == -2:
				a.uptime = infoRefused
			}
		}
		return a, nil
	}
	return acquired{holder: l.holderSeen(parseHolder(vals[1:]))}, nil
}

func (l *Locker) releaseOn(ctx context.Context, n *node, k keys, token string) error {
	vals, err := l.runScript(ctx, n, scriptRelease, []string{k.lock, k.owner, k.fence, k.brk, k.waiters}, token, k.base, l.mode())
	if err != nil {
		return err
	}
	if num(vals[0]) != 1 {
		return l.notHeldSeen(notHeld("", token, vals))
	}
	return nil
}

// perCall is the time one server may take in quorum mode: a slow or paused server
// must not eat the lease (Redlock: small compared to the TTL).
func (l *Locker) perCall(ttl time.Duration) time.Duration {
	return min(l.timeout, max(ttl/3, 50*time.Millisecond))
}

// tryQuorum is one Redlock round: a new token, the same on every server, in parallel.
// It decides as soon as a majority took the lock, or a majority can no longer be
// reached. The lease's validity is the smallest TTL left among the servers counted
// (each reports its PTTL), less the round's time and the drift. On failure it releases
// on every server, waiting only for those that answered; the others (timed out, or
// answering late) get a release in the background, since a request that timed out here
// may still be applied there.
//
// A new token per round matters: a request of an earlier round that timed out but was
// applied later holds that server under the earlier token, and must not count as a
// vote of this round (nor lend it its full TTL).
func (l *Locker) tryQuorum(ctx context.Context, name string, k keys, _ string, opt lock.AcquireOptions, args []any) (*lock.Lease, *attempt, error) {
	token := l.tokens()
	args = append([]any{token}, args[1:]...)
	total := len(l.nodes)
	perCall := l.perCall(opt.TTL)
	id, _ := args[2].(string) // our waiter id, "" when not waiting
	results := make(chan nodeResult[acquired], total)
	var mu sync.Mutex
	decided, failed := false, false
	sent := time.Now()
	for i, n := range l.nodes {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, perCall)
			defer cancel()
			r, err := l.acquireOn(cctx, n, k, args)
			mu.Lock()
			defer mu.Unlock()
			if decided {
				if failed && (err != nil || r.ok) { // too late, or maybe applied after all: give it back
					go l.releaseQuiet(n, k, token, perCall)
				} else if !failed && err == nil && !r.ok && id != "" { // won elsewhere: not a waiter here
					l.forgetOn(n, k, id, perCall)
				}
				return
			}
			results <- nodeResult[acquired]{i: i, val: r, err: err}
		}()
	}
	got := make([]*nodeResult[acquired], total)
	oks, fails := 0, 0
	for oks < l.quorum && fails <= total-l.quorum && oks+fails < total {
		r := <-results
		got[r.i] = &r
		if r.err == nil && r.val.ok {
			oks++
		} else {
			fails++
		}
	}
	// Let slower servers answer for a moment: on success so that every healthy server
	// holds the lock (a majority that survives one more failure), on failure so that
	// what they took is given back before we return and a server that does answer is
	// not reported as down. With no answer at all yet, wait for them (each is bounded
	// by perCall). A paused server does not hold us longer than the grace.
	answered := false
	for _, r := range got {
		answered = answered || (r != nil && r.err == nil)
	}
	grace := time.NewTimer(min(perCall, 50*time.Millisecond+2*time.Since(sent)))
collect:
	for pending := total - oks - fails; pending > 0; pending-- {
		var r nodeResult[acquired]
		if answered {
			select {
			case r = <-results:
			case <-grace.C:
				break collect
			}
		} else {
			r = <-results
		}
		got[r.i] = &r
		if r.err == nil {
			answered = true
			if r.val.ok {
				oks++
			}
		}
	}
	grace.Stop()
	elapsed := time.Since(sent)
	// A server that started less than a TTL ago may have forgotten, in a restart without
	// persistence, a lease it backed that is still running: its vote is not counted
	// (Redlock's delayed restart, applied by the client), and what it took is given back.
	// (Redis reports uptime as the difference of two whole-second clocks, so it may be
	// up to a second more than the real uptime: a second is added to the TTL.)
	for _, r := range got {
		if r != nil && r.err == nil && r.val.ok && r.val.uptime != unknownUptime && r.val.uptime < opt.TTL+time.Second {
			r.val.ok = false
			oks--
		}
	}
	left := opt.TTL
	for _, r := range got {
		if r != nil && r.err == nil && r.val.ok {
			left = min(left, r.val.left)
		}
	}
	validity := left - elapsed - lock.ClockDrift(opt.TTL)
	success := oks >= l.quorum && validity > 0

	mu.Lock()
	decided, failed = true, !success
	for len(results) > 0 { // answers that arrived while deciding
		r := <-results
		got[r.i] = &r
	}
	mu.Unlock()
	if success {
		// Servers that refused us registered us as a waiter: take us off their lists,
		// or their next release would wake us instead of a real waiter.
		for i, r := range got {
			if r != nil && r.err == nil && !r.val.ok && id != "" {
				l.forgetOn(l.nodes[i], k, id, perCall)
			}
		}
		return l.lease(name, token, 0, opt, sent, left), nil, nil
	}

	// Failed: give back what we took, waiting for the servers that answered.
	var wg sync.WaitGroup
	for i, r := range got {
		if r != nil && r.err != nil {
			go l.releaseQuiet(l.nodes[i], k, token, perCall)
		}
		if r != nil && r.err == nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.releaseQuiet(l.nodes[i], k, token, perCall)
			}()
		}
	}
	wg.Wait()
	return nil, l.quorumAttempt(got, oks, perCall, validity, elapsed), l.allUnreachable(got)
}

// giveBack releases a lease that an attempt may have taken without our seeing the
// reply. A request that timed out may still be on its way (a slow network, a paused
// server), and so may the release: it is retried until one gets an answer from the
// server, for at most min(ttl, giveBackFor). If the server answers before the late
// request arrives, that request's lease stays until its TTL: no client can tell, and
// fencing tokens cover it.
func (l *Locker) giveBack(n *node, k keys, token string, ttl time.Duration) {
	end := time.Now().Add(min(ttl, giveBackFor))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(l.timeout, time.Until(end)))
		err := l.releaseOn(ctx, n, k, token)
		cancel()
		if err == nil || errs.KindOf(err) != errs.KindUnreachable || time.Now().Add(giveBackPause).After(end) {
			return
		}
		time.Sleep(giveBackPause)
	}
}

const (
	giveBackFor   = 2 * time.Second
	giveBackPause = 50 * time.Millisecond
)

func (l *Locker) releaseQuiet(n *node, k keys, token string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = l.releaseOn(ctx, n, k, token)
}

// quorumAttempt explains a failed quorum round and picks the holder most servers name.
func (l *Locker) quorumAttempt(got []*nodeResult[acquired], oks int, perCall, validity, elapsed time.Duration) *attempt {
	att := &attempt{retryIn: -1}
	votes := map[string]int{}
	var parts []string
	for i, r := range got {
		addr := l.nodes[i].addr
		switch {
		case r == nil:
			parts = append(parts, fmt.Sprintf("%s: no answer within %s", addr, lock.RoundDuration(perCall)))
		case r.err != nil:
			parts = append(parts, fmt.Sprintf("%s: %s", addr, shortErr(r.err, perCall)))
		case r.val.ok:
			parts = append(parts, addr+": taken (given back)")
		case r.val.uptime == infoRefused:
			parts = append(parts, addr+": taken, but not counted: the user may not run INFO, so a restart that forgot leases cannot be told (given back)")
		case r.val.uptime >= 0 && r.val.holder == nil:
			parts = append(parts, fmt.Sprintf("%s: taken, but not counted: the server started %s ago, less than --ttl, and may have forgotten a lease in a restart (given back)",
				addr, r.val.uptime))
		default:
			h := r.val.holder
			parts = append(parts, fmt.Sprintf("%s: held by token %s", addr, lock.ShortToken(tokenOf(h))))
			if h != nil {
				votes[h.Token]++
				if att.holder == nil || votes[h.Token] > votes[att.holder.Token] {
					att.holder = h
				}
				if ra := retryAfter(h); att.retryIn < 0 || ra < att.retryIn {
					att.retryIn = ra
				}
			}
		}
	}
	if att.retryIn < 0 { // split vote or servers down: back off with jitter so rivals do not collide again
		att.retryIn = time.Duration(20+rand.IntN(80)) * time.Millisecond
	}
	head := fmt.Sprintf("took it on %d of %d servers, need %d", oks, len(l.nodes), l.quorum)
	if oks >= l.quorum && validity <= 0 {
		head = fmt.Sprintf("a majority answered after %s, leaving no lease validity", elapsed.Round(time.Millisecond))
	}
	att.detail = head + " (" + strings.Join(parts, "; ") + ")"
	if oks > 0 {
		att.detail += "; gave back what it took (a paused server may still apply the attempt later; it then expires within --ttl)"
	}
	return att
}

func tokenOf(h *lock.Holder) string {
	if h == nil {
		return "?"
	}
	return h.Token
}

func shortErr(err error, within time.Duration) string {
	if endpoint.IsNetworkError(err) {
		return fmt.Sprintf("no answer within %s", lock.RoundDuration(within))
	}
	return err.Error()
}

// allUnreachable returns an unreachable error when no server answered at all.
func (l *Locker) allUnreachable(got []*nodeResult[acquired]) error {
	var errsSeen []string
	for i, r := range got {
		if r != nil && r.err == nil {
			return nil
		}
		if r != nil && errs.KindOf(r.err) != errs.KindUnreachable && !endpoint.IsNetworkError(r.err) {
			return r.err
		}
		errsSeen = append(errsSeen, l.nodes[i].addr)
	}
	sort.Strings(errsSeen)
	return errs.Unreachable("redis", strings.Join(errsSeen, ","), l.timeout,
		"is redis-server up? set --redis, DSCTL_REDIS or the context's redis.addrs", nil)
}

// ---- waiting ----

// waitChannel is this Locker's private wake-up channel for a lock.
func (l *Locker) waitChannel(k keys) string { return k.channel + ":" + l.id }

// waiterID names one wait of this Locker: the release script finds the Locker's
// channel from the part before the dot.
func (l *Locker) waiterID() string { return l.id + "." + newToken()[:8] }

// stagger is the delay between the waiters a release wakes in turn: long enough for
// the first one's acquire (one round trip) and its "taken" message to arrive.
const stagger = 5 * time.Millisecond

// waiter is one Acquire's interest in a lock, fed by the Locker's shared subscriptions
// to its private channel for that lock. A message naming this waiter plans a wake-up
// at its turn, and a resubscription after a reconnect wakes it at once (it may have
// missed something).
type waiter struct {
	id      string
	channel string
	l       *Locker
	mu      sync.Mutex
	wakeAt  time.Time
	changed chan struct{}
}

// nodeSub is a Locker's one pub/sub connection to a server, shared by all its waiters
// and kept until Close: a connection per wait cost a dial, HELLO and SUBSCRIBE (and a
// second acquire attempt) every time a client had to wait. Guarded by Locker.subMu.
type nodeSub struct {
	n  *node
	ps *redis.PubSub
	// confirmed holds a channel per subscribed lock channel, closed once the server
	// confirmed the subscription.
	confirmed map[string]chan struct{}
	waiters   map[string]map[*waiter]struct{}
}

// subscribed reports whether every server has confirmed the subscription to channel,
// so a waiter may join without a round trip.
func (l *Locker) subscribed(channel string) bool {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	if l.subs == nil || l.closed {
		return false
	}
	for _, s := range l.subs {
		if s == nil || !isClosed(s.confirmed[channel]) {
			return false
		}
	}
	return true
}

// subscribe makes a waiter on channel: it joins the Locker's subscription on every
// server, subscribing (and waiting for the confirmation) where that is not done yet.
// It fails only when no server confirmed.
func (l *Locker) subscribe(ctx context.Context, channel, id string) (*waiter, error) {
	w := &waiter{id: id, channel: channel, l: l, changed: make(chan struct{}, 1)}
	l.subMu.Lock()
	if l.closed {
		l.subMu.Unlock()
		return nil, errors.New("locker closed")
	}
	if l.subs == nil {
		l.subs = make([]*nodeSub, len(l.nodes))
	}
	pending := make([]chan struct{}, len(l.nodes))
	send := make([]bool, len(l.nodes))
	for i, n := range l.nodes {
		s := l.subs[i]
		if s == nil {
			s = &nodeSub{n: n, ps: n.c.Subscribe(context.WithoutCancel(ctx)), confirmed: map[string]chan struct{}{},
				waiters: map[string]map[*waiter]struct{}{}}
			l.subs[i] = s
			go l.dispatch(s, s.ps.ChannelWithSubscriptions(redis.WithChannelSize(64)))
		}
		if s.waiters[channel] == nil {
			s.waiters[channel] = map[*waiter]struct{}{}
		}
		s.waiters[channel][w] = struct{}{} // before subscribing: no message after the confirmation is missed
		c, ok := s.confirmed[channel]
		if !ok {
			c = make(chan struct{})
			s.confirmed[channel] = c
			send[i] = true
		}
		pending[i] = c
	}
	l.subMu.Unlock()

	var firstErr error
	ok := 0
	for i, n := range l.nodes {
		err := l.confirm(ctx, l.subs[i], channel, pending[i], send[i])
		if err == nil {
			ok++
		} else if firstErr == nil {
			firstErr = l.dialer.RedisError(n.addr, err)
		}
	}
	if ok == 0 {
		w.close()
		return nil, firstErr
	}
	return w, nil
}

// confirm sends SUBSCRIBE when asked to and waits for the server's confirmation. On
// failure it forgets the pending subscription, so the next waiter asks again.
//
// A refused SUBSCRIBE (an ACL user without channel rights: Redis 7's default for new
// users) never reaches us: go-redis drops error replies on a pub/sub connection. So a
// first SUBSCRIBE goes with a PUBLISH on the same channel, which the same channel
// rights govern and whose NOPERM we do see; the waiter then polls at once instead of
// after the timeout. (Our own waiters ignore the probe message.)
func (l *Locker) confirm(ctx context.Context, s *nodeSub, channel string, c chan struct{}, send bool) error {
	var err error
	var probe chan error
	if send {
		probe = make(chan error, 1)
		go func() { probe <- s.n.c.Publish(ctx, channel, "probe").Err() }()
		err = s.ps.Subscribe(ctx, channel)
	}
	if err == nil {
		t := time.NewTimer(l.timeout)
		defer t.Stop()
	wait:
		for {
			select {
			case <-c:
				return nil
			case perr := <-probe:
				probe = nil
				if perr != nil && strings.HasPrefix(perr.Error(), "NOPERM") && !isClosed(c) {
					err = perr // may not publish, so not subscribe either: poll
					break wait
				}
			case <-t.C:
				err = context.DeadlineExceeded
				break wait
			case <-ctx.Done():
				err = ctx.Err()
				break wait
			}
		}
	}
	l.subMu.Lock()
	if s.confirmed[channel] == c && !isClosed(c) {
		delete(s.confirmed, channel)
	}
	l.subMu.Unlock()
	return err
}

// dispatch hands a server's pub/sub messages to the waiters of their channel. The
// first confirmation of a channel completes subscribe; a later one is a resubscription
// after a reconnect and wakes the channel's waiters.
func (l *Locker) dispatch(s *nodeSub, ch <-chan any) {
	for m := range ch {
		var channel string
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			channel = m.Channel
		case *redis.Message:
			channel = m.Channel
			if l.beforeMessage != nil {
				l.beforeMessage(m.Payload)
			}
		default:
			continue
		}
		l.subMu.Lock()
		if _, ok := m.(*redis.Subscription); ok {
			c := s.confirmed[channel]
			if c == nil {
				c = make(chan struct{})
				s.confirmed[channel] = c
			}
			if !isClosed(c) {
				close(c)
				l.subMu.Unlock()
				continue
			}
		}
		ws := make([]*waiter, 0, len(s.waiters[channel]))
		for w := range s.waiters[channel] {
			ws = append(ws, w)
		}
		l.subMu.Unlock()
		for _, w := range ws {
			w.handle(m)
		}
		if msg, ok := m.(*redis.Message); ok {
			l.passOnIfGone(s.n, channel, msg.Payload, ws)
		}
	}
}

// passOnIfGone hands on a wake-up ("released" or "broken") that names a waiter this
// Locker no longer has. PUBLISH counted this Locker as a receiver, so the server
// believes the waiter was told; left alone, the waiters behind it would sleep until
// the lease they last saw ran out. That happens in quorum mode, where a waiter that
// won on a majority stays listed on the servers it lost until its forget lands there.
//
// A "granted" for a waiter that gave up (and whose leave, which would pass the lock on,
// did not get through) is passed on the same way: the lock goes to the next waiter
// instead of staying with a token nobody has until its TTL runs out. Only for a waiter
// known to have given up, and only while its token still holds the lock: a waiter that
// left with a lease (its own try succeeded while the grant was on its way) holds the
// lock under that very token, and freeing it would break exclusion.
func (l *Locker) passOnIfGone(n *node, channel, payload string, ws []*waiter) {
	fields := strings.Fields(payload)
	if len(fields) != 3 || (fields[0] != "released" && fields[0] != "broken" && fields[0] != "granted") {
		return
	}
	for _, w := range ws {
		if w.id == fields[1] {
			return
		}
	}
	base, ok := strings.CutSuffix(channel, ":ch:"+l.id)
	if !ok {
		return
	}
	k := keysForBase(base)
	if fields[0] == "granted" {
		if token, ok := l.gaveUpToken(fields[1]); ok {
			l.background(n, min(l.timeout, time.Second), scriptDisown, []string{k.lock, k.owner, k.fence, k.waiters}, base, l.mode(), fields[1], token)
		}
		return
	}
	l.background(n, min(l.timeout, time.Second), scriptPassOn, []string{k.waiters}, base, fields[1], fields[0])
}

// gaveUpKeep is how long a Locker remembers a waiter that gave up, for a grant that
// reaches it late (a grant is published while the waiter is listed, so it arrives
// within a connection's delivery time of the give-up).
const gaveUpKeep = 2 * time.Minute

// gaveUp records that waiter id gave up without a lease (its token is token).
func (l *Locker) gaveUp(id, token string) {
	l.goneMu.Lock()
	defer l.goneMu.Unlock()
	now := time.Now()
	for k, g := range l.gone {
		if now.Sub(g.at) > gaveUpKeep {
			delete(l.gone, k)
		}
	}
	if l.gone == nil {
		l.gone = map[string]goneWaiter{}
	}
	l.gone[id] = goneWaiter{token: token, at: now}
}

// gaveUpToken returns the token of waiter id if it gave up without a lease.
func (l *Locker) gaveUpToken(id string) (string, bool) {
	l.goneMu.Lock()
	defer l.goneMu.Unlock()
	g, ok := l.gone[id]
	return g.token, ok
}

type goneWaiter struct {
	token string
	at    time.Time
}

// forgetOn takes waiter id off the list on one server (best effort, in the background).
func (l *Locker) forgetOn(n *node, k keys, id string, timeout time.Duration) {
	l.background(n, timeout, scriptForget, []string{k.waiters}, k.base, id)
}

// background runs a best-effort script on one server without waiting for it.
func (l *Locker) background(n *node, timeout time.Duration, s *redis.Script, keys []string, args ...any) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, _ = l.runScript(ctx, n, s, keys, args...)
	}()
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// closeSubs closes the shared subscriptions (Close).
func (l *Locker) closeSubs() {
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.closed = true
	for _, s := range l.subs {
		if s != nil {
			s.ps.Close()
		}
	}
}

func (w *waiter) handle(m any) {
	switch m := m.(type) {
	case *redis.Subscription:
		w.plan(0)
	case *redis.Message:
		// "granted ID FENCE": the lock is ours. "released ID TURN" / "broken ID
		// TURN": try at our turn among those woken. "taken ID TTL": someone else got it.
		fields := strings.Fields(m.Payload)
		if len(fields) != 3 || fields[1] != w.id {
			return
		}
		if fields[0] == "granted" { // confirmed by the next try, never trusted as such
			w.mu.Lock()
			w.wakeAt = time.Now()
			w.mu.Unlock()
			w.signal()
			return
		}
		if fields[0] == "taken" {
			// Someone else got it for TTL ms: drop a planned wake-up, and retry when
			// that lease ends at the latest (our timer follows the lease we last saw,
			// which may end later).
			ms, _ := strconv.Atoi(fields[2])
			w.mu.Lock()
			w.wakeAt = time.Time{}
			if ms > 0 {
				w.wakeAt = time.Now().Add(time.Duration(ms)*time.Millisecond + 2*time.Millisecond)
			}
			w.mu.Unlock()
			w.signal()
			return
		}
		turn, err := strconv.Atoi(fields[2])
		if err != nil || turn < 0 {
			turn = 0
		}
		w.plan(time.Duration(min(turn, wakeOnBreak)) * stagger)
	}
}

// plan asks for a wake-up after the delay, unless one is planned earlier; it wakes the
// waiting goroutine only when the plan changed.
func (w *waiter) plan(after time.Duration) {
	at := time.Now().Add(after)
	w.mu.Lock()
	changed := w.wakeAt.IsZero() || at.Before(w.wakeAt)
	if changed {
		w.wakeAt = at
	}
	w.mu.Unlock()
	if changed {
		w.signal()
	}
}

func (w *waiter) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// wait sleeps for d, or until the wake-up planned by messages (w may be nil: a plain
// sleep).
func (w *waiter) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	limit := time.NewTimer(d)
	defer limit.Stop()
	var changed <-chan struct{}
	if w != nil {
		changed = w.changed
	}
	for {
		var turn <-chan time.Time
		var turnTimer *time.Timer
		if w != nil {
			w.mu.Lock()
			at := w.wakeAt
			w.mu.Unlock()
			if !at.IsZero() {
				if time.Until(at) <= 0 {
					w.mu.Lock()
					w.wakeAt = time.Time{}
					w.mu.Unlock()
					return nil
				}
				turnTimer = time.NewTimer(time.Until(at))
				turn = turnTimer.C
			}
		}
		select {
		case <-limit.C:
			return nil
		case <-turn:
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		if turnTimer != nil {
			turnTimer.Stop()
		}
	}
}

// close leaves the Locker's subscriptions (the subscriptions themselves stay).
func (w *waiter) close() {
	if w == nil {
		return
	}
	w.l.subMu.Lock()
	defer w.l.subMu.Unlock()
	for _, s := range w.l.subs {
		if s != nil {
			delete(s.waiters[w.channel], w)
			if len(s.waiters[w.channel]) == 0 {
				delete(s.waiters, w.channel)
			}
		}
	}
}
