// Package bench measures a lock backend under contention: several clients, each with
// its own connections, take and release one lock in a loop. It reports throughput,
// acquire latency, handoff latency (from a holder starting its release to the next
// waiter holding the lock) and a correctness check: no two holders at once, and
// fencing tokens strictly increasing. It works on any lock.Locker.
package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// Options are the inputs of Run.
type Options struct {
	// Clients is the number of contending clients (default 8).
	Clients int
	// Ops is the number of acquire/release cycles, shared among the clients (default 2000).
	Ops  int
	Name string
	// TTL is each lease's TTL (default 10s).
	TTL time.Duration
	// Hold is the time spent holding the lock in each cycle (default 0).
	Hold time.Duration
	// Think is the time each client spends outside the lock between cycles (default
	// 0: it asks again at once, and an unfair lock lets it win against the waiters).
	Think        time.Duration
	Strategy     lock.WaitStrategy
	PollInterval time.Duration
	// Fair takes the lock first come, first served (lock.AcquireOptions.Fair).
	Fair bool
	// NewLocker makes one client's Locker (its own connections).
	NewLocker func() (lock.Locker, error)
	// Progress, when set, is called with the number of cycles done (at most ~10 times a second).
	Progress func(done, total int)
}

// Latency summarises durations in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Result is what Run measured.
type Result struct {
	Backend        lock.Backend      `json:"backend"`
	Strategy       lock.WaitStrategy `json:"wait_strategy"`
	PollIntervalMs float64           `json:"poll_interval_ms,omitempty"`
	Fair           bool              `json:"fair"`
	Clients        int               `json:"clients"`
	Ops            int               `json:"ops"`
	HoldMs         float64           `json:"hold_ms"`
	ThinkMs        float64           `json:"think_ms"`
	ElapsedMs      float64           `json:"elapsed_ms"`
	Throughput     float64           `json:"throughput_ops_per_s"`
	Acquire        Latency           `json:"acquire_latency"`
	// Handoff counts only acquisitions that waited for another client's release.
	Handoff Latency `json:"handoff_latency"`
	// Overlaps is the number of times a client got the lock while another held it.
	Overlaps int `json:"overlaps"`
	// FenceViolations is the number of fencing tokens not above the previous one.
	FenceViolations int  `json:"fence_violations"`
	FencingChecked  bool `json:"fencing_checked"`
	OK              bool `json:"ok"`
}

// Run runs the benchmark. The lock is released by every client before it returns.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Clients <= 0 {
		o.Clients = 8
	}
	if o.Ops <= 0 {
		o.Ops = 2000
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Ops < o.Clients {
		return nil, errs.Usage("--ops %d is fewer than --clients %d", o.Ops, o.Clients)
	}
	lockers := make([]lock.Locker, o.Clients)
	for i := range lockers {
		l, err := o.NewLocker()
		if err != nil {
			return nil, err
		}
		defer l.Close()
		lockers[i] = l
	}
	acqOpt := lock.AcquireOptions{TTL: o.TTL, Wait: lock.WaitForever, Strategy: o.Strategy, PollInterval: o.PollInterval, Fair: o.Fair,
		Owner: lock.CurrentOwner(0, "dsctl lock bench", "bench", "dsctl")}

	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	var (
		inside, overlaps, violations atomic.Int64
		lastFence                    atomic.Uint64
		lastRelease                  atomic.Int64 // ns since base when the last release started
		done                         atomic.Int64
		mu                           sync.Mutex
		acquireNs, handoffNs         []int64
		firstErr                     error
	)
	lastRelease.Store(-1)
	fencing := lockers[0].Backend().FencingSafe
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for c, l := range lockers {
		n := o.Ops / o.Clients
		if c < o.Ops%o.Clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			acq := make([]int64, 0, n)
			hand := make([]int64, 0, n)
			fail := func(err error) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
			for range n {
				start := since()
				lease, err := l.Acquire(cctx, o.Name, acqOpt)
				got := since()
				if err != nil {
					fail(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				acq = append(acq, got-start)
				if rel := lastRelease.Load(); rel > start { // we waited for someone's release
					hand = append(hand, got-rel)
				}
				if fencing {
					if prev := lastFence.Swap(uint64(lease.Fence)); uint64(lease.Fence) <= prev {
						violations.Add(1)
					}
				}
				if o.Hold > 0 {
					time.Sleep(o.Hold)
				}
				inside.Add(-1)
				lastRelease.Store(since())
				if err := l.Release(context.WithoutCancel(cctx), o.Name, lease.Token); err != nil {
					fail(err)
					return
				}
				done.Add(1)
				if o.Think > 0 {
					time.Sleep(o.Think)
				}
			}
			mu.Lock()
			acquireNs = append(acquireNs, acq...)
			handoffNs = append(handoffNs, hand...)
			mu.Unlock()
		}()
	}
	stopProgress := progress(o, &done)
	wg.Wait()
	stopProgress()
	elapsed := time.Since(base)
	if firstErr != nil {
		if errors.Is(firstErr, context.Canceled) && ctx.Err() != nil {
			return nil, errs.New(errs.KindInterrupted, "lock bench interrupted after %d of %d cycles", done.Load(), o.Ops)
		}
		return nil, firstErr
	}
	r := &Result{Backend: lockers[0].Backend(), Strategy: o.Strategy, Fair: o.Fair, Clients: o.Clients, Ops: o.Ops,
		HoldMs: ms(int64(o.Hold)), ThinkMs: ms(int64(o.Think)), ElapsedMs: ms(int64(elapsed)), Throughput: float64(o.Ops) / elapsed.Seconds(),
		Acquire: summarise(acquireNs), Handoff: summarise(handoffNs),
		Overlaps: int(overlaps.Load()), FenceViolations: int(violations.Load()), FencingChecked: fencing}
	if r.Strategy == "" {
		r.Strategy = lock.WaitNotify
	}
	if r.Strategy == lock.WaitPoll {
		p := o.PollInterval
		if p <= 0 {
			p = lock.DefaultPollInterval
		}
		r.PollIntervalMs = ms(int64(p))
	}
	r.OK = r.Overlaps == 0 && r.FenceViolations == 0
	return r, nil
}

func progress(o Options, done *atomic.Int64) (stop func()) {
	if o.Progress == nil {
		return func() {}
	}
	t := time.NewTicker(100 * time.Millisecond)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-t.C:
				o.Progress(int(done.Load()), o.Ops)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		t.Stop()
		close(quit)
		<-finished
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func summarise(ns []int64) Latency {
	if len(ns) == 0 {
		return Latency{}
	}
	slices.Sort(ns)
	at := func(p int) float64 { return ms(ns[min(len(ns)-1, len(ns)*p/100)]) }
	return Latency{Count: len(ns), P50Ms: at(50), P99Ms: at(99), MaxMs: ms(ns[len(ns)-1])}
}

// String is a one-line summary.
func (r *Result) String() string {
	return fmt.Sprintf("%d clients, %d ops in %.0fms: %.0f ops/s, handoff p50 %.3fms p99 %.3fms, %d overlaps",
		r.Clients, r.Ops, r.ElapsedMs, r.Throughput, r.Handoff.P50Ms, r.Handoff.P99Ms, r.Overlaps)
}
