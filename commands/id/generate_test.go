package id

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

func generate(t *testing.T, format string, o GenerateOptions) (*env, error) {
	t.Helper()
	e := newEnv(t, format)
	if o.Count == 0 {
		o.Count = 1
	}
	if o.OnRollback == "" {
		o.OnRollback = "wait"
	}
	if o.MaxRollback == 0 {
		o.MaxRollback = time.Second
	}
	return e, RunGenerate(context.Background(), e.f, e.p, &o)
}

// -n 1000: strictly increasing, and each decodes back to the worker and datacenter given.
func TestGenerateIncreasingAndDecodesBack(t *testing.T) {
	e, err := generate(t, "", GenerateOptions{Layout: "twitter", Worker: 7, WorkerSet: true, Datacenter: 2, DatacenterSet: true, Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(e.out.String(), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines", len(lines))
	}
	var prev uint64
	for i, l := range lines {
		id, err := strconv.ParseUint(l, 10, 64)
		if err != nil {
			t.Fatalf("line %d %q: %v", i+1, l, err)
		}
		if i > 0 && id <= prev {
			t.Fatalf("line %d: %d not above %d", i+1, id, prev)
		}
		prev = id
	}

	// Through decode: every ID names worker 7 in datacenter 2, minted just now.
	d := mustDecode(t, "jsonl", e.out.String(), DecodeOptions{Layout: "twitter", Now: time.Now()})
	recs := strings.Split(strings.TrimSpace(d.out.String()), "\n")
	if len(recs) != 1000 {
		t.Fatalf("%d decoded", len(recs))
	}
	for _, r := range recs {
		var v sfJSON
		if err := json.Unmarshal([]byte(r), &v); err != nil {
			t.Fatal(err)
		}
		if v.Fields["worker"] != 7 || v.Fields["datacenter"] != 2 || time.Since(time.UnixMilli(v.UnixMs)) > time.Minute {
			t.Fatalf("decoded %+v", v)
		}
	}
}

func TestGenerateEveryPresetRoundTrips(t *testing.T) {
	for _, l := range snowflake.Presets() {
		if l.Expired(time.Now()) {
			continue // baidu's default layout ran out in 2024: see TestGenerateExpiredLayout
		}
		o := GenerateOptions{Layout: l.Name(), Count: 3}
		wf := l.WorkerFieldName()
		if wf != "" {
			o.Worker, o.WorkerSet = 5, true
		}
		e, err := generate(t, "json", o)
		if err != nil {
			t.Fatalf("%s: %v", l.Name(), err)
		}
		var ids []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(e.out.Bytes(), &ids); err != nil || len(ids) != 3 {
			t.Fatalf("%s: %v\n%s", l.Name(), err, e.out)
		}
		d := mustDecode(t, "json", "", DecodeOptions{IDs: []string{ids[0].ID, ids[2].ID}, Layout: l.Name(), Now: time.Now()})
		var recs []sfJSON
		json.Unmarshal(d.out.Bytes(), &recs)
		if wf != "" && (recs[0].Fields[wf] != 5 || recs[1].Fields[wf] != 5) {
			t.Errorf("%s: worker field %s = %v", l.Name(), wf, recs)
		}
		if len(recs[0].Warnings) > 0 && recs[0].Warnings[0] == "future" {
			t.Errorf("%s: fresh ID decodes to the future: %+v", l.Name(), recs[0])
		}
	}
}

func TestGenerateExpiredLayout(t *testing.T) {
	_, err := generate(t, "", GenerateOptions{Layout: "baidu", Worker: 1, WorkerSet: true})
	if err == nil || errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "ran out on 2024-11-20") {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerateFormats(t *testing.T) {
	o := GenerateOptions{Layout: "discord", Worker: 1, WorkerSet: true, Fields: []string{"process=2"}, Count: 2}
	e, err := generate(t, "csv", o)
	lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
	if err != nil || len(lines) != 3 || lines[0] != "id" {
		t.Fatalf("csv: %v\n%s", err, e.out)
	}
	e, _ = generate(t, "jsonl", o)
	for _, l := range strings.Split(strings.TrimSpace(e.out.String()), "\n") {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.ID == "" {
			t.Errorf("jsonl %q: %v", l, err)
		}
	}
	// YAML is one list, laid out like every other command's YAML list (no "---" documents).
	// (A new run mints new IDs: compare the layout, not the values.)
	e, _ = generate(t, "yaml", o)
	yamlItem := regexp.MustCompile(`^  - id: "[0-9]+"$`)
	if ylines := strings.Split(strings.TrimSuffix(e.out.String(), "\n"), "\n"); len(ylines) != 2 ||
		!yamlItem.MatchString(ylines[0]) || !yamlItem.MatchString(ylines[1]) || ylines[0] >= ylines[1] {
		t.Errorf("yaml:\n%s", e.out)
	}
	// --field sets discord's process.
	d := mustDecode(t, "json", "", DecodeOptions{IDs: []string{lines[1]}, Layout: "discord", Now: time.Now()})
	var recs []sfJSON
	json.Unmarshal(d.out.Bytes(), &recs)
	if recs[0].Fields["worker"] != 1 || recs[0].Fields["process"] != 2 {
		t.Errorf("decoded %+v", recs[0])
	}
}

func TestGenerateRangeChecks(t *testing.T) {
	tests := []struct {
		name string
		o    GenerateOptions
		want string
	}{
		{"worker too big", GenerateOptions{Layout: "twitter", Worker: 32, WorkerSet: true}, "worker 32 is out of range 0..31 for layout twitter"},
		{"negative worker", GenerateOptions{Layout: "twitter", Worker: -1, WorkerSet: true}, "worker -1 is out of range 0..31"},
		{"datacenter too big", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Datacenter: 40, DatacenterSet: true}, "datacenter 40 is out of range 0..31"},
		{"sonyflake machine", GenerateOptions{Layout: "sonyflake", Worker: 65536, WorkerSet: true}, "machine 65536 is out of range 0..65535"},
		{"worker missing", GenerateOptions{Layout: "twitter"}, "--worker is required for layout twitter (its worker field, 0..31)"},
		{"no datacenter field", GenerateOptions{Layout: "instagram", Worker: 1, WorkerSet: true, Datacenter: 1, DatacenterSet: true}, `no node field "datacenter"`},
		{"no worker field", GenerateOptions{Layout: "mastodon", Worker: 1, WorkerSet: true}, "layout mastodon has no worker field"},
		{"bad --field", GenerateOptions{Layout: "discord", Worker: 1, WorkerSet: true, Fields: []string{"process"}}, `--field "process": want NAME=N`},
		{"field twice", GenerateOptions{Layout: "discord", Worker: 1, WorkerSet: true, Fields: []string{"worker=2"}}, "worker is set twice"},
		{"count", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Count: -3}, "-n -3 is out of range; want 1 or more"},
		{"policy", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, OnRollback: "ignore"}, `clock rollback policy "ignore": unknown`},
		{"max rollback", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, MaxRollback: -time.Second}, "--max-rollback -1s is out of range"},
		{"auto", GenerateOptions{Layout: "auto", Worker: 1, WorkerSet: true}, "generating IDs needs one --layout, not auto"},
		{"no layout", GenerateOptions{Worker: 1, WorkerSet: true}, "generating IDs needs one --layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := generate(t, "", tt.o)
			if err == nil || errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want usage error with %q", err, tt.want)
			}
			if e.out.Len() != 0 {
				t.Errorf("output: %s", e.out)
			}
		})
	}
}

