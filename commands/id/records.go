package id

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/sortid"
	"github.com/dsctl/dsctl/probes/uuidinfo"
)

// sfRecord is one decoded snowflake ID. Its JSON is exactly the engine's JSON line, so
// bulk and argument output agree byte for byte.
type sfRecord struct {
	d *snowflake.Decoder
	v snowflake.Decoded
}

func (r sfRecord) MarshalJSON() ([]byte, error) {
	b := r.d.AppendJSON(nil, &r.v)
	return b[:len(b)-1], nil
}

// sfHeader is the table header of a layout: the CSV columns.
func sfHeader(l *snowflake.Layout) []string {
	h := []string{"id", "layout", "timestamp", "unix_ms", "age"}
	for i := range l.NumFields() {
		if f := l.FieldAt(i); f.Role != snowflake.RoleTime {
			h = append(h, f.Name)
		}
	}
	return append(h, "warnings")
}

// sfWidths are minimum column widths for streamed rows, wide enough for every value
// (except age and warnings), so the columns of a long stream do not drift.
func sfWidths(l *snowflake.Layout) []int {
	w := []int{19, len(l.Name()), 24, 13, 6}
	for i := range l.NumFields() {
		if f := l.FieldAt(i); f.Role != snowflake.RoleTime {
			w = append(w, max(len(f.Name), len(strconv.FormatUint(f.Max(), 10))))
		}
	}
	return append(w, 0)
}

// Row is the record's table row, in sfHeader's order.
func (r sfRecord) Row() []output.Cell {
	v := &r.v
	l := r.d.Layout()
	cells := make([]output.Cell, 0, 6+l.NumFields())
	cells = append(cells,
		output.C(strconv.FormatUint(v.ID, 10)),
		output.C(l.Name()),
		output.C(v.Instant().String()),
		output.C(strconv.FormatInt(v.UnixMs, 10)),
		output.C(v.Age()))
	for i := range l.NumFields() {
		if l.FieldAt(i).Role != snowflake.RoleTime {
			cells = append(cells, output.C(strconv.FormatUint(v.Values[i], 10)))
		}
	}
	return append(cells, output.S(strings.Join(v.Warnings.Codes(), ","), output.Warn))
}

// sfTable is the table of IDs decoded with one layout, with the warnings explained.
func sfTable(d *snowflake.Decoder, rs []sfRecord) section {
	t := &output.TableData{Header: sfHeader(d.Layout())}
	var seen snowflake.Warnings
	for _, r := range rs {
		t.AddCells(r.Row()...)
		seen |= r.v.Warnings
	}
	t.Notes = warningNotes(seen)
	return section{t: t}
}

func warningNotes(w snowflake.Warnings) []output.Cell {
	var notes []output.Cell
	codes, msgs := w.Codes(), w.Messages()
	for i := range codes {
		notes = append(notes, output.S(codes[i]+": "+msgs[i], output.Warn))
	}
	return notes
}

// autoRecord is one ID read under every preset, most plausible first.
type autoRecord struct {
	ID         string      `json:"id"`
	Candidates []candidate `json:"candidates"`
	id         uint64
	common     snowflake.Warnings // warnings about the number itself, not a layout
}

type candidate struct {
	Rank      int                `json:"rank"`
	Layout    string             `json:"layout"`
	Score     float64            `json:"score"`
	Plausible bool               `json:"plausible"`
	Timestamp snowflake.Instant  `json:"timestamp"`
	UnixMs    int64              `json:"unix_ms"`
	Age       string             `json:"age"`
	Fields    json.RawMessage    `json:"fields"`
	Warnings  snowflake.Warnings `json:"warnings"`
	Reasons   []string           `json:"reasons"`
	fields    []snowflake.NamedValue
}

func newAutoRecord(id uint64, now time.Time) autoRecord {
	ranked := snowflake.Rank(id, now, nil)
	r := autoRecord{ID: strconv.FormatUint(id, 10), id: id, Candidates: make([]candidate, len(ranked)),
		common: snowflake.WarnUnsafeInJS | snowflake.WarnSignBit}
	for i, c := range ranked {
		d := snowflake.NewDecoder(c.Layout, now)
		r.Candidates[i] = candidate{
			Rank: i + 1, Layout: c.Name, Score: math.Round(c.Score*1000) / 1000, Plausible: c.Plausible,
			Timestamp: c.Timestamp, UnixMs: c.Decoded.UnixMs, Age: c.Decoded.Age(),
			Fields:   json.RawMessage(d.AppendFieldsJSON(nil, &c.Decoded)),
			Warnings: c.Decoded.Warnings, Reasons: c.Reasons, fields: c.Fields,
		}
		r.common &= c.Decoded.Warnings
	}
	return r
}

func (c candidate) fieldText(sep string) string {
	parts := make([]string, len(c.fields))
	for i, f := range c.fields {
		parts[i] = f.Name + "=" + strconv.FormatUint(f.Value, 10)
	}
	return strings.Join(parts, sep)
}

// notes says why a reading is doubtful: the engine's reasons, else its layout-specific
// warnings (those about the number itself are noted once under the table).
func (c candidate) notes(common snowflake.Warnings) string {
	if len(c.Reasons) > 0 {
		return strings.Join(c.Reasons, "; ")
	}
	return strings.Join((c.Warnings &^ common).Codes(), ",")
}

