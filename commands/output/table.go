package output

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// Style is the severity colour of a cell. Colour is applied only on a TTY.
type Style int

// Styles.
const (
	Plain Style = iota
	OK
	Info
	Warn
	Error
	Critical
	Dim
	Bold
)

var ansi = map[Style]string{
	OK:       "\x1b[32m",
	Info:     "\x1b[36m",
	Warn:     "\x1b[33m",
	Error:    "\x1b[31m",
	Critical: "\x1b[1;31m",
	Dim:      "\x1b[2m",
	Bold:     "\x1b[1m",
}

// Paint wraps s in the style's ANSI codes when color is on.
func Paint(s string, st Style, color bool) string {
	if !color || st == Plain || s == "" {
		return s
	}
	return ansi[st] + s + "\x1b[0m"
}

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
		b.WriteString(Paint(n.Text, n.Style, color))
		b.WriteByte('\n')
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
