package sqllock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// shedLocker opens a Locker on this run's ShedLock table (created with ShedLock's
// documented DDL by Init).
func shedLocker(t *testing.T, dsn string) *sqllock.Locker {
	return newLocker(t, dsn, sqllock.Options{Format: sqllock.FormatShedLock, Table: table("shed"), Host: "testhost"})
}

// shedName is a unique name that fits ShedLock's 64-character column.
func shedName(what string) string { return "t-" + what + "-" + randHex(6) }

// shedlockClient does what ShedLock's JdbcLockProvider does (its SQL, with the
// client's clock), for the foreign side of the tests that do not run the JVM.
type shedlockClient struct {
	l        *sqllock.Locker
	hostname string
}

func (c shedlockClient) ph(n int) string {
	if c.l.Backend().Kind == "mysql" {
		return "?"
	}
	return "$" + string(rune('0'+n))
}

// lock is ShedLock's insert-or-update with lock_until = now + d (client clock, local
// time: the JVM writes a Timestamp in its own zone, UTC here as the servers').
func (c shedlockClient) lock(t *testing.T, name string, d time.Duration) bool {
	t.Helper()
	now := time.Now().UTC()
	until := now.Add(d)
	db := c.l.DB()
	tbl := c.l.Table()
	_, err := db.Exec("INSERT INTO "+tbl+"(name, lock_until, locked_at, locked_by) VALUES("+c.ph(1)+", "+c.ph(2)+", "+c.ph(3)+", "+c.ph(4)+")",
		name, until.Format("2006-01-02 15:04:05.000"), now.Format("2006-01-02 15:04:05.000"), c.hostname)
	if err == nil {
		return true
	}
	res, err := db.Exec("UPDATE "+tbl+" SET lock_until = "+c.ph(1)+", locked_at = "+c.ph(2)+", locked_by = "+c.ph(3)+" WHERE name = "+c.ph(4)+" AND lock_until <= "+c.ph(5),
		until.Format("2006-01-02 15:04:05.000"), now.Format("2006-01-02 15:04:05.000"), c.hostname, name, now.Format("2006-01-02 15:04:05.000"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.RowsAffected()
	return n == 1
}

// unlock is ShedLock's unlock: lock_until = now.
func (c shedlockClient) unlock(t *testing.T, name string) {
	t.Helper()
	now := time.Now().UTC().Format("2006-01-02 15:04:05.000")
	if _, err := c.l.DB().Exec("UPDATE "+c.l.Table()+" SET lock_until = "+c.ph(1)+" WHERE name = "+c.ph(2), now, name); err != nil {
		t.Fatal(err)
	}
}

func TestShedLockFormat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a, b := shedLocker(t, dsn), shedLocker(t, dsn)
		if a.Backend().FencingSafe {
			t.Fatal("a ShedLock table claims fencing safety")
		}
		name := shedName("basic")
		lease, err := a.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if lease.Fence != 0 || lease.FencingSafe || !strings.Contains(lease.Note, "no fencing") || len(lease.Token) != 16 {
			t.Fatalf("lease = %+v", lease)
		}
		// The row is ShedLock's: locked_by names this host and ends in the token.
		var by string
		q := "SELECT locked_by FROM " + a.Table() + " WHERE name = ?"
		if a.Backend().Kind == "postgres" {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if err := a.DB().QueryRow(q, name).Scan(&by); err != nil {
			t.Fatal(err)
		}
		if by != "testhost dsctl pid 777 #"+lease.Token {
			t.Fatalf("locked_by = %q", by)
		}
		// Exclusive, naming the holder.
		_, err = b.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		na, ok := lock.AsNotAcquired(err)
		if !ok || na.Holder == nil || na.Holder.Token != lease.Token || na.Holder.Owner.Host != "testhost" || na.Holder.TTLLeft <= 3*time.Second {
			t.Fatalf("second acquire: %v (%+v)", err, na)
		}
		// A wrong token changes nothing.
		if err := b.Release(ctx, name, "0123456789abcdef"); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("release with a wrong token: %v", err)
		}
		info, err := b.Inspect(ctx, name)
		if err != nil || !info.Held || info.Format != sqllock.FormatShedLock || info.Holder.Token != lease.Token {
			t.Fatalf("inspect: %+v %v", info, err)
		}
		renewed, err := a.Renew(ctx, name, lease.Token, 20*time.Second)
		if err != nil || renewed.ExpiresAt.Before(lease.ExpiresAt.Add(10*time.Second)) {
			t.Fatalf("renew: %+v %v", renewed, err)
		}
		if info, _ := b.Inspect(ctx, name); info.Holder.TTLLeft < 15*time.Second {
			t.Fatalf("after renew, TTL left %s", info.Holder.TTLLeft)
		}
		got, err := b.List(ctx, lock.ListOptions{Prefix: name})
		if err != nil || len(got) != 1 || got[0].Name != name {
			t.Fatalf("list: %+v %v", got, err)
		}
		if err := a.Release(ctx, name, lease.Token); err != nil {
			t.Fatal(err)
		}
		if info, _ := b.Inspect(ctx, name); info.Held {
			t.Fatalf("held after release: %+v", info)
		}
		// Released rows stay (ShedLock never deletes them) and are taken over.
		l2, err := b.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Release(ctx, name, l2.Token)

		// Bad input, before any I/O.
		if _, err := a.Acquire(ctx, strings.Repeat("n", 65), lock.AcquireOptions{TTL: time.Second}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("65-character name: %v", err)
		}
		if _, err := a.Acquire(ctx, shedName("f"), lock.AcquireOptions{TTL: time.Second, RequireFencing: true}); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("--require-fencing: %v", err)
		}
	})
}

