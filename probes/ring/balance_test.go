package ring

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// bigKeys is the key count of the statistical tests: the 1,000,000, or 200,000
// under -race (tolerances below are derived from the count, so they stay honest).
func bigKeys() int64 {
	if raceEnabled {
		return 200_000
	}
	return 1_000_000
}

// arcShares is each owner's exact share of the circle: the fraction of all hash values
// the ring sends to it (what infinitely many uniform keys would measure).
func arcShares(r *hashRing, ids int) []float64 {
	span := math.Ldexp(1, int(r.width))
	shares := make([]float64, ids)
	last := r.points[len(r.points)-1]
	for i, p := range r.points {
		var arc float64
		if i == 0 {
			arc = span - float64(last) + float64(p)
		} else {
			arc = float64(p - r.points[i-1])
		}
		shares[r.nodeOf[i]] += arc / span
	}
	return shares
}

func namedNodes(prefix string, n int) []Node {
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: fmt.Sprintf("%snode-%d", prefix, i+1), Weight: 1}
	}
	return nodes
}

func ringOf(t testing.TB, nodes []Node, vnodes int, hash string) *hashRing {
	t.Helper()
	l, err := newLayout(nodes, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := lookupHash(hash)
	if err != nil {
		t.Fatal(err)
	}
	r, err := buildRing(l.before, vnodes, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// expectedRingSD is the standard deviation of load/mean for N nodes with V points each:
// N*V uniform points cut the circle into Dirichlet(1..1) gaps, a node's share is the sum
// of V of them, Beta(V, (N-1)V), whose variance times N^2 is (N-1)/(NV+1). K uniform keys
// add multinomial noise (N-1)/K. For N=10 this is 0.949/sqrt(V): the issue's "about
// 1/sqrt(V)", 9.5% at V=100 and 3.0% at V=1000.
func expectedRingSD(n, v int, keys float64) float64 {
	nf, vf := float64(n), float64(v)
	sd := (nf - 1) / (nf*vf + 1)
	if keys > 0 {
		sd += (nf - 1) / keys
	}
	return math.Sqrt(sd)
}

// TestRingBalanceMatchesTheory measures the exact arc shares of many independent rings
// (node names differ per trial) and compares the pooled RMS of load/mean-1 with
// expectedRingSD. Each ring contributes about N-1 = 9 degrees of freedom, so the pooled
// estimate's relative standard error is 1/sqrt(2*9*T): 1.7% for T=200. The tolerance,
// max(10%, 6 standard errors), is loose for a correct ring yet fails any real bug:
// ignoring V, or hashing with 32 of 64 bits, moves the RMS by 3x or more.
func TestRingBalanceMatchesTheory(t *testing.T) {
	const n = 10
	trials := 200
	if raceEnabled {
		trials = 40
	}
	tol := math.Max(0.10, 6/math.Sqrt(2*9*float64(trials)))
	for _, v := range []int{100, 1000} {
		var sumSq float64
		for trial := range trials {
			r := ringOf(t, namedNodes(fmt.Sprintf("t%d-", trial), n), v, "xxhash64")
			for _, s := range arcShares(r, n) {
				sumSq += (s*n - 1) * (s*n - 1)
			}
		}
		got := math.Sqrt(sumSq / float64(trials*n))
		want := expectedRingSD(n, v, 0)
		t.Logf("V=%d: RMS load deviation %.2f%% over %d rings, theory %.2f%%, 1/sqrt(V) %.2f%%", v, 100*got, trials, 100*want, 100/math.Sqrt(float64(v)))
		if math.Abs(got/want-1) > tol {
			t.Errorf("V=%d: RMS load deviation %.3f%%, want %.3f%% within %.0f%%", v, 100*got, 100*want, 100*tol)
		}
	}
}

// TestRingBalanceWithKeys is the check, 10 nodes and 1,000,000 uniform keys:
//   - every node's key count matches its exact arc share within 5 binomial standard
//     deviations (the lookup sends each key where the ring says);
//   - stddev_pct, pooled over 4 rings (36 degrees of freedom), is within [0.65, 1.4] of
//     expectedRingSD, which is about 1/sqrt(V) of the mean; chi-square with 36 degrees
//     of freedom puts 99.9% of correct runs inside [0.66, 1.37].
func TestRingBalanceWithKeys(t *testing.T) {
	const n = 10
	keys := bigKeys()
	for _, v := range []int{100, 1000} {
		var sumSq float64
		const rings = 4
		for trial := range rings {
			nodes := namedNodes(fmt.Sprintf("k%d-", trial), n)
			res := simulate(t, SimulateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: v}, Algos: []Algo{AlgoRing}},
				mustKeys(t, keys, Dist{}, uint64(trial)))[AlgoRing]
			arcs := arcShares(ringOf(t, nodes, v, "xxhash64"), n)
			for i, nl := range res.Nodes {
				want := float64(keys) * arcs[i]
				if d := math.Abs(float64(nl.Keys) - want); d > 5*math.Sqrt(want*(1-arcs[i]))+1 {
					t.Errorf("V=%d %s: %d keys, its arc predicts %.0f", v, nl.Name, nl.Keys, want)
				}
			}
			sumSq += res.StddevPct * res.StddevPct
		}
		got := math.Sqrt(sumSq/rings) / 100
		want := expectedRingSD(n, v, float64(keys))
		t.Logf("V=%d: stddev %.2f%% of the mean, theory %.2f%%", v, 100*got, 100*want)
		if r := got / want; r < 0.65 || r > 1.4 {
			t.Errorf("V=%d: stddev %.2f%% of the mean, want %.2f%% (x0.65..1.4)", v, 100*got, 100*want)
		}
	}
}

// TestMovesOnChange adds an 11th node to 10, and removes a middle node, and checks the
// fraction of keys that move. Binomial noise on the fraction is sqrt(p(1-p)/K) <= 0.0007
// for K >= 200,000, so ±0.005 on jump, rendezvous and modulo is > 7 standard errors. The
// ring's new node owns a Beta(V, 10V) share, 1/11 ± 9.5% (1 sd) at V=100, so ±50% is
// > 5 sd. Consistent algorithms must move keys only to the new node (or only off the
// removed one): that is checked exactly.
func TestMovesOnChange(t *testing.T) {
	nodes := mustNodes(t, 10)
	keys := bigKeys()
	algos := []Algo{AlgoModulo, AlgoRing, AlgoJump, AlgoRendezvous, AlgoMaglev, AlgoBounded}
	add := simulate(t, SimulateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 100}, Algos: algos, Add: []Node{{"node-11", 1}}},
		mustKeys(t, keys, Dist{}, 7))
	remove := simulate(t, SimulateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 100}, Algos: algos, Remove: []string{"node-4"}},
		mustKeys(t, keys, Dist{}, 7))

	type bound struct{ lo, hi float64 }
	addWant := map[Algo]bound{
		AlgoModulo:     {10.0/11 - 0.005, 10.0/11 + 0.005},
		AlgoJump:       {1.0/11 - 0.005, 1.0/11 + 0.005},
		AlgoRendezvous: {1.0/11 - 0.005, 1.0/11 + 0.005},
		AlgoRing:       {0.5 / 11, 1.5 / 11},
		AlgoMaglev:     {1.0/11 - 0.005, 1.6 / 11}, // Maglev trades a little extra movement for balance
	}
	removeWant := map[Algo]bound{
		AlgoModulo:     {0.9 - 0.005, 0.9 + 0.005}, // 10 -> 9: a key stays iff h%10 == h%9
		AlgoJump:       {0.1 - 0.005, 0.1 + 0.005},
		AlgoRendezvous: {0.1 - 0.005, 0.1 + 0.005},
		AlgoRing:       {0.5 / 10, 1.5 / 10},
		AlgoMaglev:     {0.1 - 0.005, 1.6 / 10},
	}
	for _, a := range algos {
		ra, rr := add[a], remove[a]
		t.Logf("%-10s add: moved %.4f (ideal %.4f)  remove node-4: moved %.4f (ideal %.4f)",
			a, *ra.MovedFraction, *ra.IdealMovedFraction, *rr.MovedFraction, *rr.IdealMovedFraction)
		if math.Abs(*ra.IdealMovedFraction-1.0/11) > 1e-12 {
			t.Errorf("%s: ideal moved fraction on add %v, want 1/11", a, *ra.IdealMovedFraction)
		}
		if *rr.IdealMovedFraction != rr.Before.Nodes[3].Share {
			t.Errorf("%s: ideal moved fraction on remove %v, want node-4's share %v", a, *rr.IdealMovedFraction, rr.Before.Nodes[3].Share)
		}
		if w, ok := addWant[a]; ok && (*ra.MovedFraction < w.lo || *ra.MovedFraction > w.hi) {
			t.Errorf("%s: adding an 11th node moved %.4f of keys, want %.4f..%.4f", a, *ra.MovedFraction, w.lo, w.hi)
		}
		if w, ok := removeWant[a]; ok && (*rr.MovedFraction < w.lo || *rr.MovedFraction > w.hi) {
			t.Errorf("%s: removing node-4 moved %.4f of keys, want %.4f..%.4f", a, *rr.MovedFraction, w.lo, w.hi)
		}
		switch a {
		case AlgoRing, AlgoJump, AlgoRendezvous:
			if got := ra.Nodes[10].Keys; *ra.MovedKeys != got {
				t.Errorf("%s: %d keys moved on add, but the new node has %d: keys moved between old nodes", a, *ra.MovedKeys, got)
			}
			if got := rr.Before.Nodes[3].Keys; *rr.MovedKeys != got {
				t.Errorf("%s: %d keys moved on remove, but node-4 had %d", a, *rr.MovedKeys, got)
			}
		}
		if len(rr.Nodes) != 9 || len(rr.Before.Nodes) != 10 || len(ra.Nodes) != 11 {
			t.Errorf("%s: node lists %d (after remove), %d (before), %d (after add)", a, len(rr.Nodes), len(rr.Before.Nodes), len(ra.Nodes))
		}
	}
}

