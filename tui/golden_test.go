package tui

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"
)

// The goldens are plain text: the colour profile is pinned to ASCII, so they show
// exactly what a terminal without colour shows. Regenerate with
// go test ./tui -run TestGolden -update
func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// fixedNow is the clock of every golden.
var fixedNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// sizes are the terminal sizes every pane is checked at.
var sizes = []struct {
	name string
	w, h int
}{{"80x24", 80, 24}, {"120x40", 120, 40}}

// step is keys to send, then text the output must show before the next step.
type step struct {
	do   func() // runs first (e.g. changes the fake backend)
	keys []tea.Msg
	want string
}

// run drives a model under teatest at a fixed size: it sends the keys, waits until
// the output shows want, quits, and returns the final model.
func run(t *testing.T, m *Model, w, h int, want string, keys ...tea.Msg) *Model {
	t.Helper()
	return runSteps(t, m, w, h, step{keys: keys, want: want})
}

// runSteps plays the steps in order, then quits and returns the final model.
func runSteps(t *testing.T, m *Model, w, h int, steps ...step) *Model {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		for _, k := range st.keys {
			tm.Send(k)
		}
		if st.want != "" {
			want := []byte(st.want)
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, want) },
				teatest.WithDuration(20*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
		}
	}
	tm.Send(tea.QuitMsg{})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second))
	return fm.(*Model)
}

func keyRunes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

func keyType(k tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: k} }

// settle waits for the model's pending work by re-rendering (the final model already
// holds every message delivered before quit).
func checkGolden(t *testing.T, view string) {
	t.Helper()
	for _, line := range strings.Split(view, "\n") {
		if strings.Contains(line, "\x1b[") {
			t.Fatalf("the pinned ASCII profile still produced escape codes: %q", line)
		}
	}
	golden.RequireEqual(t, []byte(view))
}

var _ = io.Discard
