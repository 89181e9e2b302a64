package zk

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
)

// Rendering is how node data is shown.
type Rendering string

// Renderings. Auto picks JSON when the data parses as JSON, text when it is printable
// UTF-8, hex otherwise.
const (
	RenderAuto Rendering = "auto"
	RenderText Rendering = "text"
	RenderHex  Rendering = "hex"
	RenderJSON Rendering = "json"
)

// ParseRendering checks a --as value.
func ParseRendering(s string) (Rendering, error) {
	switch r := Rendering(strings.ToLower(strings.TrimSpace(s))); r {
	case "", RenderAuto:
		return RenderAuto, nil
	case RenderText, RenderHex, RenderJSON:
		return r, nil
	}
	return "", errs.Usage("unknown rendering %q", s).WithHint("use --as auto|text|hex|json")
}

// Render shows data in the chosen rendering and says which one was used. Text that is
// not valid UTF-8 is an error for RenderText (use hex); data that is not JSON is an
// error for RenderJSON.
func Render(data []byte, r Rendering) (string, Rendering, error) {
	switch r {
	case RenderText:
		if !utf8.Valid(data) {
			return "", r, errs.Usage("zookeeper: the data is not valid UTF-8 text").WithHint("use --as hex")
		}
		return string(data), r, nil
	case RenderHex:
		return HexDump(data), r, nil
	case RenderJSON:
		out, err := prettyJSON(data)
		if err != nil {
			return "", r, errs.Usage("zookeeper: the data is not JSON: %v", err).WithHint("use --as text or --as hex")
		}
		return out, r, nil
	}
	if len(bytes.TrimSpace(data)) > 0 && (data[0] == '{' || data[0] == '[') {
		if out, err := prettyJSON(data); err == nil {
			return out, RenderJSON, nil
		}
	}
	if Printable(data) {
		return string(data), RenderText, nil
	}
	return HexDump(data), RenderHex, nil
}

func prettyJSON(data []byte) (string, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Printable reports whether data is UTF-8 text without control characters other than
// tab, newline and carriage return.
func Printable(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	for _, r := range string(data) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// HexDump is a `hexdump -C`-style dump: offset, 16 bytes in hex, printable ASCII.
func HexDump(data []byte) string {
	var b strings.Builder
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		fmt.Fprintf(&b, "%08x  ", off)
		for i := 0; i < 16; i++ {
			if i < len(line) {
				b.WriteString(hex.EncodeToString(line[i : i+1]))
				b.WriteByte(' ')
			} else {
				b.WriteString("   ")
			}
			if i == 7 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(" |")
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteString("|\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
