package ring

import (
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/internal/term"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// progressDelay is how long a run goes before it shows progress: shorter runs stay
// quiet rather than flash a line. A variable so tests can see the line.
var progressDelay = time.Second

// progressLine draws "simulate: 4,100,000 of 10,000,000 keys (41%), 1.2s" on stderr
// with the streams' one progress helper, and erases it at the end. A nil one does
// nothing.
type progressLine struct {
	line *term.Progress
	verb string
}

// newProgress returns a progress line when stderr is a TTY, nil otherwise (scripts and
// pipes get no progress).
func newProgress(ios *cmdutil.IOStreams, verb string) *progressLine {
	line := ios.Progress(progressDelay, 0)
	if line == nil {
		return nil
	}
	return &progressLine{line: line, verb: verb}
}

// callback returns the engine callback (nil for no progress).
func (p *progressLine) callback() hashring.Progress {
	if p == nil {
		return nil
	}
	return p.update
}

func (p *progressLine) update(done, total int64) {
	elapsed := p.line.Elapsed().Seconds()
	if total > 0 {
		p.line.Updatef("%s: %s of %s keys (%d%%), %.1fs", p.verb, commas(done), commas(total), done*100/total, elapsed)
		return
	}
	p.line.Updatef("%s: %s keys, %.1fs", p.verb, commas(done), elapsed)
}

// finish erases the line, if one was drawn. The engine has stopped calling update.
func (p *progressLine) finish() {
	if p != nil {
		p.line.Clear()
	}
}
