package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/zk"
)

func fakeConfig(f *fakeBackend, pane string) Config {
	return Config{Backend: f, Now: func() time.Time { return fixedNow }, StartPane: pane, Refresh: time.Hour, RingKeys: 10_000}
}

func TestGoldenZooKeeper(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			f := newFake()
			fm := runSteps(t, New(fakeConfig(f, PaneZK)), sz.w, sz.h,
				step{want: "zookeeper"}, // the root is listed
				step{keys: []tea.Msg{keyType(tea.KeyEnter)}, want: "workers"}, // into /app
				step{keys: []tea.Msg{keyRunes("w")}, want: "children +w-3"},   // watch /app/config
			)
			if got := fm.zk.watched; len(got) != 1 || got[0] != "/app/config" {
				t.Fatalf("watched %v, want [/app/config]", got)
			}
			if n := len(fm.zk.events); n != 5 {
				t.Fatalf("%d events, want the 5 the watch sent (each wait re-issued)", n)
			}
			v := fm.View()
			if !strings.Contains(v, "GAP") || !strings.Contains(v, "GAP: 2 missed") {
				t.Fatalf("the gap is not marked:\n%s", v)
			}
			checkGolden(t, v)
		})
	}
}

func TestZKWatchToggleAndStaleEvents(t *testing.T) {
	m := New(fakeConfig(newFake(), PaneZK))
	m.zk.listing = &ZKListing{Path: "/", Children: []string{"a", "b"}}
	m.zk.action(ActZKWatch, m)
	gen := m.zk.watchGen
	m.zk.action(ActZKWatch, m) // unwatch
	if len(m.zk.watched) != 0 || m.zk.watchGen == gen {
		t.Fatalf("toggle: watched %v gen %d", m.zk.watched, m.zk.watchGen)
	}
	// An event of the old watcher is dropped and not waited on again.
	if cmd := m.zk.message(zkEventMsg{gen: gen, ok: true, ev: zk.Event{Type: zk.EventCreated}}, m); cmd != nil || len(m.zk.events) != 0 {
		t.Fatal("a stale watcher's event was kept")
	}
}
