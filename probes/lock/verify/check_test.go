package verify

import (
	"compress/gzip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// hist builds a history by hand: times in milliseconds.
type hist struct{ events []Event }

func ms(v float64) int64 { return int64(v * 1000) }

func (h *hist) add(e Event) { e.Seq = len(h.events) + 1; h.events = append(h.events, e) }

// lease records worker w's holding n: acquire invoked at inv, answered at ok with
// fence f and deadline dl; writes at ok and at end-1; release invoked at end,
// answered at ret with relType.
func (h *hist) lease(w, n int, f lock.FencingToken, inv, ok, dl, end, ret float64, relType string, accepted ...bool) {
	h.add(Event{TUs: ms(inv), Worker: w, Op: OpAcquire, Type: TypeInvoke})
	h.add(Event{TUs: ms(ok), Worker: w, Op: OpAcquire, Type: TypeOK, Holding: n, Fence: f, ExpiresUs: ms(dl)})
	h.add(Event{TUs: ms(ok), Worker: w, Op: OpWrite, Type: TypeOK, Holding: n, Fence: f})
	h.add(Event{TUs: ms(end), Worker: w, Op: OpRelease, Type: TypeInvoke, Holding: n})
	h.add(Event{TUs: ms(ret), Worker: w, Op: OpRelease, Type: relType, Holding: n})
}

func verdicts(r *Report) map[string]Property {
	m := map[string]Property{}
	for _, p := range r.Properties {
		m[p.Name] = p
	}
	return m
}

func wantVerdicts(t *testing.T, r *Report, want map[string]string) {
	t.Helper()
	got := verdicts(r)
	for name, v := range want {
		if got[name].Verdict != v {
			t.Errorf("%s = %s (%d violations: %s), want %s", name, got[name].Verdict, got[name].Violations, got[name].Detail, v)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d properties, want 6", len(got))
	}
}

const ttl = 100 * time.Millisecond

func TestCheckSequentialHistoryIsSafe(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 20, 21, TypeOK)
	h.lease(1, 1, 11, 2, 21.5, 120, 40, 41, TypeOK)
	h.lease(0, 2, 12, 22, 41.5, 140, 60, 61, TypeOK)
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	if !r.Safe || r.Violations != 0 || r.WorstOverlap != nil {
		t.Fatalf("sequential history judged unsafe: %+v", r.Properties)
	}
	wantVerdicts(t, r, map[string]string{PropMutualExclusion: VerdictOK, PropFenceOrder: VerdictOK, PropStaleWrites: VerdictOK,
		PropLeaseDeadline: VerdictOK, PropRunStopsInTime: VerdictOK, PropLinearizable: VerdictOK})
	if c := r.Counts; c.AcquireOK != 3 || c.Sections != 3 || c.ReleaseOK != 3 || c.WritesAccepted != 3 {
		t.Fatalf("counts %+v", c)
	}
}

func TestCheckFindsOverlapAndItsTimeline(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 30, 31, TypeOK)
	h.lease(1, 1, 11, 2, 20, 118, 50, 51, TypeOK) // acquired while worker 0 still held it
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropMutualExclusion: VerdictViolated, PropLinearizable: VerdictViolated, PropFenceOrder: VerdictOK})
	ov := r.WorstOverlap
	if ov == nil || ov.A.Worker != 0 || ov.B.Worker != 1 || ov.FromUs != ms(20) || ov.ToUs != ms(30) || ov.DurationMs != 10 {
		t.Fatalf("worst overlap %+v", ov)
	}
	if len(ov.Timeline) == 0 || r.Safe {
		t.Fatalf("timeline %v safe %v", ov.Timeline, r.Safe)
	}
}

// A holder's belief ends at its local deadline: a later holder after the deadline is
// not an overlap even though the first released later (it was paused).
func TestCheckBeliefEndsAtTheDeadline(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 150, 151, TypeFail)
	h.lease(1, 1, 11, 2, 101, 200, 120, 121, TypeOK)
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropMutualExclusion: VerdictOK, PropLeaseDeadline: VerdictOK,
		PropRunStopsInTime: VerdictOK, PropLinearizable: VerdictOK})
	if r.Counts.LeasesLost != 1 || r.Counts.Overran != 1 {
		t.Fatalf("counts %+v", r.Counts)
	}
}

