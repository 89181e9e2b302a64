package output

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
)

type wideView struct{ detail string }

func (v wideView) Table() *TableData {
	t := &TableData{Header: []string{"scope", "severity", "detail"}}
	t.AddCells(C("topic orders"), S("error", Error), C(v.detail))
	t.AddCells(C(""), C(""), S("why: "+v.detail, Dim))
	t.Notes = []Cell{S("note: "+v.detail, Dim)}
	return t
}

// On an 80-column terminal, long detail text wraps under its column; every word stays.
func TestTableWrapsLastColumnToWidth(t *testing.T) {
	detail := strings.Repeat("min.insync.replicas=1 with replication.factor=3 lets one broker acknowledge alone; ", 3)
	for _, color := range []bool{false, true} {
		var b bytes.Buffer
		p := &Printer{Format: Table, Out: &b, Width: 80, Color: color}
		if err := p.Print(wideView{detail}); err != nil {
			t.Fatal(err)
		}
		plain := stripANSI(b.String())
		for _, line := range strings.Split(strings.TrimRight(plain, "\n"), "\n") {
			if w := runewidth.StringWidth(line); w > 80 {
				t.Errorf("color=%v: line of %d columns:\n%s", color, w, line)
			}
		}
		if got := strings.Count(strings.Join(strings.Fields(plain), " "), strings.TrimSpace(strings.Fields(detail)[0])); got < 9 {
			t.Errorf("words lost:\n%s", plain)
		}
	}
	// No width (a pipe): one line per row.
	var b bytes.Buffer
	_ = (&Printer{Format: Table, Out: &b}).Print(wideView{detail})
	if n := strings.Count(b.String(), "\n"); n != 4 {
		t.Errorf("unwrapped table has %d lines:\n%s", n, b.String())
	}
	// JSON does not change with the width.
	var j0, j80 bytes.Buffer
	_ = (&Printer{Format: JSON, Out: &j0}).Print(map[string]string{"detail": detail})
	_ = (&Printer{Format: JSON, Out: &j80, Width: 80}).Print(map[string]string{"detail": detail})
	if j0.String() != j80.String() {
		t.Error("JSON changed with the terminal width")
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
