package ring

import (
	"fmt"
	"io"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// progressDelay is how long a run goes before it shows progress: shorter runs stay
// quiet rather than flash a line. A variable so tests can see the line.
var progressDelay = time.Second

// progressLine draws "simulate: 4,100,000 of 10,000,000 keys (41%), 1.2s" on stderr,
// rewriting one line, and erases it at the end.
type progressLine struct {
	w     io.Writer
	verb  string
	start time.Time
	delay time.Duration
	shown bool
}

// newProgress returns a progress line when stderr is a TTY, nil otherwise (scripts and
// pipes get no progress).
func newProgress(ios *cmdutil.IOStreams, verb string) *progressLine {
	if !ios.StderrTTY {
		return nil
	}
	return &progressLine{w: ios.ErrOut, verb: verb, start: time.Now(), delay: progressDelay}
}

// callback returns the engine callback (nil for no progress).
func (p *progressLine) callback() hashring.Progress {
	if p == nil {
		return nil
	}
	return p.update
}

func (p *progressLine) update(done, total int64) {
	elapsed := time.Since(p.start)
	if elapsed < p.delay {
		return
	}
	p.shown = true
	if total > 0 {
		fmt.Fprintf(p.w, "\r\x1b[K%s: %s of %s keys (%d%%), %.1fs", p.verb, commas(done), commas(total), done*100/total, elapsed.Seconds())
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s: %s keys, %.1fs", p.verb, commas(done), elapsed.Seconds())
}

// finish erases the line, if one was drawn. The engine has stopped calling update.
func (p *progressLine) finish() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
