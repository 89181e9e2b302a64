package ring

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/golang/groupcache/consistenthash"
	"github.com/stathat/consistent"
)

// crc32 collisions between replica labels, found by search: crc32("16" + a) ==
// crc32("5" + b) and crc32("12" + c) == crc32("16" + d). With 20 replicas both pairs
// share a point, which exercises each library's rule for a shared point.
var collidingNodes = []string{
	"10.198.213.93:11211", "10.15.222.244:11211", "cache-a", "10.101.119.222:11211", "10.121.0.206:11211", "cache-b",
}

func compatNodeSets() map[string][]string {
	random := make([]string, 100)
	for i := range random {
		random[i] = fmt.Sprintf("10.%d.%d.%d:6379", mix64(uint64(i))%256, mix64(uint64(i)+1)%256, mix64(uint64(i)+2)%256)
	}
	return map[string][]string{"colliding": collidingNodes, "100 nodes": random, "one node": {"solo"}}
}

func unitNodes(names []string) []Node {
	out := make([]Node, len(names))
	for i, n := range names {
		out[i] = Node{n, 1}
	}
	return out
}

// compatKeys: generated keys, plus every replica label (their hash equals a point
// exactly, where ">=" and ">" differ), plus edge cases.
func compatKeys(t *testing.T, names []string, replicas int) []string {
	keys := []string{"", "a", "user:42"}
	var b Batch
	src := mustKeys(t, 50_000, Dist{}, 9)
	for src.Next(&b) == nil {
		for i := range b.Len() {
			keys = append(keys, string(b.Key(i)))
		}
	}
	for _, n := range names {
		for i := range replicas {
			keys = append(keys, strconv.Itoa(i)+n)
		}
	}
	return keys
}

// compatSide builds our structure for one side of a change.
func compatSide(t *testing.T, a Algo, names []string, replicas int, add []string, remove []string, after bool) func(string) string {
	t.Helper()
	c := Cluster{Nodes: unitNodes(names), Vnodes: replicas}
	l, err := newLayout(c.Nodes, unitNodes(add), remove)
	if err != nil {
		t.Fatal(err)
	}
	h := hashFor(a, nil)
	p, err := build(a, c, replicas, l, after, h)
	if err != nil {
		t.Fatal(err)
	}
	ids := l.names()
	return func(k string) string { return ids[p.owner(h.sum([]byte(k)))] }
}

func TestCompatGroupcacheKeyForKey(t *testing.T) {
	for name, names := range compatNodeSets() {
		for _, replicas := range []int{20, 160} {
			t.Run(fmt.Sprintf("%s/V=%d", name, replicas), func(t *testing.T) {
				lib := consistenthash.New(replicas, nil)
				lib.Add(names...)
				tab, err := NewTable(Cluster{Nodes: unitNodes(names), Vnodes: replicas}, AlgoGroupcache)
				if err != nil {
					t.Fatal(err)
				}
				added := compatSide(t, AlgoGroupcache, names, replicas, []string{"new-node"}, nil, true)
				libAdded := consistenthash.New(replicas, nil)
				libAdded.Add(names...)
				libAdded.Add("new-node")
				for _, k := range compatKeys(t, names, replicas) {
					if got, want := tab.Owner(k), lib.Get(k); got != want {
						t.Fatalf("key %q: dsctl says %s, groupcache says %s", k, got, want)
					}
					if got, want := added(k), libAdded.Get(k); got != want {
						t.Fatalf("after Add(new-node), key %q: dsctl says %s, groupcache says %s", k, got, want)
					}
				}
			})
		}
	}
}

