package zklock

// Regression tests (internal) for the second adversarial review (issue 12): how the
// session part of a lease's local bound is counted.

import (
	"context"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
)

// The tick is learned from the server's conf (the sandbox answers it), and the
// activity record finds the latest write at or before a time, never a later one.
func TestReview2FixTickLearnedAndActivity(t *testing.T) {
	l := internalLocker(t)
	if tick, learned := l.TickTime(); !learned || tick <= 0 {
		t.Fatalf("tickTime %s learned %v: the sandbox answers conf", tick, learned)
	}
	a := newActivity()
	t0 := a.base.Add(time.Second)
	a.wrote(t0)
	a.wrote(t0.Add(10 * time.Millisecond))  // same bucket, later
	a.wrote(t0.Add(900 * time.Millisecond)) // a later bucket
	if w, ok := a.latestBefore(t0.Add(50 * time.Millisecond)); !ok || !w.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("latest write before t0+50ms: %s %v, want t0+10ms", w.Sub(t0), ok)
	}
	if w, ok := a.latestBefore(t0.Add(850 * time.Millisecond)); !ok || !w.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("latest write before t0+850ms: %s %v, want t0+10ms", w.Sub(t0), ok)
	}
	if w, ok := a.latestBefore(t0.Add(5 * time.Millisecond)); ok && w.After(t0.Add(5*time.Millisecond)) {
		t.Fatalf("latest write before t0+5ms is %s, after it", w.Sub(t0))
	}
	if _, ok := a.latestBefore(t0.Add(-500 * time.Millisecond)); ok {
		t.Fatal("a write found before any was made")
	}
}

// A process that did not run (no write, not even go-zookeeper's pings) for longer
// than the ping interval before a confirmed write: the leader's clock for the session
// started at its last write before that, and the bound counts from there.
func TestReview2FixSessionEndCountsFromTheLastKnownWrite(t *testing.T) {
	l := internalLocker(t)
	to, tick := l.SessionTimeout(), l.tickAllowance()
	// Replace the record: one write 8s before the confirming write, none since.
	l.activity = newActivity()
	sent := l.activity.base.Add(20 * time.Second)
	l.activity.wrote(sent.Add(-8 * time.Second))
	if got, want := l.sessionEnd(sent), sent.Add(-8*time.Second+to); !got.Equal(want) {
		t.Fatalf("session end %s after sent, want %s (the last write the leader knows of + the timeout %s)", got.Sub(sent), want.Sub(sent), to)
	}
	// A process that ran: a write a tick before: the ping-interval bound.
	l.activity.wrote(sent.Add(-tick))
	if got, want := l.sessionEnd(sent), sent.Add(to-to/3-tick); !got.Equal(want) {
		t.Fatalf("session end %s after sent, want %s (timeout - timeout/3 - tick)", got.Sub(sent), want.Sub(sent))
	}
}

// Finding 6: a waiting detached node is taken for an orphan only after it stayed
// unchanged for staleWaiting; a touch in between (its owner alive) resets the count,
// and a granted node (no waiting mark) is never reaped.
func TestReview2FixReapOrphanOnlyUnchangedWaitingNodes(t *testing.T) {
	l := internalLocker(t)
	ctx := context.Background()
	dir := l.root + "/review2/orphan"
	if err := l.ensureParents(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := l.conn.Create(dir, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil && err != gozk.ErrNodeExists {
		t.Fatal(err)
	}
	const touch = 50 * time.Millisecond
	uuid := newUUID()
	p, err := l.conn.Create(dir+"/_c_"+uuid+"-lock-", encodeWaiting(testOwner, time.Minute, time.Minute, touch), gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := parseMember(p[len(dir)+1:])
	if !ok {
		t.Fatalf("not a queue node: %s", p)
	}
	var w orphanWatch
	if l.reapOrphan(ctx, dir, m, &w) {
		t.Fatal("reaped at first sight")
	}
	// The owner touches it: seen changed, the count starts again.
	for i := 0; i < 12; i++ { // 600ms: longer than staleWaiting(touch)
		time.Sleep(touch)
		if _, err := l.conn.Set(p, encodeWaiting(testOwner, time.Minute, time.Minute, touch), -1); err != nil {
			t.Fatal(err)
		}
		if l.reapOrphan(ctx, dir, m, &w) {
			t.Fatalf("reaped a waiting node its owner touches (after %d touches)", i+1)
		}
	}
	// Granted (the mark gone): never reaped.
	if _, err := l.conn.Set(p, encodeDetached(testOwner, time.Minute, time.Minute), -1); err != nil {
		t.Fatal(err)
	}
	_ = l.reapOrphan(ctx, dir, m, &w)
	time.Sleep(staleWaiting(touch) + 50*time.Millisecond)
	if l.reapOrphan(ctx, dir, m, &w) || !nodeExists(t, l, p) {
		t.Fatal("reaped a granted detached lease")
	}
	// Waiting again and left alone: reaped after staleWaiting.
	if _, err := l.conn.Set(p, encodeWaiting(testOwner, time.Minute, time.Minute, touch), -1); err != nil {
		t.Fatal(err)
	}
	_ = l.reapOrphan(ctx, dir, m, &w)
	time.Sleep(staleWaiting(touch) + 50*time.Millisecond)
	if !l.reapOrphan(ctx, dir, m, &w) || nodeExists(t, l, p) {
		t.Fatal("an unchanged waiting node was not reaped after staleWaiting")
	}
}
