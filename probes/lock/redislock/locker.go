// Package redislock is the Redis backend of dsctl's lock contract (package lock):
// leases taken with one Lua script (SET NX PX + fencing counter + owner data), renewed
// and released with compare-and-set scripts, waiters queued in arrival order and handed
// the lock by the release (told by pub/sub, never polling), and a quorum mode (Redlock) over several independent masters. It also reads
// the locks of other libraries (go-redsync/redsync, bsm/redislock, Redisson RLock) so
// `inspect` and `list` can show who holds what.
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Locker implements lock.Locker on one Redis server, or on several independent
// masters in quorum mode.
type Locker struct {
	id      string // names this Locker's wake-up channels (hex)
	nodes   []*node
	dialer  endpoint.Dialer
	timeout time.Duration
	quorum  int
	backend lock.Backend

	subMu  sync.Mutex
	subs   []*nodeSub // one shared pub/sub connection per server, made on the first wait
	closed bool

	tokens  func() string // makes holder tokens (tests replace it)
	recheck time.Duration // how often checkServers asks a server again (recheckEvery)
	// beforeMessage, when set (tests), runs before each pub/sub message is handled:
	// a test delays or holds messages with it, as a slow connection or a pause would.
	beforeMessage func(payload string)

	checkMu sync.Mutex // serializes checkServer

	goneMu sync.Mutex
	gone   map[string]goneWaiter // waiters that gave up without a lease, by id
}

type node struct {
	addr      string
	c         *redis.Client
	checkedAt atomic.Int64 // when checkServer last passed (UnixNano; 0: never)
	runID     string       // the server's run_id, once known (guarded by Locker.checkMu)
	// evicts says why the server may evict keys ("" when it may not, or unknown);
	// guarded by Locker.checkMu.
	evicts string
}

var _ lock.Locker = (*Locker)(nil)

// New makes a Locker for the endpoint without any I/O: one address is a single
// server, several are independent masters for quorum mode. Clients come from the
// endpoint package (timeouts, TLS, ACL user and password are applied there).
func New(d endpoint.Dialer, ep endpoint.Redis) (*Locker, error) {
	targets, err := d.RedisTargets(ep)
	if err != nil {
		return nil, err
	}
	l := &Locker{id: newToken()[:16], dialer: d, timeout: d.Timeout, tokens: newToken, recheck: recheckEvery}
	if l.timeout <= 0 {
		l.timeout = endpoint.DefaultTimeout
	}
	addrs := make([]string, 0, len(targets))
	seen := map[string]bool{}
	for _, t := range targets {
		if key := strings.ToLower(t.Addr); seen[key] {
			return nil, errs.Usage("redis: %s is listed twice; a quorum needs independent masters (%s)", t.Addr, strings.Join(ep.Addrs, ",")).
				WithHint("list each master once: one address is a single server, three or five are a quorum")
		} else {
			seen[key] = true
		}
		l.nodes = append(l.nodes, &node{addr: t.Addr, c: redis.NewClient(t.Options)})
		addrs = append(addrs, t.Addr)
	}
	l.quorum = len(l.nodes)/2 + 1
	l.backend = lock.Backend{Kind: "redis", Mode: lock.ModeSingle, Endpoints: addrs, FencingSafe: true, Notify: true, Detached: true}
	if len(l.nodes) > 1 {
		l.backend.Mode = lock.ModeQuorum
		l.backend.FencingSafe = false
		if len(l.nodes)%2 == 0 {
			l.backend.Warnings = append(l.backend.Warnings, fmt.Sprintf(
				"%d masters need %d to agree and survive %d down, as %d would: use an odd number of masters",
				len(l.nodes), l.quorum, len(l.nodes)-l.quorum, len(l.nodes)-1))
		}
	}
	return l, nil
}

// Backend describes the servers and what they promise.
func (l *Locker) Backend() lock.Backend { return l.backend }

