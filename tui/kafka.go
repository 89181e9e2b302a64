package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/kafka"
)

// Kafka pane views.
const (
	kvTopics = iota
	kvPartitions
	kvFindings
	kvWhatIf
	kvGroups
)

// kafkaPane shows the audit by severity, the topics (filtered), a topic's partitions,
// the findings, the what-if of losing each broker, and consumer-group lag.
type kafkaPane struct {
	configured bool
	err        string
	data       *KafkaData
	at         time.Time

	mode   int
	sel    [5]int // the selection of each view
	filter string
	topic  string // the topic whose partitions are shown

	// derived on setData / setFilter (not on every frame)
	visible []int                     // indices of Topics that pass the filter
	worst   map[string]kafka.Severity // topic -> worst finding
	counts  map[string]int            // topic -> findings
}

func newKafkaPane(configured bool) *kafkaPane {
	return &kafkaPane{configured: configured}
}

func (p *kafkaPane) setData(d *KafkaData, at time.Time) {
	if d == nil {
		return
	}
	p.data, p.at = d, at
	p.worst, p.counts = map[string]kafka.Severity{}, map[string]int{}
	if d.Report != nil {
		for _, f := range d.Report.Findings {
			if f.Topic == "" || f.Baselined {
				continue
			}
			p.counts[f.Topic]++
			p.worst[f.Topic] = max(p.worst[f.Topic], f.Severity)
		}
	}
	p.refilter()
}

func (p *kafkaPane) setFilter(f string) {
	p.filter = f
	p.sel[kvTopics] = 0
	p.refilter()
}

func (p *kafkaPane) refilter() {
	p.visible = p.visible[:0]
	if p.data == nil {
		return
	}
	for i, t := range p.data.Topics {
		if matches(p.filter, t.Name) {
			p.visible = append(p.visible, i)
		}
	}
}

func (p *kafkaPane) rows() int {
	if p.data == nil {
		return 0
	}
	switch p.mode {
	case kvTopics:
		return len(p.visible)
	case kvPartitions:
		if t := p.findTopic(p.topic); t != nil {
			return len(t.Partitions)
		}
	case kvFindings:
		if p.data.Report != nil {
			return len(p.data.Report.Findings)
		}
	case kvWhatIf:
		if p.data.Report != nil {
			return len(p.data.Report.WhatIf)
		}
	case kvGroups:
		if p.data.Groups != nil {
			return len(p.data.Groups.Groups)
		}
	}
	return 0
}

func (p *kafkaPane) findTopic(name string) *kafka.Topic {
	if p.data == nil || p.data.Snapshot == nil {
		return nil
	}
	for i := range p.data.Snapshot.Topics {
		if p.data.Snapshot.Topics[i].Name == name {
			return &p.data.Snapshot.Topics[i]
		}
	}
	return nil
}

func (p *kafkaPane) action(a Action, _ *Model) tea.Cmd {
	switch a {
	case ActUp, ActDown, ActPageUp, ActPageDown, ActTop, ActBottom:
		p.sel[p.mode] = moveSel(a, p.sel[p.mode], p.rows(), 10)
	case ActEnter:
		if p.mode == kvTopics && len(p.visible) > 0 {
			p.topic = p.data.Topics[p.visible[clamp(p.sel[kvTopics], len(p.visible))]].Name
			p.mode, p.sel[kvPartitions] = kvPartitions, 0
		}
	case ActKafkaFindings:
		p.mode = kvFindings
	case ActKafkaWhatIf:
		p.mode = kvWhatIf
	case ActKafkaGroups:
		p.mode = kvGroups
	}
	return nil
}

// back returns to the topic list; false when already there.
func (p *kafkaPane) back() bool {
	if p.mode == kvTopics {
		return false
	}
	p.mode = kvTopics
	return true
}