// TestBoundedCapacity: no node ever holds more than ceil(f * keys / nodes), f the balance
// factor, with uniform and skewed (zipf) keys, before and after a change. V=10 makes the
// plain ring unbalanced enough that the cap has to act.
func TestBoundedCapacity(t *testing.T) {
	nodes := mustNodes(t, 10)
	keys := bigKeys() / 4
	for _, dist := range []Dist{{}, {Zipf: true, S: 1.2}} {
		for _, f := range []int{110, 125, 150, 200} {
			res := simulate(t, SimulateSpec{
				Cluster: Cluster{Nodes: nodes, Vnodes: 10, BalanceFactor: f},
				Algos:   []Algo{AlgoRing, AlgoBounded},
				Add:     []Node{{"node-11", 1}},
			}, mustKeys(t, keys, dist, 3))
			for _, d := range []Distribution{*res[AlgoBounded].Before, res[AlgoBounded].Distribution} {
				limit := int64(math.Ceil(float64(f) / 100 * float64(keys) / float64(len(d.Nodes))))
				for _, nl := range d.Nodes {
					if nl.Keys > limit {
						t.Errorf("%v f=%d: %s holds %d keys, cap is %d", dist, f, nl.Name, nl.Keys, limit)
					}
				}
			}
			if f == 110 && dist == (Dist{}) && res[AlgoRing].Before.MaxOverMean <= 1.1 {
				t.Errorf("the plain ring at V=10 is already within 1.1x (%.3f): the cap was not tested", res[AlgoRing].Before.MaxOverMean)
			}
			if f == 110 && res[AlgoBounded].MaxOverMean > 1.1+1e-9 {
				t.Errorf("%v: bounded f=110 max/mean %.4f", dist, res[AlgoBounded].MaxOverMean)
			}
		}
	}
	// Weighted: node i may hold ceil(f * keys * w_i / W).
	weighted := []Node{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}
	res := simulate(t, SimulateSpec{Cluster: Cluster{Nodes: weighted, Vnodes: 5, BalanceFactor: 110}, Algos: []Algo{AlgoBounded}},
		mustKeys(t, keys, Dist{}, 4))[AlgoBounded]
	for i, nl := range res.Nodes {
		limit := int64(math.Ceil(1.1*float64(keys)*weighted[i].Weight/10 + 1e-6))
		if nl.Keys > limit {
			t.Errorf("weighted: %s holds %d keys, cap is %d", nl.Name, nl.Keys, limit)
		}
	}
}

