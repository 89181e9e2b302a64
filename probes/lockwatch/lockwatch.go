// Package lockwatch turns a lock backend's List into a stream for live views (the
// TUI's locks pane): it polls lock.Locker.List at an interval and reports, with each
// poll's full list, what changed since the last one: a lock acquired, released, handed
// over from one holder to the next (with both fencing tokens), expired (its TTL ran
// out) or broken. It is backend-neutral: anything that implements lock.Locker works.
package lockwatch

import (
	"context"
	"sort"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// Kind is what happened to a lock between two polls.
type Kind string

// Kinds.
const (
	Acquired   Kind = "acquired"    // free (or unknown) before, held now
	Released   Kind = "released"    // held before, free now, well before its TTL ran out
	HandedOver Kind = "handed_over" // held before by one holder, now by another
	Expired    Kind = "expired"     // held before, its TTL ran out (the holder did not renew)
	Broken     Kind = "broken"      // taken away by `lock break` (the backend recorded it)
)

// Event is one change of one lock.
type Event struct {
	Kind Kind      `json:"kind"`
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	// Old is the holder before (nil for Acquired), New the holder now (nil for
	// Released, Expired and Broken, unless a new holder already took it: then an
	// Acquired event follows).
	Old *lock.Holder `json:"old,omitempty"`
	New *lock.Holder `json:"new,omitempty"`
	// OldFence and NewFence are the fencing tokens of Old and New (0 when none).
	OldFence lock.FencingToken `json:"old_fence,omitempty"`
	NewFence lock.FencingToken `json:"new_fence,omitempty"`
	// Break is the backend's record of the break, for Broken.
	Break *lock.Break `json:"break,omitempty"`
}

// Update is one poll: the locks as they are now, and the events since the last
// successful poll. When the poll failed, Err is set, Locks is the last good list and
// Events is empty (an unreachable backend does not look like every lock released).
type Update struct {
	At     time.Time   `json:"at"`
	Locks  []lock.Info `json:"locks"`
	Events []Event     `json:"events"`
	Err    error       `json:"-"`
	// Took is how long List took.
	Took time.Duration `json:"-"`
}

// MinInterval is the floor of Options.Interval (List scans the backend).
const MinInterval = 100 * time.Millisecond

// Options tune Watch.
type Options struct {
	// Interval between the start of two polls (default 1s, at least MinInterval). A
	// poll that takes longer delays the next; polls never overlap.
	Interval time.Duration
	// List selects the locks (prefix, other libraries' formats).
	List lock.ListOptions
}

// Watch polls l until ctx ends and sends an Update per poll; the first Update has
// every lock already held as Acquired. The channel is closed when ctx ends. A slow
// reader delays the next poll rather than dropping updates.
func Watch(ctx context.Context, l lock.Locker, opt Options) <-chan Update {
	interval := opt.Interval
	if interval <= 0 {
		interval = time.Second
	}
	interval = max(interval, MinInterval)
	out := make(chan Update, 1)
	go func() {
		defer close(out)
		var prev []lock.Info
		var prevAt time.Time
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			cur, err := l.List(ctx, opt.List)
			u := Update{At: start, Took: time.Since(start)}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				u.Err, u.Locks, u.Events = err, prev, []Event{}
			} else {
				u.Locks = cur
				u.Events = findBreaks(ctx, l, Diff(prev, cur, start.Sub(prevAt), start))
				prev, prevAt = cur, start
			}
			select {
			case out <- u:
			case <-ctx.Done():
				return
			}
			t.Reset(max(interval-time.Since(start), 0))
		}
	}()
	return out
}

// expirySlack is how early before its TTL ran out a vanished lease still counts as
// expired (the holder's TTL left was read a poll ago, and List takes time).
const expirySlack = 250 * time.Millisecond

// Diff reports what changed from prev to cur, lists taken elapsed apart (cur at at),
// in name order. Locks not held (or gone) are free.
func Diff(prev, cur []lock.Info, elapsed time.Duration, at time.Time) []Event {
	before, now := held(prev), held(cur)
	breaks := map[string]*lock.Break{}
	for i := range cur {
		if cur[i].LastBreak != nil {
			breaks[cur[i].Name] = cur[i].LastBreak
		}
	}
	names := map[string]bool{}
	for n := range before {
		names[n] = true
	}
	for n := range now {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	events := []Event{}
	for _, name := range sorted {
		old, nw := before[name], now[name]
		switch {
		case old == nil && nw != nil:
			events = append(events, acquired(name, nw, at))
		case old != nil && (nw == nil || nw.Token != old.Token):
			ev := Event{Name: name, At: at, Old: old, OldFence: old.Fence}
			switch {
			case breaks[name] != nil && breaks[name].Token == old.Token:
				ev.Kind, ev.Break = Broken, breaks[name]
			case old.TTLLeft >= 0 && old.TTLLeft <= elapsed+expirySlack:
				ev.Kind = Expired
			case nw != nil:
				ev.Kind, ev.New, ev.NewFence = HandedOver, nw, nw.Fence
			default:
				ev.Kind = Released
			}
			events = append(events, ev)
			if nw != nil && ev.Kind != HandedOver {
				events = append(events, acquired(name, nw, at))
			}
		}
	}
	return events
}

// findBreaks asks the backend about each lock that lost its holder: List does not
// carry the break record (Redis keeps it beside the lock), Inspect does.
func findBreaks(ctx context.Context, l lock.Locker, events []Event) []Event {
	for i := range events {
		e := &events[i]
		if e.Kind != Released && e.Kind != Expired {
			continue
		}
		info, err := l.Inspect(ctx, e.Name)
		if err == nil && info.LastBreak != nil && info.LastBreak.Token == e.Old.Token {
			e.Kind, e.Break = Broken, info.LastBreak
		}
	}
	return events
}

func acquired(name string, h *lock.Holder, at time.Time) Event {
	return Event{Kind: Acquired, Name: name, At: at, New: h, NewFence: h.Fence}
}

// held maps each held lock's name to its holder.
func held(infos []lock.Info) map[string]*lock.Holder {
	m := make(map[string]*lock.Holder, len(infos))
	for i := range infos {
		if infos[i].Held && infos[i].Holder != nil {
			m[infos[i].Name] = infos[i].Holder
		}
	}
	return m
}
