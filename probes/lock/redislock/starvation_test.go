package redislock

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

// starvationBound is how long the waiter may take against the bargers. With starvation
// mode it needs its registration, starveMs (5 ms), the next release and one handoff:
// about 10 ms, so the bound leaves room for a loaded 2-core machine under -race.
// Without it the waiter never gets the lock while the bargers run.
const starvationBound = 250 * time.Millisecond

// barge gives the lock back and takes it again with a new token in one MULTI/EXEC, so
// that no other client can take it in between: the most aggressive barging a client
// can do (a release followed at once by an acquire is the same race, won less often).
// It returns the new token, or "" when the acquire was refused.
func barge(ctx context.Context, l *Locker, name, token string, ttl time.Duration) (string, error) {
	k := keysFor(name)
	next := newToken()
	var acq *redis.Cmd
	_, err := l.nodes[0].c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		scriptRelease.Eval(ctx, p, k.releaseKeys(), l.releaseArgs(k, token)...)
		acq = scriptAcquire.Eval(ctx, p, k.acquireKeys(), l.acquireArgs(k, next, ttl, lock.Owner{})...)
		return nil
	})
	if err != nil {
		return "", err
	}
	if vals, _ := acq.Slice(); len(vals) > 0 && num(vals[0]) == 1 {
		return next, nil
	}
	return "", nil
}

func starvingLocker(t *testing.T, addr string) *Locker {
	t.Helper()
	l, err := New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// One notified waiter against bargers with zero think time: each takes the lock (--wait
// 0, retrying the instant it fails, so never a registered waiter), then gives it back
// and retakes it at once, again and again. The waiter must get the lock within
// starvationBound in every round: a starving waiter gets the free lock reserved.
func testWaiterIsNotStarved(t *testing.T, addr string) {
	const bargers, rounds = 3, 6
	const ttl = 10 * time.Second
	name := locktest.Name(t, "starve")
	for round := range rounds {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var cycles atomic.Int64
		for range bargers {
			l := starvingLocker(t, addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				token := ""
				for ctx.Err() == nil {
					if token == "" {
						if lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl}); err == nil {
							token = lease.Token
						}
						continue
					}
					next, err := barge(ctx, l, name, token, ttl)
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("barge: %v", err)
						}
						break
					}
					cycles.Add(1)
					token = next
				}
				if token != "" {
					if err := l.Release(context.Background(), name, token); err != nil {
						t.Errorf("barger release: %v", err)
					}
				}
			}()
		}
		for warm := time.Now(); cycles.Load() < 20; time.Sleep(time.Millisecond) { // let the bargers get going
			if time.Since(warm) > 5*time.Second {
				stop()
				wg.Wait()
				t.Fatalf("round %d: the bargers cycled only %d times in 5s", round, cycles.Load())
			}
		}
		before := cycles.Load()
		w := starvingLocker(t, addr)
		start := time.Now()
		lease, err := w.Acquire(context.Background(), name, lock.AcquireOptions{TTL: ttl, Wait: lock.WaitFor(time.Second)})
		got := time.Since(start)
		if err == nil {
			err = w.Release(context.Background(), name, lease.Token)
		}
		during := cycles.Load() - before
		stop()
		wg.Wait()
		switch {
		case err != nil && errs.KindOf(err) == errs.KindLockNotAcquired:
			t.Fatalf("round %d: the waiter starved: not acquired within 1s while the bargers cycled %d times", round, during)
		case err != nil:
			t.Fatalf("round %d: waiter: %v", round, err)
		case got > starvationBound:
			t.Fatalf("round %d: the waiter took %v, want at most %v (the bargers cycled %d times meanwhile)", round, got, starvationBound, during)
		}
		t.Logf("round %d: waiter acquired after %v; the bargers cycled %d times meanwhile", round, got, during)
	}
}

func TestWaiterIsNotStarvedByBargersOnRealRedis(t *testing.T) {
	testWaiterIsNotStarved(t, testenv.List(t, testenv.Redis)[0])
}

// miniredis is the --sandbox server: starvation mode must work there too (ClockTTL so
// that reservations expire on the wall clock, as the sandbox has them).
func TestWaiterIsNotStarvedByBargersOnMiniredis(t *testing.T) {
	m := miniredis.RunT(t)
	m.ClockTTL(true)
	testWaiterIsNotStarved(t, m.Addr())
}
