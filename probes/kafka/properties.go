package kafka

import (
	"fmt"
	"os"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// Property is one key=value of a Java .properties file, with the line it starts on.
type Property struct {
	Key   string
	Value string
	Line  int
}

// Properties are a parsed file: the last value of each key wins, as in Java.
type Properties struct {
	File  string
	ByKey map[string]Property
	// Order lists the keys in the order they first appeared.
	Order []string
}

// Get returns the property and whether it is set.
func (p *Properties) Get(key string) (Property, bool) {
	v, ok := p.ByKey[key]
	return v, ok
}

// LoadProperties reads a .properties file.
func LoadProperties(path string) (*Properties, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Usage("cannot read %s: %v", path, rootErr(err))
	}
	return ParseProperties(path, b)
}

// ParseProperties parses the java.util.Properties text format: `key=value`, `key: value`
// or `key value`; comments start with # or !; a line ending in an odd number of
// backslashes continues on the next line (its leading blanks dropped); escapes \t \n
// \r \f \uXXXX and \<any>. A malformed \u escape is an error naming the file and line,
// as Java's Properties.load refuses it too.
func ParseProperties(file string, data []byte) (*Properties, error) {
	p := &Properties{File: file, ByKey: map[string]Property{}}
	lines := splitLines(string(data))
	for i := 0; i < len(lines); i++ {
		startLine := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		logical := line
		for endsWithContinuation(logical) && i+1 < len(lines) {
			logical = logical[:len(logical)-1]
			i++
			logical += strings.TrimLeft(lines[i], " \t\f")
		}
		if endsWithContinuation(logical) { // continuation at end of file: Java drops the backslash
			logical = logical[:len(logical)-1]
		}
		rawKey, rawValue := splitKeyValue(logical)
		key, err := unescape(rawKey)
		if err != nil {
			return nil, propErr(file, startLine, "key: %v", err)
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, propErr(file, startLine, "value of %s: %v", key, err)
		}
		if _, seen := p.ByKey[key]; !seen {
			p.Order = append(p.Order, key)
		}
		p.ByKey[key] = Property{Key: key, Value: value, Line: startLine}
	}
	return p, nil
}

func propErr(file string, line int, format string, args ...any) error {
	return errs.Usage("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}

// splitLines splits on \n, \r\n and \r, like Java's LineReader.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

func endsWithContinuation(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits at the first unescaped '=', ':' or blank; blanks around the
// separator and one '=' or ':' after blanks are dropped.
func splitKeyValue(s string) (string, string) {
	end := len(s)
	sepIsBlank := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' {
			end = i
			break
		}
		if c == ' ' || c == '\t' || c == '\f' {
			end, sepIsBlank = i, true
			break
		}
	}
	key := s[:end]
	if end == len(s) {
		return key, ""
	}
	rest := s[end+1:]
	rest = strings.TrimLeft(rest, " \t\f")
	if sepIsBlank && rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uXXXX escape %q (needs 4 hex digits)`, s[i-1:])
			}
			var r rune
			for _, h := range s[i+1 : i+5] {
				var d rune
				switch {
				case h >= '0' && h <= '9':
					d = h - '0'
				case h >= 'a' && h <= 'f':
					d = h - 'a' + 10
				case h >= 'A' && h <= 'F':
					d = h - 'A' + 10
				default:
					return "", fmt.Errorf(`malformed \uXXXX escape %q (needs 4 hex digits)`, s[i-1:i+5])
				}
				r = r<<4 | d
			}
			b.WriteRune(r)
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
