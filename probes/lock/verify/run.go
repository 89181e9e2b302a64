package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/faultproxy"
	"github.com/dsctl/dsctl/probes/lock"
)

// Faults.
const (
	FaultLatency   = "latency"
	FaultBlackhole = "blackhole"
	FaultReset     = "reset"
	FaultPause     = "pause"
)

// AllFaults is every fault, in the order they are described.
var AllFaults = []string{FaultLatency, FaultBlackhole, FaultReset, FaultPause}

// ParseFaults reads --faults: a comma-separated subset of AllFaults, "all" or "none".
func ParseFaults(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "all":
		return append([]string(nil), AllFaults...), nil
	case "none", "":
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ToLower(f))
		known := false
		for _, k := range AllFaults {
			known = known || k == f
		}
		if !known {
			return nil, errs.Usage("--faults: unknown fault %q", f).
				WithHint("use a comma-separated list of %s, or all, or none", strings.Join(AllFaults, ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return faultRank(out[i]) < faultRank(out[j]) })
	return out, nil
}

func faultRank(f string) int {
	for i, k := range AllFaults {
		if k == f {
			return i
		}
	}
	return len(AllFaults)
}

// Options are the inputs of Run.
type Options struct {
	Workers int
	// Duration bounds the run; Sections, when > 0, ends it once that many critical
	// sections have completed (whichever comes first).
	Duration time.Duration
	Sections int
	TTL      time.Duration
	Faults   []string
	// Name is the throwaway lock name.
	Name string
	// Targets are the servers (host:port); each worker gets one fault proxy per target.
	Targets []string
	// NewLocker makes a worker's Locker whose server addresses are addrs (the worker's
	// proxies, in the order of Targets). In-process workers only.
	NewLocker func(worker int, addrs []string) (lock.Locker, error)
	// Processes runs each worker in its own process (pause = real SIGSTOP/SIGCONT).
	Processes *ProcessOptions
	// Tool is recorded as the owner of the leases ("dsctl 1.2.0").
	Tool string
	Seed uint64
	// Progress, when set, is called about four times a second.
	Progress func(Progress)
}

// Progress is a running count, for a status line.
type Progress struct {
	Elapsed  time.Duration
	Sections int
	Faults   int
}

// Outcome is a finished run: the history and its check.
type Outcome struct {
	Events []Event
	Report *Report
	// Faults counts the faults injected, by kind.
	Faults map[string]int
	// ClockStep is how far this machine's wall clock moved against its monotonic
	// clock during the run, at most (sampled every 20ms). A lease server judges
	// expiry by its wall clock and the holders by their monotonic one: a step larger
	// than lock.ClockDrift(TTL) can end a lease before its local deadline whatever
	// the backend does.
	ClockStep time.Duration
}

// wallSkew is how far the wall clock has moved against the monotonic clock since t0.
func wallSkew(t0, now time.Time) time.Duration {
	return now.Round(0).Sub(t0.Round(0)) - now.Sub(t0)
}

// watchClock samples wallSkew until stop is closed and sends the largest seen.
func watchClock(t0 time.Time, stop <-chan struct{}) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var worst time.Duration
		for {
			d := wallSkew(t0, time.Now())
			worst = max(worst, d, -d)
			select {
			case <-tick.C:
			case <-stop:
				out <- worst
				return
			}
		}
	}()
	return out
}

