package ring

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/commands/output"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

func locOpts(mod func(*LocateOptions)) *LocateOptions {
	o := &LocateOptions{
		ClusterOptions:   ClusterOptions{NodeSpecs: []string{"cache-a", "cache-b", "cache-c", "cache-d"}, Hash: hashring.DefaultHash, BalanceFactor: hashring.DefaultBalanceFactor},
		PlacementOptions: PlacementOptions{Vnodes: hashring.DefaultVnodes, MaglevM: hashring.DefaultMaglevM},
		Replicas:         1,
		Keys:             []string{"user:42", "session:9", ""},
	}
	if mod != nil {
		mod(o)
	}
	return o
}

func TestLocateJSON(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*LocateOptions)
		algos    []hashring.Algo
		replicas int
	}{
		{"default all", nil, hashring.AllAlgos(), 1},
		{"compat alone", func(o *LocateOptions) { o.Compat = "groupcache" }, []hashring.Algo{hashring.AlgoGroupcache}, 1},
		{"list plus compat, replicas", func(o *LocateOptions) { o.Algos = "ring,rendezvous"; o.Compat = "ketama"; o.Replicas = 3 },
			[]hashring.Algo{hashring.AlgoRing, hashring.AlgoRendezvous, hashring.AlgoKetama}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := locOpts(tt.mod)
			e := newEnv()
			if err := RunLocate(context.Background(), e.f, e.printer(t, output.JSON), o); err != nil {
				t.Fatal(err)
			}
			var ps []hashring.Placement
			if err := json.Unmarshal(e.out.Bytes(), &ps); err != nil {
				t.Fatalf("not a JSON array of placements: %v\n%s", err, e.out.String())
			}
			if len(ps) != len(o.Keys)*len(tt.algos) {
				t.Fatalf("%d placements, want %d", len(ps), len(o.Keys)*len(tt.algos))
			}
			nodes, _ := hashring.ParseNodes(o.NodeSpecs)
			for i, p := range ps {
				key, algo := o.Keys[i/len(tt.algos)], tt.algos[i%len(tt.algos)]
				if p.Key != key || p.Algo != algo || len(p.Owners) != tt.replicas {
					t.Fatalf("placement %d: %+v, want key %q algo %s with %d owners", i, p, key, algo, tt.replicas)
				}
				tab, err := hashring.NewTable(hashring.Cluster{Nodes: nodes, Vnodes: o.Vnodes}, algo)
				if err != nil {
					t.Fatal(err)
				}
				if p.Owners[0] != tab.Owner(key) || p.Hash != tab.Hash() {
					t.Errorf("%s %q: owner %s (%s), a table lookup says %s (%s)", algo, key, p.Owners[0], p.Hash, tab.Owner(key), tab.Hash())
				}
			}
		})
	}
}

func TestLocateTable(t *testing.T) {
	e := newEnv()
	o := locOpts(func(o *LocateOptions) { o.Algos = "ring,bounded"; o.Compat = "stathat"; o.Replicas = 2 })
	if err := RunLocate(context.Background(), e.f, e.printer(t, output.Table), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if len(lines) != 1+3+2 {
		t.Fatalf("want header, 3 key rows, hash and bounded notes:\n%s", e.out.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "KEY RING BOUNDED STATHAT" {
		t.Errorf("header %q: want one column per algorithm", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 4 || f[0] != "user:42" || strings.Count(f[1], ",") != 1 {
		t.Errorf("row %q: want the key and two owners per algorithm", lines[1])
	}
	if !strings.HasPrefix(lines[3], `""`) {
		t.Errorf("the empty key shows as %q, want \"\"", lines[3])
	}
	if lines[4] != "hash: ring xxhash64, bounded xxhash64, stathat crc32" || !strings.HasPrefix(lines[5], "bounded: first choice") {
		t.Errorf("notes:\n%s\n%s", lines[4], lines[5])
	}
}

func TestLocateBadInput(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*LocateOptions)
		want string
	}{
		{"no key", func(o *LocateOptions) { o.Keys = nil }, "no key to locate"},
		{"no nodes", func(o *LocateOptions) { o.NodeSpecs = nil }, "no nodes given"},
		{"nodes and node", func(o *LocateOptions) { o.Nodes = 3 }, "cannot be used together"},
		{"replicas above nodes", func(o *LocateOptions) { o.Replicas = 5 }, "--replicas 5"},
		{"replicas negative", func(o *LocateOptions) { o.Replicas = -1 }, "--replicas -1"},
		{"unknown compat", func(o *LocateOptions) { o.Compat = "jump" }, `unknown --compat "jump"`},
		{"maglev M not prime", func(o *LocateOptions) { o.Algos = "maglev"; o.MaglevM = 1000 }, "not a prime"},
		{"groupcache weights", func(o *LocateOptions) { o.NodeSpecs = []string{"a=2", "b"}; o.Compat = "groupcache" }, "has no node weights"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			assertUsage(t, RunLocate(context.Background(), e.f, e.printer(t, output.JSON), locOpts(tt.mod)), tt.want)
		})
	}
}
