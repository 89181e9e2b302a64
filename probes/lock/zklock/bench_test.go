package zklock_test

import (
	"context"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/bench"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// `dsctl lock bench` works unchanged on ZooKeeper: no overlaps, fences checked.
func TestLockBenchOnZooKeeper(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		r, err := bench.Run(context.Background(), bench.Options{Clients: 4, Ops: 100, Name: locktest.Name(t, "bench"),
			Strategy: lock.WaitNotify, NewLocker: func() (lock.Locker, error) {
				return zklock.New(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second}, zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: tg.Servers}})
			}})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.Overlaps != 0 || !r.FencingChecked || r.Acquire.Count != 100 {
			t.Fatalf("%+v", r)
		}
	})
}

// contender is one process in the handoff benchmark.
type contender interface {
	acquire(ctx context.Context) (release func() error, err error)
	notifications() int64
	close()
}

type zkContender struct {
	l    *zklock.Locker
	name string
}

func (c *zkContender) acquire(ctx context.Context) (func() error, error) {
	le, err := c.l.Acquire(ctx, c.name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second)})
	if err != nil {
		return nil, err
	}
	return func() error { return c.l.Release(ctx, c.name, le.Token) }, nil
}
func (c *zkContender) notifications() int64 { return c.l.Notifications() }
func (c *zkContender) close()               { _ = c.l.Close() }

// herdContender is the naive recipe: every waiter watches the lock's children, so
// every release (and every new arrival) wakes them all.
type herdContender struct {
	s     *endpoint.ZKSession
	dir   string
	notes atomic.Int64
}

func (c *herdContender) acquire(ctx context.Context) (func() error, error) {
	node, err := c.s.Conn.Create(c.dir+"/lock-", nil, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	if err != nil {
		return nil, err
	}
	me := node[strings.LastIndexByte(node, '/')+1:]
	for {
		kids, _, ch, err := c.s.Conn.ChildrenW(c.dir)
		if err != nil {
			return nil, err
		}
		sort.Strings(kids)
		if kids[0] == me {
			return func() error { return c.s.Conn.Delete(node, -1) }, nil
		}
		select {
		case <-ch:
			c.notes.Add(1)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
func (c *herdContender) notifications() int64 { return c.notes.Load() }
func (c *herdContender) close()               { c.s.Close() }

// BenchmarkHandoff measures the time from a release to the next holder's Acquire
// returning, with 8 contenders always queued, for dsctl's recipe (each waiter watches
// its predecessor) and the naive herd recipe (every waiter watches the parent), and
// counts watch notifications per release. On DSCTL_TEST_ZK when set, else on the
// embedded server.
//
//	go test -run '^$' -bench Handoff -benchtime 400x ./probes/lock/zklock/
func BenchmarkHandoff(b *testing.B) {
	servers := strings.Split(os.Getenv("DSCTL_TEST_ZK"), ",")
	target := "ensemble"
	if os.Getenv("DSCTL_TEST_ZK") == "" {
		srv, err := zkserver.Start(context.Background(), zkserver.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		servers, target = []string{srv.Addr()}, "embedded"
	}
	d := endpoint.Dialer{Timeout: 5 * time.Second}
	const n = 8
	for _, recipe := range []string{"predecessor", "herd"} {
		b.Run(recipe+"/"+target, func(b *testing.B) {
			ctx := context.Background()
			name := locktest.Name(b, "handoff")
			cs := make([]contender, n)
			for i := range cs {
				switch recipe {
				case "predecessor":
					l, err := zklock.New(ctx, d, zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: servers}})
					if err != nil {
						b.Fatal(err)
					}
					cs[i] = &zkContender{l: l, name: name}
				case "herd":
					s, err := d.ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: servers})
					if err != nil {
						b.Fatal(err)
					}
					go func() {
						for range s.Events { //nolint:revive // drain
						}
					}()
					dir := zklock.DefaultRoot + "/" + name
					for p, i := "", 0; i < len(strings.Split(dir, "/")); i++ {
						if part := strings.Split(dir, "/")[i]; part != "" {
							p += "/" + part
							_, _ = s.Conn.CreateContainer(p, nil, gozk.FlagContainer, gozk.WorldACL(gozk.PermAll))
						}
					}
					cs[i] = &herdContender{s: s, dir: dir}
				}
			}
			defer func() {
				for _, c := range cs {
					c.close()
				}
			}()
			var (
				mu          sync.Mutex
				releasedAt  time.Time
				handoffs    []time.Duration
				done        atomic.Int64
				wg          sync.WaitGroup
				releases    atomic.Int64
				total       = int64(max(b.N, n*4))
				errOnce     sync.Once
				firstFailed error
			)
			b.ResetTimer()
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for done.Load() < total {
						release, err := c.acquire(ctx)
						if err != nil {
							errOnce.Do(func() { firstFailed = err })
							done.Store(total)
							return
						}
						now := time.Now()
						mu.Lock()
						if !releasedAt.IsZero() {
							handoffs = append(handoffs, now.Sub(releasedAt))
						}
						releasedAt = time.Now()
						mu.Unlock()
						done.Add(1)
						releases.Add(1)
						if err := release(); err != nil {
							errOnce.Do(func() { firstFailed = err })
							done.Store(total)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if firstFailed != nil {
				b.Fatal(firstFailed)
			}
			var notes int64
			for _, c := range cs {
				notes += c.notifications()
			}
			slices.Sort(handoffs)
			b.ReportMetric(float64(handoffs[len(handoffs)/2].Microseconds())/1000, "p50-handoff-ms")
			b.ReportMetric(float64(handoffs[len(handoffs)*99/100].Microseconds())/1000, "p99-handoff-ms")
			b.ReportMetric(float64(notes)/float64(releases.Load()), "notifications/release")
		})
	}
}
