package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	hashring "github.com/dsctl/dsctl/probes/ring"
)

const (
	defaultRingKeys = 100_000
	minRingKeys     = 1_000
	maxRingKeys     = 10_000_000
	maxRingVnodes   = 10_000
	maxRingNodes    = 200
)

// ringPane is the interactive consistent-hash simulator: nodes, vnodes, algorithm,
// the load per node beside its ideal share, and the keys each change moved.
type ringPane struct {
	nodes   []hashring.Node
	vnodes  int
	algos   []hashring.Algo
	algo    int
	keys    int64
	sel     int
	nextID  int
	gen     int // each run's number: results of older runs are dropped
	running bool
	change  string           // what the last run changed
	res     *hashring.Result // the current placement (after the change)
	err     string
}

type ringResultMsg struct {
	gen    int
	res    *hashring.Result
	err    error
	change string
}

func newRingPane(keys int64) *ringPane {
	if keys <= 0 {
		keys = defaultRingKeys
	}
	nodes, _ := hashring.GenerateNodes(5)
	algos := append(hashring.AllAlgos(), hashring.CompatModes()...)
	p := &ringPane{nodes: nodes, vnodes: hashring.DefaultVnodes, algos: algos, keys: keys, nextID: 6}
	for i, a := range algos {
		if a == hashring.AlgoRing {
			p.algo = i
		}
	}
	return p
}

// simulate places the keys on the current nodes (no change).
func (p *ringPane) simulate() tea.Cmd {
	return p.run(p.nodes, nil, nil, "")
}

// run simulates base plus the change, off the render path.
func (p *ringPane) run(base []hashring.Node, add []hashring.Node, remove []string, change string) tea.Cmd {
	p.gen++
	p.running = true
	gen, algo, vnodes, keys := p.gen, p.algos[p.algo], p.vnodes, p.keys
	base = append([]hashring.Node(nil), base...)
	return func() tea.Msg {
		src, err := hashring.NewGeneratedKeys(keys, hashring.Dist{}, 1)
		if err != nil {
			return ringResultMsg{gen: gen, err: err}
		}
		spec := hashring.SimulateSpec{
			Cluster: hashring.Cluster{Nodes: base, Vnodes: vnodes},
			Algos:   []hashring.Algo{algo}, Add: add, Remove: remove,
		}
		rs, err := hashring.Simulate(context.Background(), spec, src, nil)
		if err != nil {
			return ringResultMsg{gen: gen, err: err, change: change}
		}
		return ringResultMsg{gen: gen, res: &rs[0], change: change}
	}
}

func (p *ringPane) result(msg ringResultMsg) {
	if msg.gen != p.gen {
		return // a newer run is on its way
	}
	p.running = false
	if msg.err != nil {
		p.err = firstLine(msg.err.Error())
		return
	}
	p.err, p.res, p.change = "", msg.res, msg.change
}

func (p *ringPane) action(a Action) tea.Cmd {
	switch a {
	case ActUp, ActDown, ActPageUp, ActPageDown, ActTop, ActBottom:
		p.sel = moveSel(a, p.sel, len(p.nodes), 10)
	case ActRingAdd:
		if len(p.nodes) >= maxRingNodes {
			p.err = fmt.Sprintf("at most %d nodes here (dsctl ring simulate takes more)", maxRingNodes)
			return nil
		}
		n := hashring.Node{Name: p.freeName(), Weight: 1}
		base := p.nodes
		p.nodes = append(append([]hashring.Node(nil), base...), n)
		return p.run(base, []hashring.Node{n}, nil, "added "+n.Name)
	case ActRingRemove:
		if len(p.nodes) <= 1 {
			p.err = "the last node cannot be removed"
			return nil
		}
		gone := p.nodes[p.sel]
		base := p.nodes
		p.nodes = append(append([]hashring.Node(nil), base[:p.sel]...), base[p.sel+1:]...)
		p.sel = clamp(p.sel, len(p.nodes))
		return p.run(base, nil, []string{gone.Name}, "removed "+gone.Name)
	case ActRingVnodesUp, ActRingVnodesDown:
		old := p.vnodes
		if a == ActRingVnodesUp {
			p.vnodes = min(p.vnodes*2, maxRingVnodes)
		} else {
			p.vnodes = max(p.vnodes/2, 1)
		}
		if p.vnodes == old {
			return nil
		}
		return p.run(p.nodes, nil, nil, fmt.Sprintf("vnodes %d → %d", old, p.vnodes))
	case ActRingAlgoNext, ActRingAlgoPrev:
		old := p.algos[p.algo]
		step := 1
		if a == ActRingAlgoPrev {
			step = len(p.algos) - 1
		}
		p.algo = (p.algo + step) % len(p.algos)
		return p.run(p.nodes, nil, nil, fmt.Sprintf("algorithm %s → %s", old, p.algos[p.algo]))
	case ActRingKeysUp, ActRingKeysDown:
		old := p.keys
		if a == ActRingKeysUp {
			p.keys = min(p.keys*10, maxRingKeys)
		} else {
			p.keys = max(p.keys/10, minRingKeys)
		}
		if p.keys == old {
			return nil
		}
		return p.run(p.nodes, nil, nil, fmt.Sprintf("keys %s → %s", commas(old), commas(p.keys)))
	}
	return nil
}