func (r autoRecord) section() section {
	t := &output.TableData{Header: []string{"#", "layout", "timestamp", "age", "fields", "score", "notes"},
		RightAlign: map[int]bool{0: true, 5: true}}
	for _, c := range r.Candidates {
		st := output.Plain
		if !c.Plausible {
			st = output.Dim
		}
		name := output.S(c.Layout, st)
		if c.Rank == 1 && c.Plausible {
			name = output.S(c.Layout, output.OK)
		}
		t.AddCells(output.S(strconv.Itoa(c.Rank), st), name, output.S(c.Timestamp.String(), st), output.S(c.Age, st),
			output.S(c.fieldText(" "), st), output.S(strconv.FormatFloat(c.Score, 'f', 2, 64), st), output.S(c.notes(r.common), st))
	}
	t.Notes = warningNotes(r.common)
	return section{title: r.ID + " under each layout, most plausible first:", t: t}
}

func autoCSV(w io.Writer, rs []autoRecord) error {
	cw := newCSV(w, []string{"id", "rank", "layout", "timestamp", "unix_ms", "age", "score", "plausible", "fields", "warnings", "reasons"})
	for _, r := range rs {
		for _, c := range r.Candidates {
			if err := cw.write([]string{r.ID, strconv.Itoa(c.Rank), c.Layout, c.Timestamp.String(), strconv.FormatInt(c.UnixMs, 10),
				c.Age, strconv.FormatFloat(c.Score, 'f', -1, 64), strconv.FormatBool(c.Plausible), c.fieldText(";"),
				strings.Join(c.Warnings.Codes(), ";"), strings.Join(c.Reasons, ";")}); err != nil {
				return err
			}
		}
	}
	return cw.flush()
}

// uuidRecord is one decoded UUID; its JSON is uuidinfo.Info's.
type uuidRecord struct {
	uuidinfo.Info
}

var uuidHeader = []string{"uuid", "version", "type", "variant", "timestamp", "clock_seq", "node", "warnings"}

func (r uuidRecord) csv() []string {
	clock := ""
	if r.ClockSequence != nil {
		clock = strconv.Itoa(*r.ClockSequence)
	}
	codes := make([]string, len(r.Warnings))
	for i, w := range r.Warnings {
		codes[i] = w.Code
	}
	return []string{r.UUID, strconv.Itoa(r.Version), r.VersionName, r.Variant, r.Timestamp, clock, r.Node, strings.Join(codes, ";")}
}

// Row is the record's table row, in uuidHeader's order.
func (r uuidRecord) Row() []output.Cell { return csvRow(r.csv(), "-") }

// csvRow is a CSV record as a table row: an empty value shows as empty, and the last
// value (warning codes joined by ';') comma-separated in the warning style.
func csvRow(rec []string, empty string) []output.Cell {
	cells := make([]output.Cell, len(rec))
	for i, s := range rec {
		if s == "" {
			s = empty
		}
		cells[i] = output.C(s)
	}
	last := len(cells) - 1
	cells[last] = output.S(strings.ReplaceAll(rec[last], ";", ","), output.Warn)
	return cells
}

// uuidTable lists UUIDs, with each warning spelled out under the table.
func uuidTable(rs []uuidRecord) section {
	t := &output.TableData{Header: uuidHeader}
	for _, r := range rs {
		t.AddCells(r.Row()...)
		for _, w := range r.Warnings {
			t.Notes = append(t.Notes, output.S(r.UUID+": "+w.Message, output.Warn))
		}
	}
	return section{t: t}
}

// section is one table of a multi-table answer, with an optional title line.
type section struct {
	title string
	t     *output.TableData
}

func renderSections(w io.Writer, color bool, secs []section) error {
	for i, s := range secs {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if s.title != "" {
			if _, err := io.WriteString(w, output.Paint(s.title, output.Bold, color)+"\n"); err != nil {
				return err
			}
		}
		if err := s.t.Render(w, color); err != nil {
			return err
		}
	}
	return nil
}

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }

// csvOut writes CSV records after a header.
type csvOut struct {
	w *csv.Writer
}

func newCSV(w io.Writer, header []string) *csvOut {
	c := &csvOut{w: csv.NewWriter(w)}
	c.w.Write(header)
	return c
}

func (c *csvOut) write(rec []string) error { return c.w.Write(rec) }

func (c *csvOut) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// sortIDRecord is one decoded ULID or KSUID; its JSON is sortid.Info's.
type sortIDRecord struct {
	sortid.Info
}

var sortIDHeader = []string{"id", "kind", "timestamp", "unix_ms", "age", "random", "warnings"}

func (r sortIDRecord) csv() []string {
	codes := make([]string, len(r.Warnings))
	for i, w := range r.Warnings {
		codes[i] = w.Code
	}
	return []string{r.ID, r.Kind, r.Timestamp, strconv.FormatInt(r.UnixMs, 10), r.Age, r.Random, strings.Join(codes, ";")}
}

// Row is the record's table row, in sortIDHeader's order.
func (r sortIDRecord) Row() []output.Cell { return csvRow(r.csv(), "") }

// sortIDTable lists ULIDs and KSUIDs, with each warning spelled out under the table.
func sortIDTable(rs []sortIDRecord) section {
	t := &output.TableData{Header: sortIDHeader}
	for _, r := range rs {
		t.AddCells(r.Row()...)
		for _, w := range r.Warnings {
			t.Notes = append(t.Notes, output.S(r.ID+": "+w.Message, output.Warn))
		}
	}
	return section{t: t}
}
