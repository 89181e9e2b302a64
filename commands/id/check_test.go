package id

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

func twitterID(ms int64, dc, worker, seq uint64) uint64 {
	return uint64(ms-1288834974657)<<22 | dc<<17 | worker<<12 | seq
}

// craftedStream has a duplicate (lines 3, 5 and 9), worker 1 stepping back 600ms and
// 390ms, worker 2 stepping back 1ms, and a lone ID from datacenter 1.
func craftedStream() (string, []uint64) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	ids := []uint64{
		twitterID(base, 0, 1, 0),         // 1
		twitterID(base, 0, 2, 0),         // 2
		twitterID(base+10, 0, 1, 0),      // 3
		twitterID(base+5, 0, 2, 0),       // 4: below line 3
		twitterID(base+10, 0, 1, 0),      // 5: duplicate of line 3
		twitterID(base+1000, 0, 1, 0),    // 6
		twitterID(base+400, 0, 1, 1),     // 7: worker 1 steps back 600ms
		twitterID(base+2000, 1, 1, 0),    // 8: datacenter 1
		twitterID(base+10, 0, 1, 0),      // 9: duplicate again; worker 1 steps back 390ms
		twitterID(base+2000, 0, 2, 0),    // 10
		twitterID(base+1999, 0, 2, 4095), // 11: worker 2 steps back 1ms
	}
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintln(&b, id)
	}
	return b.String(), ids
}

func check(t *testing.T, format, stdin string, o CheckOptions) (*env, error) {
	t.Helper()
	e := newEnv(t, format)
	e.in.WriteString(stdin)
	if o.Now.IsZero() {
		o.Now = testNow
	}
	if o.MaxListed == 0 {
		o.MaxListed = 100
	}
	return e, RunCheck(context.Background(), e.f, e.p, &o)
}

