package verify

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dsctl/dsctl/probes/lock"
)

// Property names (stable: they are JSON values).
const (
	PropMutualExclusion = "mutual_exclusion"
	PropFenceOrder      = "fence_order"
	PropStaleWrites     = "stale_writes"
	PropLeaseDeadline   = "lease_deadline"
	PropRunStopsInTime  = "run_stops_in_time"
	PropLinearizable    = "linearizable"
)

// Verdicts.
const (
	VerdictOK         = "ok"
	VerdictViolated   = "violated"
	VerdictNotChecked = "not_checked"
	VerdictUnknown    = "unknown"
)

// CheckOptions are the inputs of Check.
type CheckOptions struct {
	TTL time.Duration
	// FencingSafe says the backend promises strictly increasing fencing tokens: only
	// then are fence order and stale writes checked.
	FencingSafe bool
	// EndsWithConnection says the backend frees a lease when the holder's connection
	// ends (lock.Backend.EndsWithConnection): a lease lost before its local deadline
	// is then expected under connection faults, not a violation (mutual exclusion
	// still checks that nobody else held the lock before that deadline).
	EndsWithConnection bool
	// LinearizeTimeout bounds porcupine (default 30s); past it the verdict is unknown.
	LinearizeTimeout time.Duration
}

// Property is the verdict on one property.
type Property struct {
	Name       string `json:"name"`
	Verdict    string `json:"verdict"`
	Violations int    `json:"violations"`
	// Checked is how many items (leases, writes, overrunning holders) were examined.
	Checked int    `json:"checked"`
	Detail  string `json:"detail"`
}

// Counts summarise the history.
type Counts struct {
	AcquireOK      int `json:"acquire_ok"`
	AcquireFail    int `json:"acquire_fail"`
	AcquireUnknown int `json:"acquire_unknown"`
	Sections       int `json:"sections"`
	RenewOK        int `json:"renew_ok"`
	RenewFail      int `json:"renew_fail"`
	RenewUnknown   int `json:"renew_unknown"`
	ReleaseOK      int `json:"release_ok"`
	ReleaseFail    int `json:"release_fail"`
	ReleaseUnknown int `json:"release_unknown"`
	WritesAccepted int `json:"writes_accepted"`
	WritesRefused  int `json:"writes_refused"`
	LateWrites     int `json:"late_writes"`
	LeasesLost     int `json:"leases_lost"`
	Overran        int `json:"overran"`
	Pauses         int `json:"pauses"`
	NetworkFaults  int `json:"network_faults"`
}

// HoldingRef names one lease in a report.
type HoldingRef struct {
	Worker  int               `json:"worker"`
	Holding int               `json:"holding"`
	Fence   lock.FencingToken `json:"fence,omitempty"`
	// InvokedUs is when its acquire was sent.
	InvokedUs int64 `json:"invoked_us"`
	// FromUs and ToUs are the interval the holder believed it held the lock.
	FromUs int64 `json:"from_us"`
	ToUs   int64 `json:"to_us"`
	// Ended says how the belief ended: released, deadline, lost.
	Ended string `json:"ended"`
}

// Overlap is two holders that both believed they held the lock.
type Overlap struct {
	A          HoldingRef `json:"a"`
	B          HoldingRef `json:"b"`
	FromUs     int64      `json:"from_us"`
	ToUs       int64      `json:"to_us"`
	DurationMs float64    `json:"duration_ms"`
	// Timeline is what both workers did around the overlap (and faults on them).
	Timeline []Event `json:"timeline,omitempty"`
}

// Report is the checked history.
type Report struct {
	Safe           bool       `json:"safe"`
	Violations     int        `json:"violations"`
	FencingChecked bool       `json:"fencing_checked"`
	Properties     []Property `json:"properties"`
	Counts         Counts     `json:"counts"`
	WorstOverlap   *Overlap   `json:"worst_overlap,omitempty"`
	// Overlaps lists up to 20 overlaps, longest first.
	Overlaps []Overlap `json:"overlaps,omitempty"`
	// Holdings are the leases, for the timeline report.
	Holdings []*Holding `json:"-"`
	// DurationUs is the time the history covers.
	DurationUs int64 `json:"duration_us"`
}

