package sqllock_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/faultproxy"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// A renewal that finds its lease broken says so (who, why) even when the call's own
// deadline is short next to the link's round trip (`lock run` bounds each renewal by
// a fraction of the TTL): reading why gets its own time. (It used to fail the
// renewal as unreachable, so the holder reported only that no renewal succeeded.)
func TestRenewOfABrokenLeaseSaysBrokenOnASlowLink(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		newLocker(t, dsn, sqllock.Options{}) // table
		px, err := faultproxy.New(dsnAddr(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = px.Close() })
		holder, err := open(t, dsnWith(t, dsn, px.Addr(), "", ""), sqllock.Options{Table: table("locks")})
		if err != nil {
			t.Fatal(err)
		}
		name := locktest.Name(t, "slowwhy")
		lease, err := holder.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newLocker(t, dsn, sqllock.Options{}).Break(ctx, name, lock.BreakOptions{By: "ops", Reason: "INC-7"}); err != nil {
			t.Fatal(err)
		}
		px.SetLatency(100*time.Millisecond, 0) // 200ms a round trip
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = holder.Renew(rctx, name, lease.Token, 10*time.Second)
		cancel()
		nh, ok := lock.AsNotHeld(err)
		if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.Reason != "INC-7" {
			t.Fatalf("renew of a broken lease over a slow link with a short deadline: %v, want broken (INC-7)", err)
		}
	})
}
