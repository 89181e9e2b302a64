package lock

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/bench"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// now is the clock for "in 30s" / "12s ago" (a variable for tests).
var now = time.Now

// LeaseView is what acquire and renew print.
type LeaseView struct {
	*lock.Lease
}

// Table renders the lease as key: value lines.
func (v LeaseView) Table() *output.TableData {
	l := v.Lease
	t := output.KV(
		"name", l.Name,
		"token", l.Token,
		"fence", fenceText(l.Fence, l.FencingSafe),
		"expires", fmt.Sprintf("%s (in %s)", l.ExpiresAt.Local().Format(time.RFC3339Nano), lock.RoundDuration(l.ExpiresAt.Sub(now()))),
		"ttl", l.TTL.String(),
	)
	if l.Owner != (lock.Owner{}) {
		t.AddCells(output.S("owner:", output.Dim), output.C(l.Owner.String()))
	}
	t.AddCells(output.S("backend:", output.Dim), output.C(l.Backend.String()))
	if l.Note != "" {
		t.Notes = append(t.Notes, output.S("note: "+l.Note, output.Warn))
	}
	return t
}

// EnvLines are the shell assignments of -o env (for eval in scripts).
func (v LeaseView) EnvLines() [][2]string {
	l := v.Lease
	out := [][2]string{{supervisor.EnvName, l.Name}, {supervisor.EnvToken, l.Token}}
	if l.FencingSafe && l.Fence != 0 {
		out = append(out, [2]string{supervisor.EnvFence, l.Fence.String()})
	}
	return append(out, [2]string{"DSCTL_LOCK_EXPIRES", l.ExpiresAt.UTC().Format(time.RFC3339Nano)})
}

func fenceText(f lock.FencingToken, safe bool) string {
	if !safe || f == 0 {
		return "none (not safe on this backend)"
	}
	return f.String()
}

// InfoView is what inspect and break print.
type InfoView struct {
	*lock.Info
	// Action says what break did ("broken", or "deleted" for a key that was not a
	// lock, with --raw), empty for inspect.
	Action string `json:"action,omitempty"`
}

// notALock reports whether the key exists but is not a lock of any known format.
func (v InfoView) notALock() bool { return v.Info.Format == lock.FormatNotALock }

// Table renders one lock as key: value lines, with the per-server view in quorum mode.
func (v InfoView) Table() *output.TableData {
	i := v.Info
	var state output.Cell
	switch {
	case v.Action != "" && i.Held:
		state = output.S("broken (was held)", output.Warn)
	case v.Action != "" && v.notALock():
		state = output.S("deleted (--raw: it was not a lock)", output.Warn)
	case v.Action != "":
		state = output.S("was not held: nothing to break", output.Info)
	case i.Held:
		state = output.S("held", output.Warn)
	case v.notALock():
		state = output.S("not a lock", output.Warn)
	default:
		state = output.S("free", output.OK)
	}
	t := &output.TableData{}
	kv := func(k string, c output.Cell) { t.AddCells(output.S(k+":", output.Dim), c) }
	kv("name", output.C(i.Name))
	kv("state", state)
	if i.Held || i.Format != lock.FormatNone {
		kv("format", output.C(string(i.Format)+": "+i.FormatDetail))
	}
	kv("key", output.C(i.Key))
	if h := i.Holder; h != nil {
		kv("token", output.C(h.Token))
		if h.Fence != 0 {
			kv("fence", output.C(h.Fence.String()))
		}
		if h.Owner != nil {
			kv("owner", output.C(h.Owner.String()))
		}
		if !h.AcquiredAt.IsZero() {
			kv("acquired", output.C(fmt.Sprintf("%s (%s ago)", h.AcquiredAt.Local().Format(time.RFC3339), lock.RoundDuration(now().Sub(h.AcquiredAt)))))
		}
		if h.Reentrancy > 0 {
			kv("held count", output.C(strconv.Itoa(h.Reentrancy)))
		}
		kv("ttl left", output.C(ttlText(h)))
	}
	switch {
	case v.notALock() && !i.Held:
	case i.Waiters >= 0:
		kv("waiters", output.C(strconv.Itoa(i.Waiters)))
	default:
		kv("waiters", output.S("unknown (this format's clients poll)", output.Dim))
	}
	for n, q := range i.Queue {
		if n == 0 {
			kv("queue", output.C(queueText(n, q)))
			continue
		}
		t.AddCells(output.C(""), output.C(queueText(n, q)))
	}
	if i.Format == lock.FormatDsctl || (i.Format == lock.FormatNone && i.LastFence != 0) {
		if i.FencingSafe {
			kv("last fence", output.C(i.LastFence.String()))
		} else {
			kv("fencing", output.S("not safe on this backend", output.Warn))
		}
	}
	if b := i.LastBreak; b != nil {
		s := fmt.Sprintf("%s by %s", b.At.Local().Format(time.RFC3339), b.By)
		if b.Reason != "" {
			s += ": " + b.Reason
		}
		kv("last break", output.C(s))
	}
	kv("backend", output.C(i.Backend.String()))
	for _, in := range i.Instances {
		kv("  "+in.Endpoint, output.C(instanceText(in)))
	}
	for _, n := range i.Notes {
		t.Notes = append(t.Notes, output.S("note: "+n, output.Dim))
	}
	if v.Action == "" && v.notALock() && !i.Held {
		name := lock.QuoteCommand([]string{i.Name})
		t.Notes = append(t.Notes, output.S("note: `dsctl lock break "+name+" --force` refuses it; only --raw deletes it", output.Dim))
	}
	return t
}

