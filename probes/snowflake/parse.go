package snowflake

import (
	"fmt"
	"strconv"

	"github.com/dsctl/dsctl/probes/errs"
)

// ParseID parses an ID given as decimal ("175928847299117063") or 0x-hex
// ("0x2710000000000007"), with surrounding spaces allowed. Non-numbers, negative numbers
// and values above 2^64-1 are errs.Usage errors naming the input.
func ParseID(s string) (uint64, error) {
	return parseID(s)
}

// ParseIDBytes is ParseID for a byte slice; it does not allocate unless it fails.
func ParseIDBytes(b []byte) (uint64, error) {
	return parseID(b)
}

func parseID[T string | []byte](in T) (uint64, error) {
	s := trimSpace(in)
	n := len(s)
	if n == 0 {
		return 0, idError(in, "empty")
	}
	if n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if n-2 > 16 {
			// Leading zeros are fine; anything else past 16 digits overflows.
			i := 2
			for i < n-16 && s[i] == '0' {
				i++
			}
			if n-i > 16 {
				if !allHex(s[2:]) {
					return 0, idError(in, "not a decimal or 0x-hex number")
				}
				return 0, idError(in, "above 2^64-1 (0xffffffffffffffff)")
			}
		}
		var v uint64
		for i := 2; i < n; i++ {
			d := hexVal(s[i])
			if d > 15 {
				return 0, idError(in, "not a decimal or 0x-hex number")
			}
			v = v<<4 | uint64(d)
		}
		return v, nil
	}
	var v uint64
	for i := 0; i < n; i++ {
		c := s[i] - '0'
		if c > 9 {
			if s[0] == '-' && n > 1 && allDecimal(s[1:]) {
				return 0, idError(in, "negative; IDs are unsigned 64-bit numbers")
			}
			return 0, idError(in, "not a decimal or 0x-hex number")
		}
		if v > (1<<64-1)/10 {
			return 0, overflowError(in, s[i+1:])
		}
		v10 := v * 10
		v = v10 + uint64(c)
		if v < v10 {
			return 0, overflowError(in, s[i+1:])
		}
	}
	return v, nil
}

func overflowError[T string | []byte](in T, rest T) error {
	if len(rest) > 0 && !allDecimal(rest) {
		return idError(in, "not a decimal or 0x-hex number")
	}
	return idError(in, "above 2^64-1 (18446744073709551615)")
}

func trimSpace[T string | []byte](s T) T {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

func allHex[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if hexVal(s[i]) > 15 {
			return false
		}
	}
	return len(s) > 0
}

func allDecimal[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func idError[T string | []byte](in T, why string) error {
	return errs.Usage("id %s: %s", quote(string(in)), why)
}

// quote quotes user input for a message, cut to 48 bytes so a pasted blob stays readable.
func quote(s string) string {
	const max = 48
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..." + "(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return strconv.Quote(s)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
