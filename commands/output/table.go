package output

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"

	"github.com/dsctl/dsctl/internal/term"
)

// Style is the severity colour of a cell (term's one scheme). Colour is applied only
// on a TTY.
type Style = term.Style

// Styles.
const (
	Plain    = term.Plain
	OK       = term.OK
	Info     = term.Info
	Warn     = term.Warn
	Error    = term.Error
	Critical = term.Critical
	Dim      = term.Dim
	Bold     = term.Bold
)

// Paint wraps s in the style's ANSI codes when color is on.
func Paint(s string, st Style, color bool) string { return term.Paint(s, st, color) }

// Cell is one table cell.
type Cell struct {
	Text  string
	Style Style
}

// C makes a plain cell.
func C(text string) Cell { return Cell{Text: text} }

// S makes a styled cell.
func S(text string, st Style) Cell { return Cell{Text: text, Style: st} }

// TableData is a table: optional header, rows, and notes printed under it.
type TableData struct {
	Header []string
	// RightAlign marks columns (by index) that hold numbers.
	RightAlign map[int]bool
	Rows       [][]Cell
	Notes      []Cell
	// Width, when above 0, is the terminal's width: the last column and the notes wrap
	// at spaces to fit it (continuation lines start under the last column). The printer
	// sets it for a terminal; JSON and YAML are never wrapped.
	Width int
}

// AddRow appends a row of plain strings.
func (t *TableData) AddRow(cells ...string) {
	row := make([]Cell, len(cells))
	for i, c := range cells {
		row[i] = C(c)
	}
	t.Rows = append(t.Rows, row)
}

// AddCells appends a row of cells.
func (t *TableData) AddCells(cells ...Cell) { t.Rows = append(t.Rows, cells) }

// Render writes the table aligned, with two spaces between columns.
func (t *TableData) Render(w io.Writer, color bool) error {
	widths := t.widths()
	var b strings.Builder
	if len(t.Header) > 0 {
		cells := make([]Cell, len(t.Header))
		for i, h := range t.Header {
			cells[i] = S(strings.ToUpper(h), Bold)
		}
		t.writeRow(&b, cells, widths, color)
	}
	for _, r := range t.Rows {
		t.writeRow(&b, r, widths, color)
	}
	for _, n := range t.Notes {
		for i, line := range wrapText(n.Text, t.Width) {
			if i > 0 {
				line = "  " + line
			}
			b.WriteString(Paint(line, n.Style, color))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (t *TableData) widths() []int {
	n := len(t.Header)
	for _, r := range t.Rows {
		n = max(n, len(r))
	}
	widths := make([]int, n)
	for i, h := range t.Header {
		widths[i] = runewidth.StringWidth(h)
	}
	for _, r := range t.Rows {
		for i, c := range r {
			widths[i] = max(widths[i], runewidth.StringWidth(c.Text))
		}
	}
	return widths
}

func (t *TableData) writeRow(b *strings.Builder, row []Cell, widths []int, color bool) {
	last := len(row) - 1
	if t.Width > 0 && last >= 0 && !t.RightAlign[last] {
		indent := 0
		for i := range last {
			indent += widths[i] + 2
		}
		if lines := wrapText(row[last].Text, max(t.Width-indent, minWrapWidth)); len(lines) > 1 {
			first := append(append([]Cell{}, row[:last]...), Cell{Text: lines[0], Style: row[last].Style})
			t.writeRow1(b, first, widths, color)
			for _, l := range lines[1:] {
				b.WriteString(strings.Repeat(" ", indent))
				b.WriteString(Paint(l, row[last].Style, color))
				b.WriteByte('\n')
			}
			return
		}
	}
	t.writeRow1(b, row, widths, color)
}

// minWrapWidth is the narrowest a wrapped column gets, however wide the others are.
const minWrapWidth = 24

// wrapText breaks s at spaces into lines of at most width columns (a longer word gets
// a line of its own). width 0 means no wrapping.
func wrapText(s string, width int) []string {
	if width <= 0 || runewidth.StringWidth(s) <= width {
		return []string{s}
	}
	var lines []string
	var cur strings.Builder
	curW := 0
	for _, word := range strings.Fields(s) {
		w := runewidth.StringWidth(word)
		if curW > 0 && curW+1+w > width {
			lines = append(lines, cur.String())
			cur.Reset()
			curW = 0
		}
		if curW > 0 {
			cur.WriteByte(' ')
			curW++
		}
		cur.WriteString(word)
		curW += w
	}
	if curW > 0 || len(lines) == 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

func (t *TableData) writeRow1(b *strings.Builder, row []Cell, widths []int, color bool) {
	line := make([]string, 0, len(row))
	for i, c := range row {
		pad := widths[i] - runewidth.StringWidth(c.Text)
		text := Paint(c.Text, c.Style, color)
		switch {
		case i == len(row)-1 && !t.RightAlign[i]:
			// no trailing spaces on the last column
		case t.RightAlign[i]:
			text = strings.Repeat(" ", pad) + text
		default:
			text += strings.Repeat(" ", pad)
		}
		line = append(line, text)
	}
	b.WriteString(strings.Join(line, "  "))
	b.WriteByte('\n')
}

// WriteCSV writes the header and rows as CSV (no colour, no notes).
func (t *TableData) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if len(t.Header) > 0 {
		if err := cw.Write(t.Header); err != nil {
			return err
		}
	}
	for _, r := range t.Rows {
		rec := make([]string, len(r))
		for i, c := range r {
			rec[i] = c.Text
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// KV builds a two-column key/value table without a header, for single objects.
func KV(pairs ...string) *TableData {
	t := &TableData{}
	for i := 0; i+1 < len(pairs); i += 2 {
		t.AddCells(S(pairs[i]+":", Dim), C(pairs[i+1]))
	}
	return t
}

// Plural formats a count with a noun: 1 broker, 3 brokers.
func Plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
