package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/health"
	"github.com/dsctl/dsctl/probes/kafka"
)

// Backend states on the Overview.
const (
	stateConnected   = "connected"
	stateDegraded    = "DEGRADED"
	stateUnreachable = "UNREACHABLE"
	stateChecking    = "checking…"
)

// overviewPane shows each configured backend (connected, degraded, unreachable),
// its latency and version, and the counts the other panes know.
type overviewPane struct {
	configured map[string]bool
	results    []health.Result
	at         time.Time
}

// overviewCounts are the other panes' figures, gathered by the root model.
type overviewCounts struct {
	locksKnown      bool
	locks, held     int
	waiters         int
	audit           *kafka.Summary
	topics, brokers int
	brokersDown     int
	zkVerdict       string
	zkLeader        string
}

func newOverviewPane(configured map[string]bool) *overviewPane {
	return &overviewPane{configured: configured}
}

func (p *overviewPane) setHealth(rs []health.Result, at time.Time) { p.results, p.at = rs, at }

func (m *Model) overviewCounts() overviewCounts {
	var c overviewCounts
	if m.locks.rows != nil || m.locks.loaded {
		c.locksKnown = true
		c.locks = len(m.locks.rows)
		for _, r := range m.locks.rows {
			if r.Info.Held {
				c.held++
			}
			if r.Info.Waiters > 0 {
				c.waiters += r.Info.Waiters
			}
		}
	}
	if d := m.kafka.data; d != nil {
		if d.Report != nil {
			s := d.Report.Summary
			c.audit = &s
		}
		c.topics = len(d.Topics)
		for _, b := range d.Snapshot.Brokers {
			c.brokers++
			if !b.Reachable {
				c.brokersDown++
			}
		}
	}
	if st := m.zk.status; st != nil {
		c.zkVerdict, c.zkLeader = st.Verdict, st.Leader
	}
	return c
}

// backendState folds a backend's endpoint results into one state: connected when
// all are, unreachable when none answers, else degraded (some endpoint down, or one
// that answers but is unwell).
func backendState(rs []health.Result) (state string, latency float64, detail string) {
	ok, unwell := 0, 0
	for _, r := range rs {
		if !r.OK {
			continue
		}
		ok++
		if r.State == health.Degraded {
			unwell++
		}
		latency = max(latency, r.LatencyMs)
		if detail == "" {
			detail = r.Detail
			if r.Version != "" && !strings.Contains(r.Detail, r.Version) {
				detail = strings.TrimSpace(r.Version + " · " + r.Detail)
			}
		}
	}
	switch {
	case ok == len(rs) && unwell == 0:
		return stateConnected, latency, detail
	case ok > 0:
		return stateDegraded, latency, detail
	}
	return stateUnreachable, 0, ""
}

func (p *overviewPane) view(c overviewCounts, w, h int, now time.Time) string {
	lines := []string{stHeader.Render(cut(fit("backend", 11)+fit("state", 13)+fitLeft("latency", 9)+"  version / detail", w))}
	by := map[string][]health.Result{}
	for _, r := range p.results {
		by[r.Backend] = append(by[r.Backend], r)
	}
	for _, b := range []string{"redis", "zookeeper", "kafka", "sql"} {
		if !p.configured[b] {
			continue
		}
		rs := by[b]
		if len(rs) == 0 {
			lines = append(lines, cut(fit(b, 11)+fit(stateChecking, 13), w))
			continue
		}
		state, lat, detail := backendState(rs)
		latText := "-"
		if state != stateUnreachable {
			latText = fmt.Sprintf("%.1fms", lat)
		}
		st := fit(state, 13)
		switch state {
		case stateConnected:
			st = stOK.Render(st)
		case stateDegraded:
			st = stWarn.Render(st)
		default:
			st = stErr.Render(st)
		}
		lines = append(lines, fit(b, 11)+st+fitLeft(latText, 9)+"  "+cut(detail, max(w-35, 0)))
		if state == stateConnected && len(rs) == 1 {
			continue
		}
		for _, r := range rs { // each endpoint of a degraded or multi-server backend
			mark, text := "ok  ", fmt.Sprintf("%.1fms %s", r.LatencyMs, r.Detail)
			if r.State == health.Degraded {
				mark, text = "WARN", fmt.Sprintf("%.1fms %s", r.LatencyMs, r.Warning)
			}
			if !r.OK {
				mark, text = "FAIL", firstLine(r.Error)
			}
			row := cut(fmt.Sprintf("  %s %s  %s", mark, r.Endpoint, text), w)
			if !r.OK {
				row = stErr.Render(row)
			}
			lines = append(lines, row)
		}
	}
	if !p.at.IsZero() {
		lines = append(lines, stDim.Render(cut("checked "+ago(now.Sub(p.at)), w)))
	}
	lines = append(lines, "", stTitle.Render("At a glance"))
	lines = append(lines, countLines(c, p.configured, w)...)
	return block(lines, w, h)
}

func countLines(c overviewCounts, configured map[string]bool, w int) []string {
	var out []string
	if sourceOn(srcLocks, configured) {
		s := "locks       reading…"
		if c.locksKnown {
			s = fmt.Sprintf("locks       %d held of %d listed · %d waiting", c.held, c.locks, c.waiters)
		}
		out = append(out, cut(s, w))
	}
	if configured["kafka"] {
		s := "kafka       auditing…"
		if c.audit != nil {
			a := c.audit
			s = fmt.Sprintf("kafka       %d topics · %d brokers", c.topics, c.brokers)
			if c.brokersDown > 0 {
				s += fmt.Sprintf(" (%d DOWN)", c.brokersDown)
			}
			sev := fmt.Sprintf(" · findings: %d critical, %d error, %d warn, %d info", a.Critical, a.Error, a.Warn, a.Info)
			s += sev
			if a.Critical+a.Error > 0 {
				s = stErr.Render(cut(s, w))
			}
		}
		out = append(out, cut(s, w))
	}
	if configured["zookeeper"] {
		s := "zookeeper   asking the ensemble…"
		if c.zkVerdict != "" {
			s = "zookeeper   ensemble " + strings.ToUpper(c.zkVerdict)
			if c.zkLeader != "" {
				s += " · leader " + c.zkLeader
			}
		}
		out = append(out, cut(s, w))
	}
	return out
}
