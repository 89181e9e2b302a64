package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

type sample struct {
	ZetaField string `json:"zeta_field"`
	AlphaID   uint64 `json:"alpha_id,string"`
	Severity  string `json:"severity"`
}

func (s sample) Table() *TableData {
	t := &TableData{Header: []string{"zeta", "id", "severity"}, RightAlign: map[int]bool{1: true}}
	st := Plain
	if s.Severity == "error" {
		st = Error
	}
	t.AddCells(C(s.ZetaField), C(formatID(s.AlphaID)), S(s.Severity, st))
	return t
}

func (s sample) Row() []Cell { return s.Table().Rows[0] }

func (s sample) EnvLines() [][2]string { return [][2]string{{"ZETA", s.ZetaField}} }

func formatID(v uint64) string { b, _ := json.Marshal(v); return string(b) }

var v = sample{ZetaField: "it's", AlphaID: 9007199254740993, Severity: "error"}

func render(t *testing.T, f Format, color bool, val any) string {
	t.Helper()
	var b bytes.Buffer
	p := &Printer{Format: f, Out: &b, Color: color}
	if err := p.Print(val); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return b.String()
}

func TestFormats(t *testing.T) {
	js := render(t, JSON, false, v)
	if !strings.Contains(js, `"alpha_id": "9007199254740993"`) {
		t.Fatalf("json: 64-bit id not a string:\n%s", js)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(js), &back); err != nil || back["zeta_field"] != "it's" {
		t.Fatalf("json does not round trip: %v %v", back, err)
	}
	if got := render(t, JSONL, false, v); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "{") {
		t.Fatalf("jsonl: %q", got)
	}
	y := render(t, YAML, false, v)
	// YAML keeps JSON's key order (zeta before alpha) and JSON's key names.
	if zi, ai := strings.Index(y, "zeta_field"), strings.Index(y, "alpha_id"); zi < 0 || ai < zi {
		t.Fatalf("yaml keys out of order or missing:\n%s", y)
	}
	if !strings.Contains(y, `"9007199254740993"`) && !strings.Contains(y, `'9007199254740993'`) {
		t.Fatalf("yaml: id must stay a string:\n%s", y)
	}
	tab := render(t, Table, false, v)
	lines := strings.Split(strings.TrimRight(tab, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ZETA") || strings.Contains(tab, "\x1b[") {
		t.Fatalf("table:\n%s", tab)
	}
	if strings.Index(lines[0], "ID")+2 != strings.Index(lines[1], "3")+1 {
		t.Fatalf("numeric column not right-aligned:\n%s", tab)
	}
	if colored := render(t, Table, true, v); !strings.Contains(colored, "\x1b[31merror\x1b[0m") {
		t.Fatalf("severity not coloured on a TTY:\n%q", colored)
	}
	if csv := render(t, CSV, false, v); csv != "zeta,id,severity\nit's,9007199254740993,error\n" {
		t.Fatalf("csv: %q", csv)
	}
	if env := render(t, Env, false, v); env != "export ZETA='it'\\''s'\n" {
		t.Fatalf("env: %q", env)
	}
}

func TestNonTablerTablePrintsYAML(t *testing.T) {
	got := render(t, Table, false, map[string]int{"b": 2})
	if got != "b: 2\n" {
		t.Fatalf("got %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("", Standard); err != nil || f != Table {
		t.Fatalf("default: %v %v", f, err)
	}
	if f, err := ParseFormat("JSON", Standard); err != nil || f != JSON {
		t.Fatalf("JSON: %v %v", f, err)
	}
	_, err := ParseFormat("jsonl", Standard)
	if err == nil || !strings.Contains(err.Error(), "table|json|yaml") {
		t.Fatalf("unsupported: %v", err)
	}
}

func TestStream(t *testing.T) {
	var b bytes.Buffer
	p := &Printer{Format: JSON, Out: &b}
	s := p.NewStream(nil, nil)
	s.Write(v)
	s.Write(v)
	s.Close()
	var arr []sample
	if err := json.Unmarshal(b.Bytes(), &arr); err != nil || len(arr) != 2 {
		t.Fatalf("json stream is not an array of 2: %v\n%s", err, b.String())
	}
	b.Reset()
	p.NewStream(nil, nil).Close()
	if strings.TrimSpace(b.String()) != "[]" {
		t.Fatalf("empty json stream: %q", b.String())
	}
	b.Reset()
	p.Format = Table
	s = p.NewStream([]string{"zeta", "id", "severity"}, nil)
	s.Write(v)
	s.Write(sample{ZetaField: "x", AlphaID: 1, Severity: "ok"})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ZETA") {
		t.Fatalf("table stream, want header + 2 rows:\n%s", b.String())
	}
	// Columns stay aligned: the second row's second column starts where the first's does.
	if strings.Index(lines[1], "  9007") != strings.Index(lines[2], "  1") {
		t.Fatalf("stream rows not aligned:\n%s", b.String())
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "": "''", "a b": "'a b'", "127.0.0.1:6379,x": "127.0.0.1:6379,x", "$(x)": "'$(x)'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