// freeName is the next node-N not in use.
func (p *ringPane) freeName() string {
	for {
		name := "node-" + strconv.Itoa(p.nextID)
		p.nextID++
		used := false
		for _, n := range p.nodes {
			used = used || n.Name == name
		}
		if !used {
			return name
		}
	}
}

// view renders the pane from its state alone.
func (p *ringPane) view(w, h int) string {
	algo := p.algos[p.algo]
	head := fmt.Sprintf("algorithm %s · %d vnodes · %s keys · %d nodes", algo, p.vnodes, commas(p.keys), len(p.nodes))
	if p.running {
		head += " · running…"
	}
	lines := []string{stTitle.Render(cut(head, w))}
	r := p.res
	switch {
	case p.err != "":
		lines = append(lines, stErr.Render(cut("error: "+p.err, w)))
	case r != nil && r.MovedKeys != nil:
		lines = append(lines, cut(fmt.Sprintf("%s: moved %s keys (%.1f%%), ideal %.1f%%",
			p.change, commas(*r.MovedKeys), 100**r.MovedFraction, 100**r.IdealMovedFraction), w))
	case p.change != "":
		lines = append(lines, cut(p.change+": placement rebuilt (moves are counted for node adds and removes)", w))
	default:
		lines = append(lines, "")
	}
	if r == nil {
		lines = append(lines, "", "placing keys…")
		return block(lines, w, h)
	}
	spread := fmt.Sprintf("load/ideal: stddev %.1f%% · max %.2f · min %.2f · %.0f ns/lookup · %s",
		r.StddevPct, r.MaxOverMean, r.MinOverMean, r.LookupNs, bytesText(r.MemoryBytes))
	lines = append(lines, stDim.Render(cut(spread, w)), "")

	before := map[string]int64{}
	if r.Before != nil {
		for _, n := range r.Before.Nodes {
			before[n.Name] = n.Keys
		}
	}
	const fixed = 2 + 12 + 1 + 10 + 1 + 6 + 1 + 6 + 1 + 9 + 1
	barW := max(w-fixed, 4)
	header := "  " + fit("node", 12) + " " + fitLeft("keys", 10) + " " + fitLeft("share", 6) + " " + fitLeft("ideal", 6) + " " + fitLeft("Δ keys", 9) + " " + "load (█ actual, │ ideal)"
	lines = append(lines, stHeader.Render(cut(header, w)))
	scale := 0.0
	for _, n := range r.Nodes {
		scale = max(scale, n.Share, n.IdealShare)
	}
	scale *= 1.05
	rowsH := h - len(lines) - 1
	start, end := window(len(r.Nodes), p.sel, 0, rowsH)
	for i := start; i < end; i++ {
		n := r.Nodes[i]
		delta := ""
		if b, ok := before[n.Name]; ok && r.Before != nil {
			delta = signed(n.Keys - b)
		} else if r.Before != nil {
			delta = "new"
		}
		row := fit(n.Name, 12) + " " + fitLeft(commas(n.Keys), 10) + " " + fitLeft(pct(n.Share), 6) + " " +
			fitLeft(pct(n.IdealShare), 6) + " " + fitLeft(delta, 9) + " " + bar(n.Share/scale, n.IdealShare/scale, barW)
		lines = append(lines, selRow(row, i == p.sel, w))
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = append(lines, stDim.Render(cut("a add · d remove selected · +/- vnodes · m/M algorithm · [/] keys", w)))
	return block(lines, w, h)
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func signed(n int64) string {
	if n > 0 {
		return "+" + commas(n)
	}
	if n < 0 {
		return "-" + commas(-n)
	}
	return "0"
}

// commas writes n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
