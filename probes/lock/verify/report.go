package verify

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// ReportMeta describes the run for the HTML report's header.
type ReportMeta struct {
	Title   string
	Command string
	Workers int
}

// WriteHTML writes a self-contained HTML page: the verdicts, a zoomed timeline of the
// worst overlap (when there is one) and the whole run's timeline, one lane of lease
// bars per worker, overlaps in red, faults and pauses marked, so a person can see
// who believed they held the lock when.
func WriteHTML(w io.Writer, rep *Report, events []Event, m ReportMeta) error {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>` + esc(m.Title) + `</title>
<style>body{font:13px system-ui,sans-serif;margin:16px}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}
.ok{color:#1a7f37}.violated{color:#cf222e;font-weight:bold}.not_checked,.unknown{color:#9a6700}.scroll{overflow-x:auto;border:1px solid #ccc}
svg text{font:11px monospace}</style></head><body>`)
	verdict := `<span class="ok">SAFE</span>`
	if !rep.Safe {
		verdict = fmt.Sprintf(`<span class="violated">UNSAFE: %d violations</span>`, rep.Violations)
	}
	fmt.Fprintf(&b, "<h2>%s: %s</h2>\n", esc(m.Title), verdict)
	if m.Command != "" {
		fmt.Fprintf(&b, "<p><code>%s</code></p>\n", esc(m.Command))
	}
	b.WriteString("<table><tr><th>property</th><th>verdict</th><th>violations</th><th>checked</th><th>detail</th></tr>\n")
	for _, p := range rep.Properties {
		fmt.Fprintf(&b, `<tr><td>%s</td><td class="%s">%s</td><td>%d</td><td>%d</td><td>%s</td></tr>`+"\n",
			esc(p.Name), esc(p.Verdict), esc(p.Verdict), p.Violations, p.Checked, esc(p.Detail))
	}
	b.WriteString("</table>\n")
	b.WriteString(`<p>Bars: the interval each worker believed it held the lock (acquire answered → release sent or local deadline), labelled with the fencing token;
grey tail: release in flight; red band: two holders at once; ▼ network fault on that worker's link; hatched: pause; ✕ write refused by fence; ! late write accepted.</p>`)
	if ov := rep.WorstOverlap; ov != nil {
		pad := max((ov.ToUs-ov.FromUs)*3, 20000)
		fmt.Fprintf(&b, "<h3>Worst overlap: %.1fms, worker %d and worker %d</h3>\n", ov.DurationMs, ov.A.Worker, ov.B.Worker)
		lanes(&b, rep, events, m.Workers, min(ov.A.FromUs, ov.B.FromUs)-pad, max(ov.A.ToUs, ov.B.ToUs)+pad, 1400)
		b.WriteString("<pre>")
		for _, e := range ov.Timeline {
			b.WriteString(esc(EventLine(e)) + "\n")
		}
		b.WriteString("</pre>")
	}
	b.WriteString("<h3>Whole run</h3><div class=\"scroll\">")
	width := int(min(max(rep.DurationUs/500, 1400), 120000)) // 2px per ms, bounded
	lanes(&b, rep, events, m.Workers, 0, rep.DurationUs+1000, width)
	b.WriteString("</div></body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func lanes(b *strings.Builder, rep *Report, events []Event, workers int, from, to int64, width int) {
	const laneH, top, left = 22, 20, 70
	for _, h := range rep.Holdings {
		workers = max(workers, h.Worker+1)
	}
	height := top + workers*laneH + 10
	span := float64(max(to-from, 1))
	x := func(us int64) float64 { return left + float64(us-from)/span*float64(width-left-10) }
	inView := func(a, z int64) bool { return z >= from && a <= to }
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">`, width, height)
	b.WriteString(`<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="4" fill="#8250df"/></pattern></defs>`)
	// time axis: about 10 ticks
	step := niceStep((to - from) / 10)
	for t := (from/step + 1) * step; t < to; t += step {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="12" fill="#666">%s</text>`,
			x(t), top, x(t), height, x(t)+2, usText(t))
	}
	for w := 0; w < workers; w++ {
		fmt.Fprintf(b, `<text x="2" y="%d">worker %d</text>`, top+w*laneH+15, w)
	}
	for _, h := range rep.Holdings {
		y := top + h.Worker*laneH + 3
		end := max(h.EndUs, h.OKUs)
		if h.RelReturnUs > end && inView(end, h.RelReturnUs) {
			fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="16" fill="#d0d7de"/>`, x(end), y, max(x(h.RelReturnUs)-x(end), 0.5))
		}
		if !inView(h.OKUs, end) {
			continue
		}
		fill := "#54aeff"
		if h.Overran {
			fill = "#fb8f44"
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="16" fill="%s"><title>worker %d lease %d fence %s: %s → %s (%s)</title></rect>`,
			x(h.OKUs), y, max(x(end)-x(h.OKUs), 0.5), fill, h.Worker, h.N, h.Fence, usText(h.OKUs), usText(end), h.Ended)
		if h.Fence != 0 && x(end)-x(h.OKUs) > 30 {
			fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`, x(h.OKUs)+2, y+12, h.Fence)
		}
	}
	for _, ov := range rep.Overlaps {
		if inView(ov.FromUs, ov.ToUs) {
			fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#cf222e" opacity="0.35"><title>overlap %.1fms: worker %d and %d</title></rect>`,
				x(ov.FromUs), top, max(x(ov.ToUs)-x(ov.FromUs), 1.5), workers*laneH, ov.DurationMs, ov.A.Worker, ov.B.Worker)
		}
	}
	pauseStart := map[int]int64{}
	for _, e := range events {
		y := top + e.Worker*laneH
		switch {
		case e.Op == OpFault && e.Type == TypeStart && inView(e.TUs, e.TUs):
			fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="#9a6700">▼<title>%s</title></text>`, x(e.TUs)-4, y+9, html.EscapeString(e.Detail))
		case e.Op == OpPause && e.Type == TypeStart:
			pauseStart[e.Worker] = e.TUs
		case e.Op == OpPause && e.Type == TypeEnd:
			if s, ok := pauseStart[e.Worker]; ok && inView(s, e.TUs) {
				fmt.Fprintf(b, `<rect x="%.1f" y="%d" width="%.1f" height="6" fill="url(#hatch)"><title>pause %s</title></rect>`,
					x(s), y+17, max(x(e.TUs)-x(s), 1), usText(e.TUs-s))
			}
			delete(pauseStart, e.Worker)
		case e.Op == OpWrite && e.Type == TypeFail && inView(e.TUs, e.TUs):
			fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="#1a7f37">✕<title>%s</title></text>`, x(e.TUs)-4, y+15, html.EscapeString(e.Detail))
		case e.Op == OpWrite && e.Late && inView(e.TUs, e.TUs):
			fmt.Fprintf(b, `<text x="%.1f" y="%d" fill="#cf222e">!<title>late write accepted</title></text>`, x(e.TUs)-2, y+15)
		}
	}
	b.WriteString("</svg>\n")
}

func niceStep(us int64) int64 {
	for _, s := range []int64{1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6, 2e6, 5e6, 1e7, 3e7, 6e7, 3e8} {
		if us <= s {
			return s
		}
	}
	return 6e8
}

// EventLine renders one event for people: time, worker, op, type and details.
func EventLine(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%10s  w%-2d %-8s %-7s", usText(e.TUs), e.Worker, e.Op, e.Type)
	if e.Holding != 0 {
		fmt.Fprintf(&b, " lease %d", e.Holding)
	}
	if e.Fence != 0 {
		fmt.Fprintf(&b, " fence %s", e.Fence)
	}
	if e.ExpiresUs != 0 {
		fmt.Fprintf(&b, " deadline %s", usText(e.ExpiresUs))
	}
	if e.Late {
		b.WriteString(" LATE")
	}
	if e.Detail != "" {
		b.WriteString(" " + e.Detail)
	}
	if e.Error != "" {
		b.WriteString(" error: " + e.Error)
	}
	return b.String()
}
