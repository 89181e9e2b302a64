package zklock_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/verify"
	"github.com/dsctl/dsctl/probes/lock/zklock"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// `lock verify` (workers behind fault proxies: latency, blackhole, reset, pause past
// the TTL) finds no violation on the ZooKeeper backend, and leaves nothing behind.
// Every fault, under -race too: resets and blackholes reconnect waiting clients, whose
// requests wait for go-zookeeper's setWatches (zk.ReconnectSettle).
func TestVerifyWithFaults(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		name := locktest.Name(t, "verify")
		out, err := verify.Run(context.Background(), verify.Options{
			Workers: 6, Duration: 4 * time.Second, TTL: 300 * time.Millisecond, Faults: verify.AllFaults,
			Name: name, Targets: tg.Servers, Tool: "dsctl test",
			NewLocker: func(_ int, addrs []string) (lock.Locker, error) {
				return zklock.New(context.Background(), endpoint.Dialer{Timeout: time.Second},
					zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: addrs, SessionTimeout: endpoint.Duration(time.Second)}})
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		rep := out.Report
		for _, p := range rep.Properties {
			t.Logf("%s: %s (%d violations, %d checked) %s", p.Name, p.Verdict, p.Violations, p.Checked, p.Detail)
		}
		t.Logf("faults %v", out.Faults)
		if !rep.Safe || rep.Violations != 0 {
			t.Fatalf("verify found %d violations", rep.Violations)
		}
		l := newLocker(t, tg)
		for deadline := time.Now().Add(5 * time.Second); len(children(t, l, name)) > 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("left behind: %v", children(t, l, name))
			}
		}
	})
}