// queueText is one member of a lock's queue: place, role, node, format, session,
// age and owner.
func queueText(n int, q lock.QueueEntry) string {
	role := "waiting"
	if q.Holding {
		role = "holding"
	}
	node := q.Node
	if i := strings.LastIndexByte(node, '/'); i >= 0 {
		node = node[i+1:]
	}
	s := fmt.Sprintf("%d. %s %s (%s", n+1, role, node, q.Format)
	if q.Session != "" {
		s += ", session " + q.Session
	}
	s += fmt.Sprintf(", for %s)", lock.RoundDuration(q.Age))
	if q.Owner != nil {
		s += " " + q.Owner.String()
	}
	return s
}

func instanceText(in lock.InstanceInfo) string {
	switch {
	case in.Error != "":
		return "error: " + in.Error
	case in.Held:
		s := "held by token " + lock.ShortToken(in.Token)
		if in.TTLLeft > 0 {
			s += fmt.Sprintf(", %s left", lock.RoundDuration(time.Duration(in.TTLLeft)*time.Millisecond))
		}
		return s
	}
	return "free"
}

func ttlText(h *lock.Holder) string {
	if h.TTLLeft < 0 {
		return "no expiry"
	}
	return lock.RoundDuration(h.TTLLeft).String()
}

// ListView is what list prints.
type ListView []lock.Info

// Table renders one row per lock.
func (v ListView) Table() *output.TableData {
	t := &output.TableData{Header: []string{"name", "format", "holder", "fence", "ttl left", "waiters"},
		RightAlign: map[int]bool{3: true, 4: true, 5: true}}
	for _, i := range v {
		holder, fence, ttl := "-", "-", "-"
		if h := i.Holder; h != nil {
			holder = "token " + lock.ShortToken(h.Token)
			if h.Owner != nil {
				holder = h.Owner.String()
			}
			if h.Fence != 0 {
				fence = h.Fence.String()
			}
			ttl = ttlText(h)
		}
		waiters := "?"
		if i.Waiters >= 0 {
			waiters = strconv.Itoa(i.Waiters)
		}
		name := i.Name
		if !i.Held {
			name += " (not a majority)"
		}
		t.AddRow(name, string(i.Format), holder, fence, ttl, waiters)
	}
	if len(v) == 0 {
		t.Notes = append(t.Notes, output.S("no locks held", output.Dim))
	}
	return t
}

// ReleasedView is what release prints.
type ReleasedView struct {
	Name     string `json:"name"`
	Released bool   `json:"released"`
	Token    string `json:"token"`
}

// Table is one line.
func (v ReleasedView) Table() *output.TableData {
	return output.KV("released", v.Name, "token", v.Token)
}

// BenchView is what bench prints.
type BenchView struct {
	*bench.Result
}

// Table renders the measurements as key: value lines.
func (v BenchView) Table() *output.TableData {
	r := v.Result
	strategy := string(r.Strategy)
	if r.Strategy == lock.WaitPoll {
		strategy += fmt.Sprintf(" every %gms", r.PollIntervalMs)
	}
	check := output.S("ok: no overlaps", output.OK)
	if r.FencingChecked {
		check = output.S("ok: no overlaps, fencing tokens strictly increasing", output.OK)
	}
	if !r.OK {
		check = output.S(fmt.Sprintf("FAILED: %d overlaps, %d fencing tokens out of order", r.Overlaps, r.FenceViolations), output.Critical)
	}
	t := &output.TableData{}
	kv := func(k string, c output.Cell) { t.AddCells(output.S(k+":", output.Dim), c) }
	kv("backend", output.C(r.Backend.String()))
	kv("wait strategy", output.C(strategy))
	kv("clients", output.C(strconv.Itoa(r.Clients)))
	kv("cycles", output.C(fmt.Sprintf("%d in %s (hold %gms, think %gms)", r.Ops, lock.RoundDuration(time.Duration(r.ElapsedMs*1e6)), r.HoldMs, r.ThinkMs)))
	kv("throughput", output.C(fmt.Sprintf("%.0f acquire/release cycles per second", r.Throughput)))
	kv("acquire latency", output.C(latencyText(r.Acquire)))
	kv("handoff latency", output.C(latencyText(r.Handoff)+" (release sent -> next waiter holds it)"))
	kv("correctness", check)
	return t
}

func latencyText(l bench.Latency) string {
	if l.Count == 0 {
		return "none measured"
	}
	return fmt.Sprintf("p50 %.3fms  p99 %.3fms  max %.3fms  (%d samples)", l.P50Ms, l.P99Ms, l.MaxMs, l.Count)
}