// Run runs the workers with faults, then checks the history.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	if o.Workers < 1 {
		return nil, errs.Usage("--workers must be at least 1, got %d", o.Workers)
	}
	if o.NewLocker == nil && o.Processes == nil {
		return nil, errors.New("verify: no way to make a Locker")
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	faults := map[string]bool{}
	for _, f := range o.Faults {
		faults[f] = true
	}
	t0 := time.Now()
	clockStop := make(chan struct{})
	clockStep := watchClock(t0, clockStop)
	defer func() {
		select {
		case <-clockStop:
		default:
			close(clockStop)
		}
	}()
	r := &runner{o: o, faults: faults, counts: map[string]int{}, rnd: rand.New(rand.NewPCG(o.Seed, 0x5eed)),
		holding: make([]bool, o.Workers), pauseNext: make([]atomic.Bool, o.Workers)}
	r.rec = NewRecorder(t0, r.observe)

	defer r.closeAll()
	for i := 0; i < o.Workers; i++ {
		var ps []*faultproxy.Proxy
		var addrs []string
		for _, t := range o.Targets {
			p, err := faultproxy.New(t)
			if err != nil {
				return nil, fmt.Errorf("verify: cannot start the fault proxy for %s: %w", t, err)
			}
			ps = append(ps, p)
			addrs = append(addrs, p.Addr())
		}
		r.proxies = append(r.proxies, ps)
		r.addrs = append(r.addrs, addrs)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	if o.Processes != nil {
		if err := r.startProcesses(ctx, stop, &wg); err != nil {
			return nil, err
		}
	} else {
		for i := 0; i < o.Workers; i++ {
			l, err := o.NewLocker(i, r.addrs[i])
			if err != nil {
				close(stop)
				wg.Wait()
				return nil, err
			}
			r.lockers = append(r.lockers, l)
			cfg := WorkerConfig{Worker: i, Name: o.Name, TTL: o.TTL, Seed: o.Seed, Tool: o.Tool}
			wg.Add(1)
			go func() {
				defer wg.Done()
				runWorker(ctx, stop, l, cfg, func(e Event) { r.rec.Add(e) }, &r.pauseNext[i])
			}()
		}
	}

	r.drive(ctx, t0)
	r.healAll()
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Every section is bounded (2.5 TTL of work, renewals and a release bounded by
	// their timeouts): give them that long, then check what was recorded.
	grace := 6*o.TTL + 15*time.Second
	select {
	case <-done:
	case <-time.After(grace):
		r.killProcesses()
	}
	if r.procErr != nil {
		return nil, r.procErr
	}
	events := r.rec.Events()
	backend := lock.Backend{}
	if len(r.lockers) > 0 {
		backend = r.lockers[0].Backend()
	} else {
		backend = r.procBackend
	}
	rep := Check(events, CheckOptions{TTL: o.TTL, FencingSafe: backend.FencingSafe, EndsWithConnection: backend.EndsWithConnection})
	close(clockStop)
	return &Outcome{Events: events, Report: rep, Faults: r.counts, ClockStep: <-clockStep}, nil
}

type runner struct {
	o       Options
	faults  map[string]bool
	rnd     *rand.Rand
	rec     *Recorder
	proxies [][]*faultproxy.Proxy
	addrs   [][]string
	lockers []lock.Locker

	mu       sync.Mutex
	sections int
	counts   map[string]int
	holding  []bool // by worker, from the events (to pick whom to pause)
	// pauseNext asks an in-process worker to pause in its next critical section.
	pauseNext []atomic.Bool

	procs       []*proc
	procErr     error
	procBackend lock.Backend
}

func (r *runner) observe(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case e.Op == OpRelease && e.Type == TypeInvoke:
		r.sections++
		if e.Worker >= 0 && e.Worker < len(r.holding) {
			r.holding[e.Worker] = false
		}
	case e.Op == OpAcquire && e.Type == TypeOK && e.Worker >= 0 && e.Worker < len(r.holding):
		r.holding[e.Worker] = true
	}
}

func (r *runner) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.rnd.Int64N(int64(hi-lo)))
}

