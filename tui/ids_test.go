package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func TestGoldenIDs(t *testing.T) {
	cases := []struct{ name, id, want string }{
		{"snowflake", "1541815603606036480", "why:"},
		{"uuid", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", "Unix time (ms)"},
		{"ulid", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "random"},
	}
	for _, c := range cases {
		for _, sz := range sizes {
			t.Run(c.name+"/"+sz.name, func(t *testing.T) {
				m := New(Config{Now: func() time.Time { return fixedNow }, StartPane: PaneIDs})
				fm := run(t, m, sz.w, sz.h, c.want, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(c.id), Paste: true}, keyType(tea.KeyEnter))
				checkGolden(t, fm.View())
			})
		}
	}
}

func TestIDsDecode(t *testing.T) {
	p := newIDsPane()
	p.input.set("1541815603606036480")
	p.decode(fixedNow)
	if p.kind != "snowflake" || len(p.ranked) < 3 {
		t.Fatalf("kind %q, %d readings", p.kind, len(p.ranked))
	}
	found := false
	for i, c := range p.ranked {
		if c.Name == "twitter" {
			found = true
			if !c.Plausible || !strings.HasPrefix(c.Timestamp.String(), "2022-06-28") {
				t.Fatalf("twitter reading: plausible %v, time %s; want a plausible 2022-06-28", c.Plausible, c.Timestamp)
			}
		}
		if i > 0 && c.Score > p.ranked[i-1].Score {
			t.Fatalf("readings not ranked: %s %.2f after %s %.2f", c.Name, c.Score, p.ranked[i-1].Name, p.ranked[i-1].Score)
		}
	}
	if !found {
		t.Fatal("no twitter reading")
	}
	p.input.set("not-an-id!")
	p.decode(fixedNow)
	if p.err == "" || !strings.Contains(p.view(80, 10), "cannot decode") {
		t.Fatalf("bad input: err %q", p.err)
	}
	// Typing q while editing is text, not quit.
	m := New(Config{Now: func() time.Time { return fixedNow }, StartPane: PaneIDs})
	if cmd := m.key(keyRunes("q")); cmd != nil || m.ids.input.String() != "q" {
		t.Fatalf("q while editing: input %q", m.ids.input.String())
	}
	m.key(keyType(tea.KeyEsc))
	if cmd := m.key(keyRunes("q")); cmd == nil {
		t.Fatal("q after esc does not quit")
	}
}
