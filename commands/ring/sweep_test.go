package ring

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/commands/output"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

func sweepOpts(mod func(*SweepOptions)) *SweepOptions {
	o := &SweepOptions{
		ClusterOptions: ClusterOptions{Nodes: 10, Hash: hashring.DefaultHash, BalanceFactor: hashring.DefaultBalanceFactor},
		KeysOptions:    KeysOptions{Keys: 100_000, Dist: "uniform", Seed: 1},
		Vnodes:         "10,20,50,100,200,500,1000",
		Algo:           "ring",
		Target:         hashring.DefaultTarget,
	}
	if mod != nil {
		mod(o)
	}
	return o
}

func sweepJSON(t *testing.T, o *SweepOptions) (hashring.SweepResult, string) {
	t.Helper()
	e := newEnv()
	if err := RunSweep(context.Background(), e.f, e.printer(t, output.JSON), o); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	var r hashring.SweepResult
	if err := json.Unmarshal(e.out.Bytes(), &r); err != nil {
		t.Fatalf("not a JSON sweep result: %v\n%s", err, e.out.String())
	}
	return r, e.out.String()
}

func TestSweepJSON(t *testing.T) {
	r, raw := sweepJSON(t, sweepOpts(nil))
	if r.Algo != hashring.AlgoRing || r.Keys != 100_000 || r.Nodes != 10 || r.Target != 1.1 || len(r.Points) != 7 {
		t.Fatalf("sweep header: %+v", r)
	}
	// Imbalance falls with V: about 1/sqrt(V) of the mean. Each point is compared
	// with the one five times smaller or more (10 vs 50 ...), which sampling noise
	// cannot reorder.
	for i, p := range r.Points {
		if p.MeetsTarget != (p.MaxOverMean <= r.Target) {
			t.Errorf("V=%d: meets_target %v with max/mean %.3f", p.Vnodes, p.MeetsTarget, p.MaxOverMean)
		}
		for _, q := range r.Points[:i] {
			if p.Vnodes >= 5*q.Vnodes && p.StddevPct >= q.StddevPct {
				t.Errorf("stddev at V=%d (%.2f%%) is not below V=%d (%.2f%%)", p.Vnodes, p.StddevPct, q.Vnodes, q.StddevPct)
			}
		}
	}
	if r.SmallestVnodes == nil {
		t.Fatal("no V meets 1.1 with 10 nodes up to V=1000")
	}
	for _, p := range r.Points {
		if p.MeetsTarget && p.Vnodes < *r.SmallestVnodes {
			t.Errorf("V=%d meets the target but smallest_vnodes is %d", p.Vnodes, *r.SmallestVnodes)
		}
	}
	for _, k := range []string{`"smallest_vnodes"`, `"target_max_over_mean"`, `"points"`, `"meets_target"`, `"stddev_pct"`} {
		if !strings.Contains(raw, k) {
			t.Errorf("json lacks %s", k)
		}
	}

	// An unreachable target: smallest_vnodes is null, and the table says so.
	r, raw = sweepJSON(t, sweepOpts(func(o *SweepOptions) { o.Vnodes = "10,20"; o.Target = 1.01 }))
	if r.SmallestVnodes != nil || !strings.Contains(raw, `"smallest_vnodes": null`) {
		t.Errorf("target 1.01 at V<=20: smallest_vnodes %v, want null", r.SmallestVnodes)
	}
	e := newEnv()
	if err := RunSweep(context.Background(), e.f, e.printer(t, output.Table), sweepOpts(func(o *SweepOptions) { o.Vnodes = "10,20"; o.Target = 1.01 })); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "no V in the list keeps max/mean <= 1.01") {
		t.Errorf("table:\n%s", e.out.String())
	}
}

