package tui

import (
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/sortid"
	"github.com/dsctl/dsctl/probes/uuidinfo"
)

// idsPane decodes a pasted ID: a UUID, a ULID or KSUID, or a 64-bit number read under
// every snowflake layout, most plausible first.
type idsPane struct {
	input   lineInput
	editing bool
	sel     int
	// decoded state (set by decode, read by view)
	kind   string // "uuid", "ulid", "ksuid", "snowflake", ""
	uuid   *uuidinfo.Info
	sortid *sortid.Info
	ranked []snowflake.Candidate
	err    string
}

func newIDsPane() *idsPane {
	return &idsPane{editing: true, input: lineInput{limit: 200}}
}

func (p *idsPane) key(msg tea.KeyMsg, now time.Time) tea.Cmd {
	switch msg.Type {
	case tea.KeyEnter:
		p.decode(now)
		p.editing = false
	case tea.KeyEsc:
		p.editing = false
	default:
		if p.input.key(msg) && msg.Paste {
			p.decode(now) // a paste decodes at once
		}
	}
	return nil
}

func (p *idsPane) action(a Action, now time.Time) tea.Cmd {
	switch a {
	case ActIDEdit:
		p.editing = true
	case ActIDClear:
		p.input.set("")
		p.editing = true
		p.decode(now)
	case ActUp, ActDown, ActPageUp, ActPageDown, ActTop, ActBottom:
		p.sel = moveSel(a, p.sel, len(p.ranked), 5)
	}
	return nil
}

// decode reads the input the way `dsctl id decode` does: ULID/KSUID by form, then
// UUID by form, else a number under every layout.
func (p *idsPane) decode(now time.Time) {
	s := strings.TrimSpace(p.input.String())
	p.kind, p.uuid, p.sortid, p.ranked, p.err, p.sel = "", nil, nil, nil, "", 0
	switch {
	case s == "":
	case sortid.Detect(s) != "":
		info, err := sortid.Decode(s, "", now)
		if err != nil {
			p.err = err.Error()
			return
		}
		p.kind, p.sortid = info.Kind, &info
	case uuidinfo.LooksLikeUUID(s):
		info, err := uuidinfo.Decode(s, now)
		if err != nil {
			p.err = err.Error()
			return
		}
		p.kind, p.uuid = "uuid", &info
	default:
		id, err := snowflake.ParseID(s)
		if err != nil {
			p.err = err.Error()
			return
		}
		p.kind, p.ranked = "snowflake", snowflake.Rank(id, now, nil)
	}
}

func (p *idsPane) view(w, h int) string {
	prompt := "ID: " + p.input.view(p.editing)
	if !p.editing {
		prompt += stDim.Render("   (enter or i to edit, x to clear)")
	}
	lines := []string{cut(prompt, w), ""}
	switch {
	case p.err != "":
		lines = append(lines, stErr.Render(cut("cannot decode: "+firstLine(p.err), w)))
	case p.kind == "":
		lines = append(lines,
			"Type or paste a snowflake ID (a 64-bit number), a UUID, a ULID or a KSUID,",
			"then press enter: it is decoded under every known layout, most plausible first.",
			"",
			stDim.Render("e.g. 1541815603606036480 · 017f22e2-79b0-7cc3-98c4-dc0c0c07398f · 01ARZ3NDEKTSV4RRFFQ69G5FAV"))
	case p.uuid != nil:
		lines = append(lines, uuidLines(p.uuid)...)
	case p.sortid != nil:
		s := p.sortid
		lines = append(lines,
			stTitle.Render(strings.ToUpper(s.Kind))+"  "+s.ID,
			"time      "+s.Timestamp+"  ("+s.Age+", "+s.TimePrecision+")",
			"random    "+s.Random)
		for _, wn := range s.Warnings {
			lines = append(lines, stWarn.Render("warning   "+wn.Message))
		}
	default:
		lines = append(lines, p.rankedLines(w, h-len(lines))...)
	}
	return block(lines, w, h)
}

func uuidLines(u *uuidinfo.Info) []string {
	out := []string{
		stTitle.Render("UUID") + "  " + u.UUID,
		fmt.Sprintf("version   %d, %s", u.Version, u.VersionName),
		"variant   " + u.Variant,
	}
	if u.Special != "" {
		out = append(out, "special   the "+u.Special+" UUID")
	}
	if u.Timestamp != "" {
		out = append(out, "time      "+u.Timestamp+"  ("+u.TimePrecision+")")
	}
	if u.ClockSequence != nil {
		out = append(out, fmt.Sprintf("clock seq %d", *u.ClockSequence))
	}
	if u.Node != "" {
		n := "node      " + u.Node
		if u.NodeIsMAC != nil && *u.NodeIsMAC {
			n += "  (a MAC address: this UUID reveals the host)"
		}
		out = append(out, n)
	}
	for _, n := range u.Notes {
		out = append(out, "note      "+n)
	}
	for _, wn := range u.Warnings {
		out = append(out, stWarn.Render("warning   "+wn.Message))
	}
	return out
}

// rankedLines is the table of every layout's reading, most plausible first; the
// selected one's fields and reasons below it.
func (p *idsPane) rankedLines(w, h int) []string {
	out := []string{stHeader.Render(cut("  "+fit("#", 3)+fit("layout", 14)+fitLeft("score", 6)+"  "+fit("plausible", 10)+fit("time (UTC)", 25)+"fields", w))}
	detail := 4
	rows := max(h-1-detail, 1)
	start, end := window(len(p.ranked), p.sel, 0, rows)
	for i := start; i < end; i++ {
		c := p.ranked[i]
		plaus := "yes"
		if !c.Plausible {
			plaus = "no"
		}
		var fs []string
		for _, f := range c.Fields {
			fs = append(fs, fmt.Sprintf("%s=%d", f.Name, f.Value))
		}
		row := fit(fmt.Sprint(i+1), 3) + fit(c.Name, 14) + fitLeft(fmt.Sprintf("%.2f", c.Score), 6) + "  " + fit(plaus, 10) +
			fit(c.Timestamp.String(), 25) + strings.Join(fs, " ")
		if !c.Plausible && i != p.sel {
			row = stDim.Render(row)
		}
		out = append(out, selRow(row, i == p.sel, w))
	}
	if len(p.ranked) > 0 {
		c := p.ranked[p.sel]
		out = append(out, "")
		why := "why: " + strings.Join(c.Reasons, "; ")
		if len(c.Reasons) == 0 {
			why = "why: time and field sizes look like a real deployment's"
		}
		out = append(out, cut(fmt.Sprintf("%s: %s", c.Name, c.Layout.Note()), w), cut(why, w))
		if len(c.Warnings) > 0 {
			out = append(out, stWarn.Render(cut("warnings: "+strings.Join(c.Warnings, ", "), w)))
		}
	}
	return out
}
