//go:build unix

package supervisor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// lateGrant is a Locker whose Acquire returns a lease that arrived late: it was
// granted a whole TTL ago and ends in a few milliseconds (slow round trips, a pause).
type lateGrant struct {
	lock.Locker
	left time.Duration
}

func (g lateGrant) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	le, err := g.Locker.Acquire(ctx, name, opt)
	if err != nil {
		return nil, err
	}
	span := le.ExpiresAt.Sub(le.AcquiredAt)
	le.ExpiresAt = time.Now().Add(g.left)
	le.AcquiredAt = le.ExpiresAt.Add(-span)
	return le, nil
}

// Finding 10 of the review: Run does not start the child on a lease that has no more
// than the grace plus the margin left; it releases the lock and says so (not acquired).
// A lease with time left runs the child as usual.
func TestLateGrantDoesNotStartTheChild(t *testing.T) {
	_, newLocker := backend(t)
	l := newLocker()
	marker := filepath.Join(t.TempDir(), "started")
	o, _ := options(lateGrant{Locker: l, left: 5 * time.Millisecond}, "late", 3*time.Second, "sh", "-c", "touch "+marker)
	res, err := supervisor.Run(ctx, o)
	if errs.KindOf(err) != errs.KindLockNotAcquired || res != nil {
		t.Fatalf("run on a lease with 5ms left: result %+v, err %v; want not acquired", res, err)
	}
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatal("the child ran on a lease that had no time left")
	}
	if info, _ := l.Inspect(ctx, "late"); info.Held {
		t.Fatal("the lock is still held after the refused run")
	}
	// Enough left: it runs.
	o.Locker = lateGrant{Locker: l, left: 2 * time.Second}
	res, err = supervisor.Run(ctx, o)
	if err != nil || res.Err() != nil {
		t.Fatalf("run with 2s of a 3s lease left: %v %v", err, res.Err())
	}
	if _, serr := os.Stat(marker); serr != nil {
		t.Fatal("the child did not run")
	}
}
