package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lockwatch"
)

// maxHandovers is how many hand-overs the history keeps.
const maxHandovers = 200

// handover is one change of a lock's holder seen between two refreshes.
type handover struct {
	at    time.Time
	name  string
	what  string // acquired, handed over, released, expired, broken
	from  string
	to    string
	fence lock.FencingToken
}

// locksPane lists every lock with its holder, TTL counting down, fence and waiters;
// enter inspects, b breaks after the lock's name is typed, h shows the hand-overs.
type locksPane struct {
	configured bool
	readOnly   bool
	rows       []LockRow
	loaded     bool
	err        string
	filter     string
	visible    []int
	sel        int

	inspecting bool
	inspect    *lock.Info
	inspectAt  time.Time
	inspectErr string

	confirming bool
	confirm    lineInput
	target     LockRow
	status     string // the outcome of the last break

	history     []handover
	fullHistory bool
}

type (
	lockInspectMsg struct {
		info *lock.Info
		err  error
	}
	lockBrokeMsg struct {
		row  LockRow
		info *lock.Info
		err  error
	}
)

func newLocksPane(configured, readOnly bool) *locksPane {
	return &locksPane{configured: configured, readOnly: readOnly, confirm: lineInput{limit: 512}}
}

func holderText(h *lock.Holder) string {
	if h == nil {
		return "-"
	}
	if h.Owner != nil {
		return h.Owner.String()
	}
	return "token " + lock.ShortToken(h.Token)
}

func rowKey(r *LockRow) string { return r.Backend + "\x00" + r.Info.Name }

// setRows takes a new list and records the hand-overs since the last one, per
// backend, as lockwatch.Diff tells them (the same rules as every lock watch).
func (p *locksPane) setRows(rows []LockRow, now time.Time) {
	if p.loaded {
		prev, cur := byBackend(p.rows), byBackend(rows)
		names := map[string]bool{}
		for b := range prev {
			names[b] = true
		}
		for b := range cur {
			names[b] = true
		}
		backends := make([]string, 0, len(names))
		for b := range names {
			backends = append(backends, b)
		}
		sort.Strings(backends)
		for _, b := range backends {
			before, after := prev[b], cur[b]
			elapsed := now.Sub(before.at)
			if !before.at.IsZero() && !after.at.IsZero() {
				elapsed = after.at.Sub(before.at)
			}
			for _, ev := range lockwatch.Diff(before.infos, after.infos, elapsed, now) {
				p.record(handoverOf(ev))
			}
		}
	}
	p.rows, p.loaded = rows, true
	p.refilter()
}

func handoverOf(ev lockwatch.Event) handover {
	h := handover{at: ev.At, name: ev.Name, what: strings.ReplaceAll(string(ev.Kind), "_", " ")}
	if ev.Old != nil {
		h.from = holderText(ev.Old)
	}
	if ev.New != nil {
		h.to, h.fence = holderText(ev.New), ev.NewFence
	}
	return h
}

// backendRows is one backend's list and when it was read.
type backendRows struct {
	infos []lock.Info
	at    time.Time
}

func byBackend(rows []LockRow) map[string]backendRows {
	m := map[string]backendRows{}
	for _, r := range rows {
		g := m[r.Backend]
		g.infos, g.at = append(g.infos, r.Info), r.FetchedAt
		m[r.Backend] = g
	}
	return m
}

func (p *locksPane) record(h handover) {
	p.history = append(p.history, h)
	if len(p.history) > maxHandovers {
		p.history = append(p.history[:0:0], p.history[len(p.history)-maxHandovers:]...)
	}
}

func (p *locksPane) setFilter(f string) {
	p.filter, p.sel = f, 0
	p.refilter()
}

func (p *locksPane) refilter() {
	p.visible = p.visible[:0]
	for i := range p.rows {
		r := &p.rows[i]
		if p.filter == "" || matches(p.filter, r.Info.Name) || (r.Info.Holder != nil && matches(p.filter, holderText(r.Info.Holder))) {
			p.visible = append(p.visible, i)
		}
	}
	p.sel = clamp(p.sel, len(p.visible))
}

func (p *locksPane) selected() (LockRow, bool) {
	if len(p.visible) == 0 {
		return LockRow{}, false
	}
	return p.rows[p.visible[clamp(p.sel, len(p.visible))]], true
}

func (p *locksPane) action(a Action, m *Model) tea.Cmd {
	if !p.configured {
		return nil
	}
	switch a {
	case ActUp, ActDown, ActPageUp, ActPageDown, ActTop, ActBottom:
		p.sel = moveSel(a, p.sel, len(p.visible), 10)
	case ActEnter:
		r, ok := p.selected()
		if !ok {
			return nil
		}
		p.inspecting, p.inspect, p.inspectErr = true, nil, ""
		b, ctx := m.cfg.Backend, m.ctx
		return func() tea.Msg {
			in, err := b.InspectLock(ctx, r.Backend, r.Info.Name)
			return lockInspectMsg{info: in, err: err}
		}
	case ActLockBreak:
		if p.readOnly {
			return nil
		}
		r, ok := p.selected()
		if !ok {
			return nil
		}
		p.confirming, p.target, p.status = true, r, ""
		p.confirm.set("")
	case ActLockHistory:
		p.fullHistory = !p.fullHistory
	}
	return nil
}