// TestMaglevTableShare: with M > 100 x N each node owns within 1% of M/N table entries
// (the fill is round-robin, so counts differ by at most one when weights are equal).
// Weighted nodes own within 1% of M*w/W.
func TestMaglevTableShare(t *testing.T) {
	cases := []struct {
		nodes []Node
		m     int
	}{
		{mustNodes(t, 10), 65537},
		{mustNodes(t, 100), 65537},
		{mustNodes(t, 500), 65537},
		{mustNodes(t, 7), 1009},
		{[]Node{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}, 65537},
		{[]Node{{"a", 1}, {"b", 1.5}, {"c", 0.25}}, 65537},
	}
	for _, tc := range cases {
		l, err := newLayout(tc.nodes, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := buildMaglev(l.before, tc.m, &hashers[hashXX], membersEqual(l.before))
		counts := make([]int, len(tc.nodes))
		for _, o := range g.table {
			counts[o]++
		}
		totalW := 0.0
		for _, n := range tc.nodes {
			totalW += n.Weight
		}
		for i, c := range counts {
			want := float64(tc.m) * tc.nodes[i].Weight / totalW
			if math.Abs(float64(c)/want-1) > 0.01 {
				t.Errorf("N=%d M=%d: %s owns %d entries, want %.1f ±1%%", len(tc.nodes), tc.m, tc.nodes[i].Name, c, want)
			}
		}
	}
}

// TestSameSeedSameOutput: a seed fixes every number but the timing, whatever the number
// of workers; another seed changes them.
func TestSameSeedSameOutput(t *testing.T) {
	nodes := []Node{{"a", 1}, {"b", 2}, {"c", 1}, {"d", 3}, {"e", 1}}
	run := func(seed uint64, dist Dist, workers int) string {
		res, err := Simulate(context.Background(), SimulateSpec{
			Cluster: Cluster{Nodes: nodes, Vnodes: 50, MaglevM: 1009},
			Algos:   AllAlgos(),
			Add:     []Node{{"f", 2}},
			Remove:  []string{"b"},
			Workers: workers,
		}, mustKeys(t, 50_000, dist, seed), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range res {
			res[i].LookupNs = 0
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, dist := range []Dist{{}, {Zipf: true, S: 1.1}} {
		a, b, c := run(42, dist, 1), run(42, dist, 4), run(43, dist, 2)
		if a != b {
			t.Errorf("%v: seed 42 gave different results with 1 and 4 workers:\n%s\n%s", dist, a, b)
		}
		if a == c {
			t.Errorf("%v: seeds 42 and 43 gave the same results", dist)
		}
	}
}

// TestWeightsShiftLoad: a node of weight 3 gets about 3x the keys under every algorithm.
func TestWeightsShiftLoad(t *testing.T) {
	nodes := []Node{{"a", 1}, {"b", 1}, {"c", 3}}
	res := simulate(t, SimulateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 500}, Algos: AllAlgos()},
		mustKeys(t, bigKeys()/4, Dist{}, 5))
	for _, a := range AllAlgos() {
		c := res[a].Nodes[2]
		if math.Abs(c.IdealShare-0.6) > 1e-12 || math.Abs(c.Share-0.6) > 0.03 {
			t.Errorf("%s: weight-3 node share %.4f (ideal %.4f), want 0.6 ± 0.03", a, c.Share, c.IdealShare)
		}
	}
}

func TestJumpHashMatchesPaper(t *testing.T) {
	// The paper's C++ loop, with integer b and j.
	ref := func(key uint64, buckets int32) int32 {
		b, j := int64(-1), int64(0)
		for j < int64(buckets) {
			b = j
			key = key*2862933555777941757 + 1
			j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
		}
		return int32(b)
	}
	if JumpHash(1, 0) != -1 || JumpHash(1, -5) != -1 {
		t.Error("JumpHash with no buckets should be -1")
	}
	for i := range uint64(200_000) {
		k := mix64(i)
		for _, n := range []int32{1, 2, 11, 100, 1000, 1 << 20} {
			if got, want := JumpHash(k, n), ref(k, n); got != want {
				t.Fatalf("JumpHash(%d, %d) = %d, paper's loop gives %d", k, n, got, want)
			}
		}
	}
	// Vectors generated from the paper's reference C++ code, as published in
	// github.com/dgryski/go-jump's tests: JumpHash(key, n) for n = 1, 2, 3, ...
	vectors := []struct {
		key     uint64
		buckets []int32
	}{
		{0, []int32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []int32{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17}},
		{0xdeadbeef, []int32{0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16}},
		{0x0ddc0ffeebadf00d, []int32{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15}},
	}
	for _, v := range vectors {
		for i, want := range v.buckets {
			if got := JumpHash(v.key, int32(i+1)); got != want {
				t.Errorf("JumpHash(%#x, %d) = %d, want %d", v.key, i+1, got, want)
			}
		}
	}
}
