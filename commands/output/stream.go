package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// Stream writes a sequence of records as they come, without holding them: one JSON
// object per line (jsonl), a JSON array written incrementally (json), YAML documents
// (yaml), or table rows under a header, aligned to the header's widths (table).
type Stream struct {
	p       *Printer
	header  []string
	widths  []int
	started bool
	count   int
}

// StreamRow is a record that can be a table row.
type StreamRow interface {
	Row() []Cell
}

// NewStream starts a stream. header is the table header (ignored by other formats);
// widths are the minimum column widths for table rows.
func (p *Printer) NewStream(header []string, widths []int) *Stream {
	return &Stream{p: p, header: header, widths: widths}
}

// Write emits one record.
func (s *Stream) Write(v any) error {
	w := s.p.Out
	switch s.p.Format {
	case JSONL:
		return s.p.Print(v)
	case JSON:
		b, err := json.MarshalIndent(v, "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if !s.started {
			sep = "[\n  "
			s.started = true
		}
		_, err = fmt.Fprintf(w, "%s%s", sep, b)
		s.count++
		return err
	case YAML:
		b, err := ToYAML(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "---\n%s", b)
		return err
	default:
		r, ok := v.(StreamRow)
		if !ok {
			return s.p.Print(v)
		}
		t := &TableData{Rows: [][]Cell{r.Row()}}
		if !s.started {
			t.Header = s.header
			s.started = true
		}
		s.padWidths(t)
		return t.Render(w, s.p.Color)
	}
}

// padWidths keeps columns aligned across rows by remembering the widest cell seen
// and never shrinking (rows already printed cannot move).
func (s *Stream) padWidths(t *TableData) {
	widths := t.widths()
	for i := range widths {
		if i < len(s.widths) && s.widths[i] > widths[i] {
			widths[i] = s.widths[i]
		}
	}
	s.widths = widths
	for _, row := range t.Rows {
		for i := range row {
			if i < len(row)-1 {
				if pad := widths[i] - runewidth.StringWidth(row[i].Text); pad > 0 {
					row[i].Text += strings.Repeat(" ", pad)
				}
			}
		}
	}
	if len(t.Header) > 0 {
		for i := range t.Header {
			if i < len(t.Header)-1 {
				if pad := widths[i] - runewidth.StringWidth(t.Header[i]); pad > 0 {
					t.Header[i] += strings.Repeat(" ", pad)
				}
			}
		}
	}
}

// Close ends the stream (closes the JSON array; an empty stream prints []).
func (s *Stream) Close() error {
	if s.p.Format == JSON {
		if !s.started {
			_, err := io.WriteString(s.p.Out, "[]\n")
			return err
		}
		_, err := io.WriteString(s.p.Out, "\n]\n")
		return err
	}
	return nil
}