// key takes the typed confirmation of a break.
func (p *locksPane) key(msg tea.KeyMsg, m *Model) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		p.confirming, p.status = false, "break cancelled"
		return nil
	case tea.KeyEnter:
		p.confirming = false
		if p.confirm.String() != p.target.Info.Name {
			p.status = fmt.Sprintf("not broken: you typed %q, the lock is %q", p.confirm.String(), p.target.Info.Name)
			return nil
		}
		r, b, ctx := p.target, m.cfg.Backend, m.ctx
		p.status = "breaking " + r.Info.Name + "…"
		return func() tea.Msg {
			in, err := b.BreakLock(ctx, r.Backend, r.Info.Name)
			return lockBrokeMsg{row: r, info: in, err: err}
		}
	}
	p.confirm.key(msg)
	return nil
}

func (p *locksPane) back() bool {
	switch {
	case p.inspecting:
		p.inspecting = false
		return true
	case p.fullHistory:
		p.fullHistory = false
		return true
	}
	return false
}

func (p *locksPane) message(msg tea.Msg, m *Model) tea.Cmd {
	switch msg := msg.(type) {
	case lockInspectMsg:
		if !p.inspecting {
			return nil
		}
		p.inspect, p.inspectAt = msg.info, m.cfg.Now()
		if msg.err != nil {
			p.inspectErr = firstLine(msg.err.Error())
		}
	case lockBrokeMsg:
		if msg.err != nil {
			p.status = "break failed: " + firstLine(msg.err.Error())
			return nil
		}
		if msg.info == nil || !msg.info.Held {
			p.status = msg.row.Info.Name + " was already free: nothing broken"
			return nil
		}
		p.status = fmt.Sprintf("broke %s (held by %s)", msg.row.Info.Name, holderText(msg.info.Holder))
		p.record(handover{at: m.cfg.Now(), name: msg.row.Info.Name, what: "broken", from: holderText(msg.info.Holder)})
		// Forget the holder so the next list does not report it as released too.
		for i := range p.rows {
			if rowKey(&p.rows[i]) == rowKey(&msg.row) {
				p.rows[i].Info.Held, p.rows[i].Info.Holder = false, nil
			}
		}
		if s := m.sources[srcLocks]; s != nil {
			s.next = time.Time{} // refresh at the next tick
		}
	}
	return nil
}

// ttlText is the time left on a holder's lease, counted down from when it was read.
func ttlText(h *lock.Holder, fetched, now time.Time) string {
	if h == nil {
		return "-"
	}
	if h.TTLLeft < 0 {
		return "no expiry"
	}
	left := h.TTLLeft - now.Sub(fetched)
	if left <= 0 {
		return "expired"
	}
	if left < 10*time.Second {
		return fmt.Sprintf("%.1fs", left.Seconds())
	}
	return left.Round(time.Second).String()
}

