package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/goccy/go-yaml/token"
)

// AppendYAMLListItem appends the JSON value j as one item of a top-level YAML list, laid
// out as ToYAML lays out a list ("  - key: v", then "    key: v"), ending in a newline.
// It converts the JSON text directly, without building a document, so streams of
// records (id decode of millions of lines) print YAML as fast as JSON. Strings are quoted
// exactly when ToYAML quotes them; keys keep the JSON order.
func AppendYAMLListItem(dst, j []byte) ([]byte, error) {
	var q YAMLQuoter
	return q.AppendListItem(dst, j)
}

// YAMLQuoter is AppendYAMLListItem for a stream of records: it remembers which strings
// need quotes (layout names, ages and keys repeat from record to record, and the YAML
// library's check is slow). The zero value is ready to use; not safe for concurrent use.
type YAMLQuoter struct {
	seen map[string]bool
}

// AppendListItem is AppendYAMLListItem.
func (q *YAMLQuoter) AppendListItem(dst, j []byte) ([]byte, error) {
	c := yamlConv{src: j, q: q}
	c.skipSpace()
	dst, err := c.item(dst, 2)
	if err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(c.src) {
		return dst, errYAMLInput
	}
	return dst, nil
}

var errYAMLInput = errors.New("output: invalid JSON for YAML conversion")

type yamlConv struct {
	src []byte
	pos int
	q   *YAMLQuoter
}

// maxQuoteMemo bounds the memo; a stream of ever-new strings just starts it over.
const maxQuoteMemo = 4096

// needQuotes is token.IsNeedQuoted (the check ToYAML's encoder makes), with shortcuts
// for the common shapes and a memo for the rest.
func (q *YAMLQuoter) needQuotes(s []byte) bool {
	if len(s) > 0 && isASCIILetter(s[0]) {
		return !plainWord(s) // exact for strings that start with a letter
	}
	if dashedWord(s) || macAddress(s) {
		return false
	}
	if decimalNumber(s) || isRFC3339(s) {
		return true // a number, or the first time format the library tries
	}
	if need, ok := q.seen[string(s)]; ok {
		return need
	}
	str := string(s)
	need := token.IsNeedQuoted(str)
	if q.seen == nil || len(q.seen) >= maxQuoteMemo {
		q.seen = make(map[string]bool)
	}
	q.seen[str] = need
	return need
}

// isRFC3339 reports whether s parses as time.RFC3339Nano in UTC
// (2006-01-02T15:04:05.999Z), checked by hand: time.Parse of each record would be the
// slowest step of a stream.
func isRFC3339(s []byte) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return false
	}
	if day > daysIn(month, year) {
		return false
	}
	frac := s[19 : len(s)-1]
	if len(frac) == 0 {
		return true
	}
	if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
		return false
	}
	for _, c := range frac[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// plainWord reports a string that starts with a letter and needs no quotes: no '#' or
// '\\', no ": " or "- ", not ending in ':' or ' ', and not a YAML keyword (null, true,
// yes, off, ...). Starting with a letter, it is neither a number nor a time. (The
// library's rules for such strings, checked without its slow number and time parsing.)
func plainWord(s []byte) bool {
	if len(s) == 0 || !isASCIILetter(s[0]) {
		return false
	}
	if last := s[len(s)-1]; last == ':' || last == ' ' {
		return false
	}
	for i, c := range s {
		switch c {
		case '#', '\\':
			return false
		case ':', '-':
			if i+1 < len(s) && s[i+1] == ' ' {
				return false
			}
		}
	}
	return len(s) > 5 || !yamlKeyword(string(s))
}

// dashedWord reports letters and digits with an inner '-' within the first 16 (a UUID,
// a layout name): not a number (a '-' past the sign stops the parse before it can
// overflow, which would count as a number), not a keyword, and not a time unless it is
// a date (2006-01-02), which it leaves to the library.
func dashedWord(s []byte) bool {
	if dash := bytes.IndexByte(s, '-'); dash < 1 || dash > 15 || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !isASCIILetter(c) && !(c >= '0' && c <= '9') && c != '-' {
			return false
		}
	}
	return !(len(s) == 10 && s[4] == '-' && s[7] == '-')
}

