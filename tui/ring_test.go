package tui

import (
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func TestGoldenRing(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			m := New(Config{Now: func() time.Time { return fixedNow }, StartPane: PaneRing, RingKeys: 20_000})
			fm := run(t, m, sz.w, sz.h, "added node-6: moved", keyRunes("a"))
			if fm.ring.res == nil || fm.ring.res.MovedKeys == nil {
				t.Fatal("no moved keys after adding a node")
			}
			moved := *fm.ring.res.MovedFraction
			if moved < 0.10 || moved > 0.25 {
				t.Fatalf("adding a 6th node to a ring moved %.3f of the keys, want about 1/6", moved)
			}
			fm.ring.res.LookupNs = 0 // measured: not part of the golden
			checkGolden(t, fm.View())
		})
	}
}

func TestRingActions(t *testing.T) {
	p := newRingPane(5000)
	if cmd := p.action(ActRingAdd); cmd == nil || len(p.nodes) != 6 {
		t.Fatalf("add: %d nodes", len(p.nodes))
	}
	p.result(p.simulateNow(t))
	p.sel = 0
	p.action(ActRingRemove)
	if len(p.nodes) != 5 || p.nodes[0].Name != "node-2" {
		t.Fatalf("remove: %+v", p.nodes)
	}
	p.action(ActRingVnodesUp)
	if p.vnodes != 200 {
		t.Fatalf("vnodes %d", p.vnodes)
	}
	for range 20 {
		p.action(ActRingVnodesUp)
	}
	if p.vnodes != maxRingVnodes {
		t.Fatalf("vnodes %d, want capped at %d", p.vnodes, maxRingVnodes)
	}
	before := p.algos[p.algo]
	p.action(ActRingAlgoNext)
	p.action(ActRingAlgoPrev)
	if p.algos[p.algo] != before {
		t.Fatalf("algo next+prev: %s, want %s", p.algos[p.algo], before)
	}
	for range 6 {
		p.action(ActRingRemove)
	}
	if len(p.nodes) != 1 || !strings.Contains(p.err, "last node") {
		t.Fatalf("removing every node: %d left, err %q", len(p.nodes), p.err)
	}
	// A stale result (an older run's) is dropped.
	cur := p.res
	p.result(ringResultMsg{gen: p.gen - 1})
	if p.res != cur {
		t.Fatal("a stale result replaced the current one")
	}
}

// simulateNow runs the pane's current placement synchronously.
func (p *ringPane) simulateNow(t *testing.T) ringResultMsg {
	t.Helper()
	msg := p.simulate()().(ringResultMsg)
	if msg.err != nil {
		t.Fatal(msg.err)
	}
	return msg
}

var _ tea.Msg
