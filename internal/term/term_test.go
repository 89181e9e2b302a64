package term

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// The scheme draws the codes the commands always used (tests and users' eyes rely on
// them): green, cyan, yellow, red, bold red, faint, bold.
func TestSchemeEscapes(t *testing.T) {
	want := map[Style]string{Plain: "", OK: "\x1b[32m", Info: "\x1b[36m", Warn: "\x1b[33m", Error: "\x1b[31m",
		Critical: "\x1b[1;31m", Dim: "\x1b[2m", Bold: "\x1b[1m"}
	for st, w := range want {
		if got := st.SGR(); got != w {
			t.Errorf("style %d: %q, want %q", st, got, w)
		}
	}
	if got := Paint("x", Warn, true); got != "\x1b[33mx\x1b[0m" {
		t.Errorf("Paint on: %q", got)
	}
	for _, got := range []string{Paint("x", Warn, false), Paint("x", Plain, true)} {
		if got != "x" {
			t.Errorf("Paint without colour: %q", got)
		}
	}
	if Paint("", Error, true) != "" {
		t.Error("Paint of empty text draws codes")
	}
}

func TestNoColorEnv(t *testing.T) {
	cases := []struct {
		env        map[string]string
		want, dumb bool
	}{
		{map[string]string{"TERM": "xterm-256color"}, false, false},
		{map[string]string{"TERM": "dumb"}, true, true},
		{map[string]string{"TERM": "xterm", "NO_COLOR": "1"}, true, false},
		{map[string]string{"TERM": "xterm", "NO_COLOR": ""}, false, false},
		{map[string]string{}, false, false},
	}
	for _, c := range cases {
		getenv := func(k string) string { return c.env[k] }
		if got := NoColorEnv(getenv); got != c.want {
			t.Errorf("%v: NoColorEnv %v, want %v", c.env, got, c.want)
		}
		if got := Dumb(getenv); got != c.dumb {
			t.Errorf("%v: Dumb %v, want %v", c.env, got, c.dumb)
		}
	}
}

// fakeClock steps by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestProgress(w *bytes.Buffer, dumb bool, delay, every time.Duration) (*Progress, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	p := NewProgress(w, dumb, delay, every)
	p.start, p.next, p.now = clk.t, clk.t.Add(delay), clk.now
	return p, clk
}

func TestProgressDelayThrottleAndClear(t *testing.T) {
	var w bytes.Buffer
	p, clk := newTestProgress(&w, false, time.Second, 100*time.Millisecond)
	p.Updatef("early %d", 1)
	p.Clear()
	if w.Len() != 0 {
		t.Fatalf("drawn before the delay: %q", w.String())
	}
	clk.t = clk.t.Add(time.Second)
	p.Updatef("n=%d", 2)
	p.Updatef("n=%d", 3) // within 100ms: skipped
	clk.t = clk.t.Add(100 * time.Millisecond)
	p.Updatef("n=%d", 4)
	if got := w.String(); got != "\r\x1b[Kn=2\r\x1b[Kn=4" {
		t.Fatalf("drawn %q", got)
	}
	if p.Elapsed() != 1100*time.Millisecond {
		t.Fatalf("elapsed %s", p.Elapsed())
	}
	p.Clear()
	p.Clear() // nothing drawn any more: no second erase
	if !strings.HasSuffix(w.String(), "n=4\r\x1b[K") || strings.Count(w.String(), "\x1b[K") != 3 {
		t.Fatalf("clear: %q", w.String())
	}
}

// TERM=dumb has no erase-line: a shorter line is padded over the longer one, and
// Clear blanks it with spaces.
func TestProgressOnADumbTerminal(t *testing.T) {
	var w bytes.Buffer
	p, _ := newTestProgress(&w, true, 0, 0)
	p.Updatef("reading: 100 nodes")
	p.Updatef("done: 7")
	p.Clear()
	want := "\rreading: 100 nodes" + "\rdone: 7" + strings.Repeat(" ", 11) + "\r" + strings.Repeat(" ", 7) + "\r"
	if w.String() != want || strings.Contains(w.String(), "\x1b") {
		t.Fatalf("dumb progress %q, want %q", w.String(), want)
	}
}

func TestNilProgressDoesNothing(t *testing.T) {
	var p *Progress
	p.Updatef("x")
	p.Clear()
	if p.Elapsed() != 0 {
		t.Fatal("nil progress has an elapsed time")
	}
}
