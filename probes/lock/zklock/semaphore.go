package zklock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Counting semaphores (AcquireOptions.Permits > 1), laid out exactly like Apache
// Curator's InterProcessSemaphoreV2, so dsctl and Curator share them:
//
//	<root>/<name>/locks   an InterProcessMutex queue (_c_<uuid>-lock-<seq>) that
//	                      serialises acquirers
//	<root>/<name>/leases  one protected ephemeral-sequential node per lease,
//	                      _c_<uuid>-lease-<seq>
//
// An acquirer takes the locks mutex, creates its lease node, and lists the leases
// with a watch: while there are more than N it waits for the list to change (holding
// the mutex, so only one acquirer at a time waits there), then releases the mutex.
// At most N lease nodes ever pass that check, whoever made them: the count includes
// the acquirer's own node, as Curator's does. A lease ends when its node is deleted
// (Release), when its TTL passes without a renewal (dsctl deletes it), or when its
// session ends (ZooKeeper deletes it).
//
// Curator keeps N in the client, not in ZooKeeper; dsctl also writes it on the leases
// node ({"dsctl_semaphore":{"permits":N}}), so Inspect can tell holders from the
// waiter (Curator ignores that data), and refuses (usage error) a dsctl acquirer whose
// N differs from the recorded one while lease nodes exist: clients counting the same
// leases against different N overrun each other. A Curator client records nothing, so
// a Curator client with another N is not detected. Every semaphore lease, of 1 permit
// too, is fencing_safe false and --require-fencing is refused: other clients of the
// name may count with another N. Semaphore leases cannot be detached.

// FormatSemaphore is a Curator InterProcessSemaphoreV2 (locks + leases).
const FormatSemaphore lock.Format = "curator-semaphore"

// Child names of a semaphore (Curator's).
const (
	semLocks  = "locks"
	semLeases = "leases"
)

// MaxPermits bounds --semaphore (a lease list is read whole on every change).
const MaxPermits = 10000

// semaphoreNote is the Lease.Note of a semaphore lease: what its fence means.
func semaphoreNote(n int) string {
	return fmt.Sprintf("one of up to %d concurrent leases (semaphore); fence = czxid of this lease's node: larger for every newer lease, "+
		"but up to %d holders hold at once, so the fence orders leases and lets a resource refuse ones older than the oldest live lease; "+
		"a resource that keeps only the largest fence seen would refuse the older concurrent holders: it is not mutual exclusion", n, n)
}

// semaphoreLease marks a lease of a semaphore (n >= 1 permits; a mutex lease has 0):
// its fence orders leases but does not exclude (see semaphoreNote). Even a 1-permit
// semaphore lease is not fencing-safe: other clients of the same semaphore may count
// with another N (Curator records none), so dsctl cannot promise exclusion.
func semaphoreLease(n int, le *lock.Lease) *lock.Lease {
	if n >= 1 {
		le.FencingSafe = false
		le.Note = semaphoreNote(n) + "; " + le.Note
	}
	return le
}

type semMeta struct {
	Semaphore struct {
		Permits int `json:"permits"`
	} `json:"dsctl_semaphore"`
}

// acquireSemaphore takes one of opt.Permits leases of name.
func (l *Locker) acquireSemaphore(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
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
	n := opt.Permits
	if n < 0 {
		return nil, errs.Usage("--semaphore must be a positive number of permits, got %d", n)
	}
	if n > MaxPermits {
		return nil, errs.Usage("--semaphore %d is too many; the most is %d", n, MaxPermits)
	}
	if opt.RequireFencing {
		return nil, errs.Usage("--require-fencing with --semaphore %d on semaphore %q: several holders may hold its leases at once (up to the N of each client), so no fencing token gives mutual exclusion", n, name).
			WithHint("use a mutex name without --semaphore for an exclusive lock, or drop --require-fencing")
	}
	if opt.Detached {
		return nil, errs.Usage("--detach with semaphore %q: a semaphore lease is an ephemeral node of the acquiring process's session, which ends when the command exits", name).
			WithHint("hold the permit with `dsctl lock run --semaphore N %s -- CMD`, or detach a mutex instead", lock.QuoteCommand([]string{name}))
	}
	leasesDir := dir + "/" + semLeases
	start := time.Now()
	deadline := opt.Wait.Deadline(start)
	expired := func() bool { return !opt.Wait.Forever() && !time.Now().Before(deadline) }

	// --wait 0 means "no free permit: fail now", not "fail when another acquirer holds
	// the mutex for a moment".
	if opt.Wait.Zero() {
		kids, err := l.leases(ctx, leasesDir)
		if err != nil {
			return nil, err
		}
		if err := l.checkPermits(ctx, name, leasesDir, n); err != nil {
			return nil, err
		}
		if len(kids) >= n {
			return nil, l.semNotAcquired(ctx, name, leasesDir, kids, opt.Wait, start)
		}
	}

	for requeued := 0; ; requeued++ {
		lease, err := l.semaphoreRound(ctx, name, leasesDir, opt, start, deadline)
		if errors.Is(err, errNodeGone) && requeued < 3 && ctx.Err() == nil && !expired() {
			continue // our lease node vanished (the session expired while waiting): again from the mutex, as Curator does
		}
		if err != nil && errs.KindOf(err) != errs.KindInterrupted && errors.Is(ctx.Err(), context.Canceled) {
			return nil, errs.New(errs.KindInterrupted, "interrupted while acquiring a permit of semaphore %q", name)
		}
		return lease, err
	}
}

