package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// WorkerConfig is what one worker needs (sent as JSON to a worker process).
type WorkerConfig struct {
	Worker int           `json:"worker"`
	Name   string        `json:"name"`
	TTL    time.Duration `json:"ttl"`
	// Pause makes some critical sections sleep past the lease's deadline and then
	// write without looking at the clock, as a process stopped by the OS or a GC would.
	Pause bool   `json:"pause"`
	Seed  uint64 `json:"seed"`
	// Tool is recorded as the lease owner's tool.
	Tool string `json:"tool,omitempty"`
}

// worker runs one client's loop.
type worker struct {
	cfg WorkerConfig
	// pauseNext, when set, is a pause the runner asked for: taken in the next section.
	pauseNext *atomic.Bool
	l         lock.Locker
	emit      func(Event)
	rnd       *rand.Rand
	n         int // holdings so far
}

// RunWorker loops acquire -> critical section -> release with l until stop is closed
// (or ctx is cancelled), reporting every operation to emit. A lease held when stop
// comes is finished and released normally.
func RunWorker(ctx context.Context, stop <-chan struct{}, l lock.Locker, cfg WorkerConfig, emit func(Event)) {
	runWorker(ctx, stop, l, cfg, emit, nil)
}

func runWorker(ctx context.Context, stop <-chan struct{}, l lock.Locker, cfg WorkerConfig, emit func(Event), pauseNext *atomic.Bool) {
	w := &worker{cfg: cfg, l: l, emit: emit, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Worker))), pauseNext: pauseNext}
	// An acquire in flight is abandoned when stop comes (the backend gives back
	// whatever it may have taken); the rest of a section runs to its end.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-actx.Done():
		}
	}()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.cycle(ctx, actx)
		w.sleep(ctx, w.between(0, cfg.TTL/10))
	}
}

func (w *worker) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.rnd.Int64N(int64(hi-lo)))
}

func (w *worker) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (w *worker) event(op, typ string) Event {
	return Event{Worker: w.cfg.Worker, Op: op, Type: typ, at: time.Now()}
}

// acquireOptions varies how the lock is asked for: waiting notified (the hand-over
// path), waiting by polling, or not waiting at all.
func (w *worker) acquireOptions() (lock.AcquireOptions, string) {
	ttl := w.cfg.TTL
	o := lock.AcquireOptions{TTL: ttl, Owner: lock.Owner{Label: fmt.Sprintf("dsctl lock verify worker %d", w.cfg.Worker),
		PID: os.Getpid(), Tool: w.cfg.Tool}}
	switch r := w.rnd.IntN(10); {
	case r < 6:
		o.Wait, o.Strategy = lock.WaitFor(3*ttl), lock.WaitNotify
		return o, "wait notify"
	case r < 8:
		o.Wait, o.Strategy, o.PollInterval = lock.WaitFor(3*ttl), lock.WaitPoll, max(ttl/10, 5*time.Millisecond)
		return o, "wait poll"
	}
	return o, "no wait"
}

func (w *worker) cycle(ctx, actx context.Context) {
	opt, how := w.acquireOptions()
	inv := w.event(OpAcquire, TypeInvoke)
	inv.Detail = how
	w.emit(inv)
	lease, err := w.l.Acquire(actx, w.cfg.Name, opt)
	if err != nil {
		e := w.event(OpAcquire, TypeUnknown)
		if _, ok := lock.AsNotAcquired(err); ok {
			e.Type = TypeFail
		}
		e.Error = err.Error()
		w.emit(e)
		// Not acquired at once, or no answer: back off, so a held lock or a failing
		// server does not turn the workers into a busy loop on the user's server.
		w.sleep(ctx, w.between(w.cfg.TTL/20, w.cfg.TTL/5))
		return
	}
	w.n++
	h := w.n
	ok := w.event(OpAcquire, TypeOK)
	ok.Holding, ok.Fence, ok.Token, ok.expires = h, lease.Fence, lease.Token, lease.ExpiresAt
	w.emit(ok)
	w.section(ctx, lease, h)
}

