package ring

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dsctl/dsctl/probes/errs"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		in      string
		want    Node
		wantErr string
	}{
		{in: "cache-1", want: Node{"cache-1", 1}},
		{in: "cache-1=2", want: Node{"cache-1", 2}},
		{in: "10.0.1.1:11211=600", want: Node{"10.0.1.1:11211", 600}},
		{in: "a=0.5", want: Node{"a", 0.5}},
		{in: "a=1e3", want: Node{"a", 1000}},
		{in: "", wantErr: "empty name"},
		{in: "=2", wantErr: "empty name"},
		{in: "a=", wantErr: "not a number"},
		{in: "a=x", wantErr: "not a number"},
		{in: "a=b=2", wantErr: "not a number"},
		{in: "a=0", wantErr: "must be > 0"},
		{in: "a=-1", wantErr: "must be > 0"},
		{in: "a=NaN", wantErr: "not a number"},
		{in: "a=Inf", wantErr: "not a number"},
		{in: "a b", wantErr: "space or control"},
		{in: "a\tb=1", wantErr: "space or control"},
		{in: "\xff", wantErr: "UTF-8"},
		{in: strings.Repeat("n", 257), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseNode(tt.in)
			if tt.wantErr != "" {
				assertUsage(t, err, tt.wantErr)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseNode(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzParseNode: no input panics; whatever parses is a valid node that prints back to
// itself.
func FuzzParseNode(f *testing.F) {
	for _, s := range []string{"a", "a=2", "10.0.1.1:11211=600", "=", "a==", "a=1e308", "a=0x10", "é=1.5", "a=-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNode(s)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("ParseNode(%q): error %v is not a usage error", s, err)
			}
			return
		}
		if err := ValidateNodes([]Node{n}); err != nil {
			t.Fatalf("ParseNode(%q) = %+v, which fails validation: %v", s, n, err)
		}
		back, err := ParseNode(n.String())
		if err != nil || back != n {
			t.Fatalf("ParseNode(%q) = %+v, but its String %q parses to %+v, %v", s, n, n.String(), back, err)
		}
	})
}

func TestParseNodesRejectsDuplicates(t *testing.T) {
	_, err := ParseNodes([]string{"a", "b=2", "a=3"})
	assertUsage(t, err, `"a" is given twice`)
	nodes, err := ParseNodes([]string{"a", "b=2"})
	if err != nil || len(nodes) != 2 || nodes[1].Weight != 2 {
		t.Fatalf("ParseNodes = %+v, %v", nodes, err)
	}
}

func TestParseAlgos(t *testing.T) {
	got, err := ParseAlgos("ring, jump,ring,KETAMA")
	if err != nil || len(got) != 3 || got[0] != AlgoRing || got[1] != AlgoJump || got[2] != AlgoKetama {
		t.Fatalf("ParseAlgos = %v, %v", got, err)
	}
	all, err := ParseAlgos("all")
	if err != nil || len(all) != 6 {
		t.Fatalf("ParseAlgos(all) = %v, %v", all, err)
	}
	_, err = ParseAlgos("ring,chord")
	assertUsage(t, err, `unknown algorithm "chord"`)
}

func TestParseDist(t *testing.T) {
	for in, want := range map[string]Dist{"": {}, "uniform": {}, "zipf:1.1": {true, 1.1}, "ZIPF:2": {true, 2}} {
		if got, err := ParseDist(in); err != nil || got != want {
			t.Errorf("ParseDist(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"zipf:1", "zipf:0.5", "zipf:", "zipf:x", "gauss", "zipf:inf"} {
		_, err := ParseDist(in)
		assertUsage(t, err, "")
	}
}

func TestParseVnodesList(t *testing.T) {
	got, err := ParseVnodesList("10, 20,1000")
	if err != nil || len(got) != 3 || got[2] != 1000 {
		t.Fatalf("ParseVnodesList = %v, %v", got, err)
	}
	for _, in := range []string{"", "10,0", "10,-1", "a", "10,,20"} {
		_, err := ParseVnodesList(in)
		assertUsage(t, err, "")
	}
}

// TestBadInput: every kind of bad input the issue lists is a usage error (exit 2) that
// says what is wrong.
func TestBadInput(t *testing.T) {
	nodes := mustNodes(t, 10)
	keys := func() KeySource { return mustKeys(t, 1000, Dist{}, 1) }
	sim := func(mod func(*SimulateSpec), src KeySource) error {
		s := SimulateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 10}, Algos: []Algo{AlgoRing}}
		mod(&s)
		_, err := Simulate(context.Background(), s, src, nil)
		return err
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"zero nodes", sim(func(s *SimulateSpec) { s.Nodes = nil }, keys()), "no nodes"},
		{"V < 1", sim(func(s *SimulateSpec) { s.Vnodes = 0 }, keys()), "--vnodes must be at least 1"},
		{"duplicate names", sim(func(s *SimulateSpec) { s.Nodes = []Node{{"a", 1}, {"a", 2}} }, keys()), "given twice"},
		{"weight 0", sim(func(s *SimulateSpec) { s.Nodes = []Node{{"a", 0}} }, keys()), "weight must be"},
		{"weight < 0", sim(func(s *SimulateSpec) { s.Nodes = []Node{{"a", -2}} }, keys()), "weight must be"},
		{"weight NaN", sim(func(s *SimulateSpec) { s.Nodes = []Node{{"a", math.NaN()}} }, keys()), "weight must be"},
		{"unknown algo", sim(func(s *SimulateSpec) { s.Algos = []Algo{"chord"} }, keys()), "unknown algorithm"},
		{"no algo", sim(func(s *SimulateSpec) { s.Algos = nil }, keys()), "no algorithm"},
		{"unknown hash", sim(func(s *SimulateSpec) { s.Hash = "sha1" }, keys()), `unknown hash "sha1"`},
		{"maglev M not prime", sim(func(s *SimulateSpec) { s.Algos = []Algo{AlgoMaglev}; s.MaglevM = 65536 }, keys()), "not a prime"},
		{"maglev M below N", sim(func(s *SimulateSpec) { s.Algos = []Algo{AlgoMaglev}; s.MaglevM = 7 }, keys()), "smaller than the 10 nodes"},
		{"maglev M below N after add", sim(func(s *SimulateSpec) {
			s.Nodes = nodes[:7]
			s.Algos = []Algo{AlgoMaglev}
			s.MaglevM = 7
			s.Add = []Node{{"x", 1}}
		}, keys()), "smaller than the 8 nodes"},
		{"balance factor", sim(func(s *SimulateSpec) { s.Algos = []Algo{AlgoBounded}; s.BalanceFactor = 100 }, keys()), "above 100"},
		{"empty stream", sim(func(*SimulateSpec) {}, NewLineKeys(strings.NewReader("\n\r\n\n"))), "key stream is empty"},
		{"unreadable stream", sim(func(*SimulateSpec) {}, NewLineKeys(iotest.ErrReader(errors.New("is a directory")))), "cannot read the keys file: is a directory"},
		{"remove unknown", sim(func(s *SimulateSpec) { s.Remove = []string{"nope"} }, keys()), `--remove "nope" is not one of the nodes`},
		{"remove twice", sim(func(s *SimulateSpec) { s.Remove = []string{"node-1", "node-1"} }, keys()), "given twice"},
		{"remove all", sim(func(s *SimulateSpec) { s.Nodes = nodes[:1]; s.Remove = []string{"node-1"} }, keys()), "removing every node"},
		{"add existing", sim(func(s *SimulateSpec) { s.Add = []Node{{"node-3", 1}} }, keys()), "already a node"},
		{"add bad weight", sim(func(s *SimulateSpec) { s.Add = []Node{{"x", 0}} }, keys()), "weight must be"},
		{"groupcache weights", sim(func(s *SimulateSpec) { s.Algos = []Algo{AlgoGroupcache}; s.Nodes = []Node{{"a", 2}} }, keys()), "has no node weights"},
		{"ketama fractional weight", sim(func(s *SimulateSpec) { s.Algos = []Algo{AlgoKetama}; s.Nodes = []Node{{"a", 1.5}} }, keys()), "whole numbers"},
		{"too many ring points", sim(func(s *SimulateSpec) { s.Nodes = []Node{{"a", 1e9}} }, keys()), "more than 50000000"},
		{"keys < 1", func() error { _, err := NewGeneratedKeys(0, Dist{}, 1); return err }(), "--keys must be at least 1"},
		{"zipf s <= 1", func() error { _, err := NewGeneratedKeys(10, Dist{Zipf: true, S: 1}, 1); return err }(), "above 1"},
		{"nodes 0", func() error { _, err := GenerateNodes(0); return err }(), "--nodes must be at least 1"},
		{"locate no key", func() error {
			_, err := Locate(LocateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 10}, Algos: []Algo{AlgoRing}}, nil)
			return err
		}(), "no key"},
		{"locate replicas", func() error {
			_, err := Locate(LocateSpec{Cluster: Cluster{Nodes: nodes, Vnodes: 10}, Algos: []Algo{AlgoRing}, Replicas: 11}, []string{"k"})
			return err
		}(), "--replicas 11"},
		{"sweep jump", func() error {
			_, err := Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: nodes}, Algo: AlgoJump}, keys(), nil)
			return err
		}(), "does not use"},
		{"sweep V < 1", func() error {
			_, err := Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: nodes}, VnodesList: []int{10, 0}}, keys(), nil)
			return err
		}(), "at least 1"},
		{"sweep target", func() error {
			_, err := Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: nodes}, TargetMaxOverMean: 0.9}, keys(), nil)
			return err
		}(), ">= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertUsage(t, tt.err, tt.want) })
	}
}