// semaphoreRound is one attempt: take the locks mutex, create our lease node, wait
// until at most N leases exist, release the mutex. On failure nothing of ours stays.
func (l *Locker) semaphoreRound(ctx context.Context, name, leasesDir string, opt lock.AcquireOptions, start, deadline time.Time) (*lock.Lease, error) {
	// 1. The locks mutex (Curator's InterProcessMutex on <name>/locks), within what is
	// left of the wait. With --wait 0 it may wait a moment for another acquirer that
	// holds it while permits are free.
	mopt := opt
	mopt.Permits, mopt.OnWait, mopt.Fair, mopt.Detached, mopt.RequireFencing = 0, nil, false, false, false
	switch {
	case opt.Wait.Zero():
		mopt.Wait = lock.WaitFor(l.timeout)
	case !opt.Wait.Forever():
		mopt.Wait = lock.WaitFor(max(time.Until(deadline), 0))
	}
	mutex, err := l.Acquire(ctx, name+"/"+semLocks, mopt)
	if err != nil {
		var na *lock.NotAcquiredError
		if errors.As(err, &na) {
			kids, _ := l.leases(ctx, leasesDir)
			return nil, l.semNotAcquired(ctx, name, leasesDir, kids, opt.Wait, start)
		}
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		_ = l.Release(rctx, name+"/"+semLocks, mutex.Token) // an unknown outcome is cleaned up by Release
		cancel()
	}()

	// 2. Our lease node, then wait until at most N leases exist.
	if err := l.ensureParents(context.Background(), leasesDir); err != nil {
		return nil, err
	}
	// Under the mutex: every dsctl acquirer checks and records N here, one at a time.
	if err := l.checkPermits(ctx, name, leasesDir, opt.Permits); err != nil {
		return nil, err
	}
	l.recordPermits(ctx, leasesDir, opt.Permits)
	node, uuid, err := l.createLease(ctx, leasesDir, encodeData(opt.Owner, opt.TTL))
	if err != nil {
		return nil, err
	}
	// A mutex queue directly under the name (dsctl's, Curator's, go-zookeeper's,
	// kazoo's, a read-write lock's) makes it no semaphore. Checked after our lease
	// node exists: a mutex acquirer checks after its queue node exists, so of two
	// racing acquirers at least one sees the other (refuseSemaphore).
	if err := l.refuseMutex(ctx, name, parentOf(leasesDir)); err != nil {
		l.deleteOrForget(leasesDir, node, uuid)
		return nil, err
	}
	lease, err := l.waitLease(ctx, name, leasesDir, node, uuid, opt, mutex, start, deadline)
	if err != nil {
		// Whatever went wrong, our lease node must not stay.
		l.deleteOrForget(leasesDir, node, uuid)
		return nil, err
	}
	return lease, nil
}

// refuseMutex refuses a semaphore on a name that has lock queue nodes directly under it.
func (l *Locker) refuseMutex(ctx context.Context, name, dir string) error {
	ms, others, err := l.queue(ctx, dir)
	if err != nil {
		return err
	}
	ms, _ = foreignMembers(ms, others)
	if len(ms) == 0 {
		return nil
	}
	q := lock.QuoteCommand([]string{name})
	return errs.Usage("lock %q is a mutex (%d queue node(s) under %s, e.g. %s, %s); a semaphore cannot share its name", name, len(ms), dir, ms[0].name, describe(ms[0].format)).
		WithHint("drop --semaphore to take the mutex, or pick another name; see `dsctl lock inspect %s`", q)
}

