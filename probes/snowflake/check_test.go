package snowflake

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"
)

func twitterID(ms int64, dc, worker, seq uint64) uint64 {
	return uint64(ms-1288834974657)<<22 | dc<<17 | worker<<12 | seq
}

func TestChecker(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	stream := []uint64{
		twitterID(base, 0, 1, 0),         // 1
		twitterID(base, 0, 2, 0),         // 2
		twitterID(base+10, 0, 1, 0),      // 3
		twitterID(base+5, 0, 2, 0),       // 4: out of order overall (below line 3), fine for worker 2
		twitterID(base+10, 0, 1, 0),      // 5: duplicate of line 3 (above line 4, so in order)
		twitterID(base+1000, 0, 1, 0),    // 6
		twitterID(base+400, 0, 1, 1),     // 7: worker 1 steps back 600ms
		twitterID(base+2000, 1, 1, 0),    // 8: another datacenter
		twitterID(base+10, 0, 1, 0),      // 9: duplicate again, worker 1 steps back 390ms
		twitterID(base+2000, 0, 2, 0),    // 10
		twitterID(base+1999, 0, 2, 4095), // 11: worker 2 steps back 1ms
	}
	c := NewChecker(mustPreset(t, "twitter"), CheckOptions{Now: testNow})
	for i, id := range stream {
		c.Add(id, i+1)
	}
	r := c.Report()
	if r.Count != 11 || r.Distinct != 9 {
		t.Errorf("count %d distinct %d", r.Count, r.Distinct)
	}
	if r.First.String() != "2024-01-01T00:00:00.000Z" || r.Last.String() != "2024-01-01T00:00:02.000Z" || r.SpanMs != 2000 {
		t.Errorf("span %s..%s %d", r.First, r.Last, r.SpanMs)
	}
	if r.DuplicateIDs != 1 || r.DuplicateExtra != 2 || len(r.Duplicates) != 1 ||
		r.Duplicates[0].ID != stream[2] || r.Duplicates[0].Count != 3 || len(r.Duplicates[0].RepeatLines) != 2 ||
		r.Duplicates[0].RepeatLines[0] != 5 || r.Duplicates[0].RepeatLines[1] != 9 {
		t.Errorf("duplicates %+v", r.Duplicates)
	}
	// Decreasing adjacent pairs: 3->4, 6->7, 8->9, 10->11.
	if r.OutOfOrder != 4 || len(r.OutOfOrderList) != 4 || r.OutOfOrderList[0].PrevLine != 3 || r.OutOfOrderList[0].Line != 4 {
		t.Errorf("out of order %d %+v", r.OutOfOrder, r.OutOfOrderList)
	}
	if len(r.Workers) != 3 {
		t.Fatalf("workers %+v", r.Workers)
	}
	w1, w2, dc1 := r.Workers[0], r.Workers[1], r.Workers[2]
	if w1.Worker != "datacenter=0,worker=1" || w2.Worker != "datacenter=0,worker=2" || dc1.Worker != "datacenter=1,worker=1" {
		t.Errorf("worker order %s %s %s", w1.Worker, w2.Worker, dc1.Worker)
	}
	if w1.Count != 6 || w1.ClockSteps != 2 || w1.MaxStepMs != 600 || !w1.ClockSkewSuspect || w1.OutOfOrder != 2 ||
		w1.Steps[0].PrevLine != 6 || w1.Steps[0].Line != 7 || w1.Steps[0].StepMs != 600 || w1.Steps[1].StepMs != 390 {
		t.Errorf("worker 1 %+v", w1)
	}
	if w2.Count != 4 || w2.ClockSteps != 1 || w2.MaxStepMs != 1 || w2.OutOfOrder != 1 {
		t.Errorf("worker 2 %+v", w2)
	}
	if dc1.ClockSkewSuspect || dc1.Count != 1 || dc1.IDsPerSecond != nil { // one ID: no span, no rate
		t.Errorf("dc 1 %+v, want no rate over a zero span", dc1)
	}
	if w1.IDsPerSecond == nil || *w1.IDsPerSecond != 6 { // 6 IDs over base..base+1000
		t.Errorf("worker 1 rate %v", w1.IDsPerSecond)
	}
	if len(r.SkewSuspects) != 2 || r.SkewSuspects[0] != "datacenter=0,worker=1" {
		t.Errorf("suspects %v", r.SkewSuspects)
	}
	if r.Warnings["js_unsafe"] != 11 || r.Truncated {
		t.Errorf("warnings %v truncated %v", r.Warnings, r.Truncated)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["first"] != "2024-01-01T00:00:00.000Z" {
		t.Errorf("json %s", b)
	}

	// Caps: lists stop at MaxListed, counts go on, Truncated says so.
	c = NewChecker(mustPreset(t, "twitter"), CheckOptions{MaxListed: 2, Now: testNow})
	for i := 0; i < 10; i++ {
		c.Add(twitterID(base-int64(i), 0, 0, 0), i+1) // every step goes back
		c.Add(twitterID(base-int64(i), 0, 0, 0), i+1) // and repeats
	}
	r = c.Report()
	if r.OutOfOrder != 9 || len(r.OutOfOrderList) != 2 || r.DuplicateIDs != 10 || len(r.Duplicates) != 2 || !r.Truncated ||
		r.Workers[0].ClockSteps != 9 || len(r.Workers[0].Steps) != 2 {
		t.Errorf("capped report: %s %+v", r, r.Workers[0])
	}
}

func TestCheckerNoNodeFields(t *testing.T) {
	c := NewChecker(mustPreset(t, "mastodon"), CheckOptions{Now: testNow})
	c.Add(uint64(testNow.UnixMilli())<<16, 1)
	r := c.Report()
	if len(r.Workers) != 1 || r.Workers[0].Worker != "all" {
		t.Errorf("%+v", r.Workers)
	}
}

// TestCheckerMemory measures the documented cost of the duplicate set.
func TestCheckerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~20 MB")
	}
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewChecker(mustPreset(t, "twitter"), CheckOptions{Now: testNow})
	base := testNow.UnixMilli() - 3_600_000
	for i := 0; i < n; i++ {
		c.Add(twitterID(base+int64(i/4096), 0, 1, uint64(i%4096)), i+1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perID := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("checker holds %.1f bytes per distinct ID (%d IDs)", perID, n)
	if perID < 10 || perID > 22 {
		t.Errorf("%.1f bytes per ID; the doc promises 10.7 to 21.3", perID)
	}
	runtime.KeepAlive(c)
}

func TestIDSet(t *testing.T) {
	var s idSet
	ref := map[uint64]bool{}
	r := uint64(1)
	for i := 0; i < 200_000; i++ {
		r = r*6364136223846793005 + 1442695040888963407
		id := r % 50_000 // plenty of repeats, and 0
		if i%7 == 0 {
			id = uint64(i) << 22
		}
		if got, want := s.add(id), !ref[id]; got != want {
			t.Fatalf("add(%d) = %v, want %v", id, got, want)
		}
		ref[id] = true
	}
	if s.len() != len(ref) {
		t.Errorf("len %d, want %d", s.len(), len(ref))
	}
}
