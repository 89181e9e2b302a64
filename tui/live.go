package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/health"
	"github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/zk"
)

// Live is the Backend over the real probes.
type Live struct {
	e          config.Endpoints
	d          endpoint.Dialer
	configured []string
	// breaker names who breaks a lock, for the lock's record (user@host).
	breaker string

	mu      sync.Mutex
	zkc     *zk.Client
	kinds   []backends.Kind
	lockers map[backends.Kind]lock.Locker // opened on first use, per backend
}

// NewLive makes the backend for the resolved endpoints. configured lists the
// backends to show (redis, zookeeper, kafka, sql); by is user@host for lock breaks.
// The dialer's Warn must not write to the terminal the dashboard draws on.
func NewLive(e config.Endpoints, d endpoint.Dialer, configured []string, by string) *Live {
	return &Live{e: e, d: d, configured: configured, breaker: by, kinds: LockKinds(e, configured), lockers: map[backends.Kind]lock.Locker{}}
}

// Configured lists the backends shown.
func (l *Live) Configured() []string { return l.configured }

func (l *Live) has(b string) bool {
	for _, c := range l.configured {
		if c == b {
			return true
		}
	}
	return false
}

// Close ends the ZooKeeper session and the lockers' connections.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.zkc != nil {
		l.zkc.Close()
		l.zkc = nil
	}
	for k, lk := range l.lockers {
		lk.Close()
		delete(l.lockers, k)
	}
}

// Health checks every configured backend at once (health.Check: state, latency,
// version per endpoint).
func (l *Live) Health(ctx context.Context) []health.Result {
	return health.Check(ctx, l.d, health.Targets{Endpoints: l.e, Backends: l.configured, Unavailable: l.e.Unavailable})
}

// ZKStatus asks every member with srvr and mntr.
func (l *Live) ZKStatus(ctx context.Context) (*zk.Status, error) {
	if !l.has("zookeeper") {
		return nil, errors.New("zookeeper is not configured")
	}
	return zk.EnsembleStatus(ctx, zk.StatusOptions{Servers: l.e.ZooKeeper.Servers, Timeout: l.d.Limit()}), nil
}

// zk returns the shared session, opening it on first use.
func (l *Live) zk(ctx context.Context) (*zk.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.zkc != nil {
		return l.zkc, nil
	}
	c, err := zk.Connect(ctx, l.d, zk.Options{Endpoint: l.e.ZooKeeper})
	if err != nil {
		return nil, err
	}
	l.zkc = c
	return c, nil
}

// dropZK forgets a session that failed, so the next call opens a new one.
func (l *Live) dropZK(c *zk.Client) {
	l.mu.Lock()
	if l.zkc == c {
		l.zkc = nil
	}
	l.mu.Unlock()
	go c.Close()
}

// ZKList reads a znode's data, stat and children.
func (l *Live) ZKList(ctx context.Context, path string) (*ZKListing, error) {
	c, err := l.zk(ctx)
	if err != nil {
		return nil, err
	}
	n, err := c.Get(ctx, path)
	if err != nil {
		if !zk.ErrNoNode(err) && !zk.ErrNoAuth(err) {
			l.dropZK(c)
		}
		return nil, err
	}
	kids, _, err := c.Children(ctx, path)
	if err != nil {
		return nil, err
	}
	return &ZKListing{Path: path, Data: n.Data, Stat: n.Stat, Children: kids}, nil
}

// ZKWatch watches paths (data and children, with the new value on each change) on a
// session of its own (zk.WatchStream), closed with ctx even if nobody reads.
func (l *Live) ZKWatch(ctx context.Context, paths []string) (<-chan zk.Event, error) {
	st, err := zk.WatchStream(ctx, l.d, zk.Options{Endpoint: l.e.ZooKeeper}, zk.WatchOptions{Paths: paths, Data: true, MaxNodes: 10_000})
	if err != nil {
		return nil, err
	}
	return st.Events(), nil
}

// Kafka reads the cluster, audits it with the default policy and reads the groups.
func (l *Live) Kafka(ctx context.Context) (*KafkaData, error) {
	if !l.has("kafka") {
		return nil, errors.New("kafka is not configured")
	}
	// Fix commands name every broker, so they work while any one of them is up.
	rep, err := kafka.RunAudit(ctx, l.d, l.e.Kafka, kafka.AuditRequest{Bootstrap: strings.Join(endpoint.KafkaBrokers(l.e.Kafka), ",")})
	if err != nil {
		return nil, err
	}
	d := &KafkaData{Snapshot: rep.Snapshot, Report: rep.Report, Topics: kafka.SummarizeTopics(rep.Snapshot)}
	g, err := kafka.Groups(ctx, l.d, l.e.Kafka, kafka.GroupsOptions{})
	if err != nil {
		d.GroupsErr = firstLine(err.Error())
	} else {
		d.Groups = g
	}
	return d, nil
}

// locker returns the backend's Locker, opening it on first use.
func (l *Live) openLocker(ctx context.Context, k backends.Kind) (lock.Locker, error) {
	l.mu.Lock()
	lk := l.lockers[k]
	l.mu.Unlock()
	if lk != nil {
		return lk, nil
	}
	lk, err := OpenLocker(ctx, l.d, l.e, k)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.lockers[k]; old != nil { // opened meanwhile by another call
		lk.Close()
		return old, nil
	}
	l.lockers[k] = lk
	return lk, nil
}

// BackendError is a failure of one backend among several: the banner names it.
type BackendError struct {
	Backend string
	Err     error
}

func (e *BackendError) Error() string {
	return e.Backend + ": " + strings.TrimPrefix(e.Err.Error(), e.Backend+": ")
}

func (e *BackendError) Unwrap() error { return e.Err }

// Locks lists every lock (dsctl's and other libraries') on every lock backend. When
// some backends fail, the others' rows come back with the first failure.
func (l *Live) Locks(ctx context.Context) ([]LockRow, error) {
	if len(l.kinds) == 0 {
		return nil, errors.New("no lock backend is configured")
	}
	rows := []LockRow{}
	var firstErr error
	for _, k := range l.kinds {
		lk, err := l.openLocker(ctx, k)
		if err == nil {
			var infos []lock.Info
			infos, err = lk.List(ctx, lock.ListOptions{Foreign: true})
			now := time.Now()
			for _, in := range infos {
				rows = append(rows, LockRow{Backend: lk.Backend().String(), Info: in, FetchedAt: now})
			}
		}
		if err != nil && firstErr == nil {
			firstErr = &BackendError{Backend: string(k), Err: err}
		}
	}
	return rows, firstErr
}

func (l *Live) locker(backend string) (lock.Locker, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lk := range l.lockers {
		if lk.Backend().String() == backend {
			return lk, nil
		}
	}
	return nil, fmt.Errorf("no lock backend %q", backend)
}

// InspectLock reads one lock in full.
func (l *Live) InspectLock(ctx context.Context, backend, name string) (*lock.Info, error) {
	lk, err := l.locker(backend)
	if err != nil {
		return nil, err
	}
	return lk.Inspect(ctx, name)
}

// BreakLock deletes the lock whoever holds it, recorded as broken from dsctl tui.
func (l *Live) BreakLock(ctx context.Context, backend, name string) (*lock.Info, error) {
	lk, err := l.locker(backend)
	if err != nil {
		return nil, err
	}
	return lk.Break(ctx, name, lock.BreakOptions{Reason: "broken from dsctl tui", By: l.breaker})
}
