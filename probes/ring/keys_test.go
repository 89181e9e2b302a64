package ring

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func drain(t *testing.T, src KeySource) (keys []string, seqs []int64) {
	t.Helper()
	var b Batch
	for {
		err := src.Next(&b)
		if err == io.EOF {
			return keys, seqs
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, b.Seq)
		for i := range b.Len() {
			keys = append(keys, string(b.Key(i)))
		}
	}
}

func TestGeneratedKeys(t *testing.T) {
	const n = 3*batchKeys + 17
	uniform, seqs := drain(t, mustKeys(t, n, Dist{}, 1))
	if len(uniform) != n || len(seqs) != 4 || seqs[3] != 3 {
		t.Fatalf("uniform: %d keys in batches %v, want %d in 4", len(uniform), seqs, n)
	}
	seen := map[string]bool{}
	for _, k := range uniform {
		if seen[k] || !strings.HasPrefix(k, "key:") || len(k) != 20 {
			t.Fatalf("uniform key %q repeated or malformed", k)
		}
		seen[k] = true
	}
	again, _ := drain(t, mustKeys(t, n, Dist{}, 1))
	other, _ := drain(t, mustKeys(t, n, Dist{}, 2))
	if strings.Join(again, ",") != strings.Join(uniform, ",") {
		t.Error("seed 1 gave different keys twice")
	}
	if other[0] == uniform[0] {
		t.Error("seeds 1 and 2 start with the same key")
	}

	// zipf:1.2 over n ranks: the top key takes about 1/zeta(1.2) ~ 18% of requests.
	zipf, _ := drain(t, mustKeys(t, n, Dist{Zipf: true, S: 1.2}, 1))
	counts := map[string]int{}
	top := 0
	for _, k := range zipf {
		counts[k]++
		top = max(top, counts[k])
	}
	if len(zipf) != n || float64(top)/n < 0.12 || float64(top)/n > 0.30 {
		t.Errorf("zipf:1.2: %d requests, hottest key %d (%.1f%%), want ~18%%", len(zipf), top, 100*float64(top)/n)
	}
	one, _ := drain(t, mustKeys(t, 1, Dist{Zipf: true, S: 2}, 1))
	if len(one) != 1 {
		t.Errorf("zipf with one key yielded %d", len(one))
	}
}

func TestLineKeys(t *testing.T) {
	long := strings.Repeat("x", 3<<20) // longer than the 1 MiB read buffer
	in := "a\r\n\nb\n" + long + "\n\r\nc"
	keys, seqs := drain(t, NewLineKeys(strings.NewReader(in)))
	want := []string{"a", "b", long, "c"}
	if len(keys) != len(want) {
		t.Fatalf("got %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("key %d = %.20q, want %.20q", i, keys[i], want[i])
		}
	}
	if len(seqs) != 1 || seqs[0] != 0 {
		t.Errorf("batches %v", seqs)
	}
	if NewLineKeys(strings.NewReader("")).Total() != -1 {
		t.Error("a stream's total should be unknown")
	}

	// Many batches come out in order with consecutive Seq.
	var buf bytes.Buffer
	for i := range 3*batchKeys + 1 {
		buf.WriteString("k")
		buf.WriteString(strings.Repeat("y", i%7))
		buf.WriteByte('\n')
	}
	keys, seqs = drain(t, NewLineKeys(&buf))
	if len(keys) != 3*batchKeys+1 || len(seqs) != 4 || seqs[3] != 3 {
		t.Errorf("%d keys in batches %v", len(keys), seqs)
	}
}

// TestSimulateFromStream: keys from a reader run through the same engine; a file of the
// generated keys gives the same counts as the generator.
func TestSimulateFromStream(t *testing.T) {
	gen, _ := drain(t, mustKeys(t, 20_000, Dist{}, 11))
	spec := SimulateSpec{Cluster: Cluster{Nodes: mustNodes(t, 5), Vnodes: 20}, Algos: []Algo{AlgoRing, AlgoBounded}}
	a := simulate(t, spec, mustKeys(t, 20_000, Dist{}, 11))
	b := simulate(t, spec, NewLineKeys(strings.NewReader(strings.Join(gen, "\n")+"\n")))
	for _, algo := range spec.Algos {
		if a[algo].Keys != 20_000 || b[algo].Keys != 20_000 {
			t.Fatalf("%s: %d and %d keys", algo, a[algo].Keys, b[algo].Keys)
		}
		for i := range a[algo].Nodes {
			if a[algo].Nodes[i] != b[algo].Nodes[i] {
				t.Errorf("%s: generated %+v, streamed %+v", algo, a[algo].Nodes[i], b[algo].Nodes[i])
			}
		}
	}
}

func TestProgress(t *testing.T) {
	var calls []int64
	var total int64
	_, err := Simulate(context.Background(), SimulateSpec{Cluster: Cluster{Nodes: mustNodes(t, 3), Vnodes: 10}, Algos: []Algo{AlgoRing}},
		mustKeys(t, 10_000, Dist{}, 1), func(done, all int64) { calls = append(calls, done); total = all })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != 10_000 || total != 10_000 {
		t.Fatalf("progress calls %v, total %d; want the last to report 10000 of 10000", calls, total)
	}
}
