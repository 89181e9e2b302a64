package snowflake

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// beforeEpochID is what a signed generator makes when now - epoch is -1000 ms: worker 1, sequence 5.
var beforeEpochID = func() uint64 { t := int64(-1000); return uint64(t<<22 | 1<<12 | 5) }()

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustPreset(t testing.TB, name string) *Layout {
	t.Helper()
	l, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Discord's documented example (API reference, "Snowflakes").
func TestDiscordDocumentedID(t *testing.T) {
	id, err := ParseID("175928847299117063")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(mustPreset(t, "discord"), testNow)
	v := d.Decode(id)
	if got := v.Instant().String(); got != "2016-04-30T11:18:25.796Z" {
		t.Errorf("timestamp %s, want 2016-04-30T11:18:25.796Z", got)
	}
	if !v.Time().Equal(time.Date(2016, 4, 30, 11, 18, 25, 796e6, time.UTC)) {
		t.Errorf("Time() %v", v.Time())
	}
	for name, want := range map[string]uint64{"worker": 1, "process": 0, "increment": 7} {
		if got, ok := d.Field(&v, name); !ok || got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if v.Warnings != WarnUnsafeInJS {
		t.Errorf("warnings %v, want only js_unsafe", v.Warnings.Codes())
	}
	if v.UnixMs != 1462015105796 {
		t.Errorf("unix_ms %d", v.UnixMs)
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  string
	}{
		{"175928847299117063", 175928847299117063, ""},
		{"  42\r\n", 42, ""},
		{"0", 0, ""},
		{"18446744073709551615", math.MaxUint64, ""},
		{"0x271000000007", 0x271000000007, ""},
		{"0XFFFFFFFFFFFFFFFF", math.MaxUint64, ""},
		{"0x00000000000000000000ff", 255, ""},
		{"18446744073709551616", 0, `id "18446744073709551616": above 2^64-1`},
		{"99999999999999999999999", 0, "above 2^64-1"},
		{"0x10000000000000000", 0, `id "0x10000000000000000": above 2^64-1`},
		{"12a", 0, `id "12a": not a decimal or 0x-hex number`},
		{"-5", 0, `id "-5": negative`},
		{"-", 0, "not a decimal"},
		{"+5", 0, "not a decimal"},
		{"0x", 0, "not a decimal"},
		{"0xg1", 0, "not a decimal"},
		{"1 2", 0, "not a decimal"},
		{"1_000", 0, "not a decimal"},
		{"99999999999999999999x", 0, "not a decimal"},
		{"", 0, `id "": empty`},
		{"   ", 0, "empty"},
		{"c232ab00-9414-11ec-b3c8-9f6bdeced846", 0, "not a decimal"},
		{strings.Repeat("7", 500), 0, "(500 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID(tt.in)
			gotB, errB := ParseIDBytes([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				if errs.KindOf(err) != errs.KindUsage {
					t.Errorf("kind %v, want usage (exit 2)", errs.KindOf(err))
				}
				if errB == nil || errB.Error() != err.Error() {
					t.Errorf("bytes variant: %v", errB)
				}
				return
			}
			if err != nil || got != tt.want || errB != nil || gotB != tt.want {
				t.Fatalf("got %d %v / %d %v, want %d", got, err, gotB, errB, tt.want)
			}
		})
	}
}

func TestDecodeWarnings(t *testing.T) {
	twitter := mustPreset(t, "twitter")
	discord := mustPreset(t, "discord")
	baidu := mustPreset(t, "baidu")
	nowTicks := uint64(testNow.UnixMilli() - twitter.EpochMs())
	tests := []struct {
		name   string
		l      *Layout
		id     uint64
		want   Warnings
		timeIs string
	}{
		{"recent twitter id", twitter, nowTicks << 22, WarnUnsafeInJS, ""},
		{"small id is safe in js", twitter, 12345, 0, "2010-11-04T01:42:54.657Z"},
		{"2^53-1 is safe", twitter, 1<<53 - 1, 0, ""},
		{"2^53 is not", twitter, 1 << 53, WarnUnsafeInJS, ""},
		{"future", twitter, (nowTicks + 3_600_000) << 22, WarnUnsafeInJS | WarnFuture, ""},
		{"within the slack is not future", twitter, (nowTicks + 500) << 22, WarnUnsafeInJS, ""},
		// (now - epoch) negative by one second, as a signed generator would have made it.
		{"clock before epoch", twitter, beforeEpochID, WarnBeforeEpoch | WarnSignBit | WarnUnsafeInJS, "2010-11-04T01:42:53.657Z"},
		{"64-bit layout: bit 63 is time", discord, 1 << 63, WarnSignBit | WarnUnsafeInJS | WarnFuture, "2084-09-06T15:47:35.552Z"},
		{"baidu expired", baidu, 1 << 35, WarnLayoutExpired, "2016-05-19T16:00:01.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.l, testNow)
			v := d.Decode(tt.id)
			if v.Warnings != tt.want {
				t.Errorf("warnings %v, want %v", v.Warnings.Codes(), tt.want.Codes())
			}
			if tt.timeIs != "" && v.Instant().String() != tt.timeIs {
				t.Errorf("time %s, want %s", v.Instant(), tt.timeIs)
			}
		})
	}
	// before_epoch keeps the lower fields intact.
	d := NewDecoder(twitter, testNow)
	v := d.Decode(beforeEpochID)
	if w, _ := d.Field(&v, "worker"); w != 1 {
		t.Errorf("worker %d, want 1", w)
	}
	if s, _ := d.Field(&v, "sequence"); s != 5 {
		t.Errorf("sequence %d, want 5", s)
	}
	if v.Ticks != -1000 {
		t.Errorf("ticks %d, want -1000", v.Ticks)
	}
	if got := strings.Join(WarnFuture.Messages(), ""); !strings.Contains(got, "future") {
		t.Errorf("message %q", got)
	}
}

func TestAppendTimestampMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []int64{0, -1, 1, 86_399_999, 86_400_000, -86_400_000, 951782400000 /* 2000-02-29 */, 253402300799999}
	for i := 0; i < 20000; i++ {
		cases = append(cases, r.Int64N(253402300799999+62135596800000)-62135596800000) // years 0001..9999
	}
	for _, ms := range cases {
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		if got := string(AppendTimestamp(nil, ms)); got != want {
			t.Fatalf("%d: got %s, want %s", ms, got, want)
		}
	}
	// Past year 9999 (time.Time's JSON gives up there) and the saturated extremes.
	if got := string(AppendTimestamp(nil, 1<<48)); got != "10889-08-02T05:31:50.656Z" {
		t.Errorf("2^48 ms: %s", got)
	}
	for _, ms := range []int64{math.MaxInt64, math.MinInt64} {
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		if got := string(AppendTimestamp(nil, ms)); got != want {
			t.Errorf("%d: got %s, want %s", ms, got, want)
		}
	}
	b, err := json.Marshal(struct{ T Instant }{Instant(1 << 48)})
	if err != nil || !strings.Contains(string(b), "10889-") {
		t.Errorf("Instant JSON past 9999: %s %v", b, err)
	}
}

