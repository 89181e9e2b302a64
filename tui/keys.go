package tui

import (
	"fmt"
	"strings"
)

// Action is what a key does. Keys map to actions through Keymap; the root model
// handles the global actions and hands the others to the active pane.
type Action string

// Global actions.
const (
	ActNextPane Action = "next-pane"
	ActPrevPane Action = "prev-pane"
	ActPane     Action = "pane" // the key is the pane's number
	ActFilter   Action = "filter"
	ActBack     Action = "back"
	ActRefresh  Action = "refresh"
	ActHelp     Action = "help"
	ActQuit     Action = "quit"
	ActUp       Action = "up"
	ActDown     Action = "down"
	ActPageUp   Action = "page-up"
	ActPageDown Action = "page-down"
	ActTop      Action = "top"
	ActBottom   Action = "bottom"
	ActEnter    Action = "enter"
)

// Pane actions.
const (
	ActRingAdd        Action = "ring-add"
	ActRingRemove     Action = "ring-remove"
	ActRingVnodesUp   Action = "ring-vnodes-up"
	ActRingVnodesDown Action = "ring-vnodes-down"
	ActRingAlgoNext   Action = "ring-algo-next"
	ActRingAlgoPrev   Action = "ring-algo-prev"
	ActRingKeysUp     Action = "ring-keys-up"
	ActRingKeysDown   Action = "ring-keys-down"
	ActIDEdit         Action = "id-edit"
	ActIDClear        Action = "id-clear"
	ActZKUp           Action = "zk-up"
	ActZKWatch        Action = "zk-watch"
	ActZKClearEvents  Action = "zk-clear-events"
	ActKafkaWhatIf    Action = "kafka-what-if"
	ActKafkaGroups    Action = "kafka-groups"
	ActKafkaFindings  Action = "kafka-findings"
	ActLockBreak      Action = "lock-break"
	ActLockHistory    Action = "lock-history"
)

// Binding is one entry of the keymap: the keys (as bubbletea names them), what they
// do, and where (Pane "" is every pane). Writes marks actions that change a backend:
// --read-only drops them from dispatch and from the help.
type Binding struct {
	Keys   []string
	Action Action
	Help   string
	Pane   string
	Writes bool
}

// Pane names, in tab order.
const (
	PaneOverview = "Overview"
	PaneLocks    = "Locks"
	PaneKafka    = "Kafka"
	PaneZK       = "ZooKeeper"
	PaneRing     = "Ring"
	PaneIDs      = "IDs"
)

// PaneOrder is the order of the tabs (and of the number keys).
var PaneOrder = []string{PaneOverview, PaneLocks, PaneKafka, PaneZK, PaneRing, PaneIDs}

