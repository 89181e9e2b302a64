package zklock_test

// Regression tests for the second review's argued points (issue 12).

import (
	"context"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
)

// A detached acquire still waiting behind a kazoo read lock (first in the queue, a
// lock kind dsctl waits for) is not held: renewing it by token from another process
// must fail, and must not turn the waiting node into a held lease.
func TestReview2FixRenewDetachedWaitingBehindAForeignReader(t *testing.T) {
	tg := reviewServer(t)
	ctx := context.Background()
	name := locktest.Name(t, "r2renew")
	reader, w, other := newLocker(t, tg), newLocker(t, tg), newLocker(t, tg)
	dir := reader.Root() + "/" + name
	if err := ensurePath(reader.Client().Conn(), dir); err != nil {
		t.Fatal(err)
	}
	rnode, err := reader.Client().Conn().Create(dir+"/0123456789abcdef0123456789abcdef__rlock__", nil, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Client().Conn().Delete(rnode, -1) }()
	done := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, err := w.Acquire(wctx, name, lock.AcquireOptions{TTL: 30 * time.Second, Wait: lock.WaitFor(20 * time.Second), Owner: owner, Detached: true})
		done <- err
	}()
	var token string
	for i := 0; i < 200 && token == ""; i++ {
		for _, k := range children(t, other, name) {
			if strings.HasPrefix(k, "_c_") && strings.Contains(k, "-lock-") {
				token = strings.TrimSuffix(strings.TrimPrefix(k, "_c_"), k[strings.Index(k, "-lock-"):])
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if token == "" {
		t.Fatalf("the detached acquire did not queue: %v", children(t, other, name))
	}
	if le, err := other.Renew(ctx, name, token, 30*time.Second); err == nil {
		t.Fatalf("renewed a detached acquire still waiting behind a kazoo reader as held: %+v", le)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled acquire did not return")
	}
}

func ensurePath(c *gozk.Conn, p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := ""
	for _, s := range parts {
		cur += "/" + s
		if _, err := c.Create(cur, nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil && err != gozk.ErrNodeExists {
			return err
		}
	}
	return nil
}