// macAddress reports six hex pairs joined by ':' (a UUID's node): no ": " inside, not a
// number, and not the "15:4" clock time the library checks for.
func macAddress(s []byte) bool {
	if len(s) != 17 {
		return false
	}
	for i, c := range s {
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// yamlKeyword lists the words the YAML library quotes when they start with a letter:
// YAML 1.2 null and booleans, and YAML 1.1's y/n/yes/no/on/off.
func yamlKeyword(s string) bool {
	switch s {
	case "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF":
		return true
	}
	return false
}

// decimalNumber reports digits without a leading zero (or "0"): a number to YAML, so quoted.
func decimalNumber(s []byte) bool {
	if len(s) == 0 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func (c *yamlConv) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *yamlConv) peek() byte {
	c.skipSpace()
	if c.pos < len(c.src) {
		return c.src[c.pos]
	}
	return 0
}

// item writes "- " at column col and the value after it; a map's first key goes on the
// dash's line and the rest two columns further in.
func (c *yamlConv) item(dst []byte, col int) ([]byte, error) {
	dst = appendSpaces(dst, col)
	dst = append(dst, '-', ' ')
	switch c.peek() {
	case '{':
		if c.emptyNext('}') {
			return append(dst, "{}\n"...), nil
		}
		return c.object(dst, col+2, true)
	case '[':
		if c.emptyNext(']') {
			return append(dst, "[]\n"...), nil
		}
		// A list in a list: its first item on the dash's line.
		return c.array(dst, col+2, true)
	default:
		dst, err := c.scalar(dst)
		return append(dst, '\n'), err
	}
}

// emptyNext reports whether the container opening at pos is empty, consuming it if so.
func (c *yamlConv) emptyNext(closer byte) bool {
	save := c.pos
	c.pos++
	if c.peek() == closer {
		c.pos++
		return true
	}
	c.pos = save
	return false
}

// object writes a non-empty map's entries at column col (the first one inline when
// inline is set: the caller already wrote the indentation).
func (c *yamlConv) object(dst []byte, col int, inline bool) ([]byte, error) {
	c.pos++ // {
	for first := true; ; first = false {
		if c.peek() != '"' {
			return dst, errYAMLInput
		}
		if !(first && inline) {
			dst = appendSpaces(dst, col)
		}
		var err error
		if dst, err = c.scalar(dst); err != nil {
			return dst, err
		}
		if c.peek() != ':' {
			return dst, errYAMLInput
		}
		c.pos++
		dst = append(dst, ':')
		switch c.peek() {
		case '{':
			if c.emptyNext('}') {
				dst = append(dst, " {}\n"...)
				break
			}
			dst = append(dst, '\n')
			if dst, err = c.object(dst, col+2, false); err != nil {
				return dst, err
			}
		case '[':
			if c.emptyNext(']') {
				dst = append(dst, " []\n"...)
				break
			}
			dst = append(dst, '\n')
			if dst, err = c.array(dst, col+2, false); err != nil {
				return dst, err
			}
		default:
			dst = append(dst, ' ')
			if dst, err = c.scalar(dst); err != nil {
				return dst, err
			}
			dst = append(dst, '\n')
		}
		switch c.peek() {
		case ',':
			c.pos++
		case '}':
			c.pos++
			return dst, nil
		default:
			return dst, errYAMLInput
		}
	}
}

// array writes a non-empty list's items with their dashes at column col (the first
// dash inline when inline is set).
func (c *yamlConv) array(dst []byte, col int, inline bool) ([]byte, error) {
	c.pos++ // [
	for first := true; ; first = false {
		var err error
		if first && inline {
			// item() writes the indentation; drop it for the first, inline item.
			mark := len(dst)
			if dst, err = c.item(dst, col); err != nil {
				return dst, err
			}
			dst = append(dst[:mark], dst[mark+col:]...)
		} else if dst, err = c.item(dst, col); err != nil {
			return dst, err
		}
		switch c.peek() {
		case ',':
			c.pos++
		case ']':
			c.pos++
			return dst, nil
		default:
			return dst, errYAMLInput
		}
	}
}

// scalar writes a string (plain or double-quoted, as ToYAML would), number, bool or null.
func (c *yamlConv) scalar(dst []byte) ([]byte, error) {
	switch b := c.peek(); {
	case b == '"':
		s, err := c.str()
		if err != nil {
			return dst, err
		}
		return c.q.AppendScalar(dst, s), nil
	case b == 't' || b == 'f' || b == 'n' || b == '-' || (b >= '0' && b <= '9'):
		start := c.pos
		for c.pos < len(c.src) {
			switch c.src[c.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return append(dst, c.src[start:c.pos]...), nil
			}
			c.pos++
		}
		return append(dst, c.src[start:c.pos]...), nil
	default:
		return dst, errYAMLInput
	}
}

// AppendScalar appends the string s as a YAML scalar, plain or double-quoted exactly as
// ToYAML writes it.
func (q *YAMLQuoter) AppendScalar(dst, s []byte) []byte {
	if !q.needQuotes(s) {
		return append(dst, s...)
	}
	if simpleASCII(s) {
		// What strconv.Quote writes for it, without making a string.
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	return strconv.AppendQuote(dst, string(s))
}

// QuoteTail makes the string at dst[start:] a YAML scalar in place: plain, or
// double-quoted exactly as ToYAML writes it (for writers that append the text first).
func (q *YAMLQuoter) QuoteTail(dst []byte, start int) []byte {
	s := dst[start:]
	if !q.needQuotes(s) {
		return dst
	}
	if simpleASCII(s) {
		dst = append(dst, 0)
		copy(dst[start+1:], dst[start:])
		dst[start] = '"'
		return append(dst, '"')
	}
	return strconv.AppendQuote(dst[:start], string(s))
}

// simpleASCII reports printable ASCII without '"' or '\\': quoted as it is.
func simpleASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// str reads a JSON string; the common case (no escapes) is a plain slice of the input.
func (c *yamlConv) str() ([]byte, error) {
	start := c.pos
	n := bytes.IndexByte(c.src[start+1:], '"')
	if n < 0 {
		return nil, errYAMLInput
	}
	s := c.src[start+1 : start+1+n]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		// Escapes, or invalid UTF-8 (which becomes U+FFFD, as in encoding/json).
		return c.escapedStr(start)
	}
	c.pos = start + n + 2
	return s, nil
}

func (c *yamlConv) escapedStr(start int) ([]byte, error) {
	c.pos = start + 1
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case '\\':
			c.pos += 2
		case '"':
			c.pos++
			var s string
			err := json.Unmarshal(c.src[start:c.pos], &s)
			return []byte(s), err
		default:
			c.pos++
		}
	}
	return nil, errYAMLInput
}

func appendSpaces(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, ' ')
	}
	return dst
}
