package sqllock_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// Purge (lock bench and verify's throwaway names) leaves a held row alone and deletes
// a free one, fencing counter included.
func TestPurgeDeletesOnlyAFreeRow(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		for _, mode := range []sqllock.Mode{sqllock.ModeLease, sqllock.ModeSession} {
			l := newLocker(t, dsn, sqllock.Options{Mode: mode})
			name := locktest.Name(t, "purge")
			lease, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Purge(context.Background(), name); err != nil {
				t.Fatal(err)
			}
			if info, err := l.Inspect(context.Background(), name); err != nil || !info.Held || info.Holder.Token != lease.Token {
				t.Fatalf("%s: purge touched a held lock: %+v %v", mode, info, err)
			}
			if err := l.Release(context.Background(), name, lease.Token); err != nil {
				t.Fatal(err)
			}
			if err := l.Purge(context.Background(), name); err != nil {
				t.Fatal(err)
			}
			var n int
			q := "SELECT count(*) FROM " + l.Table() + " WHERE name = $1"
			if l.Target().Driver == "mysql" {
				q = "SELECT count(*) FROM " + l.Table() + " WHERE name = ?"
			}
			if err := l.DB().QueryRow(q, name).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s: %d rows left after purge of a free lock (%v)", mode, n, err)
			}
			next, err := l.Acquire(context.Background(), name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
			if err != nil || next.Fence != 1 {
				t.Fatalf("%s: after purge the name starts again at fence 1: %+v %v", mode, next, err)
			}
			_ = l.Release(context.Background(), name, next.Token)
			_ = l.Purge(context.Background(), name)
		}
	})
}
