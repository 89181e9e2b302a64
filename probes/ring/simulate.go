package ring

import (
	"context"
	"errors"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// Progress is told how many keys are done and how many there are in all (-1 for a
// stream of unknown length). It is called from one goroutine at a time, at most every
// progressEvery, and once at the end.
type Progress func(done, total int64)

const progressEvery = 200 * time.Millisecond

// ErrNoKeys is wrapped by the usage error Simulate and Sweep return when the key source
// yields no key at all, so a caller that opened a file can name it.
var ErrNoKeys = errors.New("ring: no keys")

// SimulateSpec is one `ring simulate` run.
type SimulateSpec struct {
	Cluster
	Algos   []Algo
	Add     []Node   // nodes to add (--add NAME[=WEIGHT])
	Remove  []string // node names to remove (--remove NAME); removal happens before adding
	Workers int      // goroutines; 0 means GOMAXPROCS
}

// NodeLoad is one node's keys.
type NodeLoad struct {
	Name       string  `json:"name"`
	Keys       int64   `json:"keys"`
	Share      float64 `json:"share"`       // keys / all keys
	IdealShare float64 `json:"ideal_share"` // weight / all weights
}

// Distribution is how keys spread over a node set. Load ratios are share/ideal_share
// (keys over the mean, for equal weights): stddev_pct is the population standard
// deviation of the ratios in percent, max_over_mean and min_over_mean their extremes.
type Distribution struct {
	Nodes       []NodeLoad `json:"nodes"`
	StddevPct   float64    `json:"stddev_pct"`
	MaxOverMean float64    `json:"max_over_mean"`
	MinOverMean float64    `json:"min_over_mean"`
}

// Result is one algorithm's outcome. With a change (--add/--remove) the distribution
// (nodes, stddev_pct, ...) and memory_bytes describe the node set after the change,
// Before holds the distribution before it, and the moved_* fields are set; without a
// change they are null.
type Result struct {
	Algo          Algo   `json:"algo"`
	Hash          string `json:"hash"`
	Keys          int64  `json:"keys"`
	Vnodes        int    `json:"vnodes,omitempty"`         // algorithms that use V
	MaglevM       int    `json:"maglev_m,omitempty"`       // maglev
	MaglevMAuto   bool   `json:"maglev_m_auto,omitempty"`  // maglev: M was sized from the node count
	BalanceFactor int    `json:"balance_factor,omitempty"` // bounded
	Distribution
	// MovedKeys counts keys whose owner differs before and after the change.
	MovedKeys     *int64   `json:"moved_keys"`
	MovedFraction *float64 `json:"moved_fraction"`
	// IdealMovedFraction is the least this change can move: the share of keys the
	// removed nodes held, plus the added nodes' weight share after the change (1/(N+1)
	// for one equal-weight add).
	IdealMovedFraction *float64 `json:"ideal_moved_fraction"`
	// LookupNs is the CPU time of one lookup of one key, hashing included, measured
	// over the whole run (per core; two cores run two lookups at once).
	LookupNs float64 `json:"lookup_ns"`
	// MemoryBytes is the size of the lookup structure, computed from its array lengths.
	MemoryBytes int64         `json:"memory_bytes"`
	Before      *Distribution `json:"before,omitempty"`
}

// evaluation is one structure (or pair, before/after) the keys run through, plus what
// the run adds up for it.
type evaluation struct {
	algo          Algo
	hash          *hasher
	before, after placer        // stateless algorithms
	bBefore       *boundedState // bounded: stateful, fed in stream order
	bAfter        *boundedState
	mem           int64

	mu           sync.Mutex
	countsBefore []int64
	countsAfter  []int64
	moved        int64
	lookupNanos  int64 // time in lookups (both sides), hashing excluded
	hashNanos    int64 // time hashing keys with this evaluation's hash
}

func (e *evaluation) passes() int64 {
	if e.after != nil || e.bAfter != nil {
		return 2
	}
	return 1
}

// Simulate runs every key from src through each algorithm of spec and returns one Result
// per algorithm, in spec.Algos order. Keys are read once, whatever the number of
// algorithms. progress may be nil.
func Simulate(ctx context.Context, spec SimulateSpec, src KeySource, progress Progress) ([]Result, error) {
	c, err := spec.Cluster.validate(spec.Algos)
	if err != nil {
		return nil, err
	}
	l, err := newLayout(c.Nodes, spec.Add, spec.Remove)
	if err != nil {
		return nil, err
	}
	if spec.Cluster.MaglevM == 0 {
		// Automatic: sized for the larger node set, before or after the change.
		c.MaglevM = AutoMaglevM(max(len(l.before), len(l.after())))
		c.maglevAuto = true
	}
	if slicesContains(spec.Algos, AlgoMaglev) {
		if err := checkMaglevM(c.MaglevM, max(len(l.before), len(l.after()))); err != nil {
			return nil, err
		}
	}
	user, _ := lookupHash(c.Hash)
	evals := make([]*evaluation, 0, len(spec.Algos))
	for _, a := range dedupAlgos(spec.Algos) {
		e, err := newEvaluation(a, c, c.Vnodes, l, user)
		if err != nil {
			return nil, err
		}
		evals = append(evals, e)
	}
	keys, err := run(ctx, evals, l.idCount(), src, spec.Workers, progress)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(evals))
	for _, e := range evals {
		out = append(out, e.result(c, l, keys))
	}
	return out, nil
}

