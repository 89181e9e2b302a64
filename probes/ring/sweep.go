package ring

import (
	"context"
	"math"
	"strconv"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// SweepSpec is one `ring sweep` run: the same keys through one V-dependent algorithm at
// each V in VnodesList.
type SweepSpec struct {
	Cluster                   // Cluster.Vnodes is ignored
	Algo              Algo    // ring (when empty), bounded, groupcache or stathat
	VnodesList        []int   // nil means DefaultSweepVnodes
	TargetMaxOverMean float64 // 0 means DefaultTarget; >= 1
	Workers           int
}

// SweepPoint is the imbalance at one V.
type SweepPoint struct {
	Vnodes      int     `json:"vnodes"`
	StddevPct   float64 `json:"stddev_pct"`
	MaxOverMean float64 `json:"max_over_mean"`
	MinOverMean float64 `json:"min_over_mean"`
	MeetsTarget bool    `json:"meets_target"`
	LookupNs    float64 `json:"lookup_ns"`
	MemoryBytes int64   `json:"memory_bytes"`
}

// SweepResult is imbalance against V and the smallest V whose max/mean meets the target
// (null when none does).
type SweepResult struct {
	Algo           Algo         `json:"algo"`
	Hash           string       `json:"hash"`
	Keys           int64        `json:"keys"`
	Nodes          int          `json:"nodes"`
	Target         float64      `json:"target_max_over_mean"`
	Points         []SweepPoint `json:"points"`
	SmallestVnodes *int         `json:"smallest_vnodes"`
}

// ParseVnodesList reads a comma-separated V list such as "10,20,50,100".
func ParseVnodesList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, errs.Usage("ring: --vnodes %q: each value must be a whole number >= 1", s).
				WithHint("e.g. --vnodes 10,20,50,100,200,500,1000")
		}
		out = append(out, v)
	}
	return out, nil
}

// Sweep runs the keys once through one structure per V and reports the imbalance of each.
func Sweep(ctx context.Context, spec SweepSpec, src KeySource, progress Progress) (SweepResult, error) {
	algo := spec.Algo
	if algo == "" {
		algo = AlgoRing
	}
	if !algo.known() {
		_, err := ParseAlgo(string(algo))
		return SweepResult{}, err
	}
	if !algo.usesVnodes() {
		return SweepResult{}, errs.Usage("ring: sweep varies virtual nodes, which %s does not use", algo).
			WithHint("sweep ring, bounded, groupcache or stathat")
	}
	vs := spec.VnodesList
	if len(vs) == 0 {
		vs = DefaultSweepVnodes()
	}
	target := spec.TargetMaxOverMean
	if target == 0 {
		target = DefaultTarget
	}
	if !(target >= 1) || math.IsInf(target, 0) {
		return SweepResult{}, errs.Usage("ring: --target-max-over-mean must be a number >= 1, got %v", spec.TargetMaxOverMean)
	}
	c := spec.Cluster
	c.Vnodes = vs[0]
	for _, v := range vs {
		if v < 1 {
			return SweepResult{}, errs.Usage("ring: --vnodes must be at least 1, got %d", v)
		}
	}
	c, err := c.validate([]Algo{algo})
	if err != nil {
		return SweepResult{}, err
	}
	l, err := newLayout(c.Nodes, nil, nil)
	if err != nil {
		return SweepResult{}, err
	}
	user, _ := lookupHash(c.Hash)
	evals := make([]*evaluation, len(vs))
	for i, v := range vs {
		if evals[i], err = newEvaluation(algo, c, v, l, user); err != nil {
			return SweepResult{}, err
		}
	}
	keys, err := run(ctx, evals, l.idCount(), src, spec.Workers, progress)
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Algo: algo, Hash: evals[0].hash.name, Keys: keys, Nodes: len(c.Nodes), Target: target}
	for i, ev := range evals {
		cv := c
		cv.Vnodes = vs[i]
		r := ev.result(cv, l, keys)
		p := SweepPoint{
			Vnodes: vs[i], StddevPct: r.StddevPct, MaxOverMean: r.MaxOverMean, MinOverMean: r.MinOverMean,
			MeetsTarget: r.MaxOverMean <= target, LookupNs: r.LookupNs, MemoryBytes: r.MemoryBytes,
		}
		res.Points = append(res.Points, p)
		if p.MeetsTarget && (res.SmallestVnodes == nil || p.Vnodes < *res.SmallestVnodes) {
			v := p.Vnodes
			res.SmallestVnodes = &v
		}
	}
	return res, nil
}
