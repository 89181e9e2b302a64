package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// Styles. Every state is also spelled out in text (ok, DEGRADED, UNREACHABLE, [3 Kafka]),
// so the dashboard reads the same without colour (NO_COLOR, TERM=dumb, the goldens).
var (
	stTitle    = lipgloss.NewStyle().Bold(true)
	stActive   = lipgloss.NewStyle().Bold(true).Reverse(true)
	stDim      = lipgloss.NewStyle().Faint(true)
	stOK       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	stWarn     = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	stErr      = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	stBanner   = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	stSelected = lipgloss.NewStyle().Reverse(true)
	stHeader   = lipgloss.NewStyle().Bold(true).Underline(true)
)

// fit cuts s to width w (display cells) with an ellipsis and pads it to exactly w.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - ansi.StringWidth(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// fitLeft is fit for right-aligned numbers.
func fitLeft(s string, w int) string {
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	return strings.Repeat(" ", w-ansi.StringWidth(s)) + s
}

// cut keeps at most w cells of s, without padding.
func cut(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	return s
}

// block fits lines into exactly h lines of width w (cut or padded).
func block(lines []string, w, h int) string {
	out := make([]string, h)
	for i := 0; i < h; i++ {
		if i < len(lines) {
			out[i] = fit(lines[i], w)
		} else {
			out[i] = strings.Repeat(" ", w)
		}
	}
	return strings.Join(out, "\n")
}

// sideBySide joins two blocks of equal height with a one-column gutter.
func sideBySide(left []string, lw int, right []string, rw, h int) []string {
	out := make([]string, h)
	for i := 0; i < h; i++ {
		var l, r string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out[i] = fit(l, lw) + "│" + fit(r, rw)
	}
	return out
}

// bar is a horizontal bar of frac (0..1+) of width w, with a '|' at the ideal mark.
func bar(frac, ideal float64, w int) string {
	if w <= 0 {
		return ""
	}
	n := int(frac*float64(w) + 0.5)
	mark := int(ideal*float64(w) + 0.5)
	b := make([]rune, w)
	for i := range b {
		switch {
		case i < n:
			b[i] = '█'
		default:
			b[i] = ' '
		}
	}
	if mark >= 0 && mark < w {
		if mark < n {
			b[mark] = '┃'
		} else {
			b[mark] = '│'
		}
	}
	return string(b)
}

// window returns the [start, end) of the rows to show so that sel stays visible.
func window(total, sel, offset, height int) (start, end int) {
	if height <= 0 || total == 0 {
		return 0, 0
	}
	if sel < offset {
		offset = sel
	}
	if sel >= offset+height {
		offset = sel - height + 1
	}
	if offset > total-height {
		offset = max(0, total-height)
	}
	return offset, min(total, offset+height)
}

// clamp keeps i within [0, n).
func clamp(i, n int) int {
	if i >= n {
		i = n - 1
	}
	if i < 0 {
		i = 0
	}
	return i
}

// moveSel applies a navigation action to a selection over n rows with page size page.
func moveSel(a Action, sel, n, page int) int {
	switch a {
	case ActUp:
		sel--
	case ActDown:
		sel++
	case ActPageUp:
		sel -= max(1, page)
	case ActPageDown:
		sel += max(1, page)
	case ActTop:
		sel = 0
	case ActBottom:
		sel = n - 1
	}
	return clamp(sel, n)
}

// firstLine is the first line of an error text.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// matches is the / filter: a case-insensitive substring match.
func matches(filter, s string) bool {
	if filter == "" {
		return true
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(filter))
}

// selRow prefixes a row with a marker (▸ on the selected row, so the selection shows
// without colour) and cuts it to w.
func selRow(row string, selected bool, w int) string {
	if selected {
		return stSelected.Render(cut("▸ "+row, w))
	}
	return cut("  "+row, w)
}