// stepClock is a fake clock: each Now is step after the last, and at call jumpAt it
// jumps back by jump. Sleep advances it.
type stepClock struct {
	mu     sync.Mutex
	t      time.Time
	step   time.Duration
	calls  int
	jumpAt int
	jump   time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == c.jumpAt {
		c.t = c.t.Add(-c.jump)
	}
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *stepClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestGenerateClockRollback(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// The clock jumps back 5s on the 4th reading: more than --max-rollback 1s.
	clk := &stepClock{t: start, step: time.Millisecond, jumpAt: 4, jump: 5 * time.Second}
	e, err := generate(t, "", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Count: 10, Clock: clk})
	if err == nil || errs.KindOf(err) != errs.KindRuntime || !strings.Contains(err.Error(), "clock moved backwards") ||
		!strings.Contains(err.Error(), "more than the 1s the wait policy allows") {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(e.out.String(), "\n"); n != 3 {
		t.Errorf("want the 3 IDs minted before the jump on stdout, got %d:\n%s", n, e.out)
	}

	// A 300ms step back under the wait policy is waited out, and the IDs stay increasing.
	clk = &stepClock{t: start, step: time.Millisecond, jumpAt: 4, jump: 300 * time.Millisecond}
	e, err = generate(t, "", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Count: 10, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(e.out.String())
	for i := 1; i < len(lines); i++ {
		a, _ := strconv.ParseUint(lines[i-1], 10, 64)
		b, _ := strconv.ParseUint(lines[i], 10, 64)
		if b <= a {
			t.Fatalf("not increasing after a wait: %v", lines)
		}
	}

	// --on-clock-rollback fail fails at the first step back.
	clk = &stepClock{t: start, step: time.Millisecond, jumpAt: 4, jump: 10 * time.Millisecond}
	_, err = generate(t, "", GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Count: 10, Clock: clk, OnRollback: "fail"})
	if err == nil || !strings.Contains(err.Error(), "rollback policy fail") {
		t.Fatalf("fail policy: %v", err)
	}
}

func TestGenerateProgressOnlyWhenStdoutIsNotTheTerminal(t *testing.T) {
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	for _, tc := range []struct{ stderrTTY, stdoutTTY, want bool }{{false, false, false}, {true, false, true}, {true, true, false}} {
		e := newEnv(t, "")
		e.ios.StderrTTY, e.ios.StdoutTTY = tc.stderrTTY, tc.stdoutTTY
		o := GenerateOptions{Layout: "twitter", Worker: 1, WorkerSet: true, Count: 20000, OnRollback: "wait", MaxRollback: time.Second}
		if err := RunGenerate(context.Background(), e.f, e.p, &o); err != nil {
			t.Fatal(err)
		}
		shown := strings.Contains(e.errOut.String(), "of 20,000 IDs (")
		if shown != tc.want {
			t.Errorf("stderr TTY %v, stdout TTY %v: progress %v: %q", tc.stderrTTY, tc.stdoutTTY, shown, e.errOut.String())
		}
		if n := strings.Count(e.out.String(), "\n"); n != 20000 {
			t.Errorf("%d IDs", n)
		}
	}
}