func (p *locksPane) view(w, h int, now time.Time) string {
	if !p.configured {
		return block([]string{"No lock backend is configured.", "", "Set --redis, DSCTL_REDIS or the context's redis.addrs, or run dsctl tui --sandbox."}, w, h)
	}
	if p.inspecting {
		return block(p.inspectLines(w, now), w, h)
	}
	if p.fullHistory {
		return block(append([]string{stTitle.Render("Hand-overs (newest first) · h or esc closes")}, p.historyLines(w, h-1)...), w, h)
	}
	var lines []string
	held := 0
	for _, r := range p.rows {
		if r.Info.Held {
			held++
		}
	}
	head := fmt.Sprintf("%d locks · %d held", len(p.rows), held)
	if p.filter != "" {
		head += fmt.Sprintf(" · %d match %q", len(p.visible), p.filter)
	}
	if p.loaded && p.err != "" {
		head += " · STALE: the backend does not answer; TTLs count down from the last list"
	}
	if !p.loaded {
		head = "listing locks…"
		if p.err != "" {
			head = "no data yet: " + p.err
		}
	}
	lines = append(lines, stTitle.Render(cut(head, w)))
	histH := 0
	if h >= 16 && len(p.history) > 0 {
		histH = min(len(p.history), max(3, h/4)) + 1
	}
	bottom := 1 // the status or hint line
	listH := h - len(lines) - histH - bottom
	fmtW := 0
	if w >= 100 {
		fmtW = 11
	}
	rest := w - 2 - 9 - 17 - 8 - fmtW
	holderW := max(rest*45/100, 12)
	nameW := max(rest-holderW-1, 12)
	fmtHead := ""
	if fmtW > 0 {
		fmtHead = "  format"
	}
	lines = append(lines, stHeader.Render(cut("  "+fit("lock", nameW)+" "+fit("holder", holderW)+fitLeft("ttl", 9)+fitLeft("fence", 17)+fitLeft("waiters", 8)+fmtHead, w)))
	sel := clamp(p.sel, len(p.visible))
	start, end := window(len(p.visible), sel, 0, listH-1)
	for i := start; i < end; i++ {
		r := &p.rows[p.visible[i]]
		in := &r.Info
		fence := "-"
		if in.Holder != nil && in.Holder.Fence != 0 {
			fence = in.Holder.Fence.String()
		}
		waiters := fmt.Sprint(in.Waiters)
		if in.Waiters < 0 {
			waiters = "?"
		}
		holder := "free"
		if in.Held {
			holder = holderText(in.Holder)
		}
		row := fit(in.Name, nameW) + " " + fit(holder, holderW) + fitLeft(ttlText(in.Holder, r.FetchedAt, now), 9) + fitLeft(fence, 17) + fitLeft(waiters, 8)
		if fmtW > 0 {
			row += "  " + string(in.Format)
		}
		lines = append(lines, selRow(row, i == sel, w))
	}
	if len(p.visible) == 0 && p.loaded {
		lines = append(lines, stDim.Render("  no locks"))
	}
	for len(lines) < h-histH-bottom {
		lines = append(lines, "")
	}
	if histH > 0 {
		lines = append(lines, stTitle.Render(cut("Recent hand-overs (h: all)", w)))
		lines = append(lines, p.historyLines(w, histH-1)...)
	}
	lines = lines[:min(len(lines), h-bottom)]
	switch {
	case p.confirming:
		lines = append(lines, stWarn.Render(cut(fmt.Sprintf("Break %s? Type its name and press enter (esc cancels): %s", p.target.Info.Name, p.confirm.view(true)), w)))
	case p.status != "":
		lines = append(lines, cut(p.status, w))
	case p.readOnly:
		lines = append(lines, stDim.Render(cut("enter inspect · h hand-overs · read-only: breaking is off", w)))
	default:
		lines = append(lines, stDim.Render(cut("enter inspect · b break · h hand-overs · / filter", w)))
	}
	return block(lines, w, h)
}

func (p *locksPane) historyLines(w, h int) []string {
	var out []string
	for i := len(p.history) - 1; i >= 0 && len(out) < h; i-- {
		x := p.history[i]
		s := fmt.Sprintf("%s %-11s %s", x.at.UTC().Format("15:04:05"), x.what, x.name)
		switch {
		case x.from != "" && x.to != "":
			s += ": " + x.from + " → " + x.to
		case x.to != "":
			s += ": " + x.to
		case x.from != "":
			s += ": was " + x.from
		}
		if x.fence != 0 {
			s += " · fence " + x.fence.String()
		}
		if x.what == "broken" || x.what == "expired" {
			s = stWarn.Render(cut(s, w))
		}
		out = append(out, cut(s, w))
	}
	return out
}

func (p *locksPane) inspectLines(w int, now time.Time) []string {
	out := []string{stTitle.Render("Inspect") + stDim.Render("  (esc back)"), ""}
	if p.inspectErr != "" {
		return append(out, stErr.Render(cut("cannot inspect: "+p.inspectErr, w)))
	}
	in := p.inspect
	if in == nil {
		return append(out, "reading…")
	}
	kv := func(k, v string) { out = append(out, cut(fmt.Sprintf("%-14s %s", k, v), w)) }
	kv("name", in.Name)
	kv("key", in.Key)
	kv("backend", in.Backend.String())
	kv("format", in.FormatDetail)
	kv("held", fmt.Sprint(in.Held))
	if h := in.Holder; h != nil {
		kv("holder", holderText(h))
		kv("token", h.Token)
		kv("fence", h.Fence.String())
		if !h.AcquiredAt.IsZero() {
			kv("acquired", h.AcquiredAt.UTC().Format(time.RFC3339)+" ("+ago(now.Sub(h.AcquiredAt))+")")
		}
		kv("ttl left", ttlText(h, p.inspectAt, now))
		if h.Reentrancy > 0 {
			kv("re-entrancy", fmt.Sprint(h.Reentrancy))
		}
	}
	waiters := fmt.Sprint(in.Waiters)
	if in.Waiters < 0 {
		waiters = "unknown (clients of this format poll)"
	}
	kv("waiters", waiters)
	kv("last fence", in.LastFence.String())
	kv("fencing safe", fmt.Sprint(in.FencingSafe))
	if b := in.LastBreak; b != nil {
		kv("last break", fmt.Sprintf("%s by %s: %s", b.At.UTC().Format(time.RFC3339), b.By, b.Reason))
	}
	for _, inst := range in.Instances {
		s := fmt.Sprintf("held=%v %s fence %s", inst.Held, lock.ShortToken(inst.Token), inst.Fence)
		if inst.Error != "" {
			s = "error: " + inst.Error
		}
		kv("  "+inst.Endpoint, s)
	}
	for _, n := range in.Notes {
		kv("note", n)
	}
	if len(in.Backend.Warnings) > 0 {
		kv("warning", strings.Join(in.Backend.Warnings, "; "))
	}
	return out
}
