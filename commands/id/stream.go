package id

import (
	"unicode/utf8"

	"bytes"
	"context"
	"fmt"
	"github.com/mattn/go-runewidth"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/internal/term"
	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/uuidinfo"
)

// maxBadShown is how many bad lines are reported one by one (all with -v); the rest are
// counted in one closing line, so a wrong file does not flood the terminal.
const maxBadShown = 100

// badLines reports lines that are not IDs on stderr, as "line N: <why>".
type badLines struct {
	ios    *cmdutil.IOStreams
	prog   *progress
	failed int
	// other names what a line of the other kind is in this stream, for a clearer message:
	// "a UUID" in a stream of snowflake IDs and vice versa.
	other func(text []byte) string
}

// report is a snowflake.BadLine.
func (b *badLines) report(line int, text []byte, err error) {
	b.failed++
	if b.failed > maxBadShown && !b.ios.Verbose {
		return
	}
	msg := err.Error()
	if b.other != nil {
		if why := b.other(text); why != "" {
			msg = why
		}
	}
	b.prog.clear()
	prefix := "line " + strconv.Itoa(line) + ":"
	if !strings.HasPrefix(msg, prefix) {
		msg = prefix + " " + msg
	}
	fmt.Fprintln(b.ios.ErrOut, msg)
}

// finish says how many bad lines were not shown.
func (b *badLines) finish() {
	if hidden := b.failed - maxBadShown; hidden > 0 && !b.ios.Verbose {
		fmt.Fprintf(b.ios.ErrOut, "... and %d more bad lines (-v lists them all)\n", hidden)
	}
}

// uuidInSnowflakes names a UUID line in a stream of snowflake IDs.
func uuidInSnowflakes(text []byte) string {
	if !uuidinfo.LooksLikeUUID(string(text)) {
		return ""
	}
	if _, err := uuidinfo.Decode(string(text), time.Time{}); err != nil {
		return ""
	}
	return fmt.Sprintf("%q is a UUID in a stream of snowflake IDs; decode UUIDs in a stream of their own", clip(text))
}

func clip(b []byte) string {
	if len(b) > 48 {
		return string(b[:48]) + "..."
	}
	return string(b)
}

// progressDelay is how long bulk work runs before it shows progress: shorter runs stay
// quiet rather than flash a line. (A variable so tests can show it at once.)
var progressDelay = time.Second

// progress draws "decode: 4,100,000 lines, 1.2s" on stderr with the streams' one
// progress helper, at most ten times a second, and erases it at the end. A nil
// *progress does nothing.
type progress struct {
	line  *term.Progress
	verb  string
	noun  string
	total int64
}

// newProgress returns a progress line when stderr is a terminal, nil otherwise (scripts
// and pipes get no progress). recordsToTTY says stdout is streaming records to the same
// terminal: the records are the progress then, and a line rewritten with \r between them
// would garble them.
func newProgress(ios *cmdutil.IOStreams, verb, noun string, total int64, recordsToTTY bool) *progress {
	if recordsToTTY {
		return nil
	}
	line := ios.Progress(progressDelay, 100*time.Millisecond)
	if line == nil {
		return nil
	}
	return &progress{line: line, verb: verb, noun: noun, total: total}
}

// update redraws at most ten times a second, from a second into the work.
func (p *progress) update(done int64) {
	if p == nil {
		return
	}
	elapsed := p.line.Elapsed().Seconds()
	if p.total > 0 {
		p.line.Updatef("%s: %s of %s %s (%d%%), %.1fs", p.verb, commas(done), commas(p.total), p.noun, done*100/p.total, elapsed)
		return
	}
	p.line.Updatef("%s: %s %s, %.1fs", p.verb, commas(done), p.noun, elapsed)
}

// finish erases the line, if one was drawn.
func (p *progress) finish() { p.clear() }

// clear erases the line so a message can be printed; the next update redraws it.
func (p *progress) clear() {
	if p != nil {
		p.line.Clear()
	}
}

// inputReader wraps stdin: it stops the read loop when the context is cancelled (ctrl-C),
// and counts lines for the progress line. The engine reads in 64 KiB blocks, so the
// per-read work here is negligible.
type inputReader struct {
	ctx   context.Context
	r     io.Reader
	p     *progress
	lines int64
}

func (r *inputReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	if r.p != nil && n > 0 {
		r.lines += int64(bytes.Count(b[:n], []byte{'\n'}))
		r.p.update(r.lines)
	}
	return n, err
}

// commas formats n with thousands separators: 4096000 -> 4,096,000.
func commas(n int64) string {
	if n < 0 {
		return "-" + commasU(uint64(-n))
	}
	return commasU(uint64(n))
}