// dsctl and a ShedLock client exclude each other in the same table, both ways; an
// expired ShedLock row is taken over; dsctl never extends or releases ShedLock's row.
func TestShedLockExcludesShedLockClient(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := shedLocker(t, dsn)
		app := shedlockClient{l: l, hostname: "testhost"} // same host name as dsctl's: still distinct owners
		name := shedName("x")
		if !app.lock(t, name, 10*time.Second) {
			t.Fatal("the ShedLock client could not take a free lock")
		}
		_, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		na, ok := lock.AsNotAcquired(err)
		if !ok || na.Holder.Token != "testhost" {
			t.Fatalf("dsctl against ShedLock's lock: %v", err)
		}
		if err := l.Release(ctx, name, "0123456789abcdef"); errs.KindOf(err) != errs.KindLockLost {
			t.Fatalf("release of ShedLock's lock with a dsctl token: %v", err)
		}
		// Waiting dsctl gets it when ShedLock unlocks.
		done := make(chan *lock.Lease, 1)
		go func() {
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
			if err != nil {
				t.Error(err)
			}
			done <- le
		}()
		time.Sleep(200 * time.Millisecond)
		app.unlock(t, name)
		var le *lock.Lease
		select {
		case le = <-done:
		case <-time.After(8 * time.Second):
			t.Fatal("dsctl did not take the lock ShedLock released")
		}
		if le == nil {
			t.FailNow()
		}
		if app.lock(t, name, 10*time.Second) {
			t.Fatal("the ShedLock client took a lock dsctl holds")
		}
		if err := l.Release(ctx, name, le.Token); err != nil {
			t.Fatal(err)
		}
		if !app.lock(t, name, 300*time.Millisecond) {
			t.Fatal("the ShedLock client could not take the lock dsctl released")
		}
		// ShedLock's lease runs out (a crashed app): dsctl takes it over.
		time.Sleep(400 * time.Millisecond)
		le, err = l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err != nil {
			t.Fatalf("taking over an expired ShedLock row: %v", err)
		}
		_ = l.Release(ctx, name, le.Token)
	})
}

// A dsctl-format Locker pointed at a ShedLock table inspects it; acquiring in it says
// what is wrong with the table.
func TestShedLockTableInspectedByDefaultFormat(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		sl := shedLocker(t, dsn)
		name := shedName("i")
		le, err := sl.Acquire(ctx, name, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		defer sl.Release(ctx, name, le.Token)
		l, err := sqllock.New(ctx, endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.SQL{}.WithDSNValue(dsn), sqllock.Options{Table: table("shed")})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held || info.Format != sqllock.FormatShedLock {
			t.Fatalf("inspect: %+v %v", info, err)
		}
		_, err = l.Acquire(ctx, locktest.Name(t, "a"), lock.AcquireOptions{TTL: time.Second})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "missing token") {
			t.Fatalf("acquire in a ShedLock table with the dsctl format: %v", err)
		}
	})
}

// List prefixes are literal: _ and % in a prefix match only themselves.
func TestListPrefixIsLiteral(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := newLocker(t, dsn, sqllock.Options{})
		base := locktest.Name(t, "p")
		var leases []*lock.Lease
		for _, n := range []string{base + "/a_b", base + "/aXb", base + "/c%d", base + "/cYd"} {
			le, err := l.Acquire(ctx, n, lock.AcquireOptions{TTL: 5 * time.Second, Owner: owner})
			if err != nil {
				t.Fatal(err)
			}
			leases = append(leases, le)
		}
		for prefix, want := range map[string]string{base + "/a_": base + "/a_b", base + "/c%": base + "/c%d"} {
			got, err := l.List(ctx, lock.ListOptions{Prefix: prefix})
			if err != nil || len(got) != 1 || got[0].Name != want {
				t.Fatalf("list %q: %+v %v", prefix, got, err)
			}
		}
		for _, le := range leases {
			_ = l.Release(ctx, le.Name, le.Token)
		}
	})
}