// drive injects faults until the run is over.
func (r *runner) drive(ctx context.Context, t0 time.Time) {
	ttl := r.o.TTL
	end := t0.Add(r.o.Duration)
	kinds := append([]string(nil), r.o.Faults...)
	nextFault := time.Now().Add(r.between(ttl/4, ttl))
	nextProgress := time.Now()
	tick := time.NewTicker(min(ttl/10, 25*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		r.mu.Lock()
		sections := r.sections
		nfaults := 0
		for _, n := range r.counts {
			nfaults += n
		}
		r.mu.Unlock()
		if r.o.Progress != nil && !now.Before(nextProgress) {
			r.o.Progress(Progress{Elapsed: now.Sub(t0), Sections: sections, Faults: nfaults})
			nextProgress = now.Add(250 * time.Millisecond)
		}
		if !now.Before(end) || (r.o.Sections > 0 && sections >= r.o.Sections) || r.processesGone() {
			return
		}
		if len(kinds) > 0 && !now.Before(nextFault) {
			r.inject(kinds[r.rnd.IntN(len(kinds))])
			nextFault = now.Add(r.between(ttl/4, ttl))
		}
	}
}

// inject applies one fault to one worker's link to one server (or, in quorum mode,
// sometimes to all of them).
func (r *runner) inject(kind string) {
	ttl := r.o.TTL
	w := r.rnd.IntN(r.o.Workers)
	ps := r.proxies[w]
	if len(ps) > 1 && r.rnd.IntN(3) > 0 {
		ps = []*faultproxy.Proxy{ps[r.rnd.IntN(len(ps))]}
	}
	targets := make([]string, len(ps))
	for i, p := range ps {
		targets[i] = p.Target
	}
	where := strings.Join(targets, ",")
	e := Event{Worker: w, Op: OpFault, Type: TypeStart}
	switch kind {
	case FaultLatency:
		base, jitter, d := r.between(ttl/20, ttl/3), ttl/10, r.between(ttl, 3*ttl)
		for _, p := range ps {
			p.SetLatency(base, jitter)
		}
		e.Detail = fmt.Sprintf("latency %s +%s jitter each way for %s to %s", base.Round(time.Millisecond), jitter.Round(time.Millisecond), d.Round(time.Millisecond), where)
		time.AfterFunc(d, func() {
			for _, p := range ps {
				p.SetLatency(0, 0)
			}
			r.rec.Add(Event{Worker: w, Op: OpFault, Type: TypeEnd, Detail: "latency ends to " + where})
		})
	case FaultBlackhole:
		d := r.between(ttl/4, 2*ttl)
		for _, p := range ps {
			p.Blackhole(d)
		}
		e.Detail = fmt.Sprintf("blackhole %s to %s (held bytes are delivered when it heals)", d.Round(time.Millisecond), where)
	case FaultReset:
		n := 0
		for _, p := range ps {
			n += p.Reset()
		}
		e.Detail = fmt.Sprintf("reset %d connection(s) to %s", n, where)
	case FaultPause:
		if r.o.Processes != nil {
			if !r.pauseProcess(&e) {
				return
			}
			break
		}
		// In process: the worker sleeps past its deadline in its next critical section
		// and then writes without looking at the clock (its own events record it).
		if r.pauseNext[w].Swap(true) {
			return
		}
		r.mu.Lock()
		r.counts[kind]++
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.counts[kind]++
	r.mu.Unlock()
	r.rec.Add(e)
}

func (r *runner) healAll() {
	for _, ps := range r.proxies {
		for _, p := range ps {
			p.SetLatency(0, 0)
			p.Heal()
		}
	}
	r.resumeAll()
}

func (r *runner) closeAll() {
	for _, l := range r.lockers {
		_ = l.Close()
	}
	for _, ps := range r.proxies {
		for _, p := range ps {
			_ = p.Close()
		}
	}
}

// WorkerRequest is the first line a worker process reads on stdin.
type WorkerRequest struct {
	Config WorkerConfig `json:"config"`
	Addrs  []string     `json:"addrs"`
	// Backend is the backend's own description (opaque here), from ProcessOptions.
	Backend json.RawMessage `json:"backend,omitempty"`
}
