package kafka

import (
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/errs"
)

func TestParsePropertiesJavaFormat(t *testing.T) {
	text := "# comment\n" +
		"! also a comment\n" +
		"   \n" +
		"a=1\n" +
		"b : 2\n" +
		"c 3\n" +
		"d   =   4  \n" +
		"e\n" +
		"long = one, \\\n" +
		"       two, \\\n" +
		"       three\n" +
		"key\\ with\\=odd\\:chars = v\\tx\\u0041\\\\\n" +
		"f=\\\n" +
		"\r\n" +
		"a=override\r" +
		"g=last"
	p, err := ParseProperties("x.properties", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Property{
		"a":                  {"a", "override", 15},
		"b":                  {"b", "2", 5},
		"c":                  {"c", "3", 6},
		"d":                  {"d", "4  ", 7},
		"e":                  {"e", "", 8},
		"long":               {"long", "one, two, three", 9},
		"key with=odd:chars": {"key with=odd:chars", "v\txA\\", 12},
		"f":                  {"f", "", 13},
		"g":                  {"g", "last", 16},
	}
	if len(p.ByKey) != len(want) {
		t.Fatalf("parsed %d keys %v, want %d", len(p.ByKey), p.Order, len(want))
	}
	for k, w := range want {
		if got := p.ByKey[k]; got != w {
			t.Errorf("%q: got %+v, want %+v", k, got, w)
		}
	}
	if p.Order[0] != "a" || p.Order[len(p.Order)-1] != "g" {
		t.Fatalf("order %v", p.Order)
	}
}

func TestParsePropertiesMalformedEscapeNamesFileAndLine(t *testing.T) {
	_, err := LoadProperties("testdata/producer-bad-escape.properties")
	if errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("err = %v, want a usage error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "testdata/producer-bad-escape.properties:3:") || !strings.Contains(msg, `\uXXXX`) {
		t.Fatalf("message %q should name file:line 3 and the bad escape", msg)
	}
	_, err = LoadProperties("testdata/missing.properties")
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "missing.properties") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add([]byte("a=1\nb : 2\nc 3\n"))
	f.Add([]byte("x=\\u00e9\\\n  y\r\nz=\\u12"))
	f.Add([]byte("\\\\\\=\\:= \\ \n#!\n!#"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProperties("fuzz", data)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage || !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %v is not a usage error naming the file", err)
			}
			return
		}
		lines := len(splitLines(string(data)))
		for k, prop := range p.ByKey {
			if prop.Key != k || prop.Line < 1 || prop.Line > lines {
				t.Fatalf("property %+v under key %q (file has %d lines)", prop, k, lines)
			}
		}
		if len(p.Order) != len(p.ByKey) {
			t.Fatalf("order %d keys, map %d", len(p.Order), len(p.ByKey))
		}
	})
}