func TestCompatStathatKeyForKey(t *testing.T) {
	for name, names := range compatNodeSets() {
		for _, replicas := range []int{20, 160} {
			t.Run(fmt.Sprintf("%s/V=%d", name, replicas), func(t *testing.T) {
				lib := consistent.New()
				lib.NumberOfReplicas = replicas
				for _, n := range names {
					lib.Add(n)
				}
				tab, err := NewTable(Cluster{Nodes: unitNodes(names), Vnodes: replicas}, AlgoStathat)
				if err != nil {
					t.Fatal(err)
				}
				// The change: remove the first node (in the colliding set, one that lost a
				// shared point to a later node), then add one.
				remove, add := []string{names[0]}, []string{"new-node"}
				if len(names) == 1 {
					remove = nil
				}
				after := compatSide(t, AlgoStathat, names, replicas, add, remove, true)
				libAfter := consistent.New()
				libAfter.NumberOfReplicas = replicas
				for _, n := range names {
					libAfter.Add(n)
				}
				for _, n := range remove {
					libAfter.Remove(n)
				}
				libAfter.Add("new-node")
				replicaCount := min(3, len(names))
				for _, k := range compatKeys(t, names, replicas) {
					want, err := lib.Get(k)
					if err != nil {
						t.Fatal(err)
					}
					if got := tab.Owner(k); got != want {
						t.Fatalf("key %q: dsctl says %s, stathat says %s", k, got, want)
					}
					wantN, err := lib.GetN(k, replicaCount)
					if err != nil {
						t.Fatal(err)
					}
					if got := tab.Owners(k, replicaCount); fmt.Sprint(got) != fmt.Sprint(wantN) {
						t.Fatalf("key %q: dsctl replicas %v, stathat GetN %v", k, got, wantN)
					}
					wantAfter, _ := libAfter.Get(k)
					if got := after(k); got != wantAfter {
						t.Fatalf("after Remove(%v)+Add(new-node), key %q: dsctl says %s, stathat says %s", remove, k, got, wantAfter)
					}
				}
			})
		}
	}
}

// TestCompatCollisionsExercised makes sure the colliding node set really shares points,
// so the tests above cover the tie rules.
func TestCompatCollisionsExercised(t *testing.T) {
	points := map[uint32]int{}
	for _, n := range collidingNodes {
		compatReplicaPoints(n, 20, func(p uint32) { points[p]++ })
	}
	shared := 0
	for _, c := range points {
		if c > 1 {
			shared++
		}
	}
	if shared != 2 {
		t.Fatalf("%d shared points among the colliding nodes, want 2", shared)
	}
}

// TestKetamaPythonVectors: python_ketama/tests.py in libketama's repository.
func TestKetamaPythonVectors(t *testing.T) {
	if got := ketamaHash([]byte("test")); got != 3446378249 {
		t.Errorf("ketama hashi(test) = %d, want 3446378249", got)
	}
	r := ketamaRing(t, []Node{{"127.0.0.1:11211", 600}, {"127.0.0.1:11212", 400}})
	if len(r.points) != 320 {
		t.Errorf("continuum has %d points, want 320", len(r.points))
	}
	i := r.find(ketamaHash([]byte("test")))
	if r.points[i] != 3454255383 || r.nodeOf[i] != 0 {
		t.Errorf("get_server(test) = (%d, node %d), want (3454255383, 127.0.0.1:11211)", r.points[i], r.nodeOf[i])
	}
}

// TestKetamaPerlCounts: the key counts github.com/dgryski/go-ketama publishes from Perl's
// Algorithm::ConsistentHash::Ketama (a libketama port): servers server0..server9 of
// weight 1, keys foo0..foo99999.
func TestKetamaPerlCounts(t *testing.T) {
	want := []int{9478, 9029, 10863, 10011, 9734, 9444, 10756, 10021, 10762, 9902}
	nodes := make([]Node, 10)
	for i := range nodes {
		nodes[i] = Node{fmt.Sprintf("server%d", i), 1}
	}
	tab, err := NewTable(Cluster{Nodes: nodes, Vnodes: 1}, AlgoKetama)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i := range 100000 {
		got[tab.Owner("foo"+strconv.Itoa(i))]++
	}
	for i, w := range want {
		if got[nodes[i].Name] != w {
			t.Errorf("%s: %d keys, Perl's Ketama gives %d", nodes[i].Name, got[nodes[i].Name], w)
		}
	}
}
