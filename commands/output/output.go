// Package output is dsctl's one printer: a command hands it a typed value and it renders
// that value as an aligned table (colour for severity on a TTY only), JSON, YAML, JSON
// lines, CSV or shell env lines. JSON keys come from the value's json tags (snake_case).
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/dsctl/dsctl/probes/errs"
)

// Format is an output format chosen with -o.
type Format string

// The formats. Each command declares which it supports.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
	JSONL Format = "jsonl"
	CSV   Format = "csv"
	Env   Format = "env"
)

// Standard is the set every data command supports.
var Standard = []Format{Table, JSON, YAML}

// Streaming is the set for commands that emit a stream of records.
var Streaming = []Format{Table, JSON, YAML, JSONL}

// ParseFormat checks f against the formats a command supports.
func ParseFormat(f string, supported []Format) (Format, error) {
	want := Format(strings.ToLower(strings.TrimSpace(f)))
	if want == "" {
		return Table, nil
	}
	if slices.Contains(supported, want) {
		return want, nil
	}
	names := make([]string, len(supported))
	for i, s := range supported {
		names[i] = string(s)
	}
	return "", errs.Usage("unsupported output format %q", f).WithHint("this command supports -o %s", strings.Join(names, "|"))
}

// Printer renders values to one writer.
type Printer struct {
	Format Format
	Out    io.Writer
	// Color enables ANSI colour in tables (only when stdout is a TTY and colour is not disabled).
	Color bool
	// Width is the terminal's width for tables (0: not a terminal, no wrapping).
	Width int
}

// Tabler is a value that knows its table form. Values that are not Tablers print
// in table format as YAML (readable key: value lines).
type Tabler interface {
	Table() *TableData
}

// EnvLiner is a value that can print itself as shell assignments (-o env).
type EnvLiner interface {
	EnvLines() [][2]string
}

// Print renders one value.
func (p *Printer) Print(v any) error {
	switch p.Format {
	case JSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.Out, "%s\n", b)
		return err
	case JSONL:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.Out, "%s\n", b)
		return err
	case YAML:
		b, err := ToYAML(v)
		if err != nil {
			return err
		}
		_, err = p.Out.Write(b)
		return err
	case Env:
		el, ok := v.(EnvLiner)
		if !ok {
			return errs.Usage("-o env is not available for this output")
		}
		for _, kv := range el.EnvLines() {
			if _, err := fmt.Fprintf(p.Out, "export %s=%s\n", kv[0], ShellQuote(kv[1])); err != nil {
				return err
			}
		}
		return nil
	case CSV:
		t, ok := v.(Tabler)
		if !ok {
			return errs.Usage("-o csv is not available for this output")
		}
		return t.Table().WriteCSV(p.Out)
	default:
		if t, ok := v.(Tabler); ok {
			td := t.Table()
			if td.Width == 0 {
				td.Width = p.Width
			}
			return td.Render(p.Out, p.Color)
		}
		b, err := ToYAML(v)
		if err != nil {
			return err
		}
		_, err = p.Out.Write(b)
		return err
	}
}

// ToYAML renders v as YAML with the same keys, in the same order, as its JSON form.
func ToYAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return JSONToYAML(j)
}

// JSONToYAML converts JSON text to YAML, keeping key order.
func JSONToYAML(j []byte) ([]byte, error) {
	var ordered any
	dec := yaml.NewDecoder(bytes.NewReader(j), yaml.UseOrderedMap())
	if err := dec.Decode(&ordered); err != nil {
		return nil, err
	}
	return yaml.MarshalWithOptions(ordered, yaml.Indent(2), yaml.IndentSequence(true))
}

// ShellQuote quotes s for POSIX shells.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