// createLease makes our protected ephemeral-sequential lease node and returns it with
// its uuid; like create, it never goes on with a node whose create had an unknown
// outcome (a fresh uuid on every attempt; the cleanup deletes the other).
func (l *Locker) createLease(ctx context.Context, leasesDir string, data []byte) (string, string, error) {
	return l.createNode(ctx, leasesDir, "-lease-", data, func(prefix string) (string, error) {
		return l.conn.Create(prefix, data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	})
}

// waitLease lists the leases with a watch until ours is among at most n, keeping the
// locks mutex alive meanwhile.
func (l *Locker) waitLease(ctx context.Context, name, leasesDir, node, uuid string, opt lock.AcquireOptions, mutex *lock.Lease,
	start, deadline time.Time) (*lock.Lease, error) {
	ours := node[strings.LastIndexByte(node, '/')+1:]
	lastFirst := ""
	renewEvery := max(opt.TTL/3, 50*time.Millisecond)
	renewAt := time.Now().Add(renewEvery)
	rw := reconnectWait{l: l}
	retry := func(err error) bool { return rw.again(ctx, err, false) }
	confirm := reconnectWait{l: l} // lost confirmations, from the first (see wait)
	for {
		sent := time.Now()
		type cw struct {
			kids []string
			ch   <-chan gozk.Event
		}
		r, err := call(ctx, l, "watch", leasesDir, func() (cw, error) {
			kids, _, ch, err := l.conn.ChildrenW(leasesDir)
			return cw{kids, ch}, err
		}, nil)
		if err != nil {
			if retry(err) {
				continue
			}
			return nil, err
		}
		rw.ok()
		found := false
		for _, k := range r.kids {
			found = found || k == ours
		}
		if !found {
			return nil, errs.New(errs.KindRuntime, "zookeeper: our lease node under %s disappeared while waiting (its session expired, or another client deleted it, e.g. lock break)", leasesDir).
				WithHint("retry; see dsctl lock inspect %s", name).Wrap(errNodeGone)
		}
		if len(r.kids) <= opt.Permits {
			lease, err := l.take(ctx, name, leasesDir, node, uuid, opt, sent)
			if err != nil && confirm.again(ctx, err, false) {
				continue // the confirming write's answer was lost: look again
			}
			return lease, err
		}
		if !opt.Wait.Forever() && !time.Now().Before(deadline) {
			return nil, l.semNotAcquired(ctx, name, leasesDir, r.kids, opt.Wait, start)
		}
		if opt.OnWait != nil {
			if first := sortLeases(r.kids)[0]; first != lastFirst {
				lastFirst = first
				if h, err := l.leaseHolder(ctx, leasesDir, first); err == nil {
					opt.OnWait(h)
				}
			}
		}
		wake := time.NewTimer(time.Until(renewAt))
		var timeout <-chan time.Time
		var t *time.Timer
		if !opt.Wait.Forever() {
			t = time.NewTimer(time.Until(deadline))
			timeout = t.C
		}
		select {
		case ev := <-r.ch:
			if ev.Type != gozk.EventNotWatching {
				l.notifications.Add(1)
			}
		case <-timeout:
		case <-wake.C:
		case <-ctx.Done():
			err = interrupted(ctx, leasesDir)
		}
		wake.Stop()
		if t != nil {
			t.Stop()
		}
		if err != nil {
			return nil, err
		}
		if !time.Now().Before(renewAt) {
			// The mutex is held for as long as we wait here: keep its lease alive.
			if _, err := l.Renew(ctx, name+"/"+semLocks, mutex.Token, opt.TTL); err != nil {
				return nil, err
			}
			renewAt = time.Now().Add(renewEvery)
		}
	}
}

// leases lists the lease nodes (all children of the leases node, as Curator counts
// them); a missing leases node is none.
func (l *Locker) leases(ctx context.Context, leasesDir string) ([]string, error) {
	kids, err := l.getChildren(ctx, leasesDir)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil, nil
	}
	return kids, err
}

// sortLeases orders lease nodes by sequence (names without one last, by name).
func sortLeases(kids []string) []string {
	out := append([]string(nil), kids...)
	sort.SliceStable(out, func(i, j int) bool {
		si, oki := seqOf(out[i])
		sj, okj := seqOf(out[j])
		if oki != okj {
			return oki
		}
		if si != sj {
			return si < sj
		}
		return out[i] < out[j]
	})
	return out
}

