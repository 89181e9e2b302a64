package id

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/snowflake"
)

// fastPathIDs are IDs that exercise every shape of a record: small, huge (sign bit,
// js_unsafe), future, before the epoch.
var fastPathIDs = []uint64{0, 1, 7, 4194304, 175928847299117063, 1 << 53, math.MaxInt64, math.MaxUint64, 1<<63 | 12345,
	uint64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()-1288834974657) << 22}

func fastPathLayouts(t *testing.T) []*snowflake.Layout {
	t.Helper()
	layouts := snowflake.Presets()
	custom, err := snowflake.Resolve("time:41:1ms,worker_id:10,sequence:12", "2020-01-01")
	if err != nil {
		t.Fatal(err)
	}
	wide, err := snowflake.Resolve("time:8:1s,blob:56", "2020-01-01")
	if err != nil {
		t.Fatal(err)
	}
	return append(layouts, custom, wide)
}

// The YAML written straight from the decoder is the printer's YAML of the record's JSON.
func TestAppendYAMLItemMatchesPrinter(t *testing.T) {
	var q output.YAMLQuoter
	for _, l := range fastPathLayouts(t) {
		d := snowflake.NewDecoder(l, testNow)
		w := d.NewYAMLWriter(q.QuoteTail)
		for _, id := range fastPathIDs {
			v := d.Decode(id)
			got := w.AppendItem(nil, &v)
			want, err := output.JSONToYAML(append(append([]byte("["), d.AppendJSON(nil, &v)...), ']'))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %d:\n got:\n%s\nwant:\n%s", l.Name(), id, got, want)
			}
		}
	}
}

// The table rows written straight from the decoder are the printer's stream of rows,
// with and without colour, as columns widen.
func TestSFTableStreamMatchesPrinter(t *testing.T) {
	for _, color := range []bool{false, true} {
		for _, l := range fastPathLayouts(t) {
			d := snowflake.NewDecoder(l, testNow)
			var want bytes.Buffer
			p := &output.Printer{Format: output.Table, Out: &want, Color: color}
			s := p.NewStream(sfHeader(l), sfWidths(l))
			var got bytes.Buffer
			out := &bufferedOut{Writer: bufio.NewWriter(&got)}
			fast := newSFTableStream(out, d, color)
			for _, id := range fastPathIDs {
				v := d.Decode(id)
				if err := s.Write(sfRecord{d: d, v: v}); err != nil {
					t.Fatal(err)
				}
				if err := fast.write(&v); err != nil {
					t.Fatal(err)
				}
			}
			out.Flush()
			if got.String() != want.String() {
				t.Errorf("%s color=%v:\n got:\n%s\nwant:\n%s", l.Name(), color, got.String(), want.String())
			}
		}
	}
}

// Bulk decoding allocates nothing per ID in any format (it was ~100 allocations per ID
// for YAML, which made -o yaml hundreds of times slower than -o json): the allocations
// of 2,000 IDs and of 1,000 IDs differ by less than one per 10 IDs.
func TestBulkDecodeAllocatesNothingPerID(t *testing.T) {
	small, big := benchInput(1000, false), benchInput(2000, false)
	for _, format := range []string{"json", "yaml", "jsonl", "csv", "table"} {
		allocs := func(input string) float64 {
			return testing.AllocsPerRun(3, func() { runDecodeBench(t, format, input) })
		}
		if extra := allocs(big) - allocs(small); extra > 100 {
			t.Errorf("-o %s: %.0f more allocations for 1,000 more IDs", format, extra)
		}
	}
}

// A tiny number decodes near the epoch under every layout: no reading is plausible.
func TestDecodeTinyIDHasNoPlausibleReading(t *testing.T) {
	e := mustDecode(t, "json", "", DecodeOptions{IDs: []string{"1"}})
	var got []struct {
		Candidates []struct {
			Layout    string   `json:"layout"`
			Plausible bool     `json:"plausible"`
			Reasons   []string `json:"reasons"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || len(got) != 1 || len(got[0].Candidates) < 5 {
		t.Fatalf("%v\n%s", err, e.out)
	}
	for _, c := range got[0].Candidates {
		if c.Plausible || len(c.Reasons) == 0 {
			t.Errorf("%s: plausible %v, reasons %v", c.Layout, c.Plausible, c.Reasons)
		}
	}
}
