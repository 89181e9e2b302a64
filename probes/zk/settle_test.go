package zk

import (
	"context"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	zkt "github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// Settled is true at once on the first session (no watch to re-set, nothing to wait
// for), false while the connection is down, and only ReconnectSettle after the session
// is back on a new connection: requests sent then come after go-zookeeper's setWatches
// (go-zookeeper/zk#35). WaitSettled returns when it is, and not before.
func TestSettledWaitsOutAReconnect(t *testing.T) {
	zkt.Run(t, zkserver.Options{}, func(t *testing.T, tg zkt.Target) {
		px := startProxy(t, tg.Servers[0])
		c := connect(t, endpoint.ZooKeeper{Servers: []string{px.Addr()}, SessionTimeout: endpoint.Duration(8 * time.Second)})
		if !c.Settled() {
			t.Fatal("the first session should be settled at once")
		}
		px.Pause()
		deadline := time.Now().Add(10 * time.Second)
		for c.Settled() {
			if time.Now().After(deadline) {
				t.Fatal("still settled 10s after the connection was dropped")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if c.WaitSettled(context.Background(), time.Now().Add(300*time.Millisecond)) {
			t.Fatal("WaitSettled said settled while the proxy refuses connections")
		}
		px.Resume()
		for c.Conn().State() != gozk.StateHasSession {
			if time.Now().After(deadline) {
				t.Fatalf("no session 10s after the proxy resumed (state %s)", c.Conn().State())
			}
			time.Sleep(time.Millisecond)
		}
		back := time.Now()
		if c.Settled() {
			t.Fatal("settled as soon as the session came back")
		}
		if !c.WaitSettled(context.Background(), time.Now().Add(5*time.Second)) {
			t.Fatal("not settled 5s after the session came back")
		}
		// The state flips a little before dispatch records it: allow 10ms.
		if waited := time.Since(back); waited < ReconnectSettle-10*time.Millisecond {
			t.Fatalf("settled %s after the session came back, want about %s", waited, ReconnectSettle)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if !c.WaitSettled(ctx, time.Now()) {
			t.Fatal("a settled connection should report settled even with an ended context")
		}
	})
}