func slicesContains(as []Algo, a Algo) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func dedupAlgos(as []Algo) []Algo {
	var out []Algo
	for _, a := range as {
		if !slicesContains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func newEvaluation(a Algo, c Cluster, vnodes int, l *layout, user *hasher) (*evaluation, error) {
	e := &evaluation{algo: a, hash: hashFor(a, user)}
	before, err := build(a, c, vnodes, l, false, e.hash)
	if err != nil {
		return nil, err
	}
	var after placer
	if l.changed() {
		if after, err = build(a, c, vnodes, l, true, e.hash); err != nil {
			return nil, err
		}
	}
	e.countsBefore = make([]int64, l.idCount())
	e.countsAfter = make([]int64, l.idCount())
	if a == AlgoBounded {
		e.bBefore = newBoundedState(before.(*hashRing), l.before, l.idCount(), c.BalanceFactor, membersEqual(l.before))
		e.mem = e.bBefore.memoryBytes()
		if after != nil {
			ms := l.after()
			e.bAfter = newBoundedState(after.(*hashRing), ms, l.idCount(), c.BalanceFactor, membersEqual(ms))
			e.mem = e.bAfter.memoryBytes()
		}
		return e, nil
	}
	e.before, e.after = before, after
	e.mem = before.memoryBytes()
	if after != nil {
		e.mem = after.memoryBytes()
	}
	return e, nil
}

func (e *evaluation) result(c Cluster, l *layout, keys int64) Result {
	r := Result{Algo: e.algo, Hash: e.hash.name, Keys: keys, MemoryBytes: e.mem}
	if e.algo.usesVnodes() {
		r.Vnodes = c.Vnodes
	}
	switch e.algo {
	case AlgoMaglev:
		r.MaglevM = c.MaglevM
		r.MaglevMAuto = c.maglevAuto
	case AlgoBounded:
		r.BalanceFactor = c.BalanceFactor
	}
	r.LookupNs = float64(e.hashNanos) / float64(keys)
	r.LookupNs += float64(e.lookupNanos) / float64(keys*e.passes())
	if !l.changed() {
		r.Distribution = distribution(l.before, e.countsBefore, keys)
		return r
	}
	before := distribution(l.before, e.countsBefore, keys)
	r.Before = &before
	r.Distribution = distribution(l.after(), e.countsAfter, keys)
	moved := e.moved
	frac := float64(moved) / float64(keys)
	ideal := idealMoved(l, e.countsBefore, keys)
	r.MovedKeys, r.MovedFraction, r.IdealMovedFraction = &moved, &frac, &ideal
	return r
}

// idealMoved is the least a change can move: the keys the removed nodes held before it,
// plus the added nodes' weight share after it.
func idealMoved(l *layout, countsBefore []int64, keys int64) float64 {
	f := 0.0
	for _, m := range l.removed {
		f += float64(countsBefore[m.id]) / float64(keys)
	}
	if len(l.added) > 0 {
		var added, all float64
		for _, m := range l.added {
			added += m.weight
		}
		for _, m := range l.after() {
			all += m.weight
		}
		f += added / all
	}
	return f
}

func distribution(ms []member, counts []int64, keys int64) Distribution {
	d := Distribution{Nodes: make([]NodeLoad, len(ms)), MinOverMean: math.Inf(1)}
	totalW := 0.0
	for _, m := range ms {
		totalW += m.weight
	}
	var sq float64
	for i, m := range ms {
		n := NodeLoad{Name: m.name, Keys: counts[m.id], IdealShare: m.weight / totalW}
		n.Share = float64(n.Keys) / float64(keys)
		d.Nodes[i] = n
		ratio := n.Share / n.IdealShare
		sq += (ratio - 1) * (ratio - 1)
		d.MaxOverMean = max(d.MaxOverMean, ratio)
		d.MinOverMean = min(d.MinOverMean, ratio)
	}
	d.StddevPct = 100 * math.Sqrt(sq/float64(len(ms)))
	return d
}

// ---------- the run ----------

// engine fans batches out to one worker per core. Stateless algorithms are looked up in
// the workers; bounded placements go to a sequencer goroutine that applies them in
// batch order, so the result does not depend on scheduling.
type engine struct {
	ctx     context.Context
	cancel  context.CancelFunc
	evals   []*evaluation
	ids     int
	src     KeySource
	hashers []*hasher // distinct hashes the evaluations need
	done    atomic.Int64

	seqCh   chan seqItem
	hashBuf sync.Pool // of *[]uint64, batches of hashes on their way to the sequencer

	hashMu    sync.Mutex
	hashNanos [numHashers]int64
}

type seqItem struct {
	seq int64
	hs  *[]uint64 // the batch's hashes for the bounded evaluations (one hash: theirs)
}

func run(ctx context.Context, evals []*evaluation, ids int, src KeySource, workers int, progress Progress) (int64, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e := &engine{ctx: ctx, cancel: cancel, evals: evals, ids: ids, src: src}
	var bounded []*evaluation
	for _, ev := range evals {
		if !containsHasher(e.hashers, ev.hash) {
			e.hashers = append(e.hashers, ev.hash)
		}
		if ev.bBefore != nil {
			bounded = append(bounded, ev)
		}
	}
	e.hashBuf.New = func() any { s := make([]uint64, 0, batchKeys); return &s }

	var seqWG sync.WaitGroup
	if len(bounded) > 0 {
		e.seqCh = make(chan seqItem, 4*workers)
		seqWG.Add(1)
		go func() {
			defer seqWG.Done()
			e.sequence(bounded)
		}()
	}

	stopTicker := make(chan struct{})
	var tickWG sync.WaitGroup
	if progress != nil {
		tickWG.Add(1)
		go func() {
			defer tickWG.Done()
			t := time.NewTicker(progressEvery)
			defer t.Stop()
			for {
				select {
				case <-stopTicker:
					return
				case <-t.C:
					progress(e.done.Load(), src.Total())
				}
			}
		}()
	}

	var wg sync.WaitGroup
	errCh := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.work(); err != nil {
				errCh <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	if e.seqCh != nil {
		close(e.seqCh)
	}
	seqWG.Wait()
	close(stopTicker)
	tickWG.Wait()

	close(errCh)
	var err error
	for werr := range errCh {
		if err == nil || errors.Is(err, context.Canceled) {
			err = werr
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return 0, runError(err)
	}
	keys := e.done.Load()
	if progress != nil {
		progress(keys, src.Total())
	}
	if keys == 0 {
		return 0, errs.Usage("ring: the key stream is empty").WithHint("give a keys file with one key per line, or --keys N").Wrap(ErrNoKeys)
	}
	for _, ev := range evals {
		ev.hashNanos = e.hashNanos[ev.hash.id]
	}
	return keys, nil
}

func runError(err error) error {
	var de *errs.Error
	switch {
	case errors.As(err, &de):
		return err
	case errors.Is(err, context.Canceled):
		return errs.New(errs.KindInterrupted, "ring: interrupted").Wrap(err)
	case errors.Is(err, context.DeadlineExceeded):
		return errs.New(errs.KindRuntime, "ring: the run did not finish in the time allowed").Wrap(err)
	}
	return errs.New(errs.KindRuntime, "ring: %v", err).Wrap(err)
}

func containsHasher(hs []*hasher, h *hasher) bool {
	for _, x := range hs {
		if x.id == h.id {
			return true
		}
	}
	return false
}

// workerState is one worker's private tallies, merged once at the end.
type workerState struct {
	countsBefore [][]int64
	countsAfter  [][]int64
	moved        []int64
	nanos        []int64
	hashNanos    [numHashers]int64
}

func (e *engine) work() error {
	var b Batch
	var hs [numHashers][]uint64
	for _, h := range e.hashers {
		hs[h.id] = make([]uint64, batchKeys)
	}
	ob := make([]int32, batchKeys)
	oa := make([]int32, batchKeys)
	st := workerState{
		countsBefore: make([][]int64, len(e.evals)),
		countsAfter:  make([][]int64, len(e.evals)),
		moved:        make([]int64, len(e.evals)),
		nanos:        make([]int64, len(e.evals)),
	}
	for i := range e.evals {
		st.countsBefore[i] = make([]int64, e.ids)
		st.countsAfter[i] = make([]int64, e.ids)
	}
	defer e.merge(&st)
	for {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		err := e.src.Next(&b)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		n := b.Len()
		if n > len(ob) { // a KeySource with bigger batches than ours
			for _, h := range e.hashers {
				hs[h.id] = make([]uint64, n)
			}
			ob, oa = make([]int32, n), make([]int32, n)
		}
		for _, h := range e.hashers {
			t := time.Now()
			out := hs[h.id][:n]
			start := 0
			for i, end := range b.ends {
				out[i] = h.sum(b.data[start:end])
				start = end
			}
			st.hashNanos[h.id] += int64(time.Since(t))
		}
		for k, ev := range e.evals {
			if ev.before == nil {
				continue
			}
			h := hs[ev.hash.id][:n]
			t := time.Now()
			ev.before.lookup(h, ob)
			if ev.after != nil {
				ev.after.lookup(h, oa)
			}
			st.nanos[k] += int64(time.Since(t))
			cb := st.countsBefore[k]
			for _, o := range ob[:n] {
				cb[o]++
			}
			if ev.after != nil {
				ca := st.countsAfter[k]
				moved := int64(0)
				for i, o := range oa[:n] {
					ca[o]++
					if o != ob[i] {
						moved++
					}
				}
				st.moved[k] += moved
			}
		}
		if e.seqCh != nil {
			// All bounded evaluations share the user's hash.
			var hid int
			for _, ev := range e.evals {
				if ev.bBefore != nil {
					hid = ev.hash.id
				}
			}
			buf := e.hashBuf.Get().(*[]uint64)
			*buf = append((*buf)[:0], hs[hid][:n]...)
			select {
			case e.seqCh <- seqItem{seq: b.Seq, hs: buf}:
			case <-e.ctx.Done():
				return e.ctx.Err()
			}
		}
		e.done.Add(int64(n))
	}
}

func (e *engine) merge(st *workerState) {
	for k, ev := range e.evals {
		if ev.bBefore != nil {
			continue // the sequencer alone counts bounded placements
		}
		ev.mu.Lock()
		for i := range ev.countsBefore {
			ev.countsBefore[i] += st.countsBefore[k][i]
			ev.countsAfter[i] += st.countsAfter[k][i]
		}
		ev.moved += st.moved[k]
		ev.lookupNanos += st.nanos[k]
		ev.mu.Unlock()
	}
	e.hashMu.Lock()
	for i := range e.hashNanos {
		e.hashNanos[i] += st.hashNanos[i]
	}
	e.hashMu.Unlock()
}

// sequence applies bounded placements batch by batch in Seq order. Batches that arrive
// early wait in pending; it keeps draining the channel so workers never block on it for
// long.
func (e *engine) sequence(bounded []*evaluation) {
	pending := map[int64]*[]uint64{}
	next := int64(0)
	for item := range e.seqCh {
		pending[item.seq] = item.hs
		for {
			buf, ok := pending[next]
			if !ok {
				break
			}
			hs := *buf
			delete(pending, next)
			next++
			for _, ev := range bounded {
				t := time.Now()
				moved := int64(0)
				if ev.bAfter == nil {
					for _, h := range hs {
						ev.countsBefore[ev.bBefore.place(h)]++
					}
				} else {
					for _, h := range hs {
						o := ev.bBefore.place(h)
						a := ev.bAfter.place(h)
						ev.countsBefore[o]++
						ev.countsAfter[a]++
						if o != a {
							moved++
						}
					}
				}
				ev.moved += moved
				ev.lookupNanos += int64(time.Since(t))
			}
			e.hashBuf.Put(buf)
		}
	}
}