// leaseHolder reads one lease node into a Holder.
func (l *Locker) leaseHolder(ctx context.Context, leasesDir, child string) (*lock.Holder, error) {
	m, ok := parseMember(child)
	if !ok {
		seq, _ := seqOf(child)
		m = member{name: child, token: child, seq: seq, format: FormatSemaphore}
	}
	return l.holderInfo(ctx, leasesDir, m)
}

func (l *Locker) semNotAcquired(ctx context.Context, name, leasesDir string, kids []string, wait lock.Wait, start time.Time) error {
	e := &lock.NotAcquiredError{Name: name, Wait: wait, Waited: time.Since(start)}
	if len(kids) > 0 {
		if h, err := l.leaseHolder(ctx, leasesDir, sortLeases(kids)[0]); err == nil {
			e.Holder = h
		}
		e.Detail = fmt.Sprintf("%d lease(s) taken", len(kids))
	}
	return lock.NotAcquired(e)
}

// checkPermits refuses a permit count that differs from the N recorded on the leases
// node while lease nodes exist: two clients counting the same leases against
// different N overrun each other (the smaller N's holders are not protected from the
// larger N's acquirers). Curator clients record no N, so a Curator client with
// another N is not detected.
func (l *Locker) checkPermits(ctx context.Context, name, leasesDir string, n int) error {
	b, _, err := l.getNode(ctx, leasesDir)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	var m semMeta
	if json.Unmarshal(b, &m) != nil || m.Semaphore.Permits <= 0 || m.Semaphore.Permits == n {
		return nil
	}
	kids, err := l.leases(ctx, leasesDir)
	if err != nil {
		return err
	}
	if len(kids) == 0 {
		return nil
	}
	return errs.Usage("semaphore %q has %d permits (recorded on %s, %d lease(s) live); --semaphore %d would count its leases against another N, overrunning its holders",
		name, m.Semaphore.Permits, leasesDir, len(kids), n).
		WithHint("use --semaphore %d, or wait until its leases are released; see `dsctl lock inspect %s`", m.Semaphore.Permits, lock.QuoteCommand([]string{name}))
}

// recordPermits writes N on the leases node for Inspect when it differs (under the
// locks mutex, so acquirers do not race each other; a failure only costs Inspect).
func (l *Locker) recordPermits(ctx context.Context, leasesDir string, n int) {
	data, st, err := l.getNode(ctx, leasesDir)
	if err != nil {
		return
	}
	var m semMeta
	if json.Unmarshal(data, &m) == nil && m.Semaphore.Permits == n {
		return
	}
	m.Semaphore.Permits = n
	b, _ := json.Marshal(m)
	_, _ = call(ctx, l, "set", leasesDir, func() (*gozk.Stat, error) { return l.conn.Set(leasesDir, b, st.Version) }, nil)
}

