// Package term is dsctl's terminal presentation, shared by the commands and the TUI
// (which must not import commands): the one colour scheme (a Style per meaning, and
// how it looks), when colour is allowed (NO_COLOR, TERM=dumb), and the one progress
// line for work that takes over a second. No domain logic, no flags.
package term

import "strconv"

// Style is what a piece of text means; the scheme says how it looks.
type Style int

// Styles.
const (
	Plain Style = iota
	OK
	Info
	Warn
	Error
	Critical
	Dim
	Bold
)

// Look is how a style is drawn: a colour of the 16-colour ANSI palette (0-15, -1 for
// the terminal's own), bold, faint. The TUI hands Color to lipgloss as
// lipgloss.Color(strconv.Itoa(Color)) so panes and commands agree.
type Look struct {
	Color int
	Bold  bool
	Faint bool
}

// Scheme is the one colour scheme: green ok, cyan info, yellow warnings, red errors,
// bold red critical.
var Scheme = map[Style]Look{
	Plain:    {Color: -1},
	OK:       {Color: 2},
	Info:     {Color: 6},
	Warn:     {Color: 3},
	Error:    {Color: 1},
	Critical: {Color: 1, Bold: true},
	Dim:      {Color: -1, Faint: true},
	Bold:     {Color: -1, Bold: true},
}

// Reset ends a styled span.
const Reset = "\x1b[0m"

// SGR is the escape sequence that starts the style ("" for Plain).
func (s Style) SGR() string {
	l, ok := Scheme[s]
	if !ok {
		return ""
	}
	var params []byte
	add := func(p string) {
		if len(params) > 0 {
			params = append(params, ';')
		}
		params = append(params, p...)
	}
	if l.Bold {
		add("1")
	}
	if l.Faint {
		add("2")
	}
	if l.Color >= 0 && l.Color < 8 {
		add(strconv.Itoa(30 + l.Color))
	} else if l.Color >= 8 && l.Color < 16 {
		add(strconv.Itoa(90 + l.Color - 8))
	}
	if len(params) == 0 {
		return ""
	}
	return "\x1b[" + string(params) + "m"
}

// Paint wraps text in the style's escape codes when color is on.
func Paint(text string, s Style, color bool) string {
	if !color || text == "" {
		return text
	}
	sgr := s.SGR()
	if sgr == "" {
		return text
	}
	return sgr + text + Reset
}

// NoColorEnv reports whether the environment rules colour out: NO_COLOR set to
// anything non-empty (no-color.org), or TERM=dumb (a terminal that shows escape codes
// as text).
func NoColorEnv(getenv func(string) string) bool {
	return getenv("NO_COLOR") != "" || Dumb(getenv)
}

// Dumb reports TERM=dumb: no colour and no cursor movement (a progress line is
// redrawn with a carriage return and spaces only).
func Dumb(getenv func(string) string) bool { return getenv("TERM") == "dumb" }
