package output

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/token"
)

// toYAMLListItem is the slow reference: ToYAML of a one-element list, which is what a
// whole-list Print writes for each item.
func toYAMLListItem(t *testing.T, j string) string {
	t.Helper()
	b, err := JSONToYAML([]byte("[" + j + "]"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAppendYAMLListItemMatchesToYAML(t *testing.T) {
	cases := []string{
		`{"id":"175928847299117063","layout":"twitter","timestamp":"2012-03-03T13:01:20.453Z","unix_ms":1330779680453,"age":"14y281d","fields":{"datacenter":1,"worker":0,"sequence":7},"warnings":["js_unsafe"]}`,
		`{"id":"1","layout":"time:41:1ms,worker:10","fields":{},"warnings":[],"score":0.658,"plausible":true,"x":null,"neg":-5}`,
		`{"id":"1","candidates":[{"rank":1,"layout":"discord","reasons":["too small: 1","x: y"]},{"rank":2,"layout":"sonyflake","reasons":[]}]}`,
		`{"uuid":"017f22e2-79b0-7cc3-98c4-dc0c0c07398f","notes":["48-bit Unix ms timestamp §5.7","quote \" and \\ and \n newline","#hash","- dash","true","123","","null","yes"]}`,
		`{"a":{"b":{"c":[1,2,{"d":"e"}]}},"key with: colon":"v","":"empty key"}`,
		`{"age":"3s in the future","t":"2016-04-30","x":"-"}`,
	}
	for _, c := range cases {
		got, err := AppendYAMLListItem(nil, []byte(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		want := toYAMLListItem(t, c)
		if string(got) != want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", c, got, want)
		}
	}
}

func TestAppendYAMLListItemRejectsBadJSON(t *testing.T) {
	for _, c := range []string{``, `{`, `{"a"}`, `{"a":1`, `[1,`, `{"a":1}x`, `"open`} {
		if _, err := AppendYAMLListItem(nil, []byte(c)); err == nil {
			t.Errorf("%q: no error", c)
		}
	}
}

// FuzzAppendYAMLListItem checks that the direct conversion of any JSON object reads back
// (as YAML) to the same value as ToYAML's text. (Byte equality holds for what dsctl's
// encoders write; ToYAML rewrites a number such as -1.5e3 as -1500.0, which reads the same.)
func FuzzAppendYAMLListItem(f *testing.F) {
	f.Add(`{"a":"b","c":[1,"x: y"],"d":{}}`)
	f.Add(`{"s":"\u00e9\t","n":-1.5e3}`)
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		if _, ok := v.(map[string]any); !ok {
			return
		}
		got, err := AppendYAMLListItem(nil, []byte(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if _, err := JSONToYAML([]byte("[" + s + "]")); err != nil {
			t.Skip("ToYAML refuses it too (duplicate keys)")
		}
		want := toYAMLListItem(t, s)
		var gv, wv any
		if err := yaml.Unmarshal(got, &gv); err != nil {
			t.Fatalf("%q: output is not YAML: %v\n%s", s, err, got)
		}
		if err := yaml.Unmarshal([]byte(want), &wv); err != nil {
			t.Skip("ToYAML's own output does not read back")
		}
		gj, _ := json.Marshal(gv)
		wj, _ := json.Marshal(wv)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("%q:\n got:\n%s\nwant:\n%s", s, got, want)
		}
	})
}

func BenchmarkAppendYAMLListItem(b *testing.B) {
	j := []byte(`{"id":"175928847299117063","layout":"discord","timestamp":"2012-03-03T13:01:20.453Z","unix_ms":1330779680453,"age":"14y281d","fields":{"worker":1,"process":0,"increment":7},"warnings":["js_unsafe"]}`)
	var q YAMLQuoter
	var dst []byte
	for b.Loop() {
		dst, _ = q.AppendListItem(dst[:0], j)
	}
}

// FuzzNeedQuotes holds the shortcuts of needQuotes to the YAML library's own check.
func FuzzNeedQuotes(f *testing.F) {
	for _, s := range []string{"", "null", "Off", "yes", "y", "n", "nan", "Inf", "e5", "in.f", "abc-def", "layout",
		"0", "007", "0189", "123", "18446744073709551616", "-5", "1.5", "14y281d", "3s in the future",
		"2012-03-03T13:01:20.453Z", "2012-02-30T13:01:20.453Z", "2012-03-03T24:01:20Z", "2012-03-03T13:01:20.1234567890Z",
		"0000-01-01T00:00:00Z", "2012-03-03T13:01:20+01:00",
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f", "2012-03-03", "2012-0303", "1-2", "0x1-2", "a-", "-a", "1_000-2", "100000000000000000000-0", "0xffffffffffffffffff-1",
		"9f:6b:de:ce:d8:46", "Unix time (ms)", "a - b", "a: b", "a:b", "ab #c", "ab\\c", "tab\there", "Inf.x", "i_n_f", "é", "00:00:00:00:00:01", "15:40", "1:2", "a: b", "a #b", "x:", "~", ".inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var q YAMLQuoter
		if got, want := q.needQuotes([]byte(s)), token.IsNeedQuoted(s); got != want {
			t.Fatalf("needQuotes(%q) = %v, the library says %v", s, got, want)
		}
		if got, want := string(q.QuoteTail([]byte("x: "+s), 3)), "x: "+string(q.AppendScalar(nil, []byte(s))); got != want {
			t.Fatalf("QuoteTail(%q) = %q, AppendScalar gives %q", s, got, want)
		}
	})
}