// Keymap is every key of the dashboard. The ? overlay and `dsctl tui --help` are
// generated from it, so what they say is what the keys do.
var Keymap = []Binding{
	{Keys: []string{"tab"}, Action: ActNextPane, Help: "next pane"},
	{Keys: []string{"shift+tab"}, Action: ActPrevPane, Help: "previous pane"},
	{Keys: []string{"1", "2", "3", "4", "5", "6"}, Action: ActPane, Help: "open pane N (1 Overview … 6 IDs)"},
	{Keys: []string{"/"}, Action: ActFilter, Help: "filter the list (enter keeps it, esc clears it)"},
	{Keys: []string{"esc"}, Action: ActBack, Help: "back: close a view, clear the filter"},
	{Keys: []string{"r"}, Action: ActRefresh, Help: "refresh now (skipped while one is running)"},
	{Keys: []string{"?"}, Action: ActHelp, Help: "show or hide this help"},
	{Keys: []string{"q", "ctrl+c"}, Action: ActQuit, Help: "quit"},
	{Keys: []string{"up", "k"}, Action: ActUp, Help: "move up"},
	{Keys: []string{"down", "j"}, Action: ActDown, Help: "move down"},
	{Keys: []string{"pgup"}, Action: ActPageUp, Help: "page up"},
	{Keys: []string{"pgdown"}, Action: ActPageDown, Help: "page down"},
	{Keys: []string{"home", "g"}, Action: ActTop, Help: "first row"},
	{Keys: []string{"end", "G"}, Action: ActBottom, Help: "last row"},

	{Pane: PaneLocks, Keys: []string{"enter"}, Action: ActEnter, Help: "inspect the selected lock"},
	{Pane: PaneLocks, Keys: []string{"b"}, Action: ActLockBreak, Help: "break the selected lock (asks you to type its name)", Writes: true},
	{Pane: PaneLocks, Keys: []string{"h"}, Action: ActLockHistory, Help: "show or hide the hand-over history"},

	{Pane: PaneKafka, Keys: []string{"enter"}, Action: ActEnter, Help: "partitions of the selected topic (leader, replicas, ISR)"},
	{Pane: PaneKafka, Keys: []string{"f"}, Action: ActKafkaFindings, Help: "audit findings"},
	{Pane: PaneKafka, Keys: []string{"w"}, Action: ActKafkaWhatIf, Help: "what if each broker were lost"},
	{Pane: PaneKafka, Keys: []string{"c"}, Action: ActKafkaGroups, Help: "consumer groups and lag"},

	{Pane: PaneZK, Keys: []string{"enter", "right", "l"}, Action: ActEnter, Help: "open the selected znode"},
	{Pane: PaneZK, Keys: []string{"backspace", "left", "h"}, Action: ActZKUp, Help: "go to the parent znode"},
	{Pane: PaneZK, Keys: []string{"w"}, Action: ActZKWatch, Help: "watch or unwatch the selected znode (live events, gaps marked)"},
	{Pane: PaneZK, Keys: []string{"x"}, Action: ActZKClearEvents, Help: "clear the event list"},

	{Pane: PaneRing, Keys: []string{"a"}, Action: ActRingAdd, Help: "add a node (keys that move are counted)"},
	{Pane: PaneRing, Keys: []string{"d", "delete"}, Action: ActRingRemove, Help: "remove the selected node"},
	{Pane: PaneRing, Keys: []string{"+", "="}, Action: ActRingVnodesUp, Help: "double the virtual nodes"},
	{Pane: PaneRing, Keys: []string{"-"}, Action: ActRingVnodesDown, Help: "halve the virtual nodes"},
	{Pane: PaneRing, Keys: []string{"m"}, Action: ActRingAlgoNext, Help: "next algorithm"},
	{Pane: PaneRing, Keys: []string{"M"}, Action: ActRingAlgoPrev, Help: "previous algorithm"},
	{Pane: PaneRing, Keys: []string{"]"}, Action: ActRingKeysUp, Help: "10x more keys"},
	{Pane: PaneRing, Keys: []string{"["}, Action: ActRingKeysDown, Help: "10x fewer keys"},

	{Pane: PaneIDs, Keys: []string{"enter", "i"}, Action: ActIDEdit, Help: "type or paste an ID (enter decodes, esc stops editing)"},
	{Pane: PaneIDs, Keys: []string{"x"}, Action: ActIDClear, Help: "clear the ID"},
}

// lookup finds the action of key k in pane: a pane binding wins over a global one.
func lookup(pane, k string, readOnly bool) Action {
	var global Action
	for _, b := range Keymap {
		if b.Writes && readOnly {
			continue
		}
		if b.Pane != "" && b.Pane != pane {
			continue
		}
		for _, bk := range b.Keys {
			if bk != k {
				continue
			}
			if b.Pane == pane {
				return b.Action
			}
			if global == "" {
				global = b.Action
			}
		}
	}
	return global
}

// keyName renders keys for people: "tab", "q / ctrl+c", "1-6".
func keyName(keys []string) string {
	if len(keys) > 2 && keys[0] == "1" {
		return keys[0] + "-" + keys[len(keys)-1]
	}
	return strings.Join(keys, " / ")
}

// helpLines renders the keymap for one pane ("" for all panes), a line per binding,
// global keys first.
func helpLines(pane string, readOnly bool) []string {
	return helpSections(pane, readOnly, 22, true)
}

// helpSections renders the global keys (when global) and the pane's (all panes for
// ""), with the key column keyW wide.
func helpSections(pane string, readOnly bool, keyW int, global bool) []string {
	var out []string
	section := func(title, p string) {
		var rows []Binding
		for _, b := range Keymap {
			if b.Pane == p && !(b.Writes && readOnly) {
				rows = append(rows, b)
			}
		}
		if len(rows) == 0 {
			return
		}
		out = append(out, title)
		for _, b := range rows {
			out = append(out, fmt.Sprintf("  %-*s %s", keyW, keyName(b.Keys), b.Help))
		}
	}
	if global {
		section("Everywhere", "")
	}
	for _, p := range PaneOrder {
		if pane == "" || pane == p {
			section(p, p)
		}
	}
	return out
}

// KeysHelp is the keymap as plain text, for `dsctl tui --help`.
func KeysHelp(readOnly bool) string { return strings.Join(helpLines("", readOnly), "\n") }

// KeysMarkdown is the keymap as a Markdown table, for the README.
func KeysMarkdown() string {
	var b strings.Builder
	b.WriteString("| pane | keys | what it does |\n|---|---|---|\n")
	for _, k := range Keymap {
		p := k.Pane
		if p == "" {
			p = "all"
		}
		keys := make([]string, len(k.Keys))
		for i, s := range k.Keys {
			keys[i] = "`" + s + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", p, strings.Join(keys, " "), k.Help)
	}
	return b.String()
}
