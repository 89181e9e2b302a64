package id

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const discordID = "175928847299117063"

type env struct {
	f               *cmdutil.Factory
	p               *output.Printer
	in, out, errOut *bytes.Buffer
	ios             *cmdutil.IOStreams
}

// newEnv makes test streams and a printer for -o format ("" is the table).
func newEnv(t *testing.T, format string) *env {
	t.Helper()
	ios, in, out, errOut := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	f.Global.Output = format
	p, err := f.Printer([]output.Format{output.Table, output.JSON, output.YAML, output.JSONL, output.CSV})
	if err != nil {
		t.Fatal(err)
	}
	return &env{f: f, p: p, in: in, out: out, errOut: errOut, ios: ios}
}

func decode(t *testing.T, format string, stdin string, o DecodeOptions) (*env, error) {
	t.Helper()
	e := newEnv(t, format)
	e.in.WriteString(stdin)
	if o.Now.IsZero() {
		o.Now = testNow
	}
	return e, RunDecode(context.Background(), e.f, e.p, &o)
}

func mustDecode(t *testing.T, format, stdin string, o DecodeOptions) *env {
	t.Helper()
	e, err := decode(t, format, stdin, o)
	if err != nil {
		t.Fatalf("decode %v: %v\nstderr: %s", o.IDs, err, e.errOut)
	}
	return e
}

type sfJSON struct {
	ID        string            `json:"id"`
	Layout    string            `json:"layout"`
	Timestamp string            `json:"timestamp"`
	UnixMs    int64             `json:"unix_ms"`
	Age       string            `json:"age"`
	Fields    map[string]uint64 `json:"fields"`
	Warnings  []string          `json:"warnings"`
}

// Discord's documented ID: 2016-04-30T11:18:25.796Z, worker 1, process 0, increment 7.
func TestDecodeDiscordVector(t *testing.T) {
	e := mustDecode(t, "json", "", DecodeOptions{IDs: []string{discordID}, Layout: "discord"})
	var got []sfJSON
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("json: %v\n%s", err, e.out)
	}
	r := got[0]
	if r.ID != discordID || r.Layout != "discord" || r.Timestamp != "2016-04-30T11:18:25.796Z" || r.UnixMs != 1462015105796 ||
		r.Fields["worker"] != 1 || r.Fields["process"] != 0 || r.Fields["increment"] != 7 || r.Age != "9y307d" {
		t.Fatalf("decoded %+v", r)
	}
	if len(r.Warnings) != 1 || r.Warnings[0] != "js_unsafe" {
		t.Errorf("warnings %v", r.Warnings)
	}
	if !strings.Contains(e.out.String(), `"id": "175928847299117063"`) {
		t.Errorf("the ID is not a JSON string:\n%s", e.out)
	}

	// The same in a table: one column per field, and the warning explained.
	e = mustDecode(t, "", "", DecodeOptions{IDs: []string{discordID, "0x271065AC1020007"}, Layout: "Discord"})
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID LAYOUT TIMESTAMP UNIX_MS AGE WORKER PROCESS INCREMENT WARNINGS" {
		t.Fatalf("header %q", lines[0])
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "175928847299117063 discord 2016-04-30T11:18:25.796Z 1462015105796 9y307d 1 0 7 js_unsafe" {
		t.Errorf("row %q", lines[1])
	}
	// The same ID in hex decodes (and prints) the same.
	if lines[2] != lines[1] {
		t.Errorf("hex row %q", lines[2])
	}
	if !strings.Contains(e.out.String(), "js_unsafe: above 2^53-1") {
		t.Errorf("warning not explained:\n%s", e.out)
	}

	// CSV and JSON lines are the engine's records.
	e = mustDecode(t, "csv", "", DecodeOptions{IDs: []string{discordID}, Layout: "discord"})
	if want := "id,layout,timestamp,unix_ms,age,worker,process,increment,warnings\n" +
		"175928847299117063,discord,2016-04-30T11:18:25.796Z,1462015105796,9y307d,1,0,7,js_unsafe\n"; e.out.String() != want {
		t.Errorf("csv:\n%s", e.out)
	}
	e = mustDecode(t, "jsonl", "", DecodeOptions{IDs: []string{discordID, discordID}, Layout: "discord"})
	if n := strings.Count(e.out.String(), "\n"); n != 2 || !strings.HasPrefix(e.out.String(), `{"id":"175928847299117063","layout":"discord",`) {
		t.Errorf("jsonl:\n%s", e.out)
	}
	e = mustDecode(t, "yaml", "", DecodeOptions{IDs: []string{discordID}, Layout: "discord"})
	if !strings.Contains(e.out.String(), `id: "175928847299117063"`) || !strings.Contains(e.out.String(), "increment: 7") {
		t.Errorf("yaml:\n%s", e.out)
	}
}

