package redislock

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

const (
	maxRawKeyLen = 1024
	scanCount    = 1000
	batchSize    = 500
	foreignNote  = "made by another library: dsctl can inspect and break it, not renew or release it; it has no fencing token"
)

// observed is one server's view of a lock, with what break needs to delete it safely.
type observed struct {
	info *lock.Info
	// obj is the key info is about as it was seen (another library's lock, or a key
	// that is not a lock); nil for dsctl's own lease and for a free lock.
	obj *object
}

// lockNames works out where to look for NAME: dsctl's keys for a valid lock name (or
// the dsctl key itself), and the raw key NAME for other libraries' locks (whose names
// may hold characters dsctl's own names may not, such as braces).
func lockNames(name string) (dsctlName, raw string, err error) {
	switch {
	case nameFromKey(name) != "":
		return nameFromKey(name), "", nil
	case name == "":
		return "", "", lock.ValidateName(name)
	case len(name) > maxRawKeyLen:
		return "", "", errs.Usage("lock name is %d bytes long; the limit is %d", len(name), maxRawKeyLen)
	}
	if lock.ValidateName(name) == nil {
		dsctlName = name
	}
	return dsctlName, name, nil
}

// Inspect reports the lock: dsctl's own lease if there is one, else the raw key NAME
// when it is another library's lock, else what the key holds (lock.FormatNotALock).
func (l *Locker) Inspect(ctx context.Context, name string) (*lock.Info, error) {
	if !l.quorumMode() {
		o, err := l.inspectOn(ctx, l.nodes[0], name)
		if err != nil {
			return nil, err
		}
		return o.info, nil
	}
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) (*observed, error) { return l.inspectOn(ctx, n, name) })
	merged, _, err := l.mergeQuorum(results)
	if merged == nil {
		return nil, err
	}
	return merged, nil
}

// inspectOn reads NAME on one server in one round trip. A key counts as a lock only
// when it matches a known format (see formats.go): dsctl's lease first, then the raw
// key as another library's lock; a key that exists but matches none is reported as
// lock.FormatNotALock with what it holds.
func (l *Locker) inspectOn(ctx context.Context, n *node, name string) (*observed, error) {
	dname, raw, err := lockNames(name)
	if err != nil {
		return nil, err
	}
	var (
		desc, ns  *redis.Cmd
		own, brk  *redis.MapStringStringCmd
		fc        *redis.StringCmd
		rns       *redis.MapStringIntCmd
		k         = keysFor(dname)
		rawChan   = redissonChannel(raw)
		described []string
	)
	if dname != "" {
		described = append(described, k.lock)
	}
	if raw != "" {
		described = append(described, raw)
	}
	err = l.call(ctx, n, func(ctx context.Context) error {
		pipe := n.c.Pipeline()
		desc = pipe.Eval(ctx, describeLua, described)
		if dname != "" {
			own, fc, brk = pipe.HGetAll(ctx, k.owner), pipe.Get(ctx, k.fence), pipe.HGetAll(ctx, k.brk)
			ns = pipe.Eval(ctx, scriptCountWaiters, []string{k.waiters}, k.base)
		}
		if raw != "" {
			rns = pipe.PubSubNumSub(ctx, rawChan)
		}
		_, _ = pipe.Exec(ctx) // per-key errors (nil, WRONGTYPE) are expected; a failed call fails desc too
		return desc.Err()
	})
	if err != nil {
		return nil, err
	}
	objs, err := parseObjects(described, desc.Val())
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", n.addr, err)
	}
	var dobj, robj *object
	if dname != "" {
		dobj = objs[0]
	}
	if raw != "" {
		robj = objs[len(objs)-1]
	}

	info := &lock.Info{Name: name, Waiters: -1, Backend: l.backend}
	o := &observed{info: info}
	if dname != "" {
		info.Name, info.Key = dname, k.lock
		info.Waiters = waiterCount(ns)
		info.LastFence = fence(fc.Val())
		info.FencingSafe = l.backend.FencingSafe
		info.LastBreak = parseBreak(brk.Val())
		if owner := own.Val(); dobj.exists() && classifyDsctl(dobj, owner) {
			h := &lock.Holder{Token: dobj.head}
			h.SetTTLLeft(dobj.ttl)
			if owner["token"] == dobj.head {
				h.Fence = fence(owner["fence"])
				h.AcquiredAt = msTime(owner["acquired_ms"])
				h.Owner = ownerFromFields(owner)
			}
			info.Held, info.Format, info.Holder = true, lock.FormatDsctl, h
			info.FormatDetail = lock.FormatDsctl.Describe()
			if dobj.ttl < 0 {
				info.Notes = append(info.Notes, "the lease has no expiry (its TTL was removed by hand?): it is held until broken")
			}
			return o, nil
		}
	}
	switch {
	case robj.exists():
		f, h, notes := classifyForeign(robj)
		info.Name, info.Key, o.obj = raw, raw, robj
		info.FencingSafe, info.LastFence, info.LastBreak, info.Waiters = false, 0, nil, -1
		if f == lock.FormatNotALock {
			info.Format, info.FormatDetail, info.Object = lock.FormatNotALock, notALockDetail(robj), robj.keyObject()
			info.Notes = append(info.Notes, notes...)
			if dname != "" {
				info.Notes = append(info.Notes, fmt.Sprintf("no dsctl lock named %q is held", dname))
			}
			return o, nil
		}
		info.Held, info.Format, info.Holder = true, f, h
		info.FormatDetail = f.Describe()
		if f == lock.FormatRedisson {
			info.Waiters = int(rns.Val()[rawChan])
		}
		info.Notes = append(info.Notes, foreignNote)
	case dobj.exists():
		info.Format, info.FormatDetail, info.Object, o.obj = lock.FormatNotALock, notALockDetail(dobj), dobj.keyObject(), dobj
		info.Notes = append(info.Notes, fmt.Sprintf("%s is where dsctl keeps lock %q, but it does not hold a dsctl lease (written by something else?)", k.lock, dname))
	default:
		info.FormatDetail = "not held"
	}
	return o, nil
}

