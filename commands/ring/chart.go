package ring

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/mattn/go-runewidth"
	"golang.org/x/term"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
)

// The terminal chart of per-node load (share / ideal share) that follows simulate's
// table on a TTY. Up to maxNodeRows nodes get one horizontal bar each, algorithms side
// by side; more nodes get one block character per node (a sparkline per algorithm).

const (
	minBarColumn = 12 // narrowest bar column, label included
	labelWidth   = 6  // " 1.023"
)

// hBlocks are horizontal bars in eighths; vBlocks vertical ones in eighths.
var (
	hBlocks = []rune(" ▏▎▍▌▋▊▉█")
	vBlocks = []rune("▁▂▃▄▅▆▇█")
)

// terminalWidth is stdout's width, else $COLUMNS, else 80.
func terminalWidth(f *cmdutil.Factory) int {
	if fd, ok := f.IO.Out.(interface{ Fd() uintptr }); ok {
		if w, _, err := term.GetSize(int(fd.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if f.Getenv != nil {
		if c, err := strconv.Atoi(f.Getenv("COLUMNS")); err == nil && c > 0 {
			return c
		}
	}
	return 80
}

func writeLoadChart(w io.Writer, width int, color bool, rs SimulateResults) error {
	if len(rs) == 0 || len(rs[0].Nodes) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteByte('\n')
	if len(rs[0].Nodes) <= maxNodeRows {
		barChart(&b, width, color, rs)
	} else {
		sparkChart(&b, width, color, rs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// loads returns each algorithm's per-node load and the highest and lowest of them all.
func loads(rs SimulateResults) (ls [][]float64, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	ls = make([][]float64, len(rs))
	for i, r := range rs {
		ls[i] = make([]float64, len(r.Nodes))
		for j, n := range r.Nodes {
			l := n.Share / n.IdealShare
			ls[i][j] = l
			lo, hi = math.Min(lo, l), math.Max(hi, l)
		}
	}
	return ls, lo, hi
}

// barChart draws one bar per node, scaled so the most loaded node of any algorithm fills
// its column; algorithms that do not fit the width wrap to a further block.
func barChart(b *strings.Builder, width int, color bool, rs SimulateResults) {
	ls, _, hi := loads(rs)
	nameW := 0
	for _, n := range rs[0].Nodes {
		nameW = max(nameW, runewidth.StringWidth(n.Name))
	}
	perRow := max(1, (width-nameW)/(minBarColumn+2))
	perRow = min(perRow, len(rs))
	colW := max(minBarColumn, (width-nameW)/perRow-2)
	barW := colW - labelWidth
	fmt.Fprintf(b, "%s\n", output.Paint(fmt.Sprintf("load per node (share / ideal share); a full bar is %.3f", hi), output.Dim, color))
	for first := 0; first < len(rs); first += perRow {
		group := rs[first:min(first+perRow, len(rs))]
		b.WriteString(strings.Repeat(" ", nameW))
		for k, r := range group {
			name := string(r.Algo)
			if k < len(group)-1 {
				name = runewidth.FillRight(name, colW)
			}
			b.WriteString("  " + output.Paint(name, output.Bold, color))
		}
		b.WriteByte('\n')
		for j, n := range rs[0].Nodes {
			b.WriteString(runewidth.FillRight(n.Name, nameW))
			for k := range group {
				l := ls[first+k][j]
				bar := hbar(l/hi, barW)
				b.WriteString("  " + output.Paint(bar, loadStyle(l), color) + fmt.Sprintf("%*.3f", labelWidth, l))
			}
			b.WriteByte('\n')
		}
		if first+perRow < len(rs) {
			b.WriteByte('\n')
		}
	}
}

// hbar is a bar of frac*width cells in eighths, padded with spaces to width.
func hbar(frac float64, width int) string {
	eighths := int(math.Round(math.Max(0, math.Min(1, frac)) * float64(width*8)))
	full, part := eighths/8, eighths%8
	s := strings.Repeat("█", full)
	if part > 0 {
		s += string(hBlocks[part])
		full++
	}
	return s + strings.Repeat(" ", width-full)
}

// sparkChart draws one block per node, its height the node's load between the lowest
// and highest load of any algorithm, wrapping at the terminal width.
func sparkChart(b *strings.Builder, width int, color bool, rs SimulateResults) {
	ls, lo, hi := loads(rs)
	nameW := 0
	for _, r := range rs {
		nameW = max(nameW, len(r.Algo))
	}
	fmt.Fprintf(b, "%s\n", output.Paint(fmt.Sprintf("load per node, one block each in node order: %c = %.3f ... %c = %.3f (share / ideal share)",
		vBlocks[0], lo, vBlocks[len(vBlocks)-1], hi), output.Dim, color))
	lineW := max(10, width-nameW-2)
	for i, r := range rs {
		for start := 0; start < len(ls[i]); start += lineW {
			label := ""
			if start == 0 {
				label = string(r.Algo)
			}
			b.WriteString(runewidth.FillRight(label, nameW) + "  ")
			for _, l := range ls[i][start:min(start+lineW, len(ls[i]))] {
				level := len(vBlocks)/2 - 1 // all loads equal: a flat middle line
				if hi > lo {
					level = int(math.Round((l - lo) / (hi - lo) * float64(len(vBlocks)-1)))
				}
				b.WriteString(output.Paint(string(vBlocks[level]), loadStyle(l), color))
			}
			b.WriteByte('\n')
		}
	}
}