func TestAppendAge(t *testing.T) {
	for ms, want := range map[int64]string{
		0: "0ms", 850: "850ms", 42_000: "42s", 723_000: "12m3s", 60_000: "1m",
		5*3_600_000 + 12*60_000: "5h12m", 45*86_400_000 + 3*3_600_000: "45d3h",
		(9*365 + 142) * 86_400_000: "9y142d", -3000: "3s in the future", -(28*365 + 67) * 86_400_000: "28y67d in the future",
		math.MinInt64: "292471208y247d in the future",
	} {
		if got := string(AppendAge(nil, ms)); got != want {
			t.Errorf("%d: %q, want %q", ms, got, want)
		}
	}
}

func TestAppendCSVAndJSON(t *testing.T) {
	d := NewDecoder(mustPreset(t, "discord"), testNow)
	v := d.Decode(175928847299117063)
	if got := string(d.AppendCSVHeader(nil)); got != "id,layout,timestamp,unix_ms,age,worker,process,increment,warnings\n" {
		t.Errorf("header %q", got)
	}
	if got := string(d.AppendCSV(nil, &v)); got != "175928847299117063,discord,2016-04-30T11:18:25.796Z,1462015105796,9y307d,1,0,7,js_unsafe\n" {
		t.Errorf("csv %q", got)
	}
	want := `{"id":"175928847299117063","layout":"discord","timestamp":"2016-04-30T11:18:25.796Z","unix_ms":1462015105796,"age":"9y307d","fields":{"worker":1,"process":0,"increment":7},"warnings":["js_unsafe"]}` + "\n"
	if got := string(d.AppendJSON(nil, &v)); got != want {
		t.Errorf("json\n got %s\nwant %s", got, want)
	}
	// A field wider than 53 bits is a JSON string; no warnings is [].
	l, err := ParseSpec("time:8:1h,big:55", time.UnixMilli(0))
	if err != nil {
		t.Fatal(err)
	}
	d2 := NewDecoder(l, testNow)
	v2 := d2.Decode(1<<55 - 1)
	var rec struct {
		ID       string
		Fields   map[string]any
		Warnings []string
	}
	line := d2.AppendJSON(nil, &v2)
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if rec.Fields["big"] != "36028797018963967" || strings.Join(rec.Warnings, ",") != "layout_expired,js_unsafe" {
		t.Errorf("record %+v from %s", rec, line)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	d := NewDecoder(mustPreset(t, "twitter"), testNow)
	buf := make([]byte, 0, 4096)
	var v Decoded
	allocs := testing.AllocsPerRun(1000, func() {
		id, _ := ParseIDBytes([]byte("1790000000000000000"))
		d.DecodeInto(id, &v)
		buf = d.AppendCSV(buf[:0], &v)
		buf = d.AppendJSON(buf[:0], &v)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per ID, want 0", allocs)
	}
}

func TestRank(t *testing.T) {
	now := time.Now()
	gen := func(name string, nodes map[string]int64) uint64 {
		g, err := NewGenerator(GeneratorConfig{Layout: mustPreset(t, name), Nodes: nodes, Clock: &fakeClock{t: now}})
		if err != nil {
			t.Fatal(err)
		}
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tests := []struct {
		name        string
		id          uint64
		top         string
		implausible []string
	}{
		{"fresh twitter id", gen("twitter", map[string]int64{"datacenter": 1, "worker": 3}), "twitter", []string{"discord", "mastodon"}},
		{"fresh mastodon id", gen("mastodon", nil), "mastodon", nil},
		{"fresh sonyflake-v2 id", gen("sonyflake-v2", map[string]int64{"machine": 7}), "sonyflake-v2", nil},
		{"fresh discord id", gen("discord", map[string]int64{"worker": 1}), "discord", []string{"mastodon"}},
		{"discord's documented id", 175928847299117063, "discord", []string{"mastodon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Rank(tt.id, now, nil)
			if len(c) != len(Presets()) {
				t.Fatalf("%d candidates", len(c))
			}
			if c[0].Name != tt.top {
				for _, x := range c {
					t.Logf("%-13s %.3f %v %s %v", x.Name, x.Score, x.Plausible, x.Timestamp, x.Reasons)
				}
				t.Errorf("top %s, want %s", c[0].Name, tt.top)
			}
			for i := 1; i < len(c); i++ {
				if c[i].Score > c[i-1].Score {
					t.Errorf("not sorted at %d", i)
				}
			}
			for _, name := range tt.implausible {
				for _, x := range c {
					if x.Name == name && x.Plausible {
						t.Errorf("%s reading (%s) should be implausible", name, x.Timestamp)
					}
				}
			}
		})
	}
	// A tiny number sits at every epoch: every reading is marked.
	for _, x := range Rank(42, now, nil) {
		if len(x.Reasons) == 0 {
			t.Errorf("%s: no reason given for id 42", x.Name)
		}
	}
}

func TestDecodeStream(t *testing.T) {
	in := "175928847299117063\r\n\n  0x271000000007 \nnot-an-id\n-4\n" + strings.Repeat("9", 70000) + "\n175928847299117063"
	var out bytes.Buffer
	var bad []string
	d := NewDecoder(mustPreset(t, "discord"), testNow)
	st, err := DecodeStream(strings.NewReader(in), &out, d, CSV, func(line int, text []byte, err error) {
		bad = append(bad, fmtLine(line, err))
		if errs.KindOf(err) != errs.KindUsage {
			t.Errorf("line %d: kind %v", line, errs.KindOf(err))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if st != (StreamStats{Lines: 7, Good: 3, Failed: 3}) {
		t.Errorf("stats %+v", st)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "id,layout") || lines[2] != "42949672960007,discord,2015-01-01T02:50:40.000Z,1420080640000,11y62d,0,0,7," {
		t.Errorf("output:\n%s", out.String())
	}
	want := []string{`4: id "not-an-id": not a decimal or 0x-hex number`, `5: id "-4": negative; IDs are unsigned 64-bit numbers`, "6: line 6: longer than 65536 bytes; not an ID"}
	if strings.Join(bad, "|") != strings.Join(want, "|") {
		t.Errorf("bad lines %q", bad)
	}
	out.Reset()
	if _, err := DecodeStream(strings.NewReader("1\n2\n"), &out, d, JSONL, nil); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
}

func fmtLine(line int, err error) string {
	return strconv.Itoa(line) + ": " + err.Error()
}