// mergeQuorum merges what each server reported, and returns the first server error
// beside it. A usage error from any server wins outright.
func (l *Locker) mergeQuorum(results []nodeResult[*observed]) (merged *lock.Info, views []*lock.Info, err error) {
	views = make([]*lock.Info, len(results))
	var firstErr error
	for i, r := range results {
		if r.err != nil {
			if errs.KindOf(r.err) == errs.KindUsage {
				return nil, nil, r.err
			}
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		views[i] = r.val.info
	}
	return l.merge(views, results), views, firstErr
}

// merge combines the servers' views in quorum mode: held when a majority name the
// same holder token. Each server's view is in Instances; a server whose key is not a
// lock is named in a note, and when no server has a lock the merged view is not a lock.
func (l *Locker) merge(views []*lock.Info, results []nodeResult[*observed]) *lock.Info {
	votes := map[string]int{}
	var top string
	for _, v := range views {
		if v != nil && v.Held && v.Holder != nil {
			votes[v.Holder.Token]++
			if votes[v.Holder.Token] > votes[top] {
				top = v.Holder.Token
			}
		}
	}
	chosen := firstView(views, func(v *lock.Info) bool { return v.Held && v.Holder != nil && v.Holder.Token == top })
	if chosen == nil {
		chosen = firstView(views, func(v *lock.Info) bool { return v.Format == lock.FormatNotALock })
	}
	if chosen == nil {
		chosen = firstView(views, func(*lock.Info) bool { return true })
	}
	if chosen == nil {
		return nil
	}
	c := *chosen
	base := &c
	base.Instances, base.Held, base.Holder, base.FencingSafe, base.LastFence = nil, false, nil, false, 0
	base.Notes = append([]string(nil), chosen.Notes...)
	base.Waiters = -1
	held := 0
	for i, v := range views {
		in := lock.InstanceInfo{Endpoint: l.nodes[i].addr}
		if v != nil {
			in.Format = v.Format
		}
		switch {
		case v == nil:
			in.Error = results[i].err.Error()
		case v.Held && v.Holder != nil:
			in.Held, in.Token, in.Fence, in.TTLLeft = true, v.Holder.Token, v.Holder.Fence, v.Holder.TTLLeftMs
			if v.Holder.Token == top {
				held++
				if base.Holder == nil {
					h := *v.Holder
					base.Holder = &h
				}
			}
		case v.Format == lock.FormatNotALock:
			what := v.FormatDetail
			if r := results[i]; r.val != nil && r.val.obj != nil {
				what = r.val.obj.describe()
			}
			base.Notes = append(base.Notes, fmt.Sprintf("on %s key %q is not a lock (%s)", in.Endpoint, v.Key, what))
		}
		if v != nil && v.Waiters > base.Waiters {
			base.Waiters = v.Waiters
		}
		base.Instances = append(base.Instances, in)
	}
	base.Held = held >= l.quorum
	if base.Holder != nil {
		base.FormatDetail = base.Format.Describe()
		base.Holder.Fence = 0
	}
	if !base.Held && held > 0 {
		base.Notes = append(base.Notes, fmt.Sprintf("token %s is on %d of %d servers, short of the majority of %d: not a valid lock; it expires within its TTL",
			lock.ShortToken(top), held, len(l.nodes), l.quorum))
		base.Holder = nil
	}
	base.Notes = append(base.Notes, quorumNote)
	return base
}

func firstView(views []*lock.Info, ok func(*lock.Info) bool) *lock.Info {
	for _, v := range views {
		if v != nil && ok(v) {
			return v
		}
	}
	return nil
}

// List reports dsctl's locks whose name starts with opt.Prefix, found with SCAN (never
// KEYS); with opt.Foreign also other libraries' locks whose key starts with it.
func (l *Locker) List(ctx context.Context, opt lock.ListOptions) ([]lock.Info, error) {
	if len(opt.Prefix) > maxRawKeyLen {
		return nil, errs.Usage("--prefix is %d bytes long; the limit is %d", len(opt.Prefix), maxRawKeyLen)
	}
	if !l.quorumMode() {
		return l.listOn(ctx, l.nodes[0], opt)
	}
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) ([]lock.Info, error) { return l.listOn(ctx, n, opt) })
	byKey := map[string][]*lock.Info{}
	var keys []string
	answered := 0
	var firstErr error
	for i, r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		answered++
		for j := range r.val {
			info := &r.val[j]
			if _, ok := byKey[info.Key]; !ok {
				keys = append(keys, info.Key)
				byKey[info.Key] = make([]*lock.Info, len(l.nodes))
			}
			byKey[info.Key][i] = info
		}
	}
	if answered == 0 {
		return nil, firstErr
	}
	sort.Strings(keys)
	out := make([]lock.Info, 0, len(keys))
	for _, k := range keys {
		fake := make([]nodeResult[*observed], len(l.nodes))
		for i := range fake {
			fake[i].err = results[i].err
		}
		views := byKey[k]
		// A server that answered but does not have the key reports "not held".
		for i, v := range views {
			if v == nil && results[i].err == nil {
				views[i] = &lock.Info{Name: k, Key: k, Waiters: -1}
			}
		}
		if m := l.merge(views, fake); m != nil {
			out = append(out, *m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (l *Locker) listOn(ctx context.Context, n *node, opt lock.ListOptions) ([]lock.Info, error) {
	keys, err := l.scan(ctx, n, KeyPrefix+"{"+globEscape(opt.Prefix)+"*")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range keys {
		if name := nameFromKey(k); name != "" && strings.HasPrefix(name, opt.Prefix) {
			names = append(names, name)
		}
	}
	var out []lock.Info
	for start := 0; start < len(names); start += batchSize {
		batch := names[start:min(start+batchSize, len(names))]
		infos, err := l.describeBatch(ctx, n, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, infos...)
	}
	if opt.Foreign {
		foreign, err := l.listForeign(ctx, n, opt.Prefix)
		if err != nil {
			return nil, err
		}
		out = append(out, foreign...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// scan collects the keys matching a pattern with SCAN.
func (l *Locker) scan(ctx context.Context, n *node, match string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	var cursor uint64
	for {
		var page []string
		err := l.call(ctx, n, func(ctx context.Context) error {
			var err error
			page, cursor, err = n.c.Scan(ctx, cursor, match, scanCount).Result()
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, k := range page {
			if !seen[k] { // SCAN may return a key twice
				seen[k] = true
				out = append(out, k)
			}
		}
		if cursor == 0 {
			return out, nil
		}
	}
}

// describeBatch reads the holder of each dsctl lock name in one round trip. A key that
// does not hold a dsctl lease (see classifyDsctl) is not listed.
func (l *Locker) describeBatch(ctx context.Context, n *node, names []string) ([]lock.Info, error) {
	type cmds struct {
		own *redis.MapStringStringCmd
		fc  *redis.StringCmd
		ns  *redis.Cmd
	}
	cs := make([]cmds, len(names))
	lockKeys := make([]string, len(names))
	for i, name := range names {
		lockKeys[i] = keysFor(name).lock
	}
	var desc *redis.Cmd
	err := l.call(ctx, n, func(ctx context.Context) error {
		pipe := n.c.Pipeline()
		desc = pipe.Eval(ctx, describeLua, lockKeys)
		for i, name := range names {
			k := keysFor(name)
			cs[i] = cmds{pipe.HGetAll(ctx, k.owner), pipe.Get(ctx, k.fence), pipe.Eval(ctx, scriptCountWaiters, []string{k.waiters}, k.base)}
		}
		_, _ = pipe.Exec(ctx) // per-key errors (nil, WRONGTYPE) are expected; a failed call fails desc too
		return desc.Err()
	})
	if err != nil {
		return nil, err
	}
	objs, err := parseObjects(lockKeys, desc.Val())
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", n.addr, err)
	}
	var out []lock.Info
	for i, name := range names {
		c, obj, owner := cs[i], objs[i], cs[i].own.Val()
		if !obj.exists() || !classifyDsctl(obj, owner) { // released or expired since SCAN saw it, or not a lease
			continue
		}
		h := &lock.Holder{Token: obj.head}
		h.SetTTLLeft(obj.ttl)
		if owner["token"] == obj.head {
			h.Fence, h.AcquiredAt, h.Owner = fence(owner["fence"]), msTime(owner["acquired_ms"]), ownerFromFields(owner)
		}
		out = append(out, lock.Info{Name: name, Key: lockKeys[i], Held: true, Format: lock.FormatDsctl,
			FormatDetail: lock.FormatDsctl.Describe(), Holder: h, Waiters: waiterCount(c.ns),
			LastFence: fence(c.fc.Val()), FencingSafe: l.backend.FencingSafe, Backend: l.backend})
	}
	return out, nil
}

// listForeign finds other libraries' locks among the keys starting with prefix: only
// keys that match a known format (formats.go), never keys that merely have a TTL.
func (l *Locker) listForeign(ctx context.Context, n *node, prefix string) ([]lock.Info, error) {
	all, err := l.scan(ctx, n, globEscape(prefix)+"*")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range all {
		if !strings.HasPrefix(k, KeyPrefix) {
			keys = append(keys, k)
		}
	}
	var out []lock.Info
	for start := 0; start < len(keys); start += batchSize {
		batch := keys[start:min(start+batchSize, len(keys))]
		var reply any
		err := l.call(ctx, n, func(ctx context.Context) error {
			var err error
			reply, err = scriptDescribe.Run(ctx, n.c, batch).Result()
			return err
		})
		if err != nil {
			return nil, err
		}
		objs, err := parseObjects(batch, reply)
		if err != nil {
			return nil, fmt.Errorf("redis %s: %w", n.addr, err)
		}
		for _, o := range objs {
			f, h, _ := classifyForeign(o)
			if f == lock.FormatNotALock || !o.exists() {
				continue
			}
			out = append(out, lock.Info{Name: o.key, Key: o.key, Held: true, Format: f, FormatDetail: f.Describe(), Holder: h,
				Waiters: -1, Backend: l.backend, Notes: []string{foreignNote}})
		}
	}
	return out, nil
}

// Break deletes the lock whoever holds it (or only while opt.IfToken holds it), records
// who broke it and why (dsctl locks), and wakes the waiters (dsctl's, and Redisson's).
// It returns the lock as it was. A key that is not a lock of a known format is left
// alone (a usage error, exit 2) unless opt.Raw. In quorum mode every server is
// inspected first and the break is refused on all of them if it is refused on one.
// guessedFormat reports formats recognised by the shape of a string value alone
// (redsync, bsm/redislock): such a key may as well be an application's random token
// with a TTL, so breaking it takes the token that inspect showed (--if-token).
func guessedFormat(f lock.Format) bool { return f == lock.FormatRedsync || f == lock.FormatRedislock }

func (l *Locker) Break(ctx context.Context, name string, opt lock.BreakOptions) (*lock.Info, error) {
	if err := lock.ValidateLabel(opt.Reason); err != nil {
		return nil, errs.Usage("--reason: %v", strings.TrimPrefix(err.Error(), "--owner text "))
	}
	if len(opt.IfToken) > valueHead {
		return nil, errs.Usage("--if-token is %d bytes long; no lock token is longer than %d", len(opt.IfToken), valueHead)
	}
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) (*observed, error) { return l.inspectOn(ctx, n, name) })
	var firstErr error
	for _, r := range results {
		if r.err != nil && (errs.KindOf(r.err) == errs.KindUsage || !l.quorumMode()) {
			return nil, r.err
		}
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	if !opt.Raw {
		if err := l.refuseNotALock(name, results); err != nil {
			return nil, err
		}
	}
	if opt.IfToken == "" && !opt.Raw {
		for _, r := range results {
			if r.err == nil && r.val.info.Held && guessedFormat(r.val.info.Format) {
				h := r.val.info.Holder
				return nil, errs.Usage("key %q looks like a %s lock only by the shape of its value (a random token with a TTL), as an application's token key also can; nothing was deleted",
					r.val.info.Key, r.val.info.Format).
					WithHint("if `dsctl lock inspect %s` shows the lock you mean, break it with --if-token %s", name, tokenOf(h))
			}
		}
	}
	act := make([]bool, len(results))
	if opt.IfToken != "" {
		holds := 0
		for i, r := range results {
			if r.err == nil && tokenHolds(r.val, opt.IfToken) {
				act[i] = true
				holds++
			}
		}
		need := 1
		if l.quorumMode() {
			need = l.quorum
		}
		if holds < need {
			return nil, l.notHeldByToken(name, opt.IfToken, results, holds)
		}
	} else {
		for i, r := range results {
			act[i] = r.err == nil && (r.val.info.Held || r.val.info.Format == lock.FormatNotALock)
		}
	}
	broken := each(ctx, l.nodes, func(ctx context.Context, n *node) (*lock.Info, error) {
		i := l.index(n)
		if !act[i] {
			return nil, nil
		}
		return l.breakObserved(ctx, n, results[i].val, opt)
	})
	if !l.quorumMode() {
		if broken[0].err != nil {
			return nil, broken[0].err
		}
		if broken[0].val == nil {
			return results[0].val.info, nil
		}
		return broken[0].val, nil
	}
	for _, b := range broken {
		if b.err != nil && (firstErr == nil || errs.KindOf(b.err) != errs.KindUnreachable) {
			firstErr = b.err
		}
	}
	merged, views, _ := l.mergeQuorum(results)
	if merged == nil {
		return nil, firstErr
	}
	// Broken on any server counts: report what was there even short of a majority.
	for i, b := range broken {
		if b.err == nil && b.val != nil && views[i] != nil && views[i].Held {
			merged.Held = true
		}
	}
	if merged.Held && merged.Holder == nil {
		if v := firstView(views, func(v *lock.Info) bool { return v.Holder != nil }); v != nil {
			h := *v.Holder
			merged.Holder, merged.Format, merged.FormatDetail = &h, v.Format, v.Format.Describe()
		}
	}
	return merged, firstErr
}

func (l *Locker) index(n *node) int {
	for i, m := range l.nodes {
		if m == n {
			return i
		}
	}
	return -1
}

// refuseNotALock is the error for a break of a key that is not a lock on some server.
func (l *Locker) refuseNotALock(name string, results []nodeResult[*observed]) error {
	var what []string
	key := name
	for _, r := range results {
		if r.err != nil || r.val.info.Format != lock.FormatNotALock {
			continue
		}
		key = r.val.info.Key
		w := r.val.obj.describe()
		if l.quorumMode() {
			w = "on " + l.nodes[r.i].addr + ": " + w
		}
		what = append(what, w)
	}
	if len(what) == 0 {
		return nil
	}
	msg := fmt.Sprintf("key %q is not a lock (%s): it matches no known lock format (dsctl, go-redsync/redsync, bsm/redislock, Redisson RLock); nothing was deleted",
		key, strings.Join(what, "; "))
	if dname, raw, _ := lockNames(name); dname != "" && key == raw {
		msg += fmt.Sprintf("; no dsctl lock named %q is held", name)
	}
	return errs.Usage("%s", msg).
		WithHint("see `dsctl lock inspect %s`; if you are sure it is a stale lock of another kind, delete it with `dsctl lock break %s --force --raw`", lock.QuoteCommand([]string{name}), lock.QuoteCommand([]string{name}))
}

// tokenHolds reports whether token holds the lock o saw: its holder token (for
// redislock also the whole value, token + metadata), or with Raw the whole value of a
// string key that is not a lock.
func tokenHolds(o *observed, token string) bool {
	i := o.info
	if i.Held && i.Holder != nil && i.Holder.Token == token {
		return true
	}
	whole := o.obj != nil && o.obj.typ == "string" && o.obj.complete() && o.obj.head == token
	return whole && (i.Format == lock.FormatRedislock || i.Format == lock.FormatNotALock)
}

// notHeldByToken is the exit-4 error of a break whose --if-token does not hold the lock.
func (l *Locker) notHeldByToken(name, token string, results []nodeResult[*observed], holds int) error {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired}
	views := make([]*lock.Info, len(results))
	for i, r := range results {
		if r.err == nil {
			views[i] = r.val.info
		}
	}
	cur := views[0]
	if l.quorumMode() {
		cur = l.merge(views, results)
	}
	if cur == nil {
		cur = firstView(views, func(*lock.Info) bool { return true })
	}
	if cur != nil {
		e.Name = cur.Name
		h := cur.Holder
		if h == nil {
			if v := firstView(views, func(v *lock.Info) bool { return v.Held && v.Holder != nil }); v != nil {
				h = v.Holder
			}
		}
		if h != nil {
			e.Reason, e.Current = lock.LostTaken, l.holderSeen(h)
		}
	}
	var detail []string
	if e.Current != nil {
		detail = append(detail, "the holder's token is "+e.Current.Token)
	}
	if l.quorumMode() {
		detail = append(detail, fmt.Sprintf("token %s holds %d of %d servers, short of the majority of %d", lock.ShortToken(token), holds, len(l.nodes), l.quorum))
	}
	e.Detail = strings.Join(append(detail, "nothing was deleted"), "; ")
	return lock.NotHeld(e)
}

// notHeldOn is the exit-4 error of a break whose token no longer held the lock on n
// when the compare-and-delete ran (it changed hands after inspect).
func (l *Locker) notHeldOn(n *node, now *lock.Info, token string) error {
	e := &lock.NotHeldError{Name: now.Name, Token: token, Reason: lock.LostExpired, Detail: "it changed hands while breaking it; nothing was deleted"}
	if l.quorumMode() {
		e.Detail = "on " + n.addr + " " + e.Detail
	}
	if now.Held && now.Holder != nil {
		e.Reason, e.Current = lock.LostTaken, l.holderSeen(now.Holder)
		e.Detail = "the holder's token is " + now.Holder.Token + "; " + e.Detail
	}
	return lock.NotHeld(e)
}

// breakObserved deletes, on one server, the lock inspect saw there: with a
// compare-and-delete, so a lock that changed hands meanwhile is not deleted.
func (l *Locker) breakObserved(ctx context.Context, n *node, o *observed, opt lock.BreakOptions) (*lock.Info, error) {
	info := o.info
	var deleted int64
	var err error
	switch info.Format {
	case lock.FormatDsctl:
		k := keysFor(info.Name)
		vals, err := l.runScript(ctx, n, scriptBreak, []string{k.lock, k.owner, k.brk, k.waiters},
			opt.By, opt.Reason, k.base, strconv.Itoa(breakKeepsMs), opt.IfToken)
		if err != nil {
			return nil, err
		}
		switch num(vals[0]) {
		case 1:
			deleted = 1
			info.Holder = l.holderSeen(parseHolder(vals[1:]))
		case 0:
			if opt.IfToken == "" { // it ended on its own meanwhile: nothing left to break
				info.Held, info.Holder = false, nil
				return info, nil
			}
		}
	case lock.FormatRedisson:
		err = l.call(ctx, n, func(ctx context.Context) error {
			var err error
			deleted, err = scriptBreakRedisson.Run(ctx, n.c, []string{info.Key}, info.Holder.Token, redissonChannel(info.Key)).Int64()
			return err
		})
	case lock.FormatRedsync, lock.FormatRedislock, lock.FormatNotALock:
		err = l.call(ctx, n, func(ctx context.Context) error {
			var err error
			deleted, err = scriptBreakKey.Run(ctx, n.c, []string{o.obj.key}, o.obj.typ, o.obj.size, o.obj.head).Int64()
			return err
		})
	default:
		return info, nil
	}
	if err != nil {
		return nil, err
	}
	if deleted == 0 {
		if opt.IfToken != "" {
			now, ierr := l.inspectOn(ctx, n, info.Key)
			if ierr != nil {
				return nil, ierr
			}
			return nil, l.notHeldOn(n, now.info, opt.IfToken)
		}
		return nil, errs.New(errs.KindRuntime, "%q changed on %s while breaking it; nothing was deleted there", info.Key, n.addr).
			WithHint("inspect it again and retry")
	}
	return info, nil
}

func waiterCount(c *redis.Cmd) int {
	n, _ := c.Int64()
	return int(n)
}
