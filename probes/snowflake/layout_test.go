package snowflake

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// The table of presets, checked field by field (name:bits, most significant first).
func TestPresetsMatchTheirSources(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		unit   time.Duration
		epoch  string
		total  int
		runOut string
	}{
		{"twitter", "time:41,datacenter:5,worker:5,sequence:12", time.Millisecond, "2010-11-04T01:42:54.657Z", 63, "2080-07-10T17:30:30.209Z"},
		{"discord", "time:42,worker:5,process:5,increment:12", time.Millisecond, "2015-01-01T00:00:00Z", 64, "2154-05-15T07:35:11.104Z"},
		{"instagram", "time:41,shard:13,sequence:10", time.Millisecond, "2011-08-24T21:07:01.721Z", 64, "2081-04-30T12:54:37.273Z"},
		{"sonyflake", "time:39,sequence:8,machine:16", 10 * time.Millisecond, "2014-09-01T00:00:00Z", 63, "2188-11-16T03:28:58.880Z"},
		{"sonyflake-v2", "time:39,sequence:8,machine:16", 10 * time.Millisecond, "2025-01-01T00:00:00Z", 63, "2199-03-19T03:28:58.880Z"},
		{"baidu", "time:28,worker:22,sequence:13", time.Second, "2016-05-19T16:00:00Z", 63, "2024-11-20T13:24:16Z"},
		{"leaf", "time:41,worker:10,sequence:12", time.Millisecond, "2010-11-04T01:42:54.657Z", 63, "2080-07-10T17:30:30.209Z"},
		{"bwmarrin", "time:41,node:10,step:12", time.Millisecond, "2010-11-04T01:42:54.657Z", 63, "2080-07-10T17:30:30.209Z"},
		{"mastodon", "time:48,sequence:16", time.Millisecond, "1970-01-01T00:00:00Z", 64, "10889-08-02T05:31:50.656Z"},
		{"influxdb", "time:42,machine:10,sequence:12", time.Millisecond, "2017-04-09T00:00:00Z", 64, "2156-08-21T07:35:11.104Z"},
	}
	if len(tests) != len(Presets()) {
		t.Fatalf("table has %d presets, package has %d", len(tests), len(Presets()))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Preset(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if PresetNames()[i] != tt.name {
				t.Errorf("preset %d is %s, want %s", i, PresetNames()[i], tt.name)
			}
			var got []string
			for _, f := range l.Fields() {
				got = append(got, f.Name+":"+strconv.Itoa(f.Bits))
			}
			if g := strings.Join(got, ","); g != tt.spec {
				t.Errorf("fields %s, want %s", g, tt.spec)
			}
			if l.Unit() != tt.unit {
				t.Errorf("unit %s, want %s", l.Unit(), tt.unit)
			}
			if e := Instant(l.EpochMs()).String(); !strings.HasPrefix(e, strings.TrimSuffix(tt.epoch, "Z")) {
				t.Errorf("epoch %s, want %s", e, tt.epoch)
			}
			if l.TotalBits() != tt.total {
				t.Errorf("total %d bits, want %d", l.TotalBits(), tt.total)
			}
			if r := Instant(l.RunsOutMs()).String(); !strings.HasPrefix(r, strings.TrimSuffix(tt.runOut, "Z")) {
				t.Errorf("runs out %s, want %s", r, tt.runOut)
			}
			if l.Note() == "" {
				t.Error("preset has no source note")
			}
		})
	}
}

func TestLayoutInfo(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		perSecond float64
		nodes     uint64
		expired   bool
		timeBits  int
	}{
		{"twitter", 4_096_000, 1024, false, 41},
		{"discord", 4_096_000, 1024, false, 42},
		{"instagram", 1_024_000, 8192, false, 41},
		{"sonyflake", 25_600, 65536, false, 39},
		{"baidu", 8192, 1 << 22, true, 28},
		{"mastodon", 65_536_000, 1, false, 48},
		{"influxdb", 4_096_000, 1024, false, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := Preset(tt.name)
			in := l.Info(now)
			if in.MaxPerSecondPerNode != tt.perSecond {
				t.Errorf("max/s %v, want %v", in.MaxPerSecondPerNode, tt.perSecond)
			}
			if in.Nodes != tt.nodes {
				t.Errorf("nodes %d, want %d", in.Nodes, tt.nodes)
			}
			if in.Expired != tt.expired {
				t.Errorf("expired %v, want %v", in.Expired, tt.expired)
			}
			if in.TimeBits != tt.timeBits {
				t.Errorf("time bits %d, want %d", in.TimeBits, tt.timeBits)
			}
			if in.SignBit != (l.TotalBits() == 63) {
				t.Errorf("sign bit %v for %d bits", in.SignBit, l.TotalBits())
			}
		})
	}
	tw, _ := Preset("twitter")
	if y := tw.Info(now).LifetimeYears; y < 69.6 || y > 69.8 {
		t.Errorf("twitter lifetime %.2f years, want ~69.7", y)
	}
}

