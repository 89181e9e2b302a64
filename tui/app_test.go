package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

func TestGoldenHelp(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			fm := runSteps(t, New(fakeConfig(newFake(), PaneKafka)), sz.w, sz.h, step{keys: []tea.Msg{keyRunes("?")}, want: "consumer groups and lag"})
			checkGolden(t, fm.View())
		})
	}
}

// Every frame fills the terminal exactly, whatever its size, and follows a resize.
func TestFrameFitsEverySize(t *testing.T) {
	m := New(fakeConfig(newFake(), PaneOverview))
	m.kafka.setData(fakeKafka(50), fixedNow)
	m.locks.setRows(fakeLocks(40), fixedNow)
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {60, 15}, {200, 60}, {80, 24}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for i := range PaneOrder {
			m.active = i
			for _, help := range []bool{false, true} {
				m.help = help
				lines := strings.Split(m.View(), "\n")
				if len(lines) != sz[1] {
					t.Fatalf("%dx%d %s (help %v): %d lines", sz[0], sz[1], PaneOrder[i], help, len(lines))
				}
				for _, l := range lines {
					if w := ansi.StringWidth(l); w > sz[0] {
						t.Fatalf("%dx%d %s: a line of %d cells: %q", sz[0], sz[1], PaneOrder[i], w, l)
					}
				}
			}
		}
	}
}

func TestKeymapHasNoDuplicateKeys(t *testing.T) {
	seen := map[string]Action{}
	for _, b := range Keymap {
		for _, k := range b.Keys {
			id := b.Pane + "/" + k
			if a, ok := seen[id]; ok {
				t.Fatalf("key %q in pane %q bound twice: %s and %s", k, b.Pane, a, b.Action)
			}
			seen[id] = b.Action
		}
	}
	// A pane binding wins over a global one.
	if a := lookup(PaneZK, "h", false); a != ActZKUp {
		t.Fatalf("h in ZooKeeper: %s", a)
	}
	if a := lookup(PaneKafka, "q", false); a != ActQuit {
		t.Fatalf("q in Kafka: %s", a)
	}
	if !strings.Contains(KeysMarkdown(), "| Locks | `b` | break the selected lock") {
		t.Fatal("the Markdown keys table lacks the break key")
	}
}

func TestTabsAndNumbers(t *testing.T) {
	m := New(fakeConfig(newFake(), ""))
	m.key(keyType(tea.KeyTab))
	if m.activeName() != PaneLocks {
		t.Fatalf("tab: %s", m.activeName())
	}
	m.key(keyType(tea.KeyShiftTab))
	m.key(keyType(tea.KeyShiftTab))
	if m.activeName() != PaneIDs {
		t.Fatalf("shift+tab twice from Locks: %s", m.activeName())
	}
	m.ids.editing = false
	m.key(keyRunes("4"))
	if m.activeName() != PaneZK {
		t.Fatalf("4: %s", m.activeName())
	}
	m.mouse(tea.MouseMsg{X: 16, Y: 0, Action: tea.MouseActionPress, Button: tea.MouseButtonLeft})
	if m.activeName() != PaneLocks {
		t.Fatalf("click on the Locks tab: %s", m.activeName())
	}
}
