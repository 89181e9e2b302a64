package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/zk"
)

// maxZKEvents is how many watch events the pane keeps.
const maxZKEvents = 500

// zkRewatchAfter is the wait before re-arming a watch that ended.
const zkRewatchAfter = 2 * time.Second

// zkPane shows the ensemble per member, a tree browser, and a live event stream of
// the watched paths with gaps marked.
type zkPane struct {
	configured bool
	status     *zk.Status
	err        string

	path    string
	listing *ZKListing
	listErr string
	loading bool
	sel     int
	filter  string

	watched     []string
	watchGen    int
	watchCancel context.CancelFunc
	watching    bool // the current watcher is armed
	watchCh     <-chan zk.Event
	watchErr    string
	events      []zk.Event
}

type (
	zkListMsg struct {
		path    string
		listing *ZKListing
		err     error
	}
	zkWatchStartedMsg struct {
		gen int
		ch  <-chan zk.Event
		err error
	}
	zkEventMsg struct {
		gen int
		ev  zk.Event
		ok  bool
	}
	zkRewatchMsg struct{ gen int }
)

func newZKPane(configured bool) *zkPane { return &zkPane{configured: configured, path: "/"} }

func (p *zkPane) setStatus(st *zk.Status, err string) {
	if st != nil {
		p.status = st
	}
	p.err = err
}

// afterStatus re-reads the open znode with every status refresh, so the tree is live.
func (p *zkPane) afterStatus(m *Model) tea.Cmd {
	if p.err != "" || p.loading {
		return nil
	}
	return p.list(m, p.path)
}

func (p *zkPane) list(m *Model, path string) tea.Cmd {
	p.loading = true
	b, ctx := m.cfg.Backend, m.ctx
	return func() tea.Msg {
		l, err := b.ZKList(ctx, path)
		return zkListMsg{path: path, listing: l, err: err}
	}
}

func (p *zkPane) setFilter(f string) { p.filter, p.sel = f, 0 }

// visible are the children that pass the filter.
func (p *zkPane) visible() []string {
	if p.listing == nil {
		return nil
	}
	if p.filter == "" {
		return p.listing.Children
	}
	var out []string
	for _, c := range p.listing.Children {
		if matches(p.filter, c) {
			out = append(out, c)
		}
	}
	return out
}

func (p *zkPane) selectedPath() string {
	kids := p.visible()
	if len(kids) == 0 {
		return p.path
	}
	return zk.Join(p.path, kids[clamp(p.sel, len(kids))])
}

func (p *zkPane) action(a Action, m *Model) tea.Cmd {
	if !p.configured {
		return nil
	}
	switch a {
	case ActUp, ActDown, ActPageUp, ActPageDown, ActTop, ActBottom:
		p.sel = moveSel(a, p.sel, len(p.visible()), 10)
	case ActEnter:
		if len(p.visible()) == 0 || p.loading {
			return nil
		}
		return p.list(m, p.selectedPath())
	case ActZKUp:
		if p.path == "/" || p.loading {
			return nil
		}
		parent := p.path[:strings.LastIndexByte(p.path, '/')]
		if parent == "" {
			parent = "/"
		}
		return p.list(m, parent)
	case ActZKWatch:
		path := p.selectedPath()
		kept := p.watched[:0:0]
		found := false
		for _, w := range p.watched {
			if w == path {
				found = true
				continue
			}
			kept = append(kept, w)
		}
		if !found {
			kept = append(kept, path)
		}
		p.watched = kept
		return p.rewatch(m)
	case ActZKClearEvents:
		p.events = nil
	}
	return nil
}

// rewatch stops the current watcher and arms one on the watched paths.
func (p *zkPane) rewatch(m *Model) tea.Cmd {
	if p.watchCancel != nil {
		p.watchCancel()
		p.watchCancel = nil
	}
	p.watchGen++
	p.watching, p.watchErr = false, ""
	if len(p.watched) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	p.watchCancel = cancel
	gen, b, paths := p.watchGen, m.cfg.Backend, append([]string(nil), p.watched...)
	return func() tea.Msg {
		ch, err := b.ZKWatch(ctx, paths)
		return zkWatchStartedMsg{gen: gen, ch: ch, err: err}
	}
}

// waitZK is the re-issued wait command: it blocks for one event and returns it.
func waitZK(gen int, ch <-chan zk.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		return zkEventMsg{gen: gen, ev: ev, ok: ok}
	}
}