// Holding is one lease as the history shows it.
type Holding struct {
	Worker, N        int
	Fence            lock.FencingToken
	InvokeUs, OKUs   int64
	DeadlineUs       int64 // latest local deadline (acquire or renew)
	lastOKUs         int64 // last acquire or renew ok: the server's TTL started before it
	RelInvokeUs      int64 // 0: no release
	RelReturnUs      int64
	RelType          string
	RenewFailUs      int64
	LostEarly        bool
	Overran, Paused  bool
	EndUs            int64
	Ended            string
	lostEarlyByRenew bool
}

func (h *Holding) ref() HoldingRef {
	return HoldingRef{Worker: h.Worker, Holding: h.N, Fence: h.Fence, InvokedUs: h.InvokeUs, FromUs: h.OKUs, ToUs: h.EndUs, Ended: h.Ended}
}

type hkey struct{ w, n int }

// Check checks a history.
func Check(events []Event, o CheckOptions) *Report {
	rep := &Report{FencingChecked: o.FencingSafe}
	holdings, byKey := buildHoldings(events, &rep.Counts)
	rep.Holdings = holdings
	for _, e := range events {
		rep.DurationUs = max(rep.DurationUs, e.TUs)
	}

	// Mutual exclusion: belief intervals of different holders must not intersect.
	sorted := append([]*Holding(nil), holdings...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].OKUs < sorted[j].OKUs })
	var overlaps []Overlap
	for i, a := range sorted {
		for _, b := range sorted[i+1:] {
			if b.OKUs >= a.EndUs {
				break
			}
			to := min(a.EndUs, b.EndUs)
			if to <= b.OKUs || a.Worker == b.Worker {
				continue
			}
			overlaps = append(overlaps, Overlap{A: a.ref(), B: b.ref(), FromUs: b.OKUs, ToUs: to,
				DurationMs: float64(to-b.OKUs) / 1000})
		}
	}
	sort.SliceStable(overlaps, func(i, j int) bool { return overlaps[i].DurationMs > overlaps[j].DurationMs })
	mx := Property{Name: PropMutualExclusion, Checked: len(holdings), Violations: len(overlaps)}
	if len(overlaps) == 0 {
		mx.Detail = fmt.Sprintf("no two holders believed they held the lock at once (%d leases)", len(holdings))
	} else {
		w := overlaps[0]
		mx.Detail = fmt.Sprintf("%d overlaps; worst %.1fms: worker %d (fence %s) and worker %d (fence %s)",
			len(overlaps), w.DurationMs, w.A.Worker, w.A.Fence, w.B.Worker, w.B.Fence)
		worst := overlaps[0]
		worst.Timeline = timeline(events, worst)
		rep.WorstOverlap = &worst
	}
	if len(overlaps) > 20 {
		overlaps = overlaps[:20]
	}
	rep.Overlaps = overlaps
	rep.Properties = append(rep.Properties, mx)

	// Fence order: every new holder's token is larger than all before it.
	fo := Property{Name: PropFenceOrder, Checked: len(sorted)}
	if !o.FencingSafe {
		fo.Verdict, fo.Detail = VerdictNotChecked, "the backend gives no safe fencing tokens (e.g. Redis quorum mode): exclusion was checked by belief intervals only"
	} else {
		var top lock.FencingToken
		var first string
		noTimeLeft := 0
		for _, h := range sorted {
			if h.Fence != 0 && h.OKUs >= h.DeadlineUs {
				// Returned (or recorded) at or after its own local deadline: never
				// believed held, so nobody can have acted on its fence. A backend checks
				// the deadline before returning; a preempted goroutine can still record
				// the answer a moment later.
				noTimeLeft++
				continue
			}
			if h.Fence == 0 || h.Fence <= top {
				fo.Violations++
				if first == "" {
					first = fmt.Sprintf("worker %d got fence %s after fence %s had been handed out", h.Worker, h.Fence, top)
				}
			}
			top = max(top, h.Fence)
		}
		fo.Detail = fmt.Sprintf("fencing tokens strictly increasing across %d leases", len(sorted)-noTimeLeft)
		if noTimeLeft > 0 {
			fo.Detail += fmt.Sprintf(" (%d more recorded with no time left, never held)", noTimeLeft)
		}
		if fo.Violations > 0 {
			fo.Detail = fmt.Sprintf("%d leases got a fencing token not larger than an earlier one; first: %s", fo.Violations, first)
		}
	}
	rep.Properties = append(rep.Properties, fo)

	// Stale writes: in the register's order, an accepted write from a holder older than
	// one that already wrote means two critical sections interleaved in the storage.
	sw := Property{Name: PropStaleWrites}
	var latest *Holding
	interleaved := 0
	var firstStale string
	for _, e := range events {
		if e.Op != OpWrite {
			continue
		}
		sw.Checked++
		h := byKey[hkey{e.Worker, e.Holding}]
		if h == nil || e.Type != TypeOK {
			continue
		}
		if latest != nil && h != latest && h.OKUs < latest.OKUs {
			interleaved++
			if firstStale == "" {
				firstStale = fmt.Sprintf("worker %d (fence %s) wrote at %s after worker %d (fence %s, a later holder) had written",
					h.Worker, h.Fence, usText(e.TUs), latest.Worker, latest.Fence)
			}
			continue
		}
		if latest == nil || h.OKUs > latest.OKUs {
			latest = h
		}
	}
	c := rep.Counts
	switch {
	case !o.FencingSafe:
		sw.Verdict = VerdictNotChecked
		sw.Detail = fmt.Sprintf("no fencing tokens to check; %d late writes (%d landed after a newer holder's: a storage without fencing cannot refuse them)",
			c.LateWrites, interleaved)
	default:
		sw.Violations = interleaved
		sw.Detail = fmt.Sprintf("%d writes, %d refused by fence; %d late writes (after the writer's deadline)", sw.Checked, c.WritesRefused, c.LateWrites)
		if interleaved > 0 {
			sw.Detail = fmt.Sprintf("%d stale writes accepted; first: %s", interleaved, firstStale)
		}
	}
	rep.Properties = append(rep.Properties, sw)

	// Lease deadline: a lease must not be reported gone before its local deadline.
	ld := Property{Name: PropLeaseDeadline, Checked: len(holdings)}
	var firstEarly string
	for _, h := range holdings {
		if h.LostEarly {
			ld.Violations++
			if firstEarly == "" {
				at, how := h.RelReturnUs, "release"
				if h.lostEarlyByRenew {
					at, how = h.RenewFailUs, "renewal"
				}
				firstEarly = fmt.Sprintf("worker %d's lease (fence %s) was not held at %s by its %s, %s before its local deadline",
					h.Worker, h.Fence, usText(at), how, usText(h.DeadlineUs-at))
			}
		}
	}
	ld.Detail = fmt.Sprintf("no lease was lost before its local deadline; %d leases lost after it (pauses, faults)", c.LeasesLost)
	if ld.Violations > 0 && o.EndsWithConnection {
		ld.Detail = fmt.Sprintf("%d leases ended early with their connection (the server frees a session lock when the connection ends; nobody else held it before their deadline: see mutual exclusion); first: %s",
			ld.Violations, firstEarly)
		ld.Violations = 0
	}
	if ld.Violations > 0 {
		ld.Detail = fmt.Sprintf("%d leases lost before their local deadline; first: %s", ld.Violations, firstEarly)
	}
	rep.Properties = append(rep.Properties, ld)

	// lock run: a supervisor kills its child by the lease's local deadline at the
	// latest; for each holder still working then, the next holder must come after it.
	rs := Property{Name: PropRunStopsInTime}
	minSlack := int64(math.MaxInt64)
	var firstOvertaken string
	neverHeld := func(h *Holding) bool { return h.OKUs >= h.DeadlineUs } // as in fence order
	for i, h := range sorted {
		if !h.Overran || neverHeld(h) {
			continue
		}
		rs.Checked++
		for _, n := range sorted[i+1:] {
			if n.Worker == h.Worker || neverHeld(n) {
				// An answer recorded at or after its own local deadline was never
				// believed held: nobody ran anything under it.
				continue
			}
			slack := n.OKUs - h.DeadlineUs
			minSlack = min(minSlack, slack)
			if slack < 0 {
				rs.Violations++
				if firstOvertaken == "" {
					firstOvertaken = fmt.Sprintf("worker %d (fence %s, lease taken at %s, last renewed at %s) had its local deadline at %s; worker %d (fence %s) had the lock at %s, %s before it",
						h.Worker, h.Fence, usText(h.OKUs), usText(h.lastOKUs), usText(h.DeadlineUs), n.Worker, n.Fence, usText(n.OKUs), usText(-slack))
				}
			}
			break
		}
	}
	switch {
	case rs.Checked == 0:
		rs.Detail = "no holder outlived its lease"
	case rs.Violations > 0:
		rs.Detail = fmt.Sprintf("%d of %d holders that outlived their lease were overtaken before their local deadline: `lock run` would not have stopped its child in time; first: %s", rs.Violations, rs.Checked, firstOvertaken)
	case minSlack == math.MaxInt64:
		rs.Detail = fmt.Sprintf("%d holders outlived their lease; nobody took the lock after them", rs.Checked)
	default:
		rs.Detail = fmt.Sprintf("%d holders outlived their lease; killed at the local deadline, the next holder came at least %s later", rs.Checked, usText(minSlack))
	}
	rep.Properties = append(rep.Properties, rs)

	rep.Properties = append(rep.Properties, linearizable(holdings, o))

	for i := range rep.Properties {
		p := &rep.Properties[i]
		if p.Verdict == "" {
			p.Verdict = VerdictOK
			if p.Violations > 0 {
				p.Verdict = VerdictViolated
			}
		}
		rep.Violations += p.Violations
	}
	rep.Safe = true
	for _, p := range rep.Properties {
		if p.Verdict == VerdictViolated {
			rep.Safe = false
		}
	}
	return rep
}