func TestDecodeCustomLayout(t *testing.T) {
	// 1 << 22 | 3 << 17 | 4 << 12 | 5: 1 ms after the epoch, datacenter 3, worker 4, sequence 5.
	id := fmt.Sprint(uint64(1)<<22 | 3<<17 | 4<<12 | 5)
	e := mustDecode(t, "json", "", DecodeOptions{IDs: []string{id}, Layout: "time:41:1ms,datacenter:5,worker:5,sequence:12", Epoch: "2020-01-01T00:00:00Z"})
	var got []sfJSON
	json.Unmarshal(e.out.Bytes(), &got)
	if len(got) != 1 || got[0].Layout != "custom" || got[0].Timestamp != "2020-01-01T00:00:00.001Z" ||
		got[0].Fields["datacenter"] != 3 || got[0].Fields["worker"] != 4 || got[0].Fields["sequence"] != 5 {
		t.Fatalf("custom: %s", e.out)
	}
	// The epoch as Unix ms works the same.
	e = mustDecode(t, "json", "", DecodeOptions{IDs: []string{id}, Layout: "time:41:1ms,datacenter:5,worker:5,sequence:12", Epoch: "1577836800000"})
	if !strings.Contains(e.out.String(), "2020-01-01T00:00:00.001Z") {
		t.Fatalf("unix ms epoch: %s", e.out)
	}
}

type uuidJSON struct {
	UUID          string `json:"uuid"`
	Version       int    `json:"version"`
	Variant       string `json:"variant"`
	Timestamp     string `json:"timestamp"`
	UnixMs        int64  `json:"unix_ms"`
	ClockSequence *int   `json:"clock_sequence"`
	Node          string `json:"node"`
	Warnings      []struct {
		Code string `json:"code"`
	} `json:"warnings"`
}

// RFC 9562 Appendix A: the v1, v6 and v7 examples all encode 2022-02-22T19:22:22Z.
func TestDecodeRFC9562Vectors(t *testing.T) {
	vectors := []string{"C232AB00-9414-11EC-B3C8-9F6BDECED846", "1EC9414C-232A-6B00-B3C8-9F6BDECED846", "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"}
	e := mustDecode(t, "json", "", DecodeOptions{IDs: vectors})
	var got []uuidJSON
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || len(got) != 3 {
		t.Fatalf("json: %v\n%s", err, e.out)
	}
	for i, want := range []struct {
		version int
		ts      string
	}{{1, "2022-02-22T19:22:22.0000000Z"}, {6, "2022-02-22T19:22:22.0000000Z"}, {7, "2022-02-22T19:22:22.000Z"}} {
		g := got[i]
		if g.UUID != strings.ToLower(vectors[i]) || g.Version != want.version || g.Variant != "RFC 9562" ||
			g.Timestamp != want.ts || g.UnixMs != 1645557742000 {
			t.Errorf("%s: %+v", vectors[i], g)
		}
		if want.version != 7 && (g.ClockSequence == nil || *g.ClockSequence != 0x33C8 || g.Node != "9f:6b:de:ce:d8:46") {
			t.Errorf("%s: clock sequence %v node %q", vectors[i], g.ClockSequence, g.Node)
		}
	}

	e = mustDecode(t, "", "", DecodeOptions{IDs: vectors})
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "UUID") {
		t.Fatalf("table:\n%s", e.out)
	}
	for i, l := range lines[1:] {
		if !strings.Contains(l, "2022-02-22T19:22:22.") || !strings.HasPrefix(l, strings.ToLower(vectors[i])) {
			t.Errorf("row %d: %q", i, l)
		}
	}
}