func TestCheckCraftedStream(t *testing.T) {
	stdin, ids := craftedStream()
	e, err := check(t, "json", stdin, CheckOptions{Layout: "twitter"})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Count      int    `json:"count"`
		Distinct   int    `json:"distinct"`
		First      string `json:"first"`
		Last       string `json:"last"`
		SpanMs     int64  `json:"span_ms"`
		Duplicates []struct {
			ID          string `json:"id"`
			Count       int    `json:"count"`
			RepeatLines []int  `json:"repeat_lines"`
		} `json:"duplicates"`
		OutOfOrder int `json:"out_of_order"`
		Workers    []struct {
			Worker    string   `json:"worker"`
			Count     int      `json:"count"`
			Suspect   bool     `json:"clock_skew_suspect"`
			MaxStepMs int64    `json:"max_step_ms"`
			Rate      *float64 `json:"ids_per_second"`
			Steps     []struct {
				PrevLine int    `json:"prev_line"`
				Line     int    `json:"line"`
				From     string `json:"from"`
				To       string `json:"to"`
				StepMs   int64  `json:"step_ms"`
			} `json:"steps"`
		} `json:"workers"`
		Suspects []string `json:"clock_skew_suspects"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, e.out)
	}
	if r.Count != 11 || r.Distinct != 9 || r.First != "2024-01-01T00:00:00.000Z" || r.Last != "2024-01-01T00:00:02.000Z" || r.SpanMs != 2000 {
		t.Errorf("summary %+v", r)
	}
	if len(r.Duplicates) != 1 || r.Duplicates[0].ID != fmt.Sprint(ids[2]) || r.Duplicates[0].Count != 3 ||
		fmt.Sprint(r.Duplicates[0].RepeatLines) != "[5 9]" {
		t.Errorf("duplicates %+v", r.Duplicates)
	}
	if r.OutOfOrder != 4 {
		t.Errorf("out of order %d", r.OutOfOrder)
	}
	if strings.Join(r.Suspects, " ") != "datacenter=0,worker=1 datacenter=0,worker=2" || len(r.Workers) != 3 {
		t.Fatalf("suspects %v workers %+v", r.Suspects, r.Workers)
	}
	w1 := r.Workers[0]
	if w1.Worker != "datacenter=0,worker=1" || w1.Count != 6 || !w1.Suspect || w1.MaxStepMs != 600 || len(w1.Steps) != 2 ||
		w1.Steps[0].PrevLine != 6 || w1.Steps[0].Line != 7 || w1.Steps[0].StepMs != 600 ||
		w1.Steps[0].From != "2024-01-01T00:00:01.000Z" || w1.Steps[0].To != "2024-01-01T00:00:00.400Z" || w1.Steps[1].StepMs != 390 {
		t.Errorf("worker 1 %+v", w1)
	}
	if r.Workers[2].Suspect || r.Workers[2].Worker != "datacenter=1,worker=1" {
		t.Errorf("datacenter 1 %+v", r.Workers[2])
	}
	// A rate needs a time span: one lone ID has none, so its rate is null, not 1,000,000/s.
	if r.Workers[2].Rate != nil || w1.Rate == nil || *w1.Rate != 6 {
		t.Errorf("rates: datacenter 1 %v (want null), worker 1 %v (want 6)", r.Workers[2].Rate, w1.Rate)
	}

	// The table says the same to a person.
	e, err = check(t, "", stdin, CheckOptions{Layout: "twitter"})
	if err != nil {
		t.Fatal(err)
	}
	out := e.out.String()
	for _, want := range []string{
		"ids:           11 (9 distinct)",
		"duplicates:    1 ID repeated, 2 extra occurrences",
		"out of order:  4 adjacent pairs where the ID goes down",
		"clock skew:    2 workers whose time steps back: datacenter=0,worker=1; datacenter=0,worker=2",
		fmt.Sprintf("%d      3  5, 9", ids[2]),
		"datacenter=0,worker=1          6     7  2024-01-01T00:00:01.000Z  2024-01-01T00:00:00.400Z  600ms",
		"datacenter=0,worker=2         10    11  2024-01-01T00:00:02.000Z  2024-01-01T00:00:01.999Z    1ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "datacenter=0,worker=1 ") && strings.Contains(l, "2024-01-01T00:00:00.000Z") && !strings.HasSuffix(l, "600ms  SUSPECT") {
			t.Errorf("worker row %q", l)
		}
		if strings.HasPrefix(l, "datacenter=1,worker=1 ") && !strings.Contains(l, "2024-01-01T00:00:02.000Z          -") {
			t.Errorf("lone ID's worker row %q, want rate -", l)
		}
	}
}

func TestCheckCleanStreamAndBadLines(t *testing.T) {
	e, err := generate(t, "", GenerateOptions{Layout: "discord", Worker: 3, WorkerSet: true, Count: 5000})
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Split(strings.TrimSpace(e.out.String()), "\n")
	stdin := strings.Join(ids[:2500], "\n") + "\nbogus\n" + strings.Join(ids[2500:], "\n") + "\n"
	c, err := check(t, "json", stdin, CheckOptions{Layout: "discord", Now: time.Now()})
	var p *errs.Partial
	if !errors.As(err, &p) || p.Failed != 1 || p.Total != 5001 {
		t.Fatalf("err %v", err)
	}
	if c.errOut.String() != "line 2501: id \"bogus\": not a decimal or 0x-hex number\n" {
		t.Errorf("stderr %q", c.errOut)
	}
	var r struct {
		Count      int      `json:"count"`
		Distinct   int      `json:"distinct"`
		OutOfOrder int      `json:"out_of_order"`
		Suspects   []string `json:"clock_skew_suspects"`
		Workers    []struct {
			Worker string `json:"worker"`
		} `json:"workers"`
	}
	json.Unmarshal(c.out.Bytes(), &r)
	if r.Count != 5000 || r.Distinct != 5000 || r.OutOfOrder != 0 || len(r.Suspects) != 0 ||
		len(r.Workers) != 1 || r.Workers[0].Worker != "worker=3,process=0" {
		t.Errorf("report %+v", r)
	}
}

func TestCheckErrors(t *testing.T) {
	if _, err := check(t, "", "1\n", CheckOptions{}); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "needs one --layout") {
		t.Errorf("no layout: %v", err)
	}
	if _, err := check(t, "", "", CheckOptions{Layout: "twitter"}); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "no IDs on stdin") {
		t.Errorf("empty: %v", err)
	}
	if _, err := check(t, "", "1\n", CheckOptions{Layout: "twitter", MaxListed: -1}); errs.KindOf(err) != errs.KindUsage {
		t.Errorf("max listed: %v", err)
	}
}