func (p *zkPane) message(msg tea.Msg, m *Model) tea.Cmd {
	switch msg := msg.(type) {
	case zkListMsg:
		p.loading = false
		if msg.err != nil {
			p.listErr = firstLine(msg.err.Error())
			if zk.ErrNoNode(msg.err) && msg.path != "/" { // deleted under us: go to the root
				return p.list(m, "/")
			}
			return nil
		}
		if msg.path != p.path {
			p.sel = 0
		}
		p.path, p.listing, p.listErr = msg.path, msg.listing, ""
		p.sel = clamp(p.sel, len(p.visible()))
	case zkWatchStartedMsg:
		if msg.gen != p.watchGen {
			return nil
		}
		if msg.err != nil {
			p.watchErr = firstLine(msg.err.Error())
			return rewatchLater(msg.gen)
		}
		p.watching, p.watchCh = true, msg.ch
		return waitZK(msg.gen, msg.ch)
	case zkEventMsg:
		if msg.gen != p.watchGen {
			return nil // an old watcher's last event
		}
		if !msg.ok {
			p.watching = false
			p.watchErr = "the watch ended; re-arming"
			return rewatchLater(msg.gen)
		}
		p.addEvent(msg.ev)
		return waitZK(msg.gen, p.watchCh) // re-issued after each event
	case zkRewatchMsg:
		if msg.gen == p.watchGen {
			return p.rewatch(m)
		}
	}
	return nil
}

func rewatchLater(gen int) tea.Cmd {
	return tea.Tick(zkRewatchAfter, func(time.Time) tea.Msg { return zkRewatchMsg{gen: gen} })
}

func (p *zkPane) addEvent(ev zk.Event) {
	p.events = append(p.events, ev)
	if len(p.events) > maxZKEvents {
		p.events = append(p.events[:0:0], p.events[len(p.events)-maxZKEvents:]...)
	}
}

func (p *zkPane) view(w, h int) string {
	if !p.configured {
		return block([]string{"ZooKeeper is not configured.", "", "Set --zk, DSCTL_ZK or the context's zookeeper.servers, or run dsctl tui --sandbox."}, w, h)
	}
	lines := p.ensembleLines(w)
	lines = append(lines, strings.Repeat("─", w))
	restH := h - len(lines)
	lw := w * 2 / 5
	rw := w - lw - 1
	lines = append(lines, sideBySide(p.treeLines(lw, restH), lw, p.eventLines(rw, restH), rw, restH)...)
	return block(lines, w, h)
}

func (p *zkPane) ensembleLines(w int) []string {
	st := p.status
	if st == nil {
		if p.err != "" {
			return []string{stErr.Render(cut("ensemble: "+p.err, w))}
		}
		return []string{"ensemble: asking the members…"}
	}
	verdict := strings.ToUpper(st.Verdict)
	style := stOK
	if st.Verdict != zk.VerdictHealthy {
		style = stErr
	}
	head := fmt.Sprintf("ensemble %s · %d members · %d voting up · quorum %d", style.Render(verdict), st.Ensemble, st.Voting, st.Quorum)
	if st.Leader != "" {
		head += " · leader " + st.Leader
	}
	out := []string{cut(head, w)}
	out = append(out, stHeader.Render(cut(fit("member", 18)+fit("mode", 12)+fit("state", 8)+fitLeft("answer", 8)+fitLeft("zxid", 13)+fitLeft("znodes", 7)+fitLeft("conns", 6), w)))
	for _, mb := range st.Members {
		mode := mb.Mode
		if mode == "" {
			mode = "-"
		}
		row := fit(mb.Addr, 18) + fit(mode, 12) + fit(mb.State, 8) + fitLeft(fmt.Sprintf("%.1fms", mb.LatencyMs), 8)
		if mb.Error != "" {
			row += "  " + mb.Error
			out = append(out, stErr.Render(cut(row, w)))
			continue
		}
		row += fitLeft(zk.Hex(mb.Zxid), 13) + fitLeft(strconv.FormatInt(mb.Znodes, 10), 7) + fitLeft(strconv.FormatInt(mb.Connections, 10), 6)
		out = append(out, cut(row, w))
	}
	for _, pr := range st.Problems {
		out = append(out, stWarn.Render(cut("! "+pr, w)))
	}
	return out
}