// inspectSemaphore reports a semaphore (a lock node with a leases child): ok is false
// when dir is not one.
func (l *Locker) inspectSemaphore(ctx context.Context, name, dir string) (*lock.Info, bool, error) {
	if err := l.sync(ctx, dir); err != nil {
		return nil, false, err
	}
	top, err := l.leases(ctx, dir)
	if err != nil {
		return nil, false, err
	}
	if sem, err := l.isSemaphore(ctx, dir, top); err != nil || !sem {
		return nil, false, err
	}
	leasesDir := dir + "/" + semLeases
	info := &lock.Info{Name: name, Key: dir, Format: FormatSemaphore, Backend: l.backend,
		FormatDetail: "Curator InterProcessSemaphoreV2 (a locks mutex guarding a leases node of ephemeral-sequential leases)"}
	meta, _, err := l.getNode(ctx, leasesDir)
	if errors.Is(err, gozk.ErrNoNode) {
		return info, true, nil
	}
	if err != nil {
		return nil, true, err
	}
	permits := 0
	var m semMeta
	if json.Unmarshal(meta, &m) == nil {
		permits = m.Semaphore.Permits
	}
	kids, err := l.leases(ctx, leasesDir)
	if err != nil {
		return nil, true, err
	}
	kids = sortLeases(kids)
	mutexQueue, _, err := l.queue(ctx, dir+"/"+semLocks)
	if err != nil {
		return nil, true, err
	}
	holders := len(kids)
	if permits > 0 {
		holders = min(holders, permits)
		info.Notes = append(info.Notes, fmt.Sprintf("permits %d (as written by dsctl on %s), %d taken", permits, leasesDir, holders))
	} else {
		info.Notes = append(info.Notes, fmt.Sprintf("permit count unknown (Curator keeps it in the client): %d lease node(s); while the locks mutex is held, the newest may be an acquirer waiting for a permit", len(kids)))
	}
	// Everyone in the locks queue is acquiring (its first member may already have a
	// lease node that waits: counted once).
	info.Waiters = len(mutexQueue)
	if len(mutexQueue) == 0 {
		info.Waiters = len(kids) - holders
	}
	for i, k := range kids {
		h, err := l.leaseHolder(ctx, leasesDir, k)
		if err != nil {
			continue // released meanwhile
		}
		q := QueueEntry{Node: leasesDir + "/" + k, Token: h.Token, Fence: h.Fence, Format: FormatSemaphore, Owner: h.Owner, Created: h.AcquiredAt, Holding: i < holders}
		if m, ok := parseMember(k); ok {
			q.Seq = m.seq
			if e, err := l.entry(ctx, leasesDir, m); err == nil {
				q = e.QueueEntry
				q.Holding = i < holders
			}
		}
		info.Queue = append(info.Queue, q)
		if i < holders {
			if info.Holder == nil {
				info.Held, info.Holder = true, h
			}
			if h.Fence > info.LastFence {
				info.LastFence = h.Fence
			}
			info.Notes = append(info.Notes, fmt.Sprintf("holder %d: %s/%s, %s", i+1, leasesDir, k, h))
		} else {
			info.Notes = append(info.Notes, fmt.Sprintf("waiting for a permit: %s/%s, %s", leasesDir, k, h))
		}
		if i == 100 {
			info.Notes = append(info.Notes, fmt.Sprintf("... and %d more lease nodes", len(kids)-i-1))
			break
		}
	}
	for i, m := range mutexQueue { // the acquirers, after the leases
		if i == maxQueueShown {
			break
		}
		if e, err := l.entry(ctx, dir+"/"+semLocks, m); err == nil {
			info.Queue = append(info.Queue, e.QueueEntry)
		}
	}
	if len(mutexQueue) > 0 {
		info.Notes = append(info.Notes, fmt.Sprintf("%d acquirer(s) queued on %s/%s (the first is acquiring)", len(mutexQueue), dir, semLocks))
	}
	return info, true, nil
}

// isSemaphore reports whether dir (with children top) is a semaphore, not merely a
// lock with another lock below it named leases (lock names are slash-separated: a
// mutex x and a mutex x/leases are both legal). It is one when it has a leases child,
// no lock queue directly under it, no mutex queue nodes under leases, and either
// semaphore lease nodes under leases, acquirers queued on its locks child while leases
// has no other children, or dsctl's permit record on its leases node (an idle dsctl
// semaphore).
func (l *Locker) isSemaphore(ctx context.Context, dir string, top []string) (bool, error) {
	if !hasChild(top, semLeases) {
		return false, nil
	}
	if direct, _ := foreignMembers(queueMembers(top)); len(direct) > 0 {
		return false, nil
	}
	leasesDir := dir + "/" + semLeases
	kids, err := l.leases(ctx, leasesDir)
	if err != nil {
		return false, err
	}
	ms, rest := foreignMembers(queueMembers(kids))
	leaseNodes := 0
	for _, m := range ms {
		if m.format != FormatSemaphore {
			return false, nil // a mutex queue: the lock <name>/leases
		}
		leaseNodes++
	}
	if leaseNodes > 0 {
		return true, nil
	}
	// Acquirers on locks make a semaphore only while leases holds nothing else: a
	// leases node with other children (the parent of a lock <name>/leases/y) beside a
	// held mutex <name>/locks is two user locks, not a semaphore.
	if hasChild(top, semLocks) && len(rest) == 0 {
		q, _, err := l.queue(ctx, dir+"/"+semLocks)
		if err != nil {
			return false, err
		}
		if len(q) > 0 {
			return true, nil
		}
	}
	b, _, err := l.getNode(ctx, leasesDir)
	if errors.Is(err, gozk.ErrNoNode) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var m semMeta
	return json.Unmarshal(b, &m) == nil && m.Semaphore.Permits > 0, nil
}

// queueMembers splits children into recognised queue nodes and the rest.
func queueMembers(kids []string) ([]member, []string) {
	var ms []member
	var others []string
	for _, c := range kids {
		if m, ok := parseMember(c); ok {
			ms = append(ms, m)
		} else {
			others = append(others, c)
		}
	}
	return ms, others
}

func hasChild(kids []string, name string) bool {
	for _, k := range kids {
		if k == name {
			return true
		}
	}
	return false
}