// TestEmptyStreamWrapsErrNoKeys: the command layer names the keys file by matching the
// sentinel, not the message.
func TestEmptyStreamWrapsErrNoKeys(t *testing.T) {
	_, err := Simulate(context.Background(), SimulateSpec{Cluster: Cluster{Nodes: mustNodes(t, 3), Vnodes: 10}, Algos: []Algo{AlgoRing}},
		NewLineKeys(strings.NewReader("\n\n")), nil)
	if !errors.Is(err, ErrNoKeys) || errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("simulate over blank lines: err = %v, want a usage error wrapping ErrNoKeys", err)
	}
	_, err = Sweep(context.Background(), SweepSpec{Cluster: Cluster{Nodes: mustNodes(t, 3)}}, NewLineKeys(strings.NewReader("")), nil)
	if !errors.Is(err, ErrNoKeys) {
		t.Fatalf("sweep over an empty stream: err = %v, want ErrNoKeys", err)
	}
}

func TestInterruptedIsNotUsage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Simulate(ctx, SimulateSpec{Cluster: Cluster{Nodes: mustNodes(t, 3), Vnodes: 10}, Algos: []Algo{AlgoRing}},
		mustKeys(t, 100000, Dist{}, 1), nil)
	if errs.KindOf(err) != errs.KindInterrupted {
		t.Fatalf("cancelled simulate: err = %v (kind %v), want KindInterrupted", err, errs.KindOf(err))
	}
}

func assertUsage(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a usage error containing %q", want)
	}
	if errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("error %q is kind %v, want KindUsage", err, errs.KindOf(err))
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func mustNodes(t testing.TB, n int) []Node {
	t.Helper()
	nodes, err := GenerateNodes(n)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

func mustKeys(t testing.TB, n int64, d Dist, seed uint64) KeySource {
	t.Helper()
	src, err := NewGeneratedKeys(n, d, seed)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func simulate(t testing.TB, spec SimulateSpec, src KeySource) map[Algo]Result {
	t.Helper()
	res, err := Simulate(context.Background(), spec, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Algo]Result{}
	for _, r := range res {
		out[r.Algo] = r
	}
	return out
}
