package ring

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	hashring "github.com/dsctl/dsctl/probes/ring"
)

func TestHbar(t *testing.T) {
	tests := []struct {
		frac  float64
		width int
		want  string
	}{
		{1, 4, "████"},
		{0.5, 4, "██  "},
		{0.5 + 1.0/32, 4, "██▏ "}, // one eighth of a cell more
		{0, 3, "   "},
		{1.7, 3, "███"}, // clamped
		{-1, 2, "  "},
	}
	for _, tt := range tests {
		if got := hbar(tt.frac, tt.width); got != tt.want {
			t.Errorf("hbar(%v, %d) = %q, want %q", tt.frac, tt.width, got, tt.want)
		}
	}
}

// results builds results whose node loads are given (share = load * ideal).
func results(loads map[hashring.Algo][]float64, order ...hashring.Algo) SimulateResults {
	var rs SimulateResults
	for _, a := range order {
		r := hashring.Result{Algo: a}
		for i, l := range loads[a] {
			ideal := 1 / float64(len(loads[a]))
			r.Nodes = append(r.Nodes, hashring.NodeLoad{Name: "n" + strings.Repeat("x", i%3), Share: l * ideal, IdealShare: ideal})
		}
		rs = append(rs, r)
	}
	return rs
}

func TestBarChart(t *testing.T) {
	rs := results(map[hashring.Algo][]float64{
		"ring": {1.25, 0.75},
		"jump": {1.0, 1.0},
	}, "ring", "jump")
	var b strings.Builder
	if err := writeLoadChart(&b, 60, false, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	// blank, legend, header, one line per node
	if len(lines) != 5 || !strings.Contains(lines[1], "a full bar is 1.250") {
		t.Fatalf("chart:\n%s", b.String())
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "ring jump" {
		t.Errorf("header %q", lines[2])
	}
	// Rows are: name, ring bar, ring label, jump bar, jump label. The most loaded node
	// fills its bar; 0.75 fills 60% of it, 1.0 80% (to a cell: the rest is a partial block).
	high, low := strings.Fields(lines[3]), strings.Fields(lines[4])
	if len(high) != 5 || len(low) != 5 || high[2] != "1.250" || low[2] != "0.750" || high[4] != "1.000" {
		t.Fatalf("rows:\n%s\n%s", lines[3], lines[4])
	}
	cells := func(s string) float64 { return float64(strings.Count(s, "█")) }
	if full := cells(high[1]); full < 10 || math.Abs(cells(low[1])-0.6*full) > 1 || math.Abs(cells(high[3])-0.8*full) > 1 {
		t.Errorf("bars of 1.25, 0.75 and 1.0 have %v, %v and %v cells", full, cells(low[1]), cells(high[3]))
	}
	for _, l := range lines {
		if utf8.RuneCountInString(l) > 60 {
			t.Errorf("line wider than 60 columns: %q", l)
		}
	}
	// Too narrow for two columns side by side: they wrap into two blocks.
	b.Reset()
	if err := writeLoadChart(&b, 20, false, rs); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "ring") != 1 || strings.Count(b.String(), "jump") != 1 || strings.Count(b.String(), "\n\n") != 1 {
		t.Errorf("narrow chart:\n%s", b.String())
	}
}

func TestSparkChart(t *testing.T) {
	loads := make([]float64, 100)
	for i := range loads {
		loads[i] = 1
	}
	loads[0], loads[1] = 0.5, 1.5
	rs := results(map[hashring.Algo][]float64{"ring": loads}, "ring")
	var b strings.Builder
	if err := writeLoadChart(&b, 60, false, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	// blank, legend, then 100 blocks at 60-6-2 = 52 per line: 2 lines
	if len(lines) != 4 || !strings.Contains(lines[1], "▁ = 0.500 ... █ = 1.500") {
		t.Fatalf("sparkline:\n%s", b.String())
	}
	if !strings.HasPrefix(lines[2], "ring  ▁█▅") || !strings.HasPrefix(lines[3], "      ▅") {
		t.Errorf("sparkline rows:\n%s", b.String())
	}
	if n := utf8.RuneCountInString(lines[2]) - 6 + utf8.RuneCountInString(lines[3]) - 6; n != 100 {
		t.Errorf("%d blocks, want one per node (100)", n)
	}
}