func TestSweepSameSeedSameOutput(t *testing.T) {
	strip := func(raw string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		for _, p := range m["points"].([]any) {
			delete(p.(map[string]any), "lookup_ns")
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	run := func(seed uint64) string {
		_, raw := sweepJSON(t, sweepOpts(func(o *SweepOptions) { o.Keys = 30_000; o.Seed = seed; o.Algo = "bounded" }))
		return strip(raw)
	}
	if a, b := run(3), run(3); a != b {
		t.Errorf("--seed 3 twice gave different sweeps:\n%s\n%s", a, b)
	}
	if run(3) == run(4) {
		t.Error("--seed 3 and 4 gave the same sweep")
	}
}

func TestSweepTable(t *testing.T) {
	e := newEnv()
	if err := RunSweep(context.Background(), e.f, e.printer(t, output.Table), sweepOpts(func(o *SweepOptions) { o.Compat = "groupcache"; o.Algo = "" })); err != nil {
		t.Fatal(err)
	}
	got := e.out.String()
	for _, w := range []string{"VNODES", "MAX/MEAN", "MEETS", "groupcache, 10 nodes, 100,000 keys, crc32", "smallest V with max/mean <= 1.1: "} {
		if !strings.Contains(got, w) {
			t.Errorf("table lacks %q:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 1+7+2 {
		t.Errorf("%d lines, want header + 7 points + 2 notes:\n%s", n, got)
	}
}

func TestSweepPlot(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"sweep.svg", "sweep.PNG"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil { // replaced, not appended to
			t.Fatal(err)
		}
		_, _ = sweepJSON(t, sweepOpts(func(o *SweepOptions) { o.Keys = 20_000; o.Plot = path }))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".svg") {
			var root struct{ XMLName xml.Name }
			if !bytes.HasPrefix(data, []byte("<?xml")) || xml.Unmarshal(data, &root) != nil || root.XMLName.Local != "svg" {
				t.Errorf("%s is not an SVG document: %.60q", name, data)
			}
		} else {
			if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("%s does not start with the PNG signature: %.16q", name, data)
			}
			if _, err := png.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("%s does not decode: %v", name, err)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the plot directory holds %d files, want the 2 plots (no temporary file left)", len(entries))
	}
}

func TestSweepBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		mod  func(*SweepOptions)
		want string
	}{
		{"plot extension", func(o *SweepOptions) { o.Plot = filepath.Join(dir, "sweep.jpg") }, "must end in .svg or .png"},
		{"plot no extension", func(o *SweepOptions) { o.Plot = filepath.Join(dir, "sweep") }, "must end in .svg or .png"},
		{"plot directory missing", func(o *SweepOptions) { o.Plot = filepath.Join(dir, "no", "such", "dir", "s.svg") }, "check that the directory exists"},
		{"vnodes list", func(o *SweepOptions) { o.Vnodes = "10,x" }, "each value must be a whole number >= 1"},
		{"vnodes zero", func(o *SweepOptions) { o.Vnodes = "0,10" }, "each value must be a whole number >= 1"},
		{"target below 1", func(o *SweepOptions) { o.Target = 0.9 }, ">= 1"},
		{"algo without V", func(o *SweepOptions) { o.Algo = "jump" }, "does not use"},
		{"several algos", func(o *SweepOptions) { o.Algo = "ring,bounded" }, "sweep takes one algorithm"},
		{"all", func(o *SweepOptions) { o.Algo = "all" }, "sweep takes one algorithm"},
		{"algo and compat", func(o *SweepOptions) { o.Algo = "bounded"; o.Compat = "stathat" }, "not both"},
		{"ketama has no V", func(o *SweepOptions) { o.Compat = "ketama" }, "does not use"},
		{"unknown compat", func(o *SweepOptions) { o.Compat = "x" }, `unknown --compat "x"`},
		{"keys 0", func(o *SweepOptions) { o.Keys = 0 }, "--keys must be at least 1"},
		{"keys file missing", func(o *SweepOptions) { o.KeysFile = filepath.Join(dir, "none") }, "does not exist"},
		{"no nodes", func(o *SweepOptions) { o.Nodes = 0 }, "no nodes given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv()
			assertUsage(t, RunSweep(context.Background(), e.f, e.printer(t, output.JSON), sweepOpts(tt.mod)), tt.want)
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad input left %d files behind", len(entries))
	}
}
