package id

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

func layout(t *testing.T, format string, o LayoutOptions) (*env, error) {
	t.Helper()
	e := newEnv(t, format)
	if o.Now.IsZero() {
		o.Now = testNow
	}
	return e, RunLayout(e.f, e.p, &o)
}

func TestLayoutTwitter(t *testing.T) {
	e, err := layout(t, "", LayoutOptions{Name: "twitter"})
	if err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{
		"layout:     twitter",
		"bits:       63 (bit 63 is a sign bit, always 0)",
		"epoch:      2010-11-04T01:42:54.657Z",
		// 1288834974657 + 2^41 ms
		"runs out:   2080-07-10T17:30:30.209Z (in 54y145d)",
		"max IDs/s:  4,096,000 per node",
		"nodes:      1,024",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	fields := strings.Fields(out[strings.Index(out, "FIELD"):])
	if strings.Join(fields[5:25], " ") != "time 41 62..22 time 0..2,199,023,255,551 datacenter 5 21..17 node 0..31 worker 5 16..12 node 0..31 sequence 12 11..0 sequence 0..4,095" {
		t.Errorf("fields table:\n%s", out)
	}

	e, _ = layout(t, "json", LayoutOptions{Name: "twitter"})
	var in struct {
		Name    string  `json:"name"`
		RunsOut string  `json:"runs_out"`
		Max     float64 `json:"max_ids_per_second_per_node"`
		Nodes   uint64  `json:"nodes"`
		Expired bool    `json:"expired"`
		Fields  []struct {
			Name string `json:"name"`
			Bits int    `json:"bits"`
			Role string `json:"role"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &in); err != nil {
		t.Fatal(err)
	}
	if in.Name != "twitter" || in.RunsOut != "2080-07-10T17:30:30.209Z" || in.Max != 4096000 || in.Nodes != 1024 || in.Expired ||
		len(in.Fields) != 4 || in.Fields[0].Role != "time" || in.Fields[3].Bits != 12 {
		t.Errorf("json %+v", in)
	}
}

func TestLayoutBaiduSaysItRanOut(t *testing.T) {
	e, _ := layout(t, "", LayoutOptions{Name: "baidu"})
	if !strings.Contains(e.out.String(), "runs out:   2024-11-20T13:24:16.000Z (expired 1y100d ago: the time bits have run out") {
		t.Errorf("baidu:\n%s", e.out)
	}
	e, _ = layout(t, "csv", LayoutOptions{Name: "baidu"})
	if want := "name,fields,unit,epoch,runs_out,ids_per_s_per_node,nodes,expired\n" +
		"baidu,time:28 worker:22 sequence:13,1s,2016-05-19T16:00:00.000Z,2024-11-20T13:24:16.000Z,8192,4194304,yes\n"; e.out.String() != want {
		t.Errorf("csv:\n%s", e.out)
	}
}

func TestLayoutList(t *testing.T) {
	e, err := layout(t, "", LayoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	names := snowflake.PresetNames()
	if len(lines) != len(names)+1 {
		t.Fatalf("list:\n%s", e.out)
	}
	for i, n := range names {
		if !strings.HasPrefix(lines[i+1], n+" ") {
			t.Errorf("row %d %q, want %s", i, lines[i+1], n)
		}
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "twitter time:41 datacenter:5 worker:5 sequence:12 1ms 2010-11-04 2080-07-10 4,096,000 1,024 no" {
		t.Errorf("twitter row %q", lines[1])
	}
	if !strings.HasPrefix(lines[4], "sonyflake ") || !strings.Contains(lines[4], " 25,600 ") {
		t.Errorf("sonyflake rate (256 per 10ms):\n%s", e.out)
	}
	e, _ = layout(t, "jsonl", LayoutOptions{})
	if n := strings.Count(e.out.String(), "\n"); n != len(names) {
		t.Errorf("jsonl: %d lines", n)
	}
}

func TestLayoutCustomAndErrors(t *testing.T) {
	e, err := layout(t, "json", LayoutOptions{Name: "time:39:10ms,sequence:8,machine:16", Epoch: "2014-09-01"})
	if err != nil || !strings.Contains(e.out.String(), `"max_ids_per_second_per_node": 25600`) || !strings.Contains(e.out.String(), `"nodes": 65536`) {
		t.Fatalf("custom: %v\n%s", err, e.out)
	}
	for _, o := range []LayoutOptions{{Name: "nope"}, {Name: "auto"}, {Name: "time:41:1ms,worker:10,sequence:12"}, {Epoch: "2020-01-01"}} {
		if _, err := layout(t, "", o); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
