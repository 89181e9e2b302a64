package sandbox_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/lockwatch"
	"github.com/dsctl/dsctl/probes/sandbox"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk"
)

var d = endpoint.Dialer{Timeout: 5 * time.Second}

// fast makes the simulation busy enough to see everything within seconds.
func fast(o sandbox.ActivityOptions) sandbox.ActivityOptions {
	o.LockTTL, o.CrashOneIn, o.ConfigInterval, o.FlipInterval, o.Seed = time.Second, 2, 300*time.Millisecond, 700*time.Millisecond, 42
	return o
}

// eventually polls check every 100ms until it returns "" or within passes.
func eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The TUI's sandbox: within seconds the locks pane sees leases acquired, handed over
// and expired (a crashed worker), the ZooKeeper node changes, and the audit's
// unclean-election finding on the flaky topic appears and clears.
func TestActivityOnTheSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	opt := fast(sb.ActivityOptions())
	actx, stop := context.WithCancel(ctx)
	a, err := sandbox.StartActivity(actx, d, opt)
	if err != nil {
		t.Fatal(err)
	}

	watcher, err := redislock.New(d, endpoint.Redis{Addrs: []string{sb.RedisAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	seen := map[lockwatch.Kind]int{}
	updates := lockwatch.Watch(actx, watcher, lockwatch.Options{Interval: 100 * time.Millisecond, List: lock.ListOptions{Prefix: "sandbox/"}})
	deadline := time.After(30 * time.Second)
	for seen[lockwatch.Acquired] == 0 || seen[lockwatch.Expired] == 0 || seen[lockwatch.Released]+seen[lockwatch.HandedOver] == 0 {
		select {
		case u := <-updates:
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			for _, e := range u.Events {
				seen[e.Kind]++
			}
		case <-deadline:
			t.Fatalf("lock events within 30s: %v (stats %+v)", seen, a.Stats())
		}
	}

	zc, err := zk.Connect(ctx, d, zk.Options{Endpoint: endpoint.ZooKeeper{Servers: []string{sb.ZooKeeperAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	first, err := zc.Get(ctx, "/sandbox/activity/rollout")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		n, err := zc.Get(ctx, "/sandbox/activity/rollout")
		if err != nil || n.Stat.Version <= first.Stat.Version || !strings.Contains(string(n.Data), "rollout_percent=") {
			return fmt.Sprintf("config node %+v, %v", n.Stat, err)
		}
		return ""
	})

	audit, err := kprobe.LoadAudit(kprobe.AuditRequest{Topics: []string{"activity-flaky"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []bool{true, false} {
		eventually(t, 15*time.Second, func() string {
			rep, err := audit.Run(ctx, d, endpoint.Kafka{Brokers: sb.KafkaBrokers})
			if err != nil {
				return err.Error()
			}
			got := false
			for _, f := range rep.Findings {
				got = got || (f.Topic == "activity-flaky" && f.Rule == kprobe.RuleUncleanElection)
			}
			if got != want {
				return fmt.Sprintf("unclean-election finding %v, want %v (stats %+v)", got, want, a.Stats())
			}
			return ""
		})
	}

	stop()
	select {
	case <-a.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("activity did not stop within 15s of its context's end")
	}
	st := a.Stats()
	if st.Acquired == 0 || st.Released == 0 || st.Crashed == 0 || st.ConfigChanges < 2 || st.TopicFlips < 2 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Against the real servers: the same parts, under names of this test's own.
func TestActivityOnRealServers(t *testing.T) {
	redisAddr := testenv.List(t, testenv.Redis)[0]
	servers, brokers := testenv.List(t, testenv.ZK), testenv.List(t, testenv.Kafka)
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	opt := fast(sandbox.ActivityOptions{Redis: []string{redisAddr}, ZooKeeper: servers, Kafka: brokers,
		LockPrefix: "dsctl-test/activity-" + id + "/", ConfigPath: "/dsctl-test/activity-" + id + "/rollout", FlakyTopic: "dsctl-test-activity-" + id})
	t.Cleanup(func() { cleanupReal(t, servers, brokers, "/dsctl-test/activity-"+id, opt.FlakyTopic) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := sandbox.StartActivity(ctx, d, opt)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		st := a.Stats()
		if st.Acquired < 3 || st.Released == 0 || st.Crashed == 0 || st.ConfigChanges < 2 || st.TopicFlips < 2 {
			return fmt.Sprintf("stats %+v", st)
		}
		return ""
	})
	cancel()
	select {
	case <-a.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("activity did not stop within 15s")
	}
	if st := a.Stats(); st.Errors != 0 {
		t.Fatalf("errors: %+v", st)
	}
}

func cleanupReal(t *testing.T, servers, brokers []string, zkRoot, topic string) {
	if c, err := zk.Connect(context.Background(), d, zk.Options{Endpoint: endpoint.ZooKeeper{Servers: servers}}); err == nil {
		if _, err := c.DeleteTree(context.Background(), zkRoot, 0); err != nil {
			t.Logf("cleanup %s: %v", zkRoot, err)
		}
		c.Close()
	}
	client, err := d.ConnectKafka(context.Background(), endpoint.Kafka{Brokers: brokers})
	if err != nil {
		t.Logf("cleanup %s: %v", topic, err)
		return
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return
	}
	defer admin.Close()
	if err := admin.DeleteTopic(topic); err != nil {
		t.Logf("cleanup %s: %v", topic, err)
	}
}

// A broker "fails" and comes back: the audit's critical findings appear, then clear,
// and the demo's leader placement is the same as before.
func TestActivityBrokerOutageOnTheSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ep := endpoint.Kafka{Brokers: sb.KafkaBrokers}
	before, err := kprobe.RunAudit(ctx, d, ep, kprobe.AuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	opt := sandbox.ActivityOptions{Kafka: sb.KafkaBrokers, BrokerOutageEvery: 500 * time.Millisecond, BrokerOutageFor: 2 * time.Second}
	actx, stop := context.WithCancel(ctx)
	a, err := sb.StartActivity(actx, d, opt)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() string {
		rep, err := kprobe.RunAudit(ctx, d, ep, kprobe.AuditRequest{})
		if err != nil {
			return err.Error()
		}
		if len(rep.Cluster.Brokers) != 2 || rep.Summary.Critical == 0 {
			return fmt.Sprintf("during an outage: %d brokers, summary %+v (stats %+v)", len(rep.Cluster.Brokers), rep.Summary, a.Stats())
		}
		return ""
	})
	stop() // a broker down now comes back at once
	select {
	case <-a.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("activity did not stop within 15s")
	}
	if st := a.Stats(); st.BrokerOutages == 0 || st.BrokerDown != -1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	after, err := kprobe.RunAudit(ctx, d, ep, kprobe.AuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Cluster.Brokers) != 3 || after.Summary != before.Summary || len(after.Findings) != len(before.Findings) {
		t.Fatalf("after the outage: %d brokers, summary %+v, want %+v", len(after.Cluster.Brokers), after.Summary, before.Summary)
	}
	for i := range before.Findings {
		if before.Findings[i].Key() != after.Findings[i].Key() || before.Findings[i].Observed != after.Findings[i].Observed {
			t.Fatalf("finding %d changed: %+v -> %+v", i, before.Findings[i], after.Findings[i])
		}
	}
}