// Close closes the clients.
func (l *Locker) Close() error {
	l.closeSubs()
	var first error
	for _, n := range l.nodes {
		if err := n.c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Clients exposes the underlying clients (for tests and the benchmark's checks).
func (l *Locker) Clients() []*redis.Client {
	out := make([]*redis.Client, len(l.nodes))
	for i, n := range l.nodes {
		out[i] = n.c
	}
	return out
}

func (l *Locker) quorumMode() bool { return len(l.nodes) > 1 }

// call bounds one request by the timeout and classifies its failure.
func (l *Locker) call(ctx context.Context, n *node, fn func(ctx context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	err := fn(cctx)
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return l.dialer.RedisError(n.addr, err)
}

// runScript runs a script on one node and returns its array reply.
func (l *Locker) runScript(ctx context.Context, n *node, s *redis.Script, keys []string, args ...any) ([]any, error) {
	if n.checkedAt.Load() == 0 {
		if err := l.checkServer(ctx, n); err != nil {
			return nil, err
		}
	}
	var vals []any
	err := l.call(ctx, n, func(ctx context.Context) error {
		v, err := s.Run(ctx, n.c, keys, args...).Result()
		if err != nil {
			return err
		}
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			return fmt.Errorf("unexpected script reply %T %v", v, v)
		}
		vals = arr
		return nil
	})
	return vals, err
}

// minRedisMajor is the oldest Redis whose scripts may call TIME before writing
// (effects replication is the default from 5.0). Older servers reject the first write
// after TIME, half-way through a script, which would leave a lock without its owner
// data and fencing token.
const minRedisMajor = 5

// recheckEvery is how often a long-lived Locker (lock run, bench, a library user)
// asks a server again about the facts checkServer checks: a server whose eviction
// policy is changed, or that is replaced, is noticed within this time.
const recheckEvery = 10 * time.Second

// checkServer asks a server, before its first script and again every recheckEvery,
// for its version (refusing Redis older than 5), its eviction policy (a server that
// may evict keys is refused for acquire: see evictionRisk) and its run_id (refusing a
// quorum that lists one server twice under different addresses). A user that may not
// run INFO is refused in quorum mode, where the acquire script also needs INFO to
// tell a restarted master; on one server it gets a warning that nothing was checked.
// A server that does not know INFO's sections (an in-process fake) is taken as it is.
func (l *Locker) checkServer(ctx context.Context, n *node) error {
	var info string
	err := l.call(ctx, n, func(ctx context.Context) error {
		var err error
		info, err = n.c.Info(ctx).Result() // the default sections: server, memory, ...
		return err
	})
	if err != nil {
		if errs.KindOf(err) == errs.KindUnreachable || ctx.Err() != nil {
			return err
		}
		evicts := ""
		if strings.Contains(err.Error(), "NOPERM") {
			if l.quorumMode() {
				return errs.Usage("redis: %s refuses INFO to this user; quorum mode needs it, to tell a master that restarted (and forgot the leases it backed) and to tell the masters apart", n.addr).
					WithHint("allow the user INFO (ACL SETUSER <user> +info), or use one server")
			}
			evicts = infoRefusedNote
		}
		l.checkMu.Lock()
		n.evicts = evicts
		l.checkMu.Unlock()
		n.checkedAt.Store(time.Now().UnixNano())
		return nil
	}
	fields := infoFields(info)
	if v := fields["redis_version"]; v != "" {
		major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if major > 0 && major < minRedisMajor {
			return errs.Usage("redis: %s runs Redis %s; dsctl's lock scripts need Redis 5.0 or newer", n.addr, v).
				WithHint("upgrade the server, or point --redis at one running Redis 5 or newer")
		}
	}
	evicts := ""
	if mm, _ := strconv.ParseInt(fields["maxmemory"], 10, 64); mm > 0 {
		if p := fields["maxmemory_policy"]; p != "" && p != "noeviction" {
			evicts = fmt.Sprintf("maxmemory %s, maxmemory-policy %s", fields["maxmemory_human"], p)
		}
	}
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	n.evicts = evicts
	if id := fields["run_id"]; id != "" && l.quorumMode() {
		for _, o := range l.nodes {
			if o != n && o.runID == id {
				return errs.Usage("redis: %s and %s are the same server (run_id %s); a quorum needs independent masters", o.addr, n.addr, lock.ShortToken(id)).
					WithHint("list each master once: one address is a single server, three or five are a quorum")
			}
		}
		n.runID = id
	}
	n.checkedAt.Store(time.Now().UnixNano())
	return nil
}

// infoRefusedNote is node.evicts for a server whose eviction policy cannot be read.
const infoRefusedNote = "INFO refused to this user"

// needsCheck reports whether n was never checked, or not for every.
func (n *node) needsCheck(every time.Duration) bool {
	at := n.checkedAt.Load()
	return at == 0 || time.Since(time.Unix(0, at)) > every
}

// checkServers runs checkServer on every server due for it, in parallel, so that a
// setup error (a quorum listing one server twice, an old Redis) fails the command as a
// whole instead of costing one vote. Unreachable servers are checked later.
func (l *Locker) checkServers(ctx context.Context) error {
	for _, r := range each(ctx, l.nodes, func(ctx context.Context, n *node) (struct{}, error) {
		if !n.needsCheck(l.recheck) {
			return struct{}{}, nil
		}
		return struct{}{}, l.checkServer(ctx, n)
	}) {
		if r.err != nil && errs.KindOf(r.err) == errs.KindUsage {
			return r.err
		}
		if r.err != nil && !l.quorumMode() {
			return r.err
		}
	}
	return nil
}

// evictionRisk refuses to take a lock on a server that may evict keys under memory
// pressure: it could drop a held lease before its TTL, and a second client would take
// the lock while the first still holds it.
func (l *Locker) evictionRisk() error {
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	for _, n := range l.nodes {
		if n.evicts == infoRefusedNote {
			return errs.Usage("redis: %s refuses INFO to this user, so dsctl cannot check that it will not evict a held lock (maxmemory-policy noeviction) or that it runs Redis 5+", n.addr).
				WithHint("allow the user INFO (ACL SETUSER <user> +info); inspect, list and break work without it")
		}
		if n.evicts != "" {
			return errs.Usage("redis: %s may evict keys (%s): a held lock could vanish before its TTL, and two clients would hold it", n.addr, n.evicts).
				WithHint("set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction), or keep locks on a Redis that is not a cache")
		}
	}
	return nil
}

// infoFields parses an INFO reply's "key:value" lines.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// newToken makes a 128-bit random holder token.
func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ---- reply parsing ----

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func num(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func fence(v any) lock.FencingToken {
	n, _ := strconv.ParseUint(str(v), 10, 64)
	return lock.FencingToken(n)
}

func pairs(vals []any) map[string]string {
	m := make(map[string]string, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		m[str(vals[i])] = str(vals[i+1])
	}
	return m
}

// pttl converts a PTTL reply: -1 (no expiry) becomes a negative duration.
func pttl(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// parseHolder reads {pttl, token, owner field/value...} (the tail of holder()).
func parseHolder(vals []any) *lock.Holder {
	if len(vals) < 2 {
		return nil
	}
	h := &lock.Holder{Token: str(vals[1])}
	h.SetTTLLeft(pttl(num(vals[0])))
	fields := pairs(vals[2:])
	if fields["token"] == h.Token {
		h.Fence = fence(fields["fence"])
		h.AcquiredAt = msTime(fields["acquired_ms"])
		h.Owner = ownerFromFields(fields)
	}
	return h
}

func ownerFields(o lock.Owner) []any {
	var out []any
	add := func(k, v string) {
		if v != "" {
			out = append(out, k, v)
		}
	}
	add("host", o.Host)
	if o.PID > 0 {
		add("pid", strconv.Itoa(o.PID))
	}
	add("user", o.User)
	add("cmd", o.Command)
	add("label", o.Label)
	add("tool", o.Tool)
	return out
}

func ownerFromFields(f map[string]string) *lock.Owner {
	pid, _ := strconv.Atoi(f["pid"])
	o := &lock.Owner{Host: f["host"], PID: pid, User: f["user"], Command: f["cmd"], Label: f["label"], Tool: f["tool"]}
	if *o == (lock.Owner{}) {
		return nil
	}
	return o
}

func parseBreak(f map[string]string) *lock.Break {
	if len(f) == 0 {
		return nil
	}
	return &lock.Break{At: msTime(f["at_ms"]), By: f["by"], Reason: f["reason"], Token: f["token"], Fence: fence(f["fence"])}
}

// notHeld turns the reply of not_held() into the error.
func notHeld(name, token string, vals []any) *lock.NotHeldError {
	e := &lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired}
	switch num(vals[0]) {
	case 2:
		e.Reason, e.Current = lock.LostTaken, parseHolder(vals[1:])
	case 3:
		e.Reason = lock.LostDataLoss
	case 4:
		e.Reason, e.Break = lock.LostBroken, parseBreak(pairs(vals[1:]))
	}
	return e
}

// holderSeen is a holder as one server reports it. In quorum mode that server's
// fencing counter means nothing (each server has its own), so it is not shown.
func (l *Locker) holderSeen(h *lock.Holder) *lock.Holder {
	if h != nil && l.quorumMode() {
		h.Fence = 0
	}
	return h
}

// notHeldSeen drops one server's fencing tokens from a not-held answer in quorum mode.
func (l *Locker) notHeldSeen(e *lock.NotHeldError) *lock.NotHeldError {
	l.holderSeen(e.Current)
	if e.Break != nil && l.quorumMode() {
		e.Break.Fence = 0
	}
	return e
}

// ---- fan-out over the nodes (quorum mode) ----

type nodeResult[T any] struct {
	i   int
	val T
	err error
}

// each runs fn on every node in parallel and returns the results in node order.
func each[T any](ctx context.Context, nodes []*node, fn func(ctx context.Context, n *node) (T, error)) []nodeResult[T] {
	out := make([]nodeResult[T], len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := fn(ctx, n)
			out[i] = nodeResult[T]{i: i, val: v, err: err}
		}()
	}
	wg.Wait()
	return out
}
