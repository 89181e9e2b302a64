package redislock

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Renew is compare-and-PEXPIRE: only the holder's token extends the lease, to ttl from
// the request. A lease that is gone is never re-taken: that is a NotHeldError saying
// why (expired, taken, broken, or the server lost its data).
func (l *Locker) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	if err := lock.ValidateName(name); err != nil {
		return nil, err
	}
	if err := lock.ValidateTTL(ttl); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errs.Usage("renew %q: no token given", name).WithHint("pass --token, or eval the -o env output of acquire")
	}
	k := keysFor(name)
	sent := time.Now()
	type renewed struct {
		ok       bool
		fence    lock.FencingToken
		acquired time.Time
		nh       *lock.NotHeldError
	}
	renewOn := func(ctx context.Context, n *node) (renewed, error) {
		vals, err := l.runScript(ctx, n, scriptRenew, []string{k.lock, k.owner, k.fence, k.brk}, token, ttl.Milliseconds())
		if err != nil {
			return renewed{}, err
		}
		if num(vals[0]) == 1 && len(vals) >= 3 {
			return renewed{ok: true, fence: fence(vals[1]), acquired: msTime(str(vals[2]))}, nil
		}
		return renewed{nh: l.notHeldSeen(notHeld(name, token, vals))}, nil
	}
	lease := &lock.Lease{Name: name, Token: token, FencingSafe: l.backend.FencingSafe, TTL: ttl, TTLMs: ttl.Milliseconds(),
		AcquiredAt: sent, ExpiresAt: sent.Add(ttl - lock.ClockDrift(ttl)), Backend: l.backend}

	if !l.quorumMode() {
		r, err := renewOn(ctx, l.nodes[0])
		if err != nil {
			return nil, err
		}
		if !r.ok {
			return nil, lock.NotHeld(r.nh)
		}
		lease.Fence = r.fence
		return lease, nil
	}

	perCall := l.perCall(ttl)
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) (renewed, error) {
		cctx, cancel := context.WithTimeout(ctx, perCall)
		defer cancel()
		return renewOn(cctx, n)
	})
	oks, unreachable := 0, 0
	var lost []*lock.NotHeldError
	var parts []string
	for i, r := range results {
		addr := l.nodes[i].addr
		switch {
		case r.err != nil:
			unreachable++
			parts = append(parts, fmt.Sprintf("%s: %s", addr, shortErr(r.err, perCall)))
		case r.val.ok:
			oks++
			parts = append(parts, addr+": renewed")
		default:
			lost = append(lost, r.val.nh)
			parts = append(parts, fmt.Sprintf("%s: %s", addr, r.val.nh.Why()))
		}
	}
	detail := fmt.Sprintf("renewed on %d of %d servers, need %d: %s", oks, len(l.nodes), l.quorum, strings.Join(parts, "; "))
	validity := ttl - time.Since(sent) - lock.ClockDrift(ttl)
	switch {
	case oks >= l.quorum && validity > 0:
		lease.Note = quorumNote
		return lease, nil
	case oks+unreachable < l.quorum: // a majority can never be had again
		nh := *lost[0]
		nh.Reason, nh.Current = majorityReason(lost)
		nh.Detail = detail
		return nil, lock.NotHeld(&nh)
	}
	return nil, errs.New(errs.KindUnreachable, "redis quorum: lock %q %s", name, detail).
		WithHint("the lease is kept while a majority may still answer; it is lost if none does before it expires")
}

// majorityReason picks the reason most servers gave.
func majorityReason(lost []*lock.NotHeldError) (lock.LostReason, *lock.Holder) {
	count := map[lock.LostReason]int{}
	best := lost[0]
	for _, e := range lost {
		count[e.Reason]++
		if count[e.Reason] > count[best.Reason] {
			best = e
		}
	}
	return best.Reason, best.Current
}

// Release is compare-and-DEL in one script that also passes the lock on: on one
// server it hands it to the oldest live waiter, in quorum mode it wakes the first
// waiters. With a token that does not hold the lock nothing changes, and the error
// names the holder.
func (l *Locker) Release(ctx context.Context, name, token string) error {
	if err := lock.ValidateName(name); err != nil {
		return err
	}
	if token == "" {
		return errs.Usage("release %q: no token given", name).WithHint("pass --token, or eval the -o env output of acquire")
	}
	k := keysFor(name)
	if !l.quorumMode() {
		err := l.releaseOn(ctx, l.nodes[0], k, token)
		if nh, ok := err.(*lock.NotHeldError); ok {
			nh.Name = name
			return lock.NotHeld(nh)
		}
		return err
	}
	// Quorum: release everywhere (also where the acquire may have landed unseen).
	perCall := l.perCall(l.timeout)
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, perCall)
		defer cancel()
		return struct{}{}, l.releaseOn(cctx, n, k, token)
	})
	released, unreachable := 0, 0
	var lost []*lock.NotHeldError
	var firstErr error
	var parts []string
	for i, r := range results {
		addr := l.nodes[i].addr
		switch nh, isNH := r.err.(*lock.NotHeldError); {
		case r.err == nil:
			released++
		case isNH:
			nh.Name = name
			lost = append(lost, nh)
			parts = append(parts, fmt.Sprintf("%s: %s", addr, nh.Why()))
		default:
			unreachable++
			if firstErr == nil {
				firstErr = r.err
			}
			parts = append(parts, fmt.Sprintf("%s: %s", addr, shortErr(r.err, perCall)))
		}
	}
	switch {
	case released > 0:
		return nil
	case len(lost) > 0 && unreachable < l.quorum:
		nh := *lost[0]
		nh.Reason, nh.Current = majorityReason(lost)
		nh.Detail = strings.Join(parts, "; ")
		return lock.NotHeld(&nh)
	}
	return firstErr
}

// Purge deletes what a free lock leaves behind (fencing counter, waiter list, last
// break) on every server, for throwaway names such as lock bench's. A held lock is
// left alone. Without the counter the name's next fencing token restarts from the
// server clock, so do not purge a name whose tokens a storage checks.
func (l *Locker) Purge(ctx context.Context, name string) error {
	if err := lock.ValidateName(name); err != nil {
		return err
	}
	k := keysFor(name)
	var firstErr error
	for _, r := range each(ctx, l.nodes, func(ctx context.Context, n *node) ([]any, error) {
		return l.runScript(ctx, n, scriptPurge, []string{k.lock, k.owner, k.fence, k.waiters, k.brk})
	}) {
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	return firstErr
}