func TestParseSpec(t *testing.T) {
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	good := []struct {
		spec   string
		fields string // name:bits:role
		unit   time.Duration
		total  int
	}{
		{"time:41:1ms,datacenter:5,worker:5,sequence:12", "time:41:time,datacenter:5:node,worker:5:node,sequence:12:sequence", time.Millisecond, 63},
		{" Time : 42 : 10ms , Shard:10 ,seq:12", "time:42:time,shard:10:node,seq:12:sequence", 10 * time.Millisecond, 64},
		{"ts:48,counter:16", "ts:48:time,counter:16:sequence", time.Millisecond, 64},
		{"worker:10,t:41:1s,step:12", "worker:10:node,t:41:time,step:12:sequence", time.Second, 63},
		{"time:32:1h,a:31", "time:32:time,a:31:node", time.Hour, 63},
		{"time:64:1ms", "time:64:time", time.Millisecond, 64},
	}
	for _, tt := range good {
		t.Run(tt.spec, func(t *testing.T) {
			l, err := ParseSpec(tt.spec, epoch)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range l.Fields() {
				got = append(got, f.Name+":"+strconv.Itoa(f.Bits)+":"+f.Role.String())
			}
			if g := strings.Join(got, ","); g != tt.fields {
				t.Errorf("fields %s, want %s", g, tt.fields)
			}
			if l.Unit() != tt.unit || l.TotalBits() != tt.total || l.Name() != CustomName {
				t.Errorf("unit %s total %d name %s", l.Unit(), l.TotalBits(), l.Name())
			}
		})
	}
	bad := []struct{ spec, want string }{
		{"", "empty"},
		{"time:41:1ms,,worker:22", "field 2 is empty"},
		{"time:41:1ms,worker", "want name:bits"},
		{"time:41:1ms:x,worker:22", "want name:bits"},
		{"time:41:1ms,worker:5x,sequence:17", `bits "5x" is not a number 1..64`},
		{"time:41:1ms,worker:0,sequence:22", `bits "0"`},
		{"time:41:1ms,worker:65", `bits "65"`},
		{"time:41:2us,worker:22", "out of range; want 1ms..1h"},
		{"time:41:2h,worker:22", "out of range; want 1ms..1h"},
		{"time:41:1500us,worker:22", "not a whole number of milliseconds"},
		{"time:41:fast,worker:22", `unit "fast" is not a duration`},
		{"worker:41,sequence:22", "no time field"},
		{"time:41:1ms,clock:10:1s,sequence:12", "two time fields"},
		{"time:41:1ms,worker:10,worker:12", `field name "worker" used twice`},
		{"time:41:1ms,seq:10,sequence:12", "two sequence fields"},
		{"time:41:1ms,worker:10,sequence:10", "add up to 61 bits; want 63"},
		{"time:41:1ms,worker:12,sequence:12", "add up to 65 bits"},
		{"time:41:1ms,9lives:10,sequence:12", "must start with a letter"},
		{"time:41:1ms,wör:10,sequence:12", "must start with a letter"},
		{"time:41:1ms,id:10,sequence:12", "output column name"},
		{strings.Repeat("a:1,", 17) + "time:1:1ms", "at most 16"},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.spec, func(t *testing.T) {
			_, err := ParseSpec(tt.spec, epoch)
			if err == nil {
				t.Fatal("no error")
			}
			if errs.KindOf(err) != errs.KindUsage {
				t.Errorf("kind %v, want usage", errs.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "layout ") {
				t.Errorf("error %q does not name the layout input", err)
			}
		})
	}
}

func TestParseEpoch(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000Z", ""},
		{"2016-05-20T00:00:00+08:00", "2016-05-19T16:00:00.000Z", ""},
		{"2010-11-04T01:42:54.657Z", "2010-11-04T01:42:54.657Z", ""},
		{"2025-01-01", "2025-01-01T00:00:00.000Z", ""},
		{"1288834974657", "2010-11-04T01:42:54.657Z", ""},
		{" 0 ", "1970-01-01T00:00:00.000Z", ""},
		{"1420070400", "", "looks like Unix seconds"},
		{"-5", "", "before 1970"},
		{"1969-12-31T23:59:59Z", "", "before 1970"},
		{"9999999999999999", "", "too large"},
		{"2020-13-01", "", "not a timestamp"},
		{"yesterday", "", "not a timestamp"},
		{"", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEpoch(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || errs.KindOf(err) != errs.KindUsage {
					t.Fatalf("err %v, want usage error containing %q", err, tt.err)
				}
				if !strings.Contains(err.Error(), `epoch "`) {
					t.Errorf("error %q does not name the input", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := Instant(got.UnixMilli()).String(); s != tt.want {
				t.Errorf("got %s, want %s", s, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	l, err := Resolve("Discord", "")
	if err != nil || l.Name() != "discord" {
		t.Fatalf("Resolve(Discord) = %v, %v", l, err)
	}
	l, err = Resolve("instagram", "2020-01-01T00:00:00Z")
	if err != nil || l.EpochMs() != 1577836800000 {
		t.Fatalf("instagram with epoch: %v %v", l, err)
	}
	if p, _ := Preset("instagram"); p.EpochMs() != 1314220021721 {
		t.Errorf("WithEpoch changed the preset: %d", p.EpochMs())
	}
	l, err = Resolve("time:41:1ms,worker:10,sequence:12", "1577836800000")
	if err != nil || l.Name() != CustomName || l.EpochMs() != 1577836800000 {
		t.Fatalf("custom: %v %v", l, err)
	}
	for _, tt := range []struct{ layout, epoch, want string }{
		{"twiter", "", `layout "twiter": unknown`},
		{"time:41:1ms,worker:10,sequence:12", "", "needs an epoch"},
		{"twitter", "soon", `epoch "soon"`},
	} {
		_, err := Resolve(tt.layout, tt.epoch)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errs.KindOf(err) != errs.KindUsage {
			t.Errorf("Resolve(%q,%q) = %v, want usage error %q", tt.layout, tt.epoch, err, tt.want)
		}
	}
	_, err = Resolve("nope", "")
	if !strings.Contains(err.Error(), "twitter, discord") {
		t.Errorf("unknown layout error %q should list the presets", err)
	}
}

func TestWorkerFieldName(t *testing.T) {
	for name, want := range map[string]string{"twitter": "worker", "discord": "worker", "sonyflake": "machine",
		"instagram": "shard", "bwmarrin": "node", "mastodon": ""} {
		l, _ := Preset(name)
		if got := l.WorkerFieldName(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