// buildHoldings turns each worker's events into its leases and their belief intervals.
func buildHoldings(events []Event, c *Counts) ([]*Holding, map[hkey]*Holding) {
	byKey := map[hkey]*Holding{}
	var out []*Holding
	cur := map[int]*Holding{}
	invoked := map[int]int64{}
	for _, e := range events {
		h := cur[e.Worker]
		if e.Holding != 0 {
			h = byKey[hkey{e.Worker, e.Holding}]
		}
		switch e.Op {
		case OpAcquire:
			switch e.Type {
			case TypeInvoke:
				invoked[e.Worker] = e.TUs
			case TypeOK:
				c.AcquireOK++
				h = &Holding{Worker: e.Worker, N: e.Holding, Fence: e.Fence, InvokeUs: invoked[e.Worker], OKUs: e.TUs,
					DeadlineUs: e.ExpiresUs, lastOKUs: e.TUs}
				byKey[hkey{e.Worker, e.Holding}] = h
				cur[e.Worker] = h
				out = append(out, h)
			case TypeFail:
				c.AcquireFail++
			default:
				c.AcquireUnknown++
			}
		case OpRenew:
			if h == nil {
				continue
			}
			switch e.Type {
			case TypeOK:
				c.RenewOK++
				if e.ExpiresUs != 0 && e.TUs < h.DeadlineUs {
					h.DeadlineUs, h.lastOKUs = e.ExpiresUs, e.TUs
				}
			case TypeFail:
				c.RenewFail++
				if h.RenewFailUs == 0 {
					h.RenewFailUs = e.TUs
					if e.TUs < h.DeadlineUs {
						h.LostEarly, h.lostEarlyByRenew = true, true
					}
				}
			case TypeUnknown:
				c.RenewUnknown++
			}
		case OpWrite:
			if e.Type == TypeOK {
				c.WritesAccepted++
			} else {
				c.WritesRefused++
			}
			if e.Late {
				c.LateWrites++
			}
		case OpDeadline:
			if h != nil {
				h.Overran = true
			}
		case OpPause:
			if e.Type == TypeStart {
				c.Pauses++
				if h != nil && h.RelInvokeUs == 0 {
					h.Paused = true
				}
			}
		case OpFault:
			if e.Type == TypeStart {
				c.NetworkFaults++
			}
		case OpRelease:
			if h == nil {
				continue
			}
			switch e.Type {
			case TypeInvoke:
				c.Sections++
				h.RelInvokeUs = e.TUs
			default:
				h.RelReturnUs, h.RelType = e.TUs, e.Type
				switch e.Type {
				case TypeOK:
					c.ReleaseOK++
				case TypeFail:
					c.ReleaseFail++
					if e.TUs < h.DeadlineUs && !h.LostEarly {
						h.LostEarly = true
					}
				default:
					c.ReleaseUnknown++
				}
				delete(cur, e.Worker)
			}
		}
	}
	for _, h := range out {
		h.EndUs, h.Ended = h.DeadlineUs, "deadline"
		if h.RelInvokeUs != 0 && h.RelInvokeUs < h.EndUs {
			h.EndUs, h.Ended = h.RelInvokeUs, "released"
		}
		if h.RenewFailUs != 0 && h.RenewFailUs < h.EndUs {
			h.EndUs, h.Ended = h.RenewFailUs, "lost"
		}
		if h.RelInvokeUs == 0 || h.RelInvokeUs > h.DeadlineUs {
			h.Overran = true
		}
		if h.Overran || h.RelType == TypeFail || h.RenewFailUs != 0 {
			c.LeasesLost++
		}
		if h.Overran {
			c.Overran++
		}
	}
	return out, byKey
}

