package zklock

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/zk"
)

// DefaultTickTime is ZooKeeper's stock tickTime, assumed when the connected server
// does not answer the conf four-letter word (4lw.commands.whitelist).
const DefaultTickTime = 2000 * time.Millisecond

// activity records when this process wrote to its ZooKeeper connections (requests
// and go-zookeeper's pings), the latest write in each 100ms bucket over the last
// ~100s, on the monotonic clock.
//
// Why: the leader does not touch a session when it processes a write a follower
// forwarded; it learns of a session's activity from the follower's answers to its
// pings (every tickTime/2) and restarts the session's expiry then. A write w that
// reached a server is reported by a ping within a tick (if the server stays with the
// leader), or is followed by a reconnection (which the leader validates, touching
// the session) before any later request can succeed: so the leader's expiry of our
// session is at least (the latest write at least one tick before a confirmed
// request) + the session timeout.
type activity struct {
	mu   sync.Mutex
	base time.Time
	at   [activitySlots]time.Duration // since base; 0: none
}

const (
	activitySlots  = 1024
	activityBucket = 100 * time.Millisecond
)

func newActivity() *activity { return &activity{base: time.Now()} }

// wrote records a write starting at t.
func (a *activity) wrote(t time.Time) {
	d := t.Sub(a.base)
	if d <= 0 {
		d = 1
	}
	i := int64(d/activityBucket) % activitySlots
	a.mu.Lock()
	if d > a.at[i] {
		a.at[i] = d
	}
	a.mu.Unlock()
}

// latestBefore is the latest recorded write at or before c (ok false when none is
// recorded in the window).
func (a *activity) latestBefore(c time.Time) (time.Time, bool) {
	cd := c.Sub(a.base)
	if cd <= 0 {
		return time.Time{}, false
	}
	cb := int64(cd / activityBucket)
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := int64(0); k < activitySlots && cb-k >= 0; k++ {
		b := cb - k
		v := a.at[b%activitySlots]
		if v != 0 && int64(v/activityBucket) == b && v <= cd {
			return a.base.Add(v), true
		}
	}
	return time.Time{}, false
}

// learnTick asks the connected server for its tickTime (the conf four-letter word).
// It returns DefaultTickTime and false when the answer is unavailable.
func learnTick(ctx context.Context, server string, timeout time.Duration) (time.Duration, bool) {
	if server == "" {
		return DefaultTickTime, false
	}
	out, err := zk.FourLetterWord(ctx, server, "conf", min(timeout, 2*time.Second))
	if err != nil {
		return DefaultTickTime, false
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tickTime="); ok {
			if ms, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond, true
			}
		}
	}
	return DefaultTickTime, false
}

// TickTime is the ensemble's tick this Locker counts with (learned from the
// connected server's conf, else DefaultTickTime), and whether it was learned.
func (l *Locker) TickTime() (time.Duration, bool) {
	return time.Duration(l.tickNs.Load()), l.tickLearned.Load()
}

// tickAllowance is one tick of the ensemble, capped at half the session timeout (the
// server grants at least two ticks) so the session bound stays positive.
func (l *Locker) tickAllowance() time.Duration {
	tick, _ := l.TickTime()
	if tick <= 0 {
		tick = DefaultTickTime
	}
	return min(tick, l.SessionTimeout()/2)
}

// sessionEnd is the earliest time the leader may expire our session, given a write
// sent at sent that the leader confirmed: the session timeout counted from the latest
// write of ours the leader must know of (one tick before sent), and never later than
// sent + timeout - the client's ping interval (timeout/3) - one tick, the same bound
// for a process that ran normally (it writes at least every timeout/3).
func (l *Locker) sessionEnd(sent time.Time) time.Time {
	timeout, tick := l.SessionTimeout(), l.tickAllowance()
	end := sent.Add(timeout - timeout/3 - tick)
	// Nothing recorded a tick before sent: this Locker connected less than a tick
	// ago, and the leader created the session (starting its clock) after that.
	if w, ok := l.activity.latestBefore(sent.Add(-tick)); ok {
		if e := w.Add(timeout); e.Before(end) {
			end = e
		}
	}
	return end
}
