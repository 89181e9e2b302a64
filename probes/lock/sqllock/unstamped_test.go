package sqllock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// A dsctl session-mode client stopped between its two steps (the session lock taken,
// the row not stamped) for longer than inspect's grace is named a dsctl client, held
// by its connection (its client marker says so), not "another program". Session locks
// are keyed by the name only (on MySQL server-wide), so nothing ties it to this table:
// `lock break` without --raw refuses it and ends nothing (the client then stamps and
// holds the lease). `lock list --foreign` does not show the markers.
func TestUnstampedDsctlHolderIsNamedADsctlClient(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		holder := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession})
		name := locktest.Name(t, "unstamped")
		conn, sid, err := sqllock.TakeSessionLock(ctx, holder, name)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // past the grace: the holder stays stopped
		info, err := l.Inspect(ctx, name)
		word := "backend pid "
		if isMySQL(dsn) {
			word = "connection "
		}
		if err != nil || !info.Held || info.Holder == nil || info.Holder.Token != word+itoa(sid) || info.Holder.Owner == nil ||
			info.Holder.Owner.Tool != "dsctl ("+word+itoa(sid)+")" || !strings.Contains(strings.Join(info.Notes, " "), "dsctl session-mode client") {
			t.Fatalf("inspect of a dsctl client stopped before its stamp: %+v (holder %+v) %v", info, info.Holder, err)
		}
		list, err := l.List(ctx, lock.ListOptions{Foreign: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range list {
			if strings.Contains(in.Name, "dsctl client") || strings.HasPrefix(in.Key, "pg_advisory_lock(1685283700,") {
				t.Fatalf("list --foreign shows a client marker: %+v", in)
			}
		}
		if _, err := l.Break(ctx, name, lock.BreakOptions{By: "test", Reason: "stuck"}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("break without --raw of a dsctl client's session lock with no row here: %v, want refused", err)
		}
		lease, err := sqllock.GrantSession(ctx, holder, conn, sid, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil || lease == nil {
			t.Fatalf("the client's stamp after a refused break: %v %v", lease, err)
		}
		_ = holder.Release(ctx, name, lease.Token)
	})
}

// A session-mode holder whose row lease ran out while its connection lives (a process
// stopped past its TTL: its session lock stays held) is dsctl's, held by that
// connection; `lock break` ends the connection, and the holder, resumed, is told who
// broke its lease and why (the record names its own token), and the next client takes
// the lock at once.
func TestBreakOfAHolderStoppedPastItsTTLTellsIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		tbl := table("locks")
		l := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl})
		admin := newLocker(t, dsn, sqllock.Options{Table: tbl})
		breaker := newLocker(t, dsn, sqllock.Options{Mode: sqllock.ModeSession, Table: tbl}) // lock break --mode session
		ctx := context.Background()
		name := "stopped-" + randHex(4)
		le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		past := "UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
		if !isMySQL(dsn) {
			past = "clock_timestamp() - interval '1 second'"
		}
		if _, err := admin.DB().Exec("UPDATE "+tbl+" SET expires_at = "+past+" WHERE name = "+ph(admin, 1), name); err != nil {
			t.Fatal(err)
		}
		info, err := breaker.Break(ctx, name, lock.BreakOptions{By: "oncall", Reason: "INC-9"})
		if err != nil || info.Format != lock.FormatDsctl || !info.Held {
			t.Fatalf("break of a holder stopped past its TTL: %+v %v", info, err)
		}
		_, err = l.Renew(ctx, name, le.Token, 30*time.Second)
		nh, ok := lock.AsNotHeld(err)
		if !ok || nh.Reason != lock.LostBroken || nh.Break == nil || nh.Break.By != "oncall" || nh.Break.Reason != "INC-9" {
			t.Fatalf("renew of the broken stopped holder: %v, want broken by oncall (INC-9)", err)
		}
		next, err := admin.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatalf("the lock after the break: %v", err)
		}
		if next.Fence <= le.Fence {
			t.Fatalf("fence %d after %d", next.Fence, le.Fence)
		}
		_ = admin.Release(ctx, name, next.Token)
	})
}
