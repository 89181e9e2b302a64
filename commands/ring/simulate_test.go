package ring

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// testEnv is a factory on buffer streams (not TTYs unless a test says so).
type testEnv struct {
	f       *cmdutil.Factory
	in      *bytes.Buffer
	out     *bytes.Buffer
	errOut  *bytes.Buffer
	columns string
}

func newEnv() *testEnv {
	ios, in, out, errOut := cmdutil.Test()
	e := &testEnv{in: in, out: out, errOut: errOut, columns: "100"}
	e.f = cmdutil.New(ios, cmdutil.BuildInfo{})
	e.f.Getenv = func(k string) string {
		if k == "COLUMNS" {
			return e.columns
		}
		return ""
	}
	return e
}

func (e *testEnv) printer(t *testing.T, format output.Format) *output.Printer {
	t.Helper()
	e.f.Global.Output = string(format)
	p, err := e.f.Printer(output.Standard)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// simOpts are simulate options with the flag defaults.
func simOpts(mod func(*SimulateOptions)) *SimulateOptions {
	o := &SimulateOptions{
		ClusterOptions: ClusterOptions{Nodes: 10, Hash: hashring.DefaultHash, BalanceFactor: hashring.DefaultBalanceFactor},
		KeysOptions:    KeysOptions{Keys: 100_000, Dist: "uniform", Seed: 1},
		PlacementOptions: PlacementOptions{Vnodes: hashring.DefaultVnodes,
			MaglevM: 0}, // the flag default: sized from the node count
	}
	if mod != nil {
		mod(o)
	}
	return o
}

func simulateJSON(t *testing.T, o *SimulateOptions) ([]hashring.Result, string) {
	t.Helper()
	e := newEnv()
	if err := RunSimulate(context.Background(), e.f, e.printer(t, output.JSON), o); err != nil {
		t.Fatalf("simulate: %v", err)
	}
	var rs []hashring.Result
	if err := json.Unmarshal(e.out.Bytes(), &rs); err != nil {
		t.Fatalf("simulate -o json is not a JSON array of results: %v\n%s", err, e.out.String())
	}
	return rs, e.out.String()
}

func byAlgo(t *testing.T, rs []hashring.Result, a hashring.Algo) hashring.Result {
	t.Helper()
	for _, r := range rs {
		if r.Algo == a {
			return r
		}
	}
	t.Fatalf("no result for %s", a)
	return hashring.Result{}
}

func TestSimulateJSONKeysAndTotals(t *testing.T) {
	rs, raw := simulateJSON(t, simOpts(nil))
	wantAlgos := hashring.AllAlgos()
	if len(rs) != len(wantAlgos) {
		t.Fatalf("%d results, want one per algorithm of all (%d)", len(rs), len(wantAlgos))
	}
	for i, r := range rs {
		if r.Algo != wantAlgos[i] || r.Hash != "xxhash64" || r.Keys != 100_000 || len(r.Nodes) != 10 {
			t.Errorf("result %d: algo %s hash %s keys %d nodes %d", i, r.Algo, r.Hash, r.Keys, len(r.Nodes))
		}
		var keys int64
		var share float64
		for _, n := range r.Nodes {
			keys += n.Keys
			share += n.Share
			if n.IdealShare != 0.1 {
				t.Errorf("%s %s: ideal share %v, want 0.1", r.Algo, n.Name, n.IdealShare)
			}
		}
		if keys != r.Keys || math.Abs(share-1) > 1e-9 {
			t.Errorf("%s: node keys add up to %d (share %v), want %d (1)", r.Algo, keys, share, r.Keys)
		}
		if r.MaxOverMean < 1 || r.MinOverMean > 1 || r.StddevPct <= 0 || r.LookupNs <= 0 || r.MemoryBytes <= 0 {
			t.Errorf("%s: implausible summary %+v", r.Algo, r)
		}
		if r.MovedKeys != nil || r.Before != nil {
			t.Errorf("%s: moved/before set without a change", r.Algo)
		}
	}
	// The documented keys, exactly (moved_* are null without a change, not missing).
	var generic []map[string]any
	if err := json.Unmarshal([]byte(raw), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"algo", "hash", "nodes", "stddev_pct", "max_over_mean", "min_over_mean", "moved_keys", "moved_fraction", "ideal_moved_fraction", "lookup_ns", "memory_bytes"} {
		if _, ok := generic[0][k]; !ok {
			t.Errorf("json lacks key %q", k)
		}
	}
	node := generic[0]["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "keys", "share", "ideal_share"} {
		if _, ok := node[k]; !ok {
			t.Errorf("json node lacks key %q", k)
		}
	}
}

func TestSimulateAddMovesTheExpectedFraction(t *testing.T) {
	rs, _ := simulateJSON(t, simOpts(func(o *SimulateOptions) {
		o.Keys = 200_000
		o.Algos = "modulo,ring,jump,rendezvous,maglev"
		o.Add = []string{"node-11"}
	}))
	// 200k keys: the binomial noise on a fraction is ~0.1%; the ring's new node gets
	// its share +-10% (1/sqrt(V), V=100), so 1/11 +- 0.03 is about three sigma.
	tests := []struct {
		algo      hashring.Algo
		want      float64
		tolerance float64
	}{
		{hashring.AlgoModulo, 10.0 / 11, 0.02},
		{hashring.AlgoRing, 1.0 / 11, 0.03},
		{hashring.AlgoJump, 1.0 / 11, 0.01},
		{hashring.AlgoRendezvous, 1.0 / 11, 0.01},
		{hashring.AlgoMaglev, 1.0 / 11, 0.03},
	}
	for _, tt := range tests {
		r := byAlgo(t, rs, tt.algo)
		if r.MovedFraction == nil || r.IdealMovedFraction == nil || r.MovedKeys == nil {
			t.Fatalf("%s: moved fields are null after --add", tt.algo)
		}
		if math.Abs(*r.MovedFraction-tt.want) > tt.tolerance {
			t.Errorf("%s: moved %.4f, want %.4f +- %.2f", tt.algo, *r.MovedFraction, tt.want, tt.tolerance)
		}
		if math.Abs(*r.IdealMovedFraction-1.0/11) > 1e-12 {
			t.Errorf("%s: ideal %.6f, want 1/11", tt.algo, *r.IdealMovedFraction)
		}
		if float64(*r.MovedKeys) != math.Round(*r.MovedFraction*float64(r.Keys)) {
			t.Errorf("%s: moved_keys %d disagrees with moved_fraction %v", tt.algo, *r.MovedKeys, *r.MovedFraction)
		}
		if len(r.Nodes) != 11 || r.Nodes[10].Name != "node-11" || r.Before == nil || len(r.Before.Nodes) != 10 {
			t.Errorf("%s: after %d nodes (last %q), before %v", tt.algo, len(r.Nodes), r.Nodes[len(r.Nodes)-1].Name, r.Before)
		}
	}
}

// TestSimulateRemoveMovesOnlyTheRemovedNodesKeys: for ring, jump and rendezvous a removal
// moves exactly the removed node's keys, and that is the ideal.
func TestSimulateRemoveMovesOnlyTheRemovedNodesKeys(t *testing.T) {
	rs, _ := simulateJSON(t, simOpts(func(o *SimulateOptions) {
		o.Algos = "ring,jump,rendezvous"
		o.Remove = []string{"node-3"}
	}))
	for _, r := range rs {
		held := r.Before.Nodes[2]
		if held.Name != "node-3" {
			t.Fatalf("%s: before.nodes[2] is %s", r.Algo, held.Name)
		}
		if *r.MovedKeys != held.Keys {
			t.Errorf("%s: moved %d keys, node-3 held %d", r.Algo, *r.MovedKeys, held.Keys)
		}
		if math.Abs(*r.IdealMovedFraction-held.Share) > 1e-12 {
			t.Errorf("%s: ideal %v, want node-3's share %v", r.Algo, *r.IdealMovedFraction, held.Share)
		}
		for _, n := range r.Nodes {
			if n.Name == "node-3" {
				t.Errorf("%s: node-3 still listed after its removal", r.Algo)
			}
		}
	}
}

func TestSimulateWeightsAndCompat(t *testing.T) {
	rs, _ := simulateJSON(t, simOpts(func(o *SimulateOptions) {
		o.Nodes = 0
		o.NodeSpecs = []string{"a=1", "b=3"}
		o.Algos = "rendezvous"
	}))
	if len(rs) != 1 || rs[0].Nodes[0].IdealShare != 0.25 || rs[0].Nodes[1].IdealShare != 0.75 {
		t.Fatalf("weights a=1 b=3: %+v", rs)
	}
	if math.Abs(rs[0].Nodes[1].Share-0.75) > 0.01 {
		t.Errorf("rendezvous gave b=3 a share of %.4f, want 0.75 +- 0.01", rs[0].Nodes[1].Share)
	}

	tests := []struct {
		algos, compat string
		want          []hashring.Algo
		hash          string
	}{
		{"", "groupcache", []hashring.Algo{hashring.AlgoGroupcache}, "crc32"},
		{"", "KETAMA", []hashring.Algo{hashring.AlgoKetama}, "md5"},
		{"ring", "stathat", []hashring.Algo{hashring.AlgoRing, hashring.AlgoStathat}, "xxhash64"},
		{"ring,jump,ring", "", []hashring.Algo{hashring.AlgoRing, hashring.AlgoJump}, "xxhash64"},
	}
	for _, tt := range tests {
		rs, _ := simulateJSON(t, simOpts(func(o *SimulateOptions) { o.Keys = 5000; o.Algos = tt.algos; o.Compat = tt.compat }))
		var got []hashring.Algo
		for _, r := range rs {
			got = append(got, r.Algo)
		}
		if !slicesEqual(got, tt.want) || rs[0].Hash != tt.hash {
			t.Errorf("--algo %q --compat %q: ran %v with %s, want %v with %s", tt.algos, tt.compat, got, rs[0].Hash, tt.want, tt.hash)
		}
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// withoutTiming drops lookup_ns, the one measured (not computed) figure.
func withoutTiming(t *testing.T, raw string) string {
	t.Helper()
	var rs []map[string]any
	if err := json.Unmarshal([]byte(raw), &rs); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		delete(r, "lookup_ns")
	}
	b, _ := json.Marshal(rs)
	return string(b)
}

func TestSimulateSameSeedSameOutput(t *testing.T) {
	for _, dist := range []string{"uniform", "zipf:1.1"} {
		run := func(seed uint64) string {
			_, raw := simulateJSON(t, simOpts(func(o *SimulateOptions) {
				o.Keys = 50_000
				o.Dist = dist
				o.Seed = seed
				o.Add = []string{"x=2"}
			}))
			return withoutTiming(t, raw)
		}
		a, b, c := run(7), run(7), run(8)
		if a != b {
			t.Errorf("%s: --seed 7 twice gave different output", dist)
		}
		if a == c {
			t.Errorf("%s: --seed 7 and --seed 8 gave the same output", dist)
		}
	}
}

// TestSimulateKeysFile: keys streamed from a file (or stdin) land where a lookup of
// each key says they do.
func TestSimulateKeysFile(t *testing.T) {
	var keys []string
	var content strings.Builder
	for i := range 5000 {
		k := "user:" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strconv.Itoa(i)
		keys = append(keys, k)
		content.WriteString(k + "\r\n")
		if i%100 == 0 {
			content.WriteString("\n") // blank lines are skipped
		}
	}
	path := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(path, []byte(content.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes := []string{"a", "b", "c", "d=2"}
	want := map[string]int64{}
	parsed, _ := hashring.ParseNodes(nodes)
	tab, err := hashring.NewTable(hashring.Cluster{Nodes: parsed, Vnodes: 50}, hashring.AlgoRing)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		want[tab.Owner(k)]++
	}
	for _, source := range []string{path, "-"} {
		o := simOpts(func(o *SimulateOptions) {
			o.Nodes, o.NodeSpecs, o.Vnodes, o.Algos, o.KeysFile = 0, nodes, 50, "ring", source
		})
		e := newEnv()
		e.in.WriteString(content.String())
		if err := RunSimulate(context.Background(), e.f, e.printer(t, output.JSON), o); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		var rs []hashring.Result
		if err := json.Unmarshal(e.out.Bytes(), &rs); err != nil {
			t.Fatal(err)
		}
		if rs[0].Keys != int64(len(keys)) {
			t.Errorf("%s: %d keys, want %d", source, rs[0].Keys, len(keys))
		}
		for _, n := range rs[0].Nodes {
			if n.Keys != want[n.Name] {
				t.Errorf("%s: node %s has %d keys, a lookup of each key gives %d", source, n.Name, n.Keys, want[n.Name])
			}
		}
	}
}

func TestSimulateBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	blank := filepath.Join(dir, "blank.txt")
	unreadable := filepath.Join(dir, "secret.txt")
	for p, c := range map[string]string{empty: "", blank: "\n\r\n\n", unreadable: "k\n"} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*SimulateOptions)
		want string
	}{
		{"nodes and node", func(o *SimulateOptions) { o.NodeSpecs = []string{"a"} }, "--nodes and --node cannot be used together"},
		{"no nodes", func(o *SimulateOptions) { o.Nodes = 0 }, "no nodes given"},
		{"nodes < 0", func(o *SimulateOptions) { o.Nodes = -3 }, "--nodes must be at least 1"},
		{"duplicate node", func(o *SimulateOptions) { o.Nodes, o.NodeSpecs = 0, []string{"a", "b", "a"} }, `"a" is given twice`},
		{"weight 0", func(o *SimulateOptions) { o.Nodes, o.NodeSpecs = 0, []string{"a=0"} }, "weight must be > 0"},
		{"weight not a number", func(o *SimulateOptions) { o.Nodes, o.NodeSpecs = 0, []string{"a=x"} }, "is not a number"},
		{"V < 1", func(o *SimulateOptions) { o.Vnodes = 0 }, "--vnodes must be at least 1"},
		{"keys 0", func(o *SimulateOptions) { o.Keys = 0 }, "--keys must be at least 1"},
		{"keys < 0", func(o *SimulateOptions) { o.Keys = -5 }, "--keys must be at least 1"},
		{"unknown algo", func(o *SimulateOptions) { o.Algos = "ring,chord" }, `unknown algorithm "chord"`},
		{"unknown hash", func(o *SimulateOptions) { o.Hash = "sha1" }, `unknown hash "sha1"`},
		{"unknown compat", func(o *SimulateOptions) { o.Compat = "memcached" }, `unknown --compat "memcached"`},
		{"maglev M not prime", func(o *SimulateOptions) { o.Algos = "maglev"; o.MaglevM = 65536 }, "not a prime"},
		{"balance factor", func(o *SimulateOptions) { o.Algos = "bounded"; o.BalanceFactor = 90 }, "above 100"},
		{"bad dist", func(o *SimulateOptions) { o.Dist = "zipf:0.5" }, "above 1"},
		{"add existing", func(o *SimulateOptions) { o.Add = []string{"node-2"} }, "already a node"},
		{"add bad weight", func(o *SimulateOptions) { o.Add = []string{"n=-1"} }, "weight must be > 0"},
		{"remove unknown", func(o *SimulateOptions) { o.Remove = []string{"node-99"} }, "is not one of the nodes"},
		{"keys file missing", func(o *SimulateOptions) { o.KeysFile = filepath.Join(dir, "nope.txt") }, "does not exist"},
		{"keys file is a directory", func(o *SimulateOptions) { o.KeysFile = dir }, "is a directory"},
		{"keys file empty", func(o *SimulateOptions) { o.KeysFile = empty }, "empty.txt\" holds no keys"},
		{"keys file blank lines", func(o *SimulateOptions) { o.KeysFile = blank }, "blank.txt\" holds no keys"},
		{"stdin empty", func(o *SimulateOptions) { o.KeysFile = "-" }, "stdin holds no keys"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name string
			mod  func(*SimulateOptions)
			want string
		}{"keys file unreadable", func(o *SimulateOptions) { o.KeysFile = unreadable }, "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			err := RunSimulate(context.Background(), e.f, e.printer(t, output.JSON), simOpts(tt.mod))
			assertUsage(t, err, tt.want)
			if e.out.Len() != 0 {
				t.Errorf("printed output on bad input:\n%s", e.out.String())
			}
		})
	}
}

