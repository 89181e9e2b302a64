package sqllock_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/bench"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/testenv"
)

// `dsctl lock bench` works unchanged on both databases and modes: no overlaps, fences
// checked.
func TestLockBench(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		for _, mode := range []sqllock.Mode{sqllock.ModeLease, sqllock.ModeSession} {
			t.Run(string(mode), func(t *testing.T) {
				r, err := bench.Run(context.Background(), bench.Options{Clients: 4, Ops: 80, Name: locktest.Name(t, "bench"),
					Strategy: lock.WaitNotify, NewLocker: func() (lock.Locker, error) {
						return newLocker(t, dsn, sqllock.Options{Mode: mode}), nil
					}})
				if err != nil {
					t.Fatal(err)
				}
				if !r.OK || r.Overlaps != 0 || !r.FencingChecked || r.Acquire.Count != 80 {
					t.Fatalf("%+v", r)
				}
				t.Logf("%s", r)
			})
		}
	})
}

// variant is one way of waiting, benchmarked against the others in the same run.
type variant struct {
	name     string
	mode     sqllock.Mode
	strategy lock.WaitStrategy
	poll     time.Duration
}

func variants(mysqlDB bool) []variant {
	if mysqlDB {
		return []variant{
			{"lease-backoff", sqllock.ModeLease, lock.WaitNotify, 0},
			{"lease-poll-10ms", sqllock.ModeLease, lock.WaitPoll, 10 * time.Millisecond},
			{"lease-poll-100ms", sqllock.ModeLease, lock.WaitPoll, 100 * time.Millisecond},
			{"session-get_lock", sqllock.ModeSession, lock.WaitNotify, 0},
		}
	}
	return []variant{
		{"lease-notify", sqllock.ModeLease, lock.WaitNotify, 0},
		{"lease-poll-10ms", sqllock.ModeLease, lock.WaitPoll, 10 * time.Millisecond},
		{"lease-poll-100ms", sqllock.ModeLease, lock.WaitPoll, 100 * time.Millisecond},
		{"session-notify", sqllock.ModeSession, lock.WaitNotify, 0},
	}
}

// BenchmarkHandoff measures the time from a release to the next holder's grant with 4
// contenders, for each way of waiting, in the same run (the polling variants are the
// baseline).
//
//	go test -run '^$' -bench Handoff -benchtime 300x ./probes/lock/sqllock/
func BenchmarkHandoff(b *testing.B) {
	for _, db := range dbs {
		dsn := os.Getenv(db.env)
		if dsn == "" {
			testenv.Get(b, db.env)
		}
		for _, v := range variants(db.name == "mysql") {
			b.Run(db.name+"/"+v.name, func(b *testing.B) {
				handoff(b, dsn, v)
			})
		}
	}
}

// handoff runs n contenders that take turns: after its release a holder waits until
// another contender holds the lock before it asks again (no barging), so every grant
// after the first is a handoff from a release to a waiter; it is measured from the
// start of the Release call to the waiter's Acquire returning.
func handoff(b *testing.B, dsn string, v variant) {
	const n = 4
	ctx := context.Background()
	name := locktest.Name(b, "handoff")
	ls := make([]*sqllock.Locker, n)
	for i := range ls {
		ls[i] = newLocker(b, dsn, sqllock.Options{Mode: v.mode})
	}
	var (
		mu           sync.Mutex
		releaseStart time.Time
		handoffs     []time.Duration
		grants       atomic.Int64
		wg           sync.WaitGroup
		total        = int64(max(b.N, n*4))
		errOnce      sync.Once
		firstFailed  error
	)
	b.ResetTimer()
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for grants.Load() < total {
				le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(30 * time.Second),
					Strategy: v.strategy, PollInterval: v.poll})
				if err != nil {
					errOnce.Do(func() { firstFailed = err })
					grants.Store(total)
					return
				}
				now := time.Now()
				mu.Lock()
				if !releaseStart.IsZero() {
					handoffs = append(handoffs, now.Sub(releaseStart))
				}
				mu.Unlock()
				g := grants.Add(1)
				time.Sleep(time.Millisecond) // let the others queue
				mu.Lock()
				releaseStart = time.Now()
				mu.Unlock()
				if err := l.Release(ctx, name, le.Token); err != nil {
					errOnce.Do(func() { firstFailed = err })
					grants.Store(total)
					return
				}
				// No barging: wait for another contender to take it (bounded).
				for until := time.Now().Add(5 * time.Second); grants.Load() == g && g < total && time.Now().Before(until); {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstFailed != nil {
		b.Fatal(firstFailed)
	}
	var stmts, notes int64
	for _, l := range ls {
		stmts += l.Statements()
		notes += l.Notifications()
	}
	slices.Sort(handoffs)
	b.ReportMetric(float64(handoffs[len(handoffs)/2].Microseconds())/1000, "p50-handoff-ms")
	b.ReportMetric(float64(handoffs[len(handoffs)*99/100].Microseconds())/1000, "p99-handoff-ms")
	b.ReportMetric(float64(stmts)/float64(grants.Load()), "statements/acquire")
	b.ReportMetric(float64(notes)/float64(grants.Load()), "notifications/acquire")
}

// BenchmarkUncontended is one acquire and one release of a free lock per op (one round
// trip each in lease mode).
//
//	go test -run '^$' -bench Uncontended ./probes/lock/sqllock/
func BenchmarkUncontended(b *testing.B) {
	for _, db := range dbs {
		dsn := os.Getenv(db.env)
		if dsn == "" {
			testenv.Get(b, db.env)
		}
		for _, mode := range []sqllock.Mode{sqllock.ModeLease, sqllock.ModeSession} {
			b.Run(db.name+"/"+string(mode), func(b *testing.B) {
				ctx := context.Background()
				l := newLocker(b, dsn, sqllock.Options{Mode: mode})
				name := locktest.Name(b, "u")
				s0 := l.Statements()
				b.ResetTimer()
				for range b.N {
					le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second})
					if err != nil {
						b.Fatal(err)
					}
					if err := l.Release(ctx, name, le.Token); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(l.Statements()-s0)/float64(b.N), "statements/op")
			})
		}
	}
}
