package id

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
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

// progress draws "decode: 4,100,000 lines, 1.2s" on stderr, rewriting one line, and
// erases it at the end. A nil *progress does nothing.
type progress struct {
	w     io.Writer
	verb  string
	noun  string
	total int64
	start time.Time
	next  time.Time
	shown bool
}

// newProgress returns a progress line when stderr is a terminal, nil otherwise (scripts
// and pipes get no progress). recordsToTTY says stdout is streaming records to the same
// terminal: the records are the progress then, and a line rewritten with \r between them
// would garble them.
func newProgress(ios *cmdutil.IOStreams, verb, noun string, total int64, recordsToTTY bool) *progress {
	if !ios.StderrTTY || recordsToTTY {
		return nil
	}
	now := time.Now()
	return &progress{w: ios.ErrOut, verb: verb, noun: noun, total: total, start: now, next: now.Add(progressDelay)}
}

// update redraws at most ten times a second, from a second into the work.
func (p *progress) update(done int64) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(100 * time.Millisecond)
	p.shown = true
	elapsed := now.Sub(p.start).Seconds()
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %s of %s %s (%d%%), %.1fs", p.verb, commas(done), commas(p.total), p.noun, done*100/p.total, elapsed)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s: %s %s, %.1fs", p.verb, commas(done), p.noun, elapsed)
}

// finish erases the line, if one was drawn.
func (p *progress) finish() { p.clear() }

// clear erases the line so a message can be printed; the next update redraws it.
func (p *progress) clear() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
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
// as the YAML of a command that prints a whole list at once. No records: `[]`.
type yamlList struct {
	w *bufferedOut
	n int
}

func (l *yamlList) add(v any) error {
	b, err := output.ToYAML(v)
	if err != nil {
		return err
	}
	l.n++
	l.w.Write(yamlListItem(nil, b))
	return l.w.record()
}

func (l *yamlList) close() error {
	if l.n == 0 {
		_, err := l.w.WriteString("[]\n")
		return err
	}
	return nil
}

// yamlListItem appends doc (one YAML value, ending in a newline) as an item of a list
// indented like the printer's: "  - " before the first line, four spaces before the rest.
func yamlListItem(dst, doc []byte) []byte {
	for i, line := range bytes.SplitAfter(bytes.TrimRight(doc, "\n"), []byte("\n")) {
		if i == 0 {
			dst = append(dst, "  - "...)
		} else if len(bytes.TrimSpace(line)) > 0 {
			dst = append(dst, "    "...)
		}
		dst = append(dst, line...)
	}
	return append(dst, '\n')
}