func assertUsage(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a usage error containing %q", want)
	}
	if errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("error %q is kind %v, want usage (exit 2)", err, errs.KindOf(err))
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestSimulateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := newEnv()
	err := RunSimulate(ctx, e.f, e.printer(t, output.JSON), simOpts(func(o *SimulateOptions) { o.Keys = 10_000_000 }))
	if errs.KindOf(err) != errs.KindInterrupted {
		t.Fatalf("cancelled run: %v (kind %v), want interrupted", err, errs.KindOf(err))
	}
}

func TestSimulateTable(t *testing.T) {
	tests := []struct {
		name      string
		tty       bool
		format    output.Format
		mod       func(*SimulateOptions)
		want      []string
		wantNot   []string
		jsonValid bool
	}{
		{name: "plain table, several algos", format: output.Table, mod: func(o *SimulateOptions) { o.Algos = "ring,jump" },
			want:    []string{"ALGO", "STDDEV", "MAX/MEAN", "ring", "jump", "V=100", "20,000 keys over 10 nodes", "NODE", "IDEAL", "node-10", "10.00%"},
			wantNot: []string{"█", "MOVED", "\x1b["}},
		{name: "one algo lists keys per node", format: output.Table, mod: func(o *SimulateOptions) { o.Algos = "maglev" },
			want: []string{"KEYS", "SHARE", "LOAD", "M=65537"}},
		{name: "change", format: output.Table, mod: func(o *SimulateOptions) { o.Algos = "ring"; o.Add = []string{"new"}; o.Remove = []string{"node-1"} },
			want: []string{"MOVED KEYS", "IDEAL", "new (added)", "removed: node-1"}},
		{name: "tty adds a bar chart", tty: true, format: output.Table, mod: func(o *SimulateOptions) { o.Algos = "ring,jump" },
			want: []string{"load per node", "█"}},
		{name: "tty, many nodes: no node table, a sparkline", tty: true, format: output.Table, mod: func(o *SimulateOptions) { o.Nodes = 60; o.Algos = "ring" },
			want: []string{"per-node loads of all 60 nodes: -o json", "one block each"}, wantNot: []string{"NODE"}},
		{name: "json on a tty has no chart", tty: true, format: output.JSON, mod: func(o *SimulateOptions) { o.Algos = "ring" },
			wantNot: []string{"█", "load per node"}, jsonValid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			e.f.IO.StdoutTTY = tt.tty
			o := simOpts(tt.mod)
			o.Keys = 20_000
			if err := RunSimulate(context.Background(), e.f, e.printer(t, tt.format), o); err != nil {
				t.Fatal(err)
			}
			got := e.out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
			if tt.jsonValid && !json.Valid(e.out.Bytes()) {
				t.Errorf("not valid JSON:\n%s", got)
			}
		})
	}
}

func TestProgressOnlyOnATTY(t *testing.T) {
	defer func(d time.Duration) { progressDelay = d }(progressDelay)
	progressDelay = 0
	for _, tty := range []bool{false, true} {
		e := newEnv()
		e.f.IO.StderrTTY = tty
		if err := RunSimulate(context.Background(), e.f, e.printer(t, output.JSON), simOpts(func(o *SimulateOptions) { o.Algos = "ring" })); err != nil {
			t.Fatal(err)
		}
		got := e.errOut.String()
		switch {
		case !tty && got != "":
			t.Errorf("stderr not a TTY, yet progress: %q", got)
		case tty && !strings.Contains(got, "simulate: 100,000 of 100,000 keys (100%)"):
			t.Errorf("stderr a TTY: no final progress line in %q", got)
		case tty && !strings.HasSuffix(got, "\r\x1b[K"):
			t.Errorf("progress line not erased at the end: %q", got)
		}
		if !json.Valid(e.out.Bytes()) {
			t.Errorf("progress leaked into stdout:\n%s", e.out.String())
		}
	}
}
