package ring

import (
	"fmt"
	"strconv"

	"github.com/dsctl/dsctl/commands/output"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// commas formats 1234567 as 1,234,567.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func ratio(f float64) string { return fmt.Sprintf("%.3f", f) }

func nanos(f float64) string { return fmt.Sprintf("%.1f ns", f) }

// bytesIEC formats a size as B, KiB, MiB or GiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// loadStyle colours a node's load relative to its ideal (1 = exactly its share):
// within the default sweep target of 10% is fine, beyond it a warning, beyond 50% an error.
func loadStyle(r float64) output.Style {
	switch {
	case r > 1.5 || r < 0.5:
		return output.Error
	case r > hashring.DefaultTarget || r < 2-hashring.DefaultTarget:
		return output.Warn
	}
	return output.Plain
}

// maxStyle colours the worst node's max/mean: green within the target.
func maxStyle(r, target float64) output.Style {
	switch {
	case r > 1.5:
		return output.Error
	case r > target:
		return output.Warn
	}
	return output.OK
}

// movedStyle colours keys moved against the least any scheme could move.
func movedStyle(moved, ideal float64) output.Style {
	switch {
	case moved > 2*ideal+0.01:
		return output.Error
	case moved > 1.2*ideal+0.01:
		return output.Warn
	}
	return output.OK
}
