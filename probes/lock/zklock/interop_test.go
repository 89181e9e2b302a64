package zklock_test

import (
	"context"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// dsctl and go-zookeeper's Lock (the same protected-node recipe) exclude each other
// both ways on the same lock node, and inspect names a go-zookeeper holder.
func TestInteropWithGoZookeeperLock(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		ctx := context.Background()
		l := newLocker(t, tg)
		name := locktest.Name(t, "gozk")
		path := l.Root() + "/" + name
		s, err := endpoint.Dialer{Timeout: 5 * time.Second}.ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: tg.Servers})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		go func() {
			for range s.Events {
			}
		}()
		// Parents first (go-zookeeper's Lock creates missing parents as persistent nodes).
		warm, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Release(ctx, name, warm.Token)

		// go-zookeeper holds: dsctl is refused and names the holder's format.
		theirs := gozk.NewLock(s.Conn, path, gozk.WorldACL(gozk.PermAll))
		if err := theirs.Lock(); err != nil {
			t.Fatal(err)
		}
		_, err = l.Acquire(ctx, name, lock.AcquireOptions{TTL: time.Second, Owner: owner})
		if errs.KindOf(err) != errs.KindLockNotAcquired {
			t.Fatalf("acquire while go-zookeeper holds: %v", err)
		}
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held || info.Format != zklock.FormatGoZK || info.Holder.Fence == 0 {
			t.Fatalf("inspect of a go-zookeeper holder: %+v %v", info, err)
		}
		// A dsctl waiter takes it when go-zookeeper unlocks.
		got := make(chan *lock.Lease, 1)
		go func() {
			le, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: 10 * time.Second, Wait: lock.WaitFor(10 * time.Second), Owner: owner})
			if err != nil {
				t.Error(err)
			}
			got <- le
		}()
		time.Sleep(100 * time.Millisecond)
		select {
		case <-got:
			t.Fatal("dsctl acquired while go-zookeeper held")
		default:
		}
		if err := theirs.Unlock(); err != nil {
			t.Fatal(err)
		}
		var ours *lock.Lease
		select {
		case ours = <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("dsctl waiter not woken by go-zookeeper's unlock")
		}
		if ours == nil {
			t.FailNow()
		}
		// dsctl holds: go-zookeeper's Lock waits until dsctl releases.
		locked := make(chan error, 1)
		theirs2 := gozk.NewLock(s.Conn, path, gozk.WorldACL(gozk.PermAll))
		go func() { locked <- theirs2.Lock() }()
		select {
		case err := <-locked:
			t.Fatalf("go-zookeeper locked while dsctl held: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if err := l.Release(ctx, name, ours.Token); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-locked:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("go-zookeeper not woken by dsctl's release")
		}
		_ = theirs2.Unlock()
	})
}