func (p *zkPane) treeLines(w, h int) []string {
	head := "tree " + p.path
	if p.loading {
		head += " …"
	}
	out := []string{stTitle.Render(cut(head, w))}
	if p.listErr != "" {
		out = append(out, stErr.Render(cut(p.listErr, w)))
	}
	l := p.listing
	if l == nil {
		return append(out, "reading…")
	}
	mtime := "never"
	if l.Stat.Mzxid != 0 { // zxid 0: made by the server at start (/, /zookeeper), time 0
		mtime = l.Stat.Mtime.UTC().Format("2006-01-02 15:04:05")
	}
	out = append(out, stDim.Render(cut(fmt.Sprintf("v%d · %d B · %d children · mtime %s", l.Stat.Version, l.Stat.DataLength,
		l.Stat.NumChildren, mtime), w)))
	data := "data: " + dataPreview(l.Data)
	kids := p.visible()
	rows := h - len(out) - 1
	start, end := window(len(kids), p.sel, 0, rows)
	for i := start; i < end; i++ {
		name := kids[i]
		if p.isWatched(zk.Join(p.path, name)) {
			name += "  (watched)"
		}
		out = append(out, selRow(name, i == p.sel, w))
	}
	if len(kids) == 0 {
		out = append(out, stDim.Render("  (no children)"))
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	return append(out, cut(data, w))
}

func (p *zkPane) isWatched(path string) bool {
	for _, w := range p.watched {
		if w == path {
			return true
		}
	}
	return false
}

func dataPreview(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	if zk.Printable(b) {
		return strings.NewReplacer("\n", "⏎", "\r", "", "\t", " ").Replace(string(b[:min(len(b), 200)]))
	}
	return fmt.Sprintf("%d bytes of binary", len(b))
}

func (p *zkPane) eventLines(w, h int) []string {
	head := "watch: press w on a znode"
	if len(p.watched) > 0 {
		state := "arming…"
		if p.watching {
			state = "live"
		}
		head = fmt.Sprintf("watch (%s): %s", state, strings.Join(p.watched, " "))
	}
	out := []string{stTitle.Render(cut(head, w))}
	if p.watchErr != "" {
		out = append(out, stErr.Render(cut(p.watchErr, w)))
	}
	rows := h - len(out)
	evs := p.events
	if len(evs) > rows {
		evs = evs[len(evs)-rows:]
	}
	only := "" // with one watched path the header names it: lines leave it out
	if len(p.watched) == 1 {
		only = p.watched[0]
	}
	for _, ev := range evs {
		if only != "" && ev.Path == only {
			ev.Path = ""
		}
		out = append(out, eventLine(ev, w))
	}
	return out
}

// eventLine renders one watch event; gaps stand out as a rule with the count.
func eventLine(ev zk.Event, w int) string {
	ts := ev.Time.UTC().Format("15:04:05.000")
	switch ev.Type {
	case zk.EventGap:
		return stWarn.Render(cut(fmt.Sprintf("%s ── GAP: %d missed (%s) %s", ts, ev.Missed, ev.Change, ev.Path), w))
	case zk.EventDisconnected, zk.EventSessionExpired, zk.EventLimit:
		return stErr.Render(cut(fmt.Sprintf("%s %s %s", ts, ev.Type, ev.Message), w))
	case zk.EventArmed:
		return stDim.Render(cut(fmt.Sprintf("%s armed %d nodes", ts, ev.Nodes), w))
	case zk.EventReconnected:
		return cut(fmt.Sprintf("%s reconnected to %s", ts, ev.Server), w)
	}
	kind, detail := string(ev.Type), ""
	switch ev.Type {
	case zk.EventDataChanged:
		kind, detail = "data", fmt.Sprintf("v%d→v%d", ev.OldVersion, ev.Version)
	case zk.EventChildrenChanged:
		kind = "children"
		for _, a := range ev.Added {
			detail += " +" + a
		}
		for _, r := range ev.Removed {
			detail += " -" + r
		}
	case zk.EventResync:
		detail = "(" + string(ev.Change) + " while the session was gone)"
	}
	line := strings.TrimSpace(fmt.Sprintf("%s %s %s %s", ts, kind, strings.TrimSpace(detail), ev.Path))
	if ev.Type == zk.EventDataChanged && len(ev.Data) > 0 {
		line += " = " + dataPreview(ev.Data)
	}
	return cut(line, w)
}
