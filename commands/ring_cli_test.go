package commands

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// End-to-end tests of `dsctl ring` through the whole command tree: flags, exit codes,
// help. The numbers themselves are tested in commands/ring and probes/ring.

func TestRingHelpHasExamplesAndJSONKeys(t *testing.T) {
	r := dsctl(t, nil, "--help")
	if !strings.Contains(r.out, "\n  ring ") {
		t.Fatalf("root help does not list ring:\n%s", r.out)
	}
	tests := []struct {
		args []string
		keys []string
	}{
		{[]string{"ring", "--help"}, nil},
		{[]string{"ring", "simulate", "--help"}, []string{"algo", "hash", "nodes", "name", "keys", "share", "ideal_share", "stddev_pct",
			"max_over_mean", "min_over_mean", "moved_keys", "moved_fraction", "ideal_moved_fraction", "lookup_ns", "memory_bytes"}},
		{[]string{"ring", "locate", "--help"}, []string{"key", "algo", "hash", "owners", "note"}},
		{[]string{"ring", "sweep", "--help"}, []string{"vnodes", "stddev_pct", "max_over_mean", "min_over_mean", "meets_target",
			"smallest_vnodes", "target_max_over_mean"}},
	}
	for _, tt := range tests {
		r := dsctl(t, nil, tt.args...)
		if r.code != 0 || !strings.Contains(r.out, "Examples:\n  dsctl ring") {
			t.Errorf("%v: exit %d, no example:\n%s", tt.args, r.code, r.out)
		}
		for _, k := range tt.keys {
			if !strings.Contains(r.out, k) {
				t.Errorf("%v: help does not document JSON key %s", tt.args, k)
			}
		}
	}
}

func TestRingBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ring", "simulate"}, "no nodes given"},
		{[]string{"ring", "simulate", "--nodes", "0"}, "--nodes must be at least 1"},
		{[]string{"ring", "simulate", "--nodes", "3", "--node", "a"}, "--nodes and --node cannot be used together"},
		{[]string{"ring", "simulate", "--node", "a,b,a"}, "given twice"},
		{[]string{"ring", "simulate", "--node", "a=0"}, "weight must be > 0"},
		{[]string{"ring", "simulate", "--nodes", "3", "--vnodes", "0"}, "--vnodes must be at least 1"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys", "0"}, "--keys must be at least 1"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys", "-1"}, "--keys must be at least 1"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys", "many"}, `--keys "many" is not a whole number`},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys-file", filepath.Join(dir, "missing.txt")}, "does not exist"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys-file", dir}, "is a directory"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys-file", empty}, "holds no keys"},
		{[]string{"ring", "simulate", "--nodes", "3", "--keys-file", empty, "--keys", "10"}, "--keys and --keys-file cannot be used together"},
		{[]string{"ring", "simulate", "--nodes", "3", "--algo", "chord"}, `unknown algorithm "chord"`},
		{[]string{"ring", "simulate", "--nodes", "3", "--hash", "sha1"}, `unknown hash "sha1"`},
		{[]string{"ring", "simulate", "--nodes", "3", "--compat", "twemproxy"}, `unknown --compat "twemproxy"`},
		{[]string{"ring", "simulate", "--nodes", "3", "--algo", "maglev", "--maglev-m", "1000"}, "not a prime"},
		{[]string{"ring", "simulate", "--nodes", "3", "-o", "jsonl"}, "unsupported output format"},
		{[]string{"ring", "simulate", "--nodes", "3", "extra"}, "unknown command"},
		{[]string{"ring", "locate", "--nodes", "3"}, "no key to locate"},
		{[]string{"ring", "locate", "k", "--nodes", "3", "--replicas", "4"}, "--replicas 4"},
		{[]string{"ring", "sweep", "--nodes", "3", "--plot", filepath.Join(dir, "sweep.pdf")}, "must end in .svg or .png"},
		{[]string{"ring", "sweep", "--nodes", "3", "--vnodes", "10,abc"}, "whole number >= 1"},
		{[]string{"ring", "sweep", "--nodes", "3", "--target-max-over-mean", "0.5"}, ">= 1"},
	}
	for _, tt := range tests {
		r := dsctl(t, nil, tt.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%v)", tt.args, r.code, r.err)
			continue
		}
		if !strings.HasPrefix(r.errOut, "error: ") || !strings.Contains(r.errOut, tt.want) || strings.Count(r.errOut, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one error line containing %q", tt.args, r.errOut, tt.want)
		}
		if r.out != "" {
			t.Errorf("%v: printed on stdout: %q", tt.args, r.out)
		}
	}
}

func TestRingSimulateSameSeedSameJSON(t *testing.T) {
	run := func(seed string) []map[string]any {
		r := dsctl(t, nil, "ring", "simulate", "--nodes", "7", "--keys", "30000", "--seed", seed, "--add", "node-8", "--algo", "all", "-o", "json")
		if r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		var rs []map[string]any
		if err := json.Unmarshal([]byte(r.out), &rs); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.out)
		}
		for _, res := range rs {
			if res["lookup_ns"].(float64) <= 0 {
				t.Errorf("%v: lookup_ns %v", res["algo"], res["lookup_ns"])
			}
			delete(res, "lookup_ns") // measured, so it differs run to run
		}
		return rs
	}
	a, b, c := run("5"), run("5"), run("6")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	jc, _ := json.Marshal(c)
	if !bytes.Equal(ja, jb) {
		t.Errorf("--seed 5 twice gave different JSON:\n%s\n%s", ja, jb)
	}
	if bytes.Equal(ja, jc) {
		t.Error("--seed 5 and --seed 6 gave the same JSON")
	}
	if len(a) != 6 || a[0]["moved_fraction"] == nil {
		t.Errorf("want 6 algorithms with moved_fraction set: %s", ja)
	}
}

func TestRingLocateAndSweepPlotCLI(t *testing.T) {
	r := dsctl(t, nil, "ring", "locate", "user:1", "user:2", "--node", "a", "--node", "b", "--node", "c", "--algo", "ring,jump", "--replicas", "2", "-o", "json")
	var ps []struct {
		Key    string   `json:"key"`
		Algo   string   `json:"algo"`
		Owners []string `json:"owners"`
	}
	if err := json.Unmarshal([]byte(r.out), &ps); err != nil || r.code != 0 || len(ps) != 4 {
		t.Fatalf("locate: exit %d, %v\n%s", r.code, err, r.out)
	}
	if ps[0].Key != "user:1" || ps[0].Algo != "ring" || ps[1].Algo != "jump" || len(ps[0].Owners) != 2 || ps[0].Owners[0] == ps[0].Owners[1] {
		t.Errorf("locate: %+v", ps)
	}

	png := filepath.Join(t.TempDir(), "sweep.png")
	r = dsctl(t, nil, "ring", "sweep", "--nodes", "10", "--keys", "50000", "--vnodes", "10,100,1000", "--plot", png)
	if r.code != 0 || !strings.Contains(r.out, "smallest V with max/mean <= 1.1: 1000") {
		t.Fatalf("sweep: exit %d (%v)\n%s", r.code, r.err, r.out)
	}
	data, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("--plot %s: %v, header %.8q", png, err, data)
	}
	if r.errOut != "" {
		t.Errorf("stderr is not a TTY, yet: %q", r.errOut)
	}
}
