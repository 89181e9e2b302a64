package redislock

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

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
	info  *lock.Info
	raw   string // the full value of a foreign string lock
	field string // the holder field of a Redisson lock
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
// recognised as another library's lock.
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

func (l *Locker) inspectOn(ctx context.Context, n *node, name string) (*observed, error) {
	dname, raw, err := lockNames(name)
	if err != nil {
		return nil, err
	}
	var (
		get, fc, rget   *redis.StringCmd
		pt, rpt         *redis.DurationCmd
		own, brk, rhash *redis.MapStringStringCmd
		ns              *redis.Cmd
		rns             *redis.MapStringIntCmd
		typ             *redis.StatusCmd
		k               = keysFor(dname)
		rawChannel      = redissonChannel(raw)
	)
	err = l.call(ctx, n, func(ctx context.Context) error {
		pipe := n.c.Pipeline()
		var check redis.Cmder
		if dname != "" {
			get, pt = pipe.Get(ctx, k.lock), pipe.PTTL(ctx, k.lock)
			own, fc, brk = pipe.HGetAll(ctx, k.owner), pipe.Get(ctx, k.fence), pipe.HGetAll(ctx, k.brk)
			ns = pipe.Eval(ctx, scriptCountWaiters, []string{k.waiters}, k.base)
			check = pt
		}
		if raw != "" {
			typ, rpt = pipe.Type(ctx, raw), pipe.PTTL(ctx, raw)
			rget, rhash = pipe.Get(ctx, raw), pipe.HGetAll(ctx, raw)
			rns = pipe.PubSubNumSub(ctx, rawChannel)
			if check == nil {
				check = typ
			}
		}
		_, _ = pipe.Exec(ctx) // per-command errors (nil, WRONGTYPE) are expected and read below
		return check.Err()
	})
	if err != nil {
		return nil, err
	}
	dsctlHeld := false
	info := &lock.Info{Name: name, Waiters: -1, Backend: l.backend}
	if dname != "" {
		info.Name, info.Key = dname, k.lock
		info.Waiters = waiterCount(ns)
		info.LastFence = fence(fc.Val())
		info.FencingSafe = l.backend.FencingSafe
		info.LastBreak = parseBreak(brk.Val())
		if tok := get.Val(); tok != "" {
			dsctlHeld = true
			h := &lock.Holder{Token: tok}
			h.SetTTLLeft(durationReply(pt.Val()))
			if f := own.Val(); f["token"] == tok {
				h.Fence = fence(f["fence"])
				h.AcquiredAt = msTime(f["acquired_ms"])
				h.Owner = ownerFromFields(f)
			}
			info.Held, info.Format, info.Holder = true, lock.FormatDsctl, h
		}
	}
	o := &observed{info: info}
	if !dsctlHeld && raw != "" {
		rawNotFound := false
		switch typ.Val() {
		case "string":
			info.Format, info.Holder = classifyString(rget.Val(), durationReply(rpt.Val()))
			o.raw = rget.Val()
		case "hash":
			info.Format, info.Holder = classifyHash(rhash.Val(), durationReply(rpt.Val()))
			if info.Holder != nil {
				o.field = info.Holder.Token
				info.Waiters = int(rns.Val()[rawChannel])
			}
		case "none":
			rawNotFound = true
		default:
			info.Format = lock.FormatNotALock
			info.Notes = append(info.Notes, fmt.Sprintf("key %q is a %s", raw, typ.Val()))
		}
		if !rawNotFound {
			info.Name, info.Key = raw, raw
			info.FencingSafe, info.LastFence, info.LastBreak = false, 0, nil
			info.Held = info.Format != lock.FormatNotALock
			if info.Held {
				info.Notes = append(info.Notes, foreignNote)
				if info.Holder != nil && info.Holder.TTLLeft < 0 {
					info.Notes = append(info.Notes, "the key has no expiry: it is held until deleted")
				}
			}
		}
	}
	if info.Held || info.Format != lock.FormatNone {
		info.FormatDetail = info.Format.Describe()
	} else {
		info.FormatDetail = "not held"
	}
	return o, nil
}

