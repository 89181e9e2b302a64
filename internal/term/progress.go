package term

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Progress is one status line on a terminal, rewritten in place: quiet for the first
// Delay (short work does not flash a line), redrawn at most every Every, and erased by
// Clear. Methods on a nil *Progress do nothing, so callers hold a nil one when the
// stream is not a terminal. Safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	dumb  bool
	delay time.Duration
	every time.Duration
	start time.Time
	next  time.Time
	shown int // visible width of the line drawn, 0 when none is
	now   func() time.Time
}

// NewProgress draws on w, a terminal; dumb (TERM=dumb) redraws with carriage returns
// and spaces instead of the erase-line escape. It shows nothing before delay has
// passed, then redraws at most every every (0: at each Update).
func NewProgress(w io.Writer, dumb bool, delay, every time.Duration) *Progress {
	now := time.Now()
	return &Progress{w: w, dumb: dumb, delay: delay, every: every, start: now, next: now.Add(delay), now: time.Now}
}

// Elapsed is the time since the progress started.
func (p *Progress) Elapsed() time.Duration {
	if p == nil {
		return 0
	}
	return p.now().Sub(p.start)
}

// Updatef redraws the line with the formatted text, unless it is too early.
func (p *Progress) Updatef(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(p.every)
	line := fmt.Sprintf(format, args...)
	width := utf8.RuneCountInString(line)
	if p.dumb {
		pad := ""
		if p.shown > width {
			pad = strings.Repeat(" ", p.shown-width)
		}
		fmt.Fprint(p.w, "\r"+line+pad)
	} else {
		fmt.Fprint(p.w, "\r\x1b[K"+line)
	}
	p.shown = max(width, 1)
}

// Clear erases the line, if one is drawn, so that a message can be printed; the next
// Updatef draws it again. Call it when the work ends.
func (p *Progress) Clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown == 0 {
		return
	}
	if p.dumb {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.shown)+"\r")
	} else {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	p.shown = 0
}
