package plot

import (
	"bytes"
	"context"
	"encoding/xml"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/ring"
)

func sweep(t *testing.T) ring.SweepResult {
	t.Helper()
	nodes, err := ring.GenerateNodes(10)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ring.NewGeneratedKeys(100_000, ring.Dist{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ring.Sweep(context.Background(), ring.SweepSpec{
		Cluster:           ring.Cluster{Nodes: nodes},
		VnodesList:        []int{1000, 10, 20, 50, 100, 200, 500},
		TargetMaxOverMean: 1.1,
	}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SmallestVnodes == nil {
		t.Fatal("no V met 1.1: the vertical marker would not be drawn")
	}
	return res
}

func TestWriteSweepSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSweep(&buf, SVG, sweep(t)); err != nil {
		t.Fatal(err)
	}
	var root struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatalf("not valid XML: %v", err)
	}
	if root.XMLName.Local != "svg" || root.Width == "" {
		t.Fatalf("root element %q width %q, want an <svg> with a width", root.XMLName.Local, root.Width)
	}
	for _, want := range []string{"max / mean", "min / mean", "target max/mean 1.1", "smallest V meeting it", "virtual nodes per node", "100,000 keys"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestWriteSweepPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSweep(&buf, PNG, sweep(t)); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a valid PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 768 || b.Dy() != 480 {
		t.Fatalf("PNG is %dx%d, want 768x480", b.Dx(), b.Dy())
	}
	// Not a blank canvas: the series colours are drawn.
	red := 0
	for y := 0; y < 480; y++ {
		for x := 0; x < 768; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 0xc0 && g>>8 < 0x50 && bl>>8 < 0x50 {
				red++
			}
		}
	}
	if red < 100 {
		t.Fatalf("only %d red pixels: the max/mean series is missing", red)
	}
	if dir := os.Getenv("DSCTL_PLOT_OUT"); dir != "" { // to look at it
		_ = os.WriteFile(filepath.Join(dir, "sweep.png"), data, 0o644)
	}
}

func TestFormatForPath(t *testing.T) {
	for path, want := range map[string]Format{"a.svg": SVG, "dir/B.PNG": PNG} {
		if got, err := FormatForPath(path); err != nil || got != want {
			t.Errorf("FormatForPath(%q) = %q, %v", path, got, err)
		}
	}
	for _, path := range []string{"a.jpg", "plot", ""} {
		if _, err := FormatForPath(path); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("FormatForPath(%q): err %v, want a usage error", path, err)
		}
	}
	if err := WriteSweep(&bytes.Buffer{}, SVG, ring.SweepResult{}); errs.KindOf(err) != errs.KindUsage {
		t.Errorf("empty sweep: %v", err)
	}
}

func TestRatioTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		labels string
	}{
		{0.45, 1.9, "0.6 0.8 1.0 1.2 1.4 1.6 1.8"},
		{0.9, 1.15, "0.90 0.95 1.00 1.05 1.10 1.15"},
		{0, 9, "0 1 2 3 4 5 6 7 8 9"},
	}
	for _, tt := range tests {
		var labels []string
		for _, tk := range ratioTicks(tt.lo, tt.hi) {
			if tk.Value < tt.lo-1e-6 || tk.Value > tt.hi+1e-6 {
				t.Errorf("ratioTicks(%v, %v): tick %v outside the range", tt.lo, tt.hi, tk.Value)
			}
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, " "); got != tt.labels {
			t.Errorf("ratioTicks(%v, %v) labels %q, want %q", tt.lo, tt.hi, got, tt.labels)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
