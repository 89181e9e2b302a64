// Package cmdutil holds what every command shares: the I/O streams, the Factory that
// resolves config and endpoints lazily, and flag helpers.
package cmdutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/term"

	dterm "github.com/dsctl/dsctl/internal/term"
)

// IOStreams are a command's standard streams and what we know about them.
type IOStreams struct {
	debugMu sync.Mutex

	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	StdinTTY  bool
	StdoutTTY bool
	StderrTTY bool
	// NoColor is set by --no-color, NO_COLOR or TERM=dumb.
	NoColor bool
	// Dumb is TERM=dumb: no cursor movement either (progress lines redraw with \r).
	Dumb bool
	// Width is stdout's width in columns when it is a terminal (0 otherwise): tables wrap
	// their last column to it.
	Width int
	// Verbose is set by -v.
	Verbose bool
}

// System returns the process's streams.
func System() *IOStreams {
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		StdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		StderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		NoColor:   NoColorEnv(os.Getenv),
		Dumb:      dterm.Dumb(os.Getenv),
	}
	if s.StdoutTTY {
		s.Width = terminalWidth(os.Stdout.Fd(), os.Getenv)
	}
	return s
}

// NoColorEnv reports whether the environment asks for no colour: NO_COLOR set to
// anything (no-color.org), or a terminal that cannot show it (TERM=dumb).
func NoColorEnv(getenv func(string) string) bool { return dterm.NoColorEnv(getenv) }

// terminalWidth is the terminal's width, else $COLUMNS, else 80.
func terminalWidth(fd uintptr, getenv func(string) string) int {
	if w, _, err := term.GetSize(int(fd)); err == nil && w > 0 {
		return w
	}
	if c, err := strconv.Atoi(getenv("COLUMNS")); err == nil && c > 0 {
		return c
	}
	return 80
}

// Test returns streams backed by buffers, for tests: not TTYs, no colour.
func Test() (ios *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, NoColor: true}, in, out, errOut
}

// ColorOut reports whether stdout may carry colour.
func (s *IOStreams) ColorOut() bool { return s.StdoutTTY && !s.NoColor }

// ColorErr reports whether stderr may carry colour.
func (s *IOStreams) ColorErr() bool { return s.StderrTTY && !s.NoColor }

// Warnf prints a warning on stderr.
func (s *IOStreams) Warnf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, dterm.Paint("warning:", dterm.Warn, s.ColorErr())+" "+format+"\n", args...)
}

// Notef prints a notice on stderr, always (e.g. the sandbox banner).
func (s *IOStreams) Notef(format string, args ...any) {
	fmt.Fprintln(s.ErrOut, dterm.Paint(fmt.Sprintf(format, args...), dterm.Info, s.ColorErr()))
}

// Infof prints a status line on stderr, only when stderr is a TTY or -v is on
// (so scripts stay quiet).
func (s *IOStreams) Infof(format string, args ...any) {
	if s.StderrTTY || s.Verbose {
		fmt.Fprintf(s.ErrOut, format+"\n", args...)
	}
}

// Debugf prints with -v only, one whole line at a time (connection details come
// from several goroutines).
func (s *IOStreams) Debugf(format string, args ...any) {
	if s.Verbose {
		s.debugMu.Lock()
		defer s.debugMu.Unlock()
		fmt.Fprintf(s.ErrOut, "debug: "+format+"\n", args...)
	}
}

// Debug is Debugf for one ready line, usable as a trace function.
func (s *IOStreams) Debug(msg string) { s.Debugf("%s", msg) }

// Progress returns the one progress line on stderr (dterm.Progress: quiet for delay,
// redrawn at most every every, erased by Clear) when stderr is a terminal, and nil
// otherwise: scripts and pipes get no progress, and a nil *Progress does nothing.
func (s *IOStreams) Progress(delay, every time.Duration) *dterm.Progress {
	if !s.StderrTTY {
		return nil
	}
	return dterm.NewProgress(s.ErrOut, s.Dumb, delay, every)
}