// durationReply converts go-redis's PTTL value (-1ns no expiry, -2ns no key).
func durationReply(d time.Duration) time.Duration {
	if d < 0 {
		return -1
	}
	return d
}

// merge combines the servers' views in quorum mode: held when a majority name the
// same holder token.
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

func (l *Locker) merge(views []*lock.Info, results []nodeResult[*observed]) *lock.Info {
	var base *lock.Info
	votes := map[string]int{}
	var top string
	for _, v := range views {
		if v == nil {
			continue
		}
		if base == nil {
			c := *v
			base = &c
		}
		if v.Held && v.Holder != nil {
			votes[v.Holder.Token]++
			if votes[v.Holder.Token] > votes[top] {
				top = v.Holder.Token
			}
		}
	}
	if base == nil {
		return nil
	}
	base.Instances, base.Held, base.Holder, base.FencingSafe, base.LastFence = nil, false, nil, false, 0
	base.Waiters = -1
	held := 0
	for i, v := range views {
		in := lock.InstanceInfo{Endpoint: l.nodes[i].addr}
		switch {
		case v == nil:
			in.Error = results[i].err.Error()
		case v.Held && v.Holder != nil:
			in.Held, in.Token, in.Fence, in.TTLLeft = true, v.Holder.Token, v.Holder.Fence, v.Holder.TTLLeftMs
			if v.Holder.Token == top {
				held++
				if base.Holder == nil {
					h := *v.Holder
					base.Holder, base.Format, base.Key, base.Name = &h, v.Format, v.Key, v.Name
				}
			}
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

// describeBatch reads the holder of each dsctl lock name in one round trip.
func (l *Locker) describeBatch(ctx context.Context, n *node, names []string) ([]lock.Info, error) {
	type cmds struct {
		get *redis.StringCmd
		pt  *redis.DurationCmd
		own *redis.MapStringStringCmd
		fc  *redis.StringCmd
		ns  *redis.Cmd
	}
	cs := make([]cmds, len(names))
	err := l.call(ctx, n, func(ctx context.Context) error {
		pipe := n.c.Pipeline()
		for i, name := range names {
			k := keysFor(name)
			cs[i] = cmds{pipe.Get(ctx, k.lock), pipe.PTTL(ctx, k.lock), pipe.HGetAll(ctx, k.owner), pipe.Get(ctx, k.fence), pipe.Eval(ctx, scriptCountWaiters, []string{k.waiters}, k.base)}
		}
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []lock.Info
	for i, name := range names {
		c := cs[i]
		tok := c.get.Val()
		if tok == "" { // released or expired since SCAN saw it
			continue
		}
		k := keysFor(name)
		h := &lock.Holder{Token: tok}
		h.SetTTLLeft(durationReply(c.pt.Val()))
		if f := c.own.Val(); f["token"] == tok {
			h.Fence, h.AcquiredAt, h.Owner = fence(f["fence"]), msTime(f["acquired_ms"]), ownerFromFields(f)
		}
		out = append(out, lock.Info{Name: name, Key: k.lock, Held: true, Format: lock.FormatDsctl,
			FormatDetail: lock.FormatDsctl.Describe(), Holder: h, Waiters: waiterCount(c.ns),
			LastFence: fence(c.fc.Val()), FencingSafe: l.backend.FencingSafe, Backend: l.backend})
	}
	return out, nil
}

// listForeign finds other libraries' locks among the keys starting with prefix.
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
		types := make([]*redis.StatusCmd, len(batch))
		ttls := make([]*redis.DurationCmd, len(batch))
		err := l.call(ctx, n, func(ctx context.Context) error {
			pipe := n.c.Pipeline()
			for i, k := range batch {
				types[i], ttls[i] = pipe.Type(ctx, k), pipe.PTTL(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		strs := map[int]*redis.StringCmd{}
		hashes := map[int]*redis.MapStringStringCmd{}
		err = l.call(ctx, n, func(ctx context.Context) error {
			pipe := n.c.Pipeline()
			for i, k := range batch {
				if ttls[i].Val() <= 0 { // locks expire; keys without a TTL are not listed
					continue
				}
				switch types[i].Val() {
				case "string":
					strs[i] = pipe.Get(ctx, k)
				case "hash":
					hashes[i] = pipe.HGetAll(ctx, k)
				}
			}
			if len(strs)+len(hashes) == 0 {
				return nil
			}
			_, err := pipe.Exec(ctx)
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, k := range batch {
			var f lock.Format
			var h *lock.Holder
			if c, ok := strs[i]; ok && c.Val() != "" {
				f, h = classifyString(c.Val(), ttls[i].Val())
			} else if c, ok := hashes[i]; ok {
				f, h = classifyHash(c.Val(), ttls[i].Val())
			}
			if f != lock.FormatRedsync && f != lock.FormatRedislock && f != lock.FormatRedisson {
				continue // plain strings with a TTL are caches far more often than locks
			}
			out = append(out, lock.Info{Name: k, Key: k, Held: true, Format: f, FormatDetail: f.Describe(), Holder: h,
				Waiters: -1, Backend: l.backend, Notes: []string{foreignNote}})
		}
	}
	return out, nil
}

// Break deletes the lock whoever holds it, records who broke it and why (dsctl locks),
// and wakes the waiters (dsctl's, and Redisson's). It returns the lock as it was.
func (l *Locker) Break(ctx context.Context, name string, opt lock.BreakOptions) (*lock.Info, error) {
	if err := lock.ValidateLabel(opt.Reason); err != nil {
		return nil, errs.Usage("--reason: %v", strings.TrimPrefix(err.Error(), "--owner text "))
	}
	if !l.quorumMode() {
		return l.breakOn(ctx, l.nodes[0], name, opt)
	}
	results := each(ctx, l.nodes, func(ctx context.Context, n *node) (*observed, error) {
		info, err := l.breakOn(ctx, n, name, opt)
		return &observed{info: info}, err
	})
	merged, views, err := l.mergeQuorum(results)
	if merged == nil {
		return nil, err
	}
	// Broken on any server counts: report what was there even short of a majority.
	for _, in := range merged.Instances {
		if in.Held {
			merged.Held = true
		}
	}
	if merged.Held && merged.Holder == nil {
		for _, v := range views {
			if v != nil && v.Holder != nil {
				h := *v.Holder
				merged.Holder, merged.Format, merged.FormatDetail = &h, v.Format, v.Format.Describe()
				break
			}
		}
	}
	return merged, err
}

func (l *Locker) breakOn(ctx context.Context, n *node, name string, opt lock.BreakOptions) (*lock.Info, error) {
	o, err := l.inspectOn(ctx, n, name)
	if err != nil {
		return nil, err
	}
	info := o.info
	if !info.Held {
		if info.Format == lock.FormatNotALock {
			return nil, errs.Usage("key %q does not look like a lock (%s); not deleting it", info.Key, strings.Join(info.Notes, "; ")).
				WithHint("delete it with redis-cli if you are sure")
		}
		return info, nil
	}
	var deleted int64
	switch info.Format {
	case lock.FormatDsctl:
		k := keysFor(info.Name)
		vals, err := l.runScript(ctx, n, scriptBreak, []string{k.lock, k.owner, k.brk, k.waiters},
			opt.By, opt.Reason, k.base, strconv.Itoa(breakKeepsMs))
		if err != nil {
			return nil, err
		}
		if num(vals[0]) == 1 {
			deleted = 1
			info.Holder = parseHolder(vals[1:])
		}
	case lock.FormatRedisson:
		err = l.call(ctx, n, func(ctx context.Context) error {
			var err error
			deleted, err = scriptBreakRedisson.Run(ctx, n.c, []string{info.Key}, o.field, redissonChannel(info.Key)).Int64()
			return err
		})
	default:
		err = l.call(ctx, n, func(ctx context.Context) error {
			var err error
			deleted, err = scriptBreakString.Run(ctx, n.c, []string{info.Key}, o.raw).Int64()
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	if deleted == 0 {
		return nil, errs.New(errs.KindRuntime, "lock %q changed hands while breaking it; nothing was deleted", info.Name).
			WithHint("inspect it again and retry")
	}
	return info, nil
}

func waiterCount(c *redis.Cmd) int {
	n, _ := c.Int64()
	return int(n)
}