// commasU is commas for unsigned numbers.
func commasU(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// yamlList writes records as one YAML list, as they come, laid out as the printer lays
// out a list (`  - key: v`, then `    key: v`), so a streamed YAML output reads the same
// as the YAML of a command that prints a whole list at once. No records: `[]`. Each
// record's JSON is converted straight to YAML text (output.AppendYAMLListItem), which
// keeps YAML as fast as JSON.
type yamlList struct {
	w       *bufferedOut
	n       int
	scratch []byte
	yaml    output.YAMLQuoter
	sf      *snowflake.YAMLWriter // one decoder per stream
}

// add writes one record from its JSON form.
func (l *yamlList) add(json []byte) error {
	var err error
	l.scratch, err = l.yaml.AppendListItem(l.scratch[:0], json)
	if err != nil {
		return err
	}
	l.n++
	l.w.Write(l.scratch)
	return l.w.record()
}

// addSnowflake writes one decoded ID straight from the decoder (the fast path of bulk
// decoding; the same text as add of its JSON).
func (l *yamlList) addSnowflake(d *snowflake.Decoder, v *snowflake.Decoded) error {
	if l.sf == nil {
		l.sf = d.NewYAMLWriter(l.yaml.QuoteTail)
	}
	l.scratch = l.sf.AppendItem(l.scratch[:0], v)
	l.n++
	l.w.Write(l.scratch)
	return l.w.record()
}

func (l *yamlList) close() error {
	if l.n == 0 {
		_, err := l.w.WriteString("[]\n")
		return err
	}
	return nil
}

// sfTableStream writes decoded IDs as table rows, the same text as the printer's
// stream of sfRecord rows (columns widen as wider values come and never shrink), but
// appended straight into one buffer: the printer's stream builds a table per row, which
// made -o table ten times slower than -o json.
type sfTableStream struct {
	w       *bufferedOut
	d       *snowflake.Decoder
	color   bool
	header  []string
	widths  []int
	started bool
	fields  []int // indexes of the non-time fields, in column order
	cellW   []int // widths of the current row's cells
	layout  []byte
	cells   [][]byte
	line    []byte
}

func newSFTableStream(w *bufferedOut, d *snowflake.Decoder, color bool) *sfTableStream {
	l := d.Layout()
	h := sfHeader(l)
	s := &sfTableStream{w: w, d: d, color: color, header: h, widths: sfWidths(l), cells: make([][]byte, len(h)),
		cellW: make([]int, len(h)), layout: []byte(l.Name())}
	for i := range l.NumFields() {
		if l.FieldAt(i).Role != snowflake.RoleTime {
			s.fields = append(s.fields, i)
		}
	}
	return s
}

func (s *sfTableStream) write(v *snowflake.Decoded) error {
	c := s.cells
	c[0] = strconv.AppendUint(c[0][:0], v.ID, 10)
	c[1] = s.layout
	c[2] = snowflake.AppendTimestamp(c[2][:0], v.UnixMs)
	c[3] = strconv.AppendInt(c[3][:0], v.UnixMs, 10)
	c[4] = snowflake.AppendAge(c[4][:0], v.AgeMs)
	k := 5
	for _, i := range s.fields {
		c[k] = strconv.AppendUint(c[k][:0], v.Values[i], 10)
		k++
	}
	c[k] = v.Warnings.AppendCodes(c[k][:0], ',')
	last := len(c) - 1
	for i := range last {
		s.cellW[i] = cellWidth(c[i])
		s.widths[i] = max(s.widths[i], s.cellW[i])
	}
	line := s.line[:0]
	if !s.started {
		s.started = true
		for i, h := range s.header {
			if i < last {
				s.widths[i] = max(s.widths[i], len(h))
			}
		}
		for i, h := range s.header {
			line = s.appendCell(line, []byte(strings.ToUpper(h)), output.Bold, i, last)
		}
	}
	for i := range last {
		// Plain cells: the text, its padding, the gap.
		line = append(line, c[i]...)
		line = appendSpaces(line, s.widths[i]-s.cellW[i]+2)
	}
	line = s.appendCell(line, c[last], output.Warn, last, last)
	s.line = line
	s.w.Write(line)
	return s.w.record()
}

// appendCell writes one cell, padded to its column (not the last), and what follows it.
// The padding is inside the colour, as the printer's stream writes it.
func (s *sfTableStream) appendCell(line, text []byte, style output.Style, i, last int) []byte {
	pad := 0
	if i < last {
		pad = max(s.widths[i]-cellWidth(text), 0)
	}
	if s.color && style != output.Plain && len(text) > 0 {
		line = append(line, output.Paint(string(text)+strings.Repeat(" ", pad), style, true)...)
	} else {
		line = append(line, text...)
		line = appendSpaces(line, pad)
	}
	if i == last {
		return append(line, '\n')
	}
	return append(line, ' ', ' ')
}

var spaces = []byte(strings.Repeat(" ", 64))

func appendSpaces(line []byte, n int) []byte {
	for n > len(spaces) {
		line = append(line, spaces...)
		n -= len(spaces)
	}
	if n > 0 {
		line = append(line, spaces[:n]...)
	}
	return line
}

func cellWidth(b []byte) int {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return runewidth.StringWidth(string(b))
		}
	}
	return len(b)
}
