package tui

import (
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
)

// lineInput is a one-line text field: typing, pasting, backspace, ctrl+u, ctrl+w.
// (bubbles' textinput blinks its cursor on a timer, which makes golden frames depend
// on timing; this one draws a fixed block cursor.)
type lineInput struct {
	value []rune
	limit int
}

// key applies a key; it reports whether the key was an edit.
func (in *lineInput) key(msg tea.KeyMsg) bool {
	switch msg.Type {
	case tea.KeyRunes, tea.KeySpace:
		rs := msg.Runes
		if msg.Type == tea.KeySpace {
			rs = []rune{' '}
		}
		for _, r := range rs {
			if r == '\n' || r == '\r' || !unicode.IsPrint(r) {
				continue
			}
			if in.limit > 0 && len(in.value) >= in.limit {
				break
			}
			in.value = append(in.value, r)
		}
		return true
	case tea.KeyBackspace:
		if len(in.value) > 0 {
			in.value = in.value[:len(in.value)-1]
		}
		return true
	case tea.KeyCtrlU:
		in.value = in.value[:0]
		return true
	case tea.KeyCtrlW:
		s := strings.TrimRight(string(in.value), " ")
		if i := strings.LastIndexByte(s, ' '); i >= 0 {
			s = s[:i+1]
		} else {
			s = ""
		}
		in.value = []rune(s)
		return true
	}
	return false
}

func (in *lineInput) String() string { return string(in.value) }

func (in *lineInput) set(s string) { in.value = []rune(s) }

// view draws the value with a cursor block when focused.
func (in *lineInput) view(focused bool) string {
	if focused {
		return string(in.value) + "█"
	}
	return string(in.value)
}