func TestDecodeUUIDWithMACWarns(t *testing.T) {
	// A v1 UUID whose node 00:1b:63:84:45:e6 has the multicast bit clear: a real NIC.
	e := mustDecode(t, "", "", DecodeOptions{IDs: []string{"6ba7b810-9dad-11d1-80b4-001b638445e6"}})
	if !strings.Contains(e.out.String(), "node_is_mac") || !strings.Contains(e.out.String(), "real MAC address") {
		t.Fatalf("no MAC warning:\n%s", e.out)
	}
}

func TestDecodeAutoRanking(t *testing.T) {
	e := mustDecode(t, "json", "", DecodeOptions{IDs: []string{discordID}})
	var got []struct {
		ID         string `json:"id"`
		Candidates []struct {
			Rank      int               `json:"rank"`
			Layout    string            `json:"layout"`
			Score     float64           `json:"score"`
			Plausible bool              `json:"plausible"`
			Timestamp string            `json:"timestamp"`
			Fields    map[string]uint64 `json:"fields"`
			Reasons   []string          `json:"reasons"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("json: %v\n%s", err, e.out)
	}
	c := got[0].Candidates
	if got[0].ID != discordID || len(c) != 10 {
		t.Fatalf("%d candidates", len(c))
	}
	if c[0].Layout != "discord" || c[0].Rank != 1 || !c[0].Plausible || c[0].Timestamp != "2016-04-30T11:18:25.796Z" || c[0].Fields["increment"] != 7 {
		t.Errorf("top candidate %+v", c[0])
	}
	for i := 1; i < len(c); i++ {
		if c[i].Score > c[i-1].Score || c[i].Rank != i+1 {
			t.Errorf("not ranked at %d: %+v", i, c[i])
		}
	}
	// Mastodon reads a 2055 time: implausible, with a reason, and every implausible
	// reading ranks below every plausible one.
	for i, x := range c {
		if x.Layout == "mastodon" && (x.Plausible || len(x.Reasons) == 0) {
			t.Errorf("mastodon: %+v", x)
		}
		if i > 0 && x.Plausible && !c[i-1].Plausible {
			t.Errorf("plausible %s ranked below implausible %s", x.Layout, c[i-1].Layout)
		}
	}

	// The table lists the same layouts in the same order, with the time under each.
	e = mustDecode(t, "", "", DecodeOptions{IDs: []string{discordID}, Layout: "auto"})
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], discordID+" under each layout, most plausible first") || !strings.Contains(lines[1], "LAYOUT") {
		t.Fatalf("table:\n%s", e.out)
	}
	for i, x := range c {
		row := strings.Fields(lines[2+i])
		if row[0] != fmt.Sprint(i+1) || row[1] != x.Layout || row[2] != x.Timestamp {
			t.Errorf("table row %d = %q, want %s at %s", i, lines[2+i], x.Layout, x.Timestamp)
		}
	}

	// CSV: one line per reading.
	e = mustDecode(t, "csv", "", DecodeOptions{IDs: []string{discordID}})
	lines = strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if len(lines) != 11 || !strings.HasPrefix(lines[1], discordID+",1,discord,2016-04-30T11:18:25.796Z,") ||
		!strings.Contains(lines[1], ",worker=1;process=0;increment=7,") {
		t.Errorf("csv:\n%s", e.out)
	}
}

func TestDecodeBadInput(t *testing.T) {
	tests := []struct {
		name   string
		ids    []string
		layout string
		epoch  string
		want   string
	}{
		{"non-numeric", []string{"12ab"}, "twitter", "", `id "12ab": not a decimal or 0x-hex number`},
		{"negative", []string{"-5"}, "twitter", "", `id "-5": negative`},
		{"above 2^64", []string{"18446744073709551616"}, "twitter", "", `id "18446744073709551616": above 2^64-1`},
		{"hex above 2^64", []string{"0x10000000000000000"}, "", "", `above 2^64-1`},
		{"malformed uuid", []string{"017F22E2-79B0-7CC3-98C4-DC0C0C07398"}, "", "", `uuid "017F22E2-79B0-7CC3-98C4-DC0C0C07398": malformed`},
		{"bad spec", []string{"1"}, "time:41:1ms,worker:5", "2020-01-01", `layout "time:41:1ms,worker:5": fields add up to 46 bits`},
		{"bad unit", []string{"1"}, "time:41:1us,worker:10,sequence:12", "2020-01-01", `unit "1us"`},
		{"two time fields", []string{"1"}, "time:41:1ms,t2:10:1ms,sequence:12", "2020-01-01", `two time fields`},
		{"spec without epoch", []string{"1"}, "time:41:1ms,worker:10,sequence:12", "", "needs an epoch"},
		{"unknown layout", []string{"1"}, "snowflake", "", `layout "snowflake": unknown`},
		{"bad epoch", []string{"1"}, "twitter", "yesterday", `epoch "yesterday"`},
		{"epoch with auto", []string{"1"}, "", "2020-01-01", "--epoch needs a --layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := decode(t, "", "", DecodeOptions{IDs: tt.ids, Layout: tt.layout, Epoch: tt.epoch})
			if err == nil || errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want usage error with %q", err, tt.want)
			}
			if e.out.Len() != 0 {
				t.Errorf("printed output for bad input:\n%s", e.out)
			}
		})
	}
}

// Bulk: a bad line in the middle is reported with its number, the good lines still
// decode, and the exit status says some failed (usage: exit 2).
func TestDecodeBulkBadLineInMiddle(t *testing.T) {
	stdin := "175928847299117063\nnot-an-id\n\n 175928847299117064 \n"
	for _, format := range []string{"csv", "jsonl", "json", "yaml", ""} {
		t.Run("format="+format, func(t *testing.T) {
			e, err := decode(t, format, stdin, DecodeOptions{Layout: "discord"})
			var p *errs.Partial
			if !errors.As(err, &p) || p.Failed != 1 || p.Total != 3 || p.What != "lines" || errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("err = %#v, want 1 of 3 lines failed (usage)", err)
			}
			if got := e.errOut.String(); got != "line 2: id \"not-an-id\": not a decimal or 0x-hex number\n" {
				t.Errorf("stderr %q", got)
			}
			out := e.out.String()
			if !strings.Contains(out, "175928847299117063") || !strings.Contains(out, "175928847299117064") || strings.Contains(out, "not-an-id") {
				t.Errorf("good lines not decoded:\n%s", out)
			}
			switch format {
			case "csv":
				want := "id,layout,timestamp,unix_ms,age,worker,process,increment,warnings\n" +
					"175928847299117063,discord,2016-04-30T11:18:25.796Z,1462015105796,9y307d,1,0,7,js_unsafe\n" +
					"175928847299117064,discord,2016-04-30T11:18:25.796Z,1462015105796,9y307d,1,0,8,js_unsafe\n"
				if out != want {
					t.Errorf("csv:\n%s", out)
				}
			case "json":
				var recs []sfJSON
				if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 2 || recs[1].Fields["increment"] != 8 {
					t.Errorf("json array: %v\n%s", err, out)
				}
			case "jsonl":
				for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
					var r sfJSON
					if err := json.Unmarshal([]byte(l), &r); err != nil || r.Fields["increment"] != uint64(7+i) {
						t.Errorf("jsonl line %d: %v %s", i, err, l)
					}
				}
			case "":
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || strings.Index(lines[1], "discord") != strings.Index(lines[2], "discord") {
					t.Errorf("table:\n%s", out)
				}
			}
		})
	}
}

func TestDecodeBulkUUIDStream(t *testing.T) {
	stdin := "\nC232AB00-9414-11EC-B3C8-9F6BDECED846\n42\n{017F22E2-79B0-7CC3-98C4-DC0C0C07398F}\nzz-zz\n"
	e, err := decode(t, "jsonl", stdin, DecodeOptions{})
	var p *errs.Partial
	if !errors.As(err, &p) || p.Failed != 2 || p.Total != 4 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(e.errOut.String(), "line 3: 42 is a snowflake ID in a stream of UUIDs") ||
		!strings.Contains(e.errOut.String(), `line 5: uuid "zz-zz": malformed`) {
		t.Errorf("stderr:\n%s", e.errOut)
	}
	lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout:\n%s", e.out)
	}
	for i, want := range []int{1, 7} {
		var u uuidJSON
		if err := json.Unmarshal([]byte(lines[i]), &u); err != nil || u.Version != want || u.UnixMs != 1645557742000 {
			t.Errorf("line %d: %v %+v", i, err, u)
		}
	}
	// CSV of UUIDs has its own columns.
	e, _ = decode(t, "csv", stdin, DecodeOptions{})
	if !strings.HasPrefix(e.out.String(), "uuid,version,type,variant,timestamp,clock_seq,node,warnings\nc232ab00-9414-11ec-b3c8-9f6bdeced846,1,") {
		t.Errorf("csv:\n%s", e.out)
	}
	// A UUID inside a snowflake stream is named as such.
	e, _ = decode(t, "csv", "1\n017F22E2-79B0-7CC3-98C4-DC0C0C07398F\n", DecodeOptions{Layout: "twitter"})
	if !strings.Contains(e.errOut.String(), `line 2: "017F22E2-79B0-7CC3-98C4-DC0C0C07398F" is a UUID in a stream of snowflake IDs`) {
		t.Errorf("stderr: %s", e.errOut)
	}
}

func TestDecodeBulkNeedsOneLayoutAndInput(t *testing.T) {
	for _, layout := range []string{"", "auto"} {
		_, err := decode(t, "csv", "1\n", DecodeOptions{Layout: layout})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "decoding IDs from stdin needs one --layout") {
			t.Errorf("layout %q: %v", layout, err)
		}
	}
	e, err := decode(t, "csv", "\n  \n", DecodeOptions{Layout: "twitter"})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "no IDs on stdin") || e.out.Len() != 0 {
		t.Errorf("empty stdin: %v %q", err, e.out)
	}
}

// Lines beyond maxBadShown are counted, not listed.
func TestDecodeBulkCapsBadLineReports(t *testing.T) {
	var in strings.Builder
	for i := 0; i < maxBadShown+50; i++ {
		in.WriteString("x\n")
	}
	in.WriteString("1\n")
	e, err := decode(t, "csv", in.String(), DecodeOptions{Layout: "twitter"})
	var p *errs.Partial
	if !errors.As(err, &p) || p.Failed != maxBadShown+50 {
		t.Fatalf("err %v", err)
	}
	lines := strings.Split(strings.TrimSpace(e.errOut.String()), "\n")
	if len(lines) != maxBadShown+1 || lines[len(lines)-1] != "... and 50 more bad lines (-v lists them all)" {
		t.Errorf("%d stderr lines, last %q", len(lines), lines[len(lines)-1])
	}
}

// idLines is a reader of n generated ID lines that never holds them all.
type idLines struct {
	n, i int
	buf  []byte
}

func (r *idLines) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && r.i < r.n {
		r.buf = append(strconv.AppendUint(r.buf, uint64(1790000000000000000)+uint64(r.i), 10), '\n')
		r.i++
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
	return n, nil
}

// Bulk mode streams: a million IDs go through in constant memory, not in proportion to
// the input (which is about 20 MB, and 150 MB of output).
func TestDecodeBulkStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes a million IDs")
	}
	for _, format := range []string{"csv", "jsonl", "json"} {
		t.Run(format, func(t *testing.T) {
			e := newEnv(t, format)
			e.ios.In = &idLines{n: 1_000_000}
			var lines int
			e.ios.Out = writerFunc(func(p []byte) (int, error) { lines += bytes.Count(p, []byte{'\n'}); return len(p), nil })
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if err := RunDecode(context.Background(), e.f, e.p, &DecodeOptions{Layout: "twitter", Now: testNow}); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if lines < 1_000_000 {
				t.Fatalf("%d lines out", lines)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes for a million IDs; bulk decoding must stream", alloc)
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// A live stream (tail -f | dsctl id decode) gets each record as its line arrives, not
// when 60 KiB of output have piled up.
func TestDecodeBulkAnswersALiveStreamLineByLine(t *testing.T) {
	for _, format := range []string{"csv", "jsonl", "json", ""} {
		t.Run("format="+format, func(t *testing.T) {
			e := newEnv(t, format)
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			e.ios.In, e.ios.Out = inR, outW
			done := make(chan error, 1)
			go func() {
				done <- RunDecode(context.Background(), e.f, e.p, &DecodeOptions{Layout: "discord", Now: testNow})
				outW.Close()
			}()
			got := make(chan string, 1)
			go func() {
				var seen []byte
				buf := make([]byte, 4096)
				for !bytes.Contains(seen, []byte(discordID)) {
					n, err := outR.Read(buf)
					seen = append(seen, buf[:n]...)
					if err != nil {
						break
					}
				}
				got <- string(seen)
				io.Copy(io.Discard, outR)
			}()
			fmt.Fprintln(inW, discordID) // the stream stays open
			select {
			case s := <-got:
				if !strings.Contains(s, discordID) {
					t.Errorf("output %q", s)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no output for a line while the input stays open")
			}
			inW.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDecodeBulkProgressOnlyOnATerminal(t *testing.T) {
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	for _, tty := range []bool{false, true} {
		e := newEnv(t, "csv")
		e.ios.StderrTTY = tty
		e.ios.In = &idLines{n: 200_000}
		if err := RunDecode(context.Background(), e.f, e.p, &DecodeOptions{Layout: "twitter", Now: testNow}); err != nil {
			t.Fatal(err)
		}
		shown := strings.Contains(e.errOut.String(), "decode: ") && strings.Contains(e.errOut.String(), " lines, ")
		if shown != tty {
			t.Errorf("stderr TTY %v: progress shown %v: %q", tty, shown, e.errOut.String())
		}
		if tty && !strings.HasSuffix(e.errOut.String(), "\r\x1b[K") {
			t.Errorf("progress line not erased at the end: %q", e.errOut.String())
		}
	}
}

func TestDecodeStopsOnCancel(t *testing.T) {
	e := newEnv(t, "csv")
	e.ios.In = &idLines{n: 1_000_000}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := RunDecode(ctx, e.f, e.p, &DecodeOptions{Layout: "twitter", Now: testNow})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// YAML from stdin is the same single list as YAML from arguments, for snowflake IDs and
// for UUIDs (it used to be "---"-separated documents), and an empty stream is [].
func TestDecodeYAMLStreamIsOneList(t *testing.T) {
	for _, c := range []struct {
		layout string
		ids    []string
	}{
		{"discord", []string{"175928847299117063", "175928847299117064"}},
		{"", []string{"C232AB00-9414-11EC-B3C8-9F6BDECED846", "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"}},
	} {
		args := mustDecode(t, "yaml", "", DecodeOptions{IDs: c.ids, Layout: c.layout}).out.String()
		stream := mustDecode(t, "yaml", strings.Join(c.ids, "\n")+"\n", DecodeOptions{Layout: c.layout}).out.String()
		if stream != args || !strings.HasPrefix(stream, "  - ") || strings.Contains(stream, "---") {
			t.Errorf("layout %q: stdin YAML\n%s\ndiffers from arguments YAML\n%s", c.layout, stream, args)
		}
	}
	e, _ := decode(t, "yaml", "bogus\n", DecodeOptions{Layout: "discord"})
	if e.out.String() != "[]\n" {
		t.Errorf("no good lines: %q, want []", e.out)
	}
}