func (p *kafkaPane) view(w, h int, now time.Time) string {
	if !p.configured {
		return block([]string{"Kafka is not configured.", "", "Set --brokers, DSCTL_KAFKA or the context's kafka.brokers, or run dsctl tui --sandbox."}, w, h)
	}
	if p.data == nil {
		msg := "reading the cluster and auditing it…"
		if p.err != "" {
			msg = "no data yet: " + p.err
		}
		return block([]string{msg}, w, h)
	}
	lines := []string{p.summaryLine(w)}
	if p.err != "" {
		lines = append(lines, stErr.Render(cut("STALE: shown as read "+ago(now.Sub(p.at))+"; Kafka does not answer now", w)))
	}
	body := h - len(lines) - 1
	switch p.mode {
	case kvTopics:
		lines = append(lines, p.topicLines(w, body)...)
	case kvPartitions:
		lines = append(lines, p.partitionLines(w, body)...)
	case kvFindings:
		lines = append(lines, p.findingLines(w, body)...)
	case kvWhatIf:
		lines = append(lines, p.whatIfLines(w, body)...)
	case kvGroups:
		lines = append(lines, p.groupLines(w, body)...)
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	hint := "enter partitions · f findings · w what-if · c consumer groups · / filter"
	if p.mode != kvTopics {
		hint = "esc back to topics · f findings · w what-if · c consumer groups"
	}
	lines = append(lines[:h-1], stDim.Render(cut(hint, w)))
	return block(lines, w, h)
}

func (p *kafkaPane) summaryLine(w int) string {
	d := p.data
	var s kafka.Summary
	if d.Report != nil {
		s = d.Report.Summary
	}
	down := 0
	for _, b := range d.Snapshot.Brokers {
		if !b.Reachable {
			down++
		}
	}
	sev := fmt.Sprintf("%d critical · %d error · %d warn · %d info", s.Critical, s.Error, s.Warn, s.Info)
	switch {
	case s.Critical > 0 || s.Error > 0:
		sev = stErr.Render(sev)
	case s.Warn > 0:
		sev = stWarn.Render(sev)
	default:
		sev = stOK.Render(sev)
	}
	brokers := fmt.Sprintf("%d brokers", len(d.Snapshot.Brokers))
	if down > 0 {
		brokers += stErr.Render(fmt.Sprintf(" (%d DOWN)", down))
	}
	return cut(fmt.Sprintf("audit: %s · %d topics · %s", sev, len(d.Topics), brokers), w)
}

func sevText(s kafka.Severity) string {
	if s == 0 {
		return "ok"
	}
	return s.String()
}

func sevStyle(s kafka.Severity, text string) string {
	switch {
	case s >= kafka.Error:
		return stErr.Render(text)
	case s == kafka.Warn:
		return stWarn.Render(text)
	}
	return text
}

func (p *kafkaPane) topicLines(w, h int) []string {
	nameW := max(w-2-6-4-5-6-7-5-6-2-14, 10)
	head := fit("topic", nameW) + fitLeft("parts", 6) + fitLeft("rf", 4) + fitLeft("min", 5) + fitLeft("under", 6) + fitLeft("at-min", 7) +
		fitLeft("<min", 5) + fitLeft("offln", 6) + "  " + "worst"
	out := []string{stHeader.Render(cut("  "+head, w))}
	if len(p.visible) == 0 {
		return append(out, stDim.Render("  no topic matches the filter"))
	}
	sel := clamp(p.sel[kvTopics], len(p.visible))
	start, end := window(len(p.visible), sel, 0, h-1)
	for i := start; i < end; i++ {
		t := &p.data.Topics[p.visible[i]]
		minISR := "-"
		if t.MinInsyncReplicas != nil {
			minISR = fmt.Sprint(*t.MinInsyncReplicas)
		}
		worst := p.worst[t.Name]
		verdict := sevText(worst)
		if n := p.counts[t.Name]; n > 0 {
			verdict = fmt.Sprintf("%s (%d)", verdict, n)
		}
		row := fit(t.Name, nameW) + fitLeft(fmt.Sprint(t.Partitions), 6) + fitLeft(fmt.Sprint(t.ReplicationFactor), 4) + fitLeft(minISR, 5) +
			fitLeft(fmt.Sprint(t.UnderReplicated), 6) + fitLeft(fmt.Sprint(t.AtMinISR), 7) + fitLeft(fmt.Sprint(t.UnderMinISR), 5) +
			fitLeft(fmt.Sprint(t.Offline), 6) + "  " + verdict
		if i != sel {
			row = sevStyle(worst, cut("  "+row, w))
			out = append(out, row)
			continue
		}
		out = append(out, selRow(row, true, w))
	}
	return out
}

func ids(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (p *kafkaPane) partitionLines(w, h int) []string {
	t := p.findTopic(p.topic)
	if t == nil {
		return []string{"topic " + p.topic + " is gone"}
	}
	out := []string{stTitle.Render(cut(fmt.Sprintf("%s: %d partitions, replication factor %d", t.Name, len(t.Partitions), t.ReplicationFactor()), w)),
		stHeader.Render(cut("  "+fit("part", 6)+fit("leader", 8)+fit("replicas", 16)+fit("isr", 16)+"state", w))}
	sel := clamp(p.sel[kvPartitions], len(t.Partitions))
	start, end := window(len(t.Partitions), sel, 0, h-2)
	for i := start; i < end; i++ {
		pt := t.Partitions[i]
		leader := fmt.Sprint(pt.Leader)
		if pt.Leader < 0 {
			leader = "none"
		}
		state := "ok"
		switch {
		case pt.Error != "":
			state = pt.Error
		case pt.Leader < 0:
			state = "OFFLINE (no leader)"
		case len(pt.ISR) < len(pt.Replicas):
			state = fmt.Sprintf("UNDER-REPLICATED (%d of %d in sync)", len(pt.ISR), len(pt.Replicas))
		}
		out = append(out, selRow(fit(fmt.Sprint(pt.ID), 6)+fit(leader, 8)+fit(ids(pt.Replicas), 16)+fit(ids(pt.ISR), 16)+state, i == sel, w))
	}
	return out
}

func (p *kafkaPane) findingLines(w, h int) []string {
	r := p.data.Report
	if r == nil || len(r.Findings) == 0 {
		return []string{stOK.Render("no findings: every audited topic and broker meets the policy")}
	}
	out := []string{stHeader.Render(cut("  "+fit("severity", 10)+fit("rule", 26)+fit("where", 24)+"observed", w))}
	sel := clamp(p.sel[kvFindings], len(r.Findings))
	start, end := window(len(r.Findings), sel, 0, h-4)
	for i := start; i < end; i++ {
		f := r.Findings[i]
		where := f.Scope()
		if f.Partition != nil {
			where += fmt.Sprintf("-%d", *f.Partition)
		}
		row := fit(f.Severity.String(), 10) + fit(f.Rule, 26) + fit(where, 24) + f.Observed
		if i == sel {
			out = append(out, selRow(row, true, w))
		} else {
			out = append(out, sevStyle(f.Severity, cut("  "+row, w)))
		}
	}
	f := r.Findings[sel]
	out = append(out, "", cut("why: "+f.Why, w), cut("fix: "+f.Fix, w))
	return out
}

func (p *kafkaPane) whatIfLines(w, h int) []string {
	r := p.data.Report
	out := []string{stTitle.Render(cut("if this broker were lost:", w)),
		stHeader.Render(cut("  "+fit("broker", 24)+fitLeft("acks=all blocked", 17)+fitLeft("offline", 9)+"  first partitions hit", w))}
	if r == nil || len(r.WhatIf) == 0 {
		return append(out, stOK.Render("  losing any single broker blocks no acks=all write and takes no partition offline"))
	}
	wi := append([]kafka.WhatIf(nil), r.WhatIf...)
	sort.SliceStable(wi, func(i, j int) bool { return wi[i].Broker < wi[j].Broker })
	sel := clamp(p.sel[kvWhatIf], len(wi))
	start, end := window(len(wi), sel, 0, h-2)
	for i := start; i < end; i++ {
		x := wi[i]
		name := fmt.Sprintf("broker %d", x.Broker)
		if b := p.data.Snapshot.Broker(x.Broker); b != nil {
			name += " " + b.Addr
		}
		hit := append(append([]string(nil), x.GoesOffline...), x.BlocksAcksAll...)
		row := fit(name, 24) + fitLeft(fmt.Sprint(len(x.BlocksAcksAll)), 17) + fitLeft(fmt.Sprint(len(x.GoesOffline)), 9) + "  " + strings.Join(hit[:min(len(hit), 6)], " ")
		if len(x.GoesOffline) > 0 && i != sel {
			out = append(out, stErr.Render(cut("  "+row, w)))
			continue
		}
		out = append(out, selRow(row, i == sel, w))
	}
	return out
}

func (p *kafkaPane) groupLines(w, h int) []string {
	g := p.data.Groups
	if g == nil {
		msg := "consumer groups: not read yet"
		if p.data.GroupsErr != "" {
			msg = "consumer groups could not be read: " + p.data.GroupsErr
		}
		return []string{stErr.Render(cut(msg, w))}
	}
	out := []string{stHeader.Render(cut("  "+fit("group", 24)+fit("state", 13)+fitLeft("members", 8)+fitLeft("total lag", 12)+fitLeft("max lag", 10)+fitLeft("stuck", 7), w))}
	if len(g.Groups) == 0 {
		return append(out, stDim.Render("  no consumer groups"))
	}
	sel := clamp(p.sel[kvGroups], len(g.Groups))
	start, end := window(len(g.Groups), sel, 0, h-1)
	for i := start; i < end; i++ {
		x := g.Groups[i]
		state := x.State
		if x.Error != "" {
			state = "error: " + x.Error
		}
		row := fit(x.Group, 24) + fit(state, 13) + fitLeft(fmt.Sprint(len(x.Members)), 8) + fitLeft(commas(x.TotalLag), 12) +
			fitLeft(commas(x.MaxLag), 10) + fitLeft(fmt.Sprint(x.Stuck), 7)
		out = append(out, selRow(row, i == sel, w))
	}
	return out
}