func TestCheckFenceOrderAndStaleWrites(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 20, 21, TypeOK)
	h.lease(1, 1, 10, 2, 22, 120, 40, 41, TypeOK) // same fence as the holder before
	// worker 0 writes late with fence 10 after worker 1 (fence 10) wrote: accepted
	h.add(Event{TUs: ms(30), Worker: 0, Op: OpWrite, Type: TypeOK, Holding: 1, Fence: 10, Late: true})
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropFenceOrder: VerdictViolated, PropStaleWrites: VerdictViolated, PropMutualExclusion: VerdictOK})

	// Without fencing (quorum mode) neither is checked: exclusion is by belief only.
	r = Check(h.events, CheckOptions{TTL: ttl, FencingSafe: false})
	wantVerdicts(t, r, map[string]string{PropFenceOrder: VerdictNotChecked, PropStaleWrites: VerdictNotChecked, PropMutualExclusion: VerdictOK})
	if !r.Safe || r.FencingChecked {
		t.Fatalf("quorum-mode history: safe %v fencing checked %v", r.Safe, r.FencingChecked)
	}
}

func TestCheckLeaseLostBeforeDeadline(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 20, 21, TypeFail) // "not held" 78ms before the deadline
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropLeaseDeadline: VerdictViolated})
}

// A backend whose leases end with the connection (SQL session locks) may report a loss
// before the local deadline: expected, not a violation, unless someone else held the
// lock before that deadline (mutual exclusion still catches that).
func TestCheckEarlyLossExpectedWhenLeasesEndWithTheConnection(t *testing.T) {
	var h hist
	h.lease(0, 1, 10, 0, 1, 99, 20, 21, TypeFail) // "not held" 78ms before the deadline
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true, EndsWithConnection: true})
	wantVerdicts(t, r, map[string]string{PropLeaseDeadline: VerdictOK, PropMutualExclusion: VerdictOK})
	if !r.Safe || r.Violations != 0 {
		t.Fatalf("safe %v, %d violations", r.Safe, r.Violations)
	}
	// Someone else taking it while the first holder still believed it held (before it
	// learned of the loss) is still an overlap.
	h.lease(1, 1, 11, 5, 10, 108, 50, 51, TypeOK)
	r = Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true, EndsWithConnection: true})
	wantVerdicts(t, r, map[string]string{PropMutualExclusion: VerdictViolated})
}

// A lease recorded at or after its own local deadline was never believed held: its
// (older) fence after a newer one is not a fence-order violation. One recorded before
// its deadline with an older fence still is.
func TestCheckFenceOrderIgnoresLeasesWithNoTimeLeft(t *testing.T) {
	var h hist
	h.lease(0, 1, 44, 0, 1, 99, 20, 21, TypeOK)
	h.lease(1, 1, 34, 0, 30, 30, 31, 32, TypeFail) // answered at its deadline
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropFenceOrder: VerdictOK, PropMutualExclusion: VerdictOK})
	h.lease(2, 1, 35, 40, 41, 139, 60, 61, TypeOK)
	r = Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	wantVerdicts(t, r, map[string]string{PropFenceOrder: VerdictViolated})
}