// section is the critical section: write, work (renewing a long one every TTL/3, as
// `lock run` does), write again, release. A well-behaved holder checks its deadline
// before each write; a paused one (the pause fault) cannot.
func (w *worker) section(ctx context.Context, lease *lock.Lease, h int) {
	ttl := w.cfg.TTL
	deadline := lease.ExpiresAt
	write := func(late bool) {
		e := w.event(OpWrite, "")
		e.Holding, e.Fence, e.Late = h, lease.Fence, late || e.at.After(deadline)
		w.emit(e)
	}
	expired := func() bool {
		if time.Now().Before(deadline) {
			return false
		}
		e := w.event(OpDeadline, TypeOK)
		e.Holding, e.Detail = h, "local deadline passed before the work was done: stop writing"
		w.emit(e)
		return true
	}
	release := func() {
		e := w.event(OpRelease, TypeInvoke)
		e.Holding = h
		w.emit(e)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(2*ttl, 2*time.Second))
		err := w.l.Release(rctx, w.cfg.Name, lease.Token)
		cancel()
		r := w.event(OpRelease, TypeOK)
		r.Holding = h
		if err != nil {
			r.Type, r.Error = classify(err), err.Error()
		}
		w.emit(r)
	}
	if expired() {
		release()
		return
	}
	write(false)

	pause := w.cfg.Pause && w.rnd.IntN(12) == 0
	if w.pauseNext != nil {
		pause = w.pauseNext.Swap(false)
	}
	if pause {
		d := w.between(ttl*5/4, 2*ttl)
		p := w.event(OpPause, TypeStart)
		p.Holding, p.Detail = h, fmt.Sprintf("sleeps %s while holding (ttl %s)", d.Round(time.Millisecond), ttl)
		w.emit(p)
		time.Sleep(d)
		p = w.event(OpPause, TypeEnd)
		p.Holding = h
		w.emit(p)
		write(true) // the paused holder does not know: only the fence can stop it
		release()
		return
	}

	var hold time.Duration
	switch r := w.rnd.IntN(100); { // mostly short, so hand-overs are frequent
	case r < 80:
		hold = w.between(0, ttl/20)
	case r < 94:
		hold = w.between(ttl/20, ttl/2)
	default:
		hold = w.between(ttl, 2*ttl) // outlives the TTL: needs renewals
	}
	end := time.Now().Add(hold)
	for time.Now().Before(end) {
		step := min(time.Until(end), ttl/3)
		time.Sleep(step)
		if !time.Now().Before(end) {
			break
		}
		if expired() {
			release()
			return
		}
		e := w.event(OpRenew, TypeInvoke)
		e.Holding = h
		w.emit(e)
		rctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
		renewed, err := w.l.Renew(rctx, w.cfg.Name, lease.Token, ttl)
		cancel()
		r := w.event(OpRenew, TypeOK)
		r.Holding = h
		switch {
		case err != nil:
			r.Type, r.Error = classify(err), err.Error()
		case r.at.After(deadline): // came back too late to be trusted: treat as lost
			r.Type, r.Error = TypeUnknown, "renewal answered after the local deadline"
		default:
			deadline = renewed.ExpiresAt
			r.Fence, r.expires = renewed.Fence, renewed.ExpiresAt
		}
		w.emit(r)
		if r.Type == TypeFail { // the lease is gone: stop at once
			release()
			return
		}
	}
	if expired() {
		release()
		return
	}
	write(false)
	release()
}

// classify maps an error to fail (the backend said no: not held) or unknown (no
// answer: the operation may or may not have happened).
func classify(err error) string {
	if _, ok := lock.AsNotHeld(err); ok || errs.KindOf(err) == errs.KindLockLost {
		return TypeFail
	}
	return TypeUnknown
}