// lockOp is one lock operation for porcupine.
type lockOp struct {
	acquire bool
	holder  int
}

// linearizable checks, with porcupine, that the leases' acquisitions and ends can be
// placed in one order in which the lock is free whenever it is taken: each acquire
// happened between its invoke and its ok, each end between the holder's belief end
// and the latest moment the server could still have held it (the release's answer,
// or the last acquire/renew answer plus the TTL and clock drift).
func linearizable(holdings []*Holding, o CheckOptions) Property {
	p := Property{Name: PropLinearizable, Checked: len(holdings)}
	ttl := o.TTL.Microseconds()
	drift := lock.ClockDrift(o.TTL).Microseconds()
	var ops []porcupine.Operation
	for i, h := range holdings {
		ops = append(ops, porcupine.Operation{ClientId: h.Worker, Input: lockOp{acquire: true, holder: i},
			Call: h.InvokeUs, Return: h.OKUs})
		latest := h.lastOKUs + ttl + drift
		switch h.RelType {
		case TypeOK:
			latest = h.RelReturnUs
		case TypeFail:
			latest = min(latest, h.RelReturnUs)
		}
		if h.RenewFailUs != 0 {
			latest = min(latest, h.RenewFailUs)
		}
		ops = append(ops, porcupine.Operation{ClientId: h.Worker, Input: lockOp{holder: i},
			Call: h.EndUs, Return: max(latest, h.EndUs)})
	}
	model := porcupine.Model{
		Init: func() any { return -1 },
		Step: func(state, input, _ any) (bool, any) {
			in := input.(lockOp)
			s := state.(int)
			if in.acquire {
				return s == -1, in.holder
			}
			return s == in.holder, -1
		},
	}
	timeout := o.LinearizeTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	switch porcupine.CheckOperationsTimeout(model, ops, timeout) {
	case porcupine.Ok:
		p.Detail = fmt.Sprintf("porcupine: the %d acquisitions and %d ends have a valid order", len(holdings), len(holdings))
	case porcupine.Illegal:
		p.Violations = 1
		p.Detail = "porcupine: no order of the acquisitions and ends keeps the lock exclusive"
	default:
		p.Verdict = VerdictUnknown
		p.Detail = fmt.Sprintf("porcupine did not finish within %s", timeout)
	}
	return p
}

// timeline is what the two workers of an overlap did around it, and faults on them.
func timeline(events []Event, ov Overlap) []Event {
	from := min(ov.A.InvokedUs, ov.B.InvokedUs)
	to := max(ov.A.ToUs, ov.B.ToUs) + 1000
	var out []Event
	for _, e := range events {
		if (e.Worker != ov.A.Worker && e.Worker != ov.B.Worker) || e.TUs < from || e.TUs > to {
			continue
		}
		out = append(out, e)
	}
	if len(out) > 80 { // a long wait: keep its start and the end around the overlap
		out = append(out[:20:20], out[len(out)-60:]...)
	}
	return out
}

func usText(us int64) string {
	return lock.RoundDuration(time.Duration(us) * time.Microsecond).String()
}