func TestCheckRunWouldNotStopChildInTime(t *testing.T) {
	var h hist
	// worker 0 overran (released after its deadline), worker 1 got the lock before
	// worker 0's deadline, after worker 0's release... of a lease it no longer had
	h.lease(0, 1, 10, 0, 1, 50, 80, 81, TypeFail)
	h.lease(1, 1, 11, 2, 60, 160, 90, 91, TypeOK)
	// and a holder whose deadline is later than when the next one came
	h.lease(2, 1, 12, 95, 96, 300, 310, 311, TypeFail)
	h.lease(3, 1, 13, 97, 200, 300, 210, 211, TypeOK)
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	p := verdicts(r)[PropRunStopsInTime]
	if p.Verdict != VerdictViolated || p.Violations != 1 || p.Checked != 2 {
		t.Fatalf("run_stops_in_time = %+v", p)
	}
	// The detail names the first pair, with the times, so a failure can be explained.
	if !strings.Contains(p.Detail, "first: worker 2 (fence 12") || !strings.Contains(p.Detail, "worker 3 (fence 13) had the lock at") {
		t.Fatalf("run_stops_in_time detail does not name the pair: %s", p.Detail)
	}
}

// A lease whose answer was recorded after its own local deadline (never believed held:
// the fence-order check leaves it out too) is not "the next holder" of a holder that
// outlived its lease: seen in CI, where such a late answer with an older fence came
// 18ms after an overrunning holder took the lock and was reported as overtaking it.
func TestCheckRunStopsIgnoresLeasesNeverHeld(t *testing.T) {
	var h hist
	h.lease(0, 1, 41, 90, 100, 500, 600, 601, TypeFail) // overran: released after its deadline
	h.lease(2, 1, 40, 50, 110, 105, 111, 112, TypeFail) // answered after its own deadline
	h.lease(1, 1, 42, 650, 700, 900, 710, 711, TypeOK)
	r := Check(h.events, CheckOptions{TTL: ttl, FencingSafe: true})
	if p := verdicts(r)[PropRunStopsInTime]; p.Verdict != VerdictOK || p.Checked != 1 {
		t.Fatalf("run_stops_in_time = %+v", p)
	}
}

// Real histories of dsctl's Redis lock before the fixes of issue 10 (recorded by
// `dsctl lock verify --faults none`): the checker must keep flagging them.
func TestCheckRecordedRedisHistoryWithHoles(t *testing.T) {
	f, err := os.Open("testdata/redis-single-nofaults-holes-1-2.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := ReadJSONL(f)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(events, CheckOptions{TTL: 300 * time.Millisecond, FencingSafe: true})
	got := verdicts(r)
	if r.Safe || got[PropMutualExclusion].Violations != 1 || got[PropLeaseDeadline].Violations != 2 || got[PropLinearizable].Verdict != VerdictViolated {
		t.Fatalf("recorded history: %+v", r.Properties)
	}
}

// A recorded `--processes` run (CI phase, TTL 300ms, before the fixes): a worker
// SIGSTOPped while waiting came back with a stale grant (hole 2).
func TestCheckRecordedStaleGrantAfterSIGSTOP(t *testing.T) {
	f, err := os.Open("testdata/redis-processes-hole2-stale-grant.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	events, err := ReadJSONL(z)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(events, CheckOptions{TTL: 300 * time.Millisecond, FencingSafe: true})
	got := verdicts(r)
	for _, name := range []string{PropMutualExclusion, PropFenceOrder, PropLeaseDeadline} {
		if got[name].Violations != 1 {
			t.Errorf("%s = %+v, want 1 violation", name, got[name])
		}
	}
	if ov := r.WorstOverlap; ov == nil || ov.A.Worker != 0 || ov.B.Worker != 1 || ov.B.Fence >= ov.A.Fence || got[PropLinearizable].Verdict != VerdictViolated {
		t.Fatalf("worst overlap %+v, linearizable %+v", r.WorstOverlap, got[PropLinearizable])
	}
	if r.Counts.WritesRefused != 2 || r.Counts.Pauses != 17 {
		t.Fatalf("counts %+v", r.Counts)
	}
}

func TestParseFaults(t *testing.T) {
	for in, want := range map[string]string{"": "", "none": "", "all": "latency,blackhole,reset,pause",
		"pause, reset": "reset,pause", "RESET,reset": "reset"} {
		got, err := ParseFaults(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if s := join(got); s != want {
			t.Errorf("%q -> %q, want %q", in, s, want)
		}
	}
	if _, err := ParseFaults("latency,partition"); err == nil {
		t.Fatal("unknown fault accepted")
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
