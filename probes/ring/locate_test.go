package ring

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	nodes := mustNodes(t, 8)
	spec := LocateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 50, MaglevM: 1009}, Algos: append(AllAlgos(), CompatModes()...), Replicas: 3}
	keys := []string{"user:1", "user:2", ""}
	got, err := Locate(spec, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys)*len(spec.Algos) {
		t.Fatalf("%d placements, want %d", len(got), len(keys)*len(spec.Algos))
	}
	for i, p := range got {
		if p.Key != keys[i/len(spec.Algos)] || p.Algo != spec.Algos[i%len(spec.Algos)] {
			t.Fatalf("placement %d is %s/%s: not key-major order", i, p.Key, p.Algo)
		}
		if len(p.Owners) != 3 {
			t.Errorf("%s %q: %d owners, want 3", p.Algo, p.Key, len(p.Owners))
		}
		uniq := slices.Compact(slices.Sorted(slices.Values(p.Owners)))
		if len(uniq) != len(p.Owners) {
			t.Errorf("%s %q: owners %v repeat a node", p.Algo, p.Key, p.Owners)
		}
		tab, err := NewTable(spec.Cluster, p.Algo)
		if err != nil {
			t.Fatal(err)
		}
		if first := tab.Owner(p.Key); p.Owners[0] != first {
			t.Errorf("%s %q: first replica %s, owner %s", p.Algo, p.Key, p.Owners[0], first)
		}
		if (p.Algo == AlgoBounded) != (p.Note != "") {
			t.Errorf("%s: note %q", p.Algo, p.Note)
		}
	}
	// The ring's owner is the key's successor point.
	tab, _ := NewTable(spec.Cluster, AlgoRing)
	r := tab.p.(*hashRing)
	h := hashers[hashXX].sum([]byte("user:1"))
	succ := slices.IndexFunc(r.points, func(p uint64) bool { return p >= h })
	if succ < 0 {
		succ = 0
	}
	if tab.Owner("user:1") != nodes[r.nodeOf[succ]].Name {
		t.Error("ring owner is not the successor point's node")
	}
	b, _ := json.Marshal(got[0])
	if !strings.Contains(string(b), `"owners":[`) || !strings.Contains(string(b), `"key":"user:1"`) {
		t.Errorf("json %s", b)
	}
}

// TestRingLookupMatchesLinearScan checks the prefix-indexed search against the
// definition (first point >= h, wrapping) for many hashes, on rings of every size class,
// for 64- and 32-bit hashes and the strict (">") successor.
func TestRingLookupMatchesLinearScan(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 17, 300, 5000} {
		for _, width := range []uint{32, 64} {
			for _, strict := range []bool{false, true} {
				pts := make([]ringPoint, n)
				for i := range pts {
					pts[i] = ringPoint{mix64(uint64(i)+uint64(n)) >> (64 - width), int32(i % 7)}
				}
				slices.SortFunc(pts, func(a, b ringPoint) int { return cmp.Compare(a.p, b.p) })
				pts = slices.CompactFunc(pts, func(a, b ringPoint) bool { return a.p == b.p })
				r := ringFromPoints(pts, width, strict)
				max := uint64(1)<<(width-1) - 1 + uint64(1)<<(width-1)
				probes := []uint64{0, 1, max, max - 1, pts[0].p, pts[len(pts)-1].p}
				for i := range 2000 {
					probes = append(probes, mix64(uint64(i)*31)>>(64-width), pts[i%len(pts)].p, pts[i%len(pts)].p-1)
				}
				for _, h := range probes {
					want := 0
					for i, p := range pts {
						if p.p > h || (!strict && p.p == h) {
							want = i
							break
						}
					}
					if got := r.find(h); got != want {
						t.Fatalf("n=%d width=%d strict=%v: find(%d) = %d, want %d", n, width, strict, h, got, want)
					}
				}
			}
		}
	}
}

func TestSortPoints(t *testing.T) {
	for _, n := range []int{0, 1, 2, 10_000} {
		for _, width := range []uint{32, 64} {
			pts := make([]ringPoint, n)
			points := make([]uint64, n)
			nodeOf := make([]int32, n)
			for i := range pts {
				p := mix64(uint64(i)) >> (64 - width)
				if i%3 == 0 {
					p = uint64(i % 50) // many ties
				}
				pts[i] = ringPoint{p, int32(i)}
				points[i], nodeOf[i] = p, int32(i)
			}
			slices.SortStableFunc(pts, func(a, b ringPoint) int { return cmp.Compare(a.p, b.p) })
			sortPoints(points, nodeOf)
			for i := range pts {
				if points[i] != pts[i].p || nodeOf[i] != pts[i].o {
					t.Fatalf("n=%d width=%d: index %d is (%d, %d), a stable sort gives (%d, %d)", n, width, i, points[i], nodeOf[i], pts[i].p, pts[i].o)
				}
			}
		}
	}
}

func TestSweep(t *testing.T) {
	nodes := mustNodes(t, 10)
	res, err := Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: nodes}, VnodesList: []int{1000, 1, 10}, TargetMaxOverMean: 1.1},
		mustKeys(t, 200_000, Dist{}, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 3 || res.Points[0].Vnodes != 1000 || res.Keys != 200_000 || res.Algo != AlgoRing || res.Target != 1.1 {
		t.Fatalf("sweep %+v", res)
	}
	if res.Points[1].MaxOverMean < 1.5 || res.Points[1].MeetsTarget {
		t.Errorf("V=1 max/mean %.2f: one point per node should be badly unbalanced", res.Points[1].MaxOverMean)
	}
	if !res.Points[0].MeetsTarget || res.SmallestVnodes == nil || *res.SmallestVnodes > 1000 {
		t.Errorf("V=1000 max/mean %.3f, smallest %v", res.Points[0].MaxOverMean, res.SmallestVnodes)
	}
	for _, p := range res.Points {
		if p.MeetsTarget != (p.MaxOverMean <= 1.1) {
			t.Errorf("V=%d: meets %v with max/mean %.3f", p.Vnodes, p.MeetsTarget, p.MaxOverMean)
		}
		if p.MeetsTarget && p.Vnodes < *res.SmallestVnodes {
			t.Errorf("V=%d meets the target but smallest is %d", p.Vnodes, *res.SmallestVnodes)
		}
	}
	if res.Points[0].StddevPct > res.Points[2].StddevPct {
		t.Errorf("stddev at V=1000 (%.2f) above V=10 (%.2f)", res.Points[0].StddevPct, res.Points[2].StddevPct)
	}
	// No V meets an impossible target.
	res, err = Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: nodes}, VnodesList: []int{1, 2}, TargetMaxOverMean: 1.0},
		mustKeys(t, 10_000, Dist{}, 1), nil)
	if err != nil || res.SmallestVnodes != nil {
		t.Fatalf("impossible target: %v, %v", res.SmallestVnodes, err)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"smallest_vnodes":null`) {
		t.Errorf("json %s", b)
	}
}