// breakSemaphore breaks one lease of a semaphore: the one opt.IfToken names (its node
// is deleted after a break record is written on the semaphore node, as for a mutex).
// Without a token it refuses: up to N processes hold a semaphore, and breaking them all
// is rarely what an operator means. ok is false when dir is not a semaphore.
func (l *Locker) breakSemaphore(ctx context.Context, name, dir string, opt lock.BreakOptions) (*lock.Info, bool, error) {
	info, ok, err := l.inspectSemaphore(ctx, name, dir)
	if !ok || err != nil {
		return nil, ok, err
	}
	leasesDir := dir + "/" + semLeases
	kids, err := l.leases(ctx, leasesDir)
	if err != nil {
		return nil, true, err
	}
	if opt.IfToken == "" {
		if len(kids) == 0 {
			return info, true, nil // nothing to break
		}
		var toks []string
		for _, k := range sortLeases(kids) {
			if m, ok := parseMember(k); ok {
				toks = append(toks, m.token)
			} else {
				toks = append(toks, k)
			}
		}
		return nil, true, errs.Usage("lock %q is a semaphore with %d lease(s); break one lease at a time with --if-token TOKEN (lease tokens: %s); nothing was deleted",
			name, len(kids), strings.Join(toks, ", ")).
			WithHint("see dsctl lock inspect %s", lock.QuoteCommand([]string{name}))
	}
	token := normalizeToken(opt.IfToken)
	for _, k := range kids {
		if m, ok := parseMember(k); !ok || m.token != token {
			continue
		}
		h, err := l.leaseHolder(ctx, leasesDir, k)
		if errors.Is(err, gozk.ErrNoNode) {
			break // released meanwhile
		}
		if err != nil {
			return nil, true, err
		}
		note, err := l.recordBreak(ctx, dir, &lock.Break{At: time.Now().UTC(), By: opt.By, Reason: opt.Reason, Token: h.Token, Fence: h.Fence})
		if err != nil {
			return nil, true, err
		}
		if note != "" {
			info.Notes = append(info.Notes, note)
		}
		node := leasesDir + "/" + k
		_, err = call(ctx, l, "delete", node, func() (struct{}, error) { return struct{}{}, l.conn.Delete(node, -1) }, nil)
		if errors.Is(err, gozk.ErrNoNode) {
			break
		}
		if err != nil {
			return nil, true, err
		}
		info.Holder, info.Held = h, true
		info.Notes = append(info.Notes, fmt.Sprintf("broke lease %s (fence %d); the other leases stand", node, h.Fence))
		return info, true, nil
	}
	return nil, true, l.notHeld(ctx, name, dir, token)
}

// foldSemaphores rewrites List's names: the leases node of a semaphore (X/leases,
// holding Curator lease nodes) becomes the semaphore X, and the semaphore's locks
// mutex (X/locks) is dropped (its members are acquirers, counted as X's waiters).
func (l *Locker) foldSemaphores(ctx context.Context, names []string) ([]string, map[string]bool) {
	sems := map[string]bool{}
	checked := map[string]bool{}
	for _, n := range names {
		// A semaphore shows up as its leases child (lease nodes) or its locks child
		// (an acquirer between its two steps holds that mutex with no lease yet).
		parent, ok := strings.CutSuffix(n, "/"+semLeases)
		if !ok {
			parent, ok = strings.CutSuffix(n, "/"+semLocks)
		}
		if !ok || checked[parent] {
			continue
		}
		checked[parent] = true
		dir := l.root + "/" + parent
		top, err := l.getChildren(ctx, dir)
		if err != nil {
			continue // listed as it is
		}
		if yes, err := l.isSemaphore(ctx, dir, top); err == nil && yes {
			sems[parent] = true
		}
	}
	if len(sems) == 0 {
		return names, sems
	}
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		if p, ok := strings.CutSuffix(n, "/"+semLeases); ok && sems[p] {
			n = p
		} else if p, ok := strings.CutSuffix(n, "/"+semLocks); ok && sems[p] {
			n = p
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, sems
}

// inspectListed inspects a name found by List: a semaphore, or a lock queue.
func (l *Locker) inspectListed(ctx context.Context, name string, sems map[string]bool) (*lock.Info, error) {
	dir := l.root + "/" + name
	if sems[name] {
		info, ok, err := l.inspectSemaphore(ctx, name, dir)
		if ok || err != nil {
			return info, err
		}
	}
	return l.inspectDir(ctx, name, dir)
}
