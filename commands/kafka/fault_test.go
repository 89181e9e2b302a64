package kafka_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Stop broker 3: partitions with a replica on it are under-replicated, at or under
// min ISR, or offline (all replicas there); restart it and the audit is clean again.
// Then stop brokers 3 and 2: topics whose replicas were all on them are offline, even
// though the controller quorum is lost and the metadata still names broker 2 leader.
func TestFaultKafkaBrokersDown(t *testing.T) {
	testenv.Faults(t)
	c := realCluster(t)
	keep := map[string]string{"unclean.leader.election.enable": "false"}
	with := func(misr string) map[string]string {
		return map[string]string{"unclean.leader.election.enable": "false", "min.insync.replicas": misr}
	}
	c.create("misr2", 3, 3, with("2"), nil)
	c.create("misr3", 1, 3, with("3"), nil)
	c.create("misr1", 1, 3, with("1"), nil)
	c.create("rf1-on3", -1, -1, keep, map[int32][]int32{0: {3}})
	c.create("on23", -1, -1, with("1"), map[int32][]int32{0: {2, 3}})
	pattern := c.prefix + ".*"

	// Only the topic-level risks while every broker is up.
	healthy := []string{
		"topic-min-isr-blocks-writes misr3", "topic-min-isr-low misr1", "topic-min-isr-low on23",
		"topic-replication-factor rf1-on3", "topic-replication-factor on23",
	}
	waitFor := func(what string, within time.Duration, want []string) *kprobe.Report {
		t.Helper()
		var rep *kprobe.Report
		eventually(t, within, what, func() string {
			rep, _ = auditJSON(t, "--brokers", c.bootstrap(), "--topic", pattern)
			if got := findingKeys(rep, c.prefix, kprobe.Warn, true); !same(got, want) {
				return fmt.Sprintf("got %v", got)
			}
			return ""
		})
		return rep
	}
	waitFor("a healthy start", 20*time.Second, healthy)

	t.Cleanup(func() { testenv.Service(t, "start", "kafka", "3") })
	testenv.Service(t, "stop", "kafka", "3")
	// The controller fences broker 3 after broker.session.timeout.ms (3 s here).
	rep := waitFor("broker 3 down", 30*time.Second, append([]string{
		"broker-offline /b3",
		"partition-at-min-isr misr2/p0", "partition-at-min-isr misr2/p1", "partition-at-min-isr misr2/p2",
		"partition-under-min-isr misr3/p0",
		"partition-under-replicated misr1/p0",
		"partition-offline rf1-on3/p0",
		"partition-at-min-isr on23/p0",
	}, healthy...))
	for _, f := range rep.Findings {
		if f.Rule == kprobe.RuleUnderMinISR && (f.Severity != kprobe.Critical || !strings.Contains(f.Observed, "down [3]")) {
			t.Fatalf("under-min-ISR finding %+v", f)
		}
	}
	r := dsctl(t, nil, "kafka", "audit", "--brokers", c.bootstrap(), "--topic", pattern, "--fail-on", "critical")
	if r.code != 5 || !strings.Contains(r.out, "partition-under-min-isr") {
		t.Fatalf("--fail-on critical with broker 3 down: exit %d\n%s", r.code, r.out)
	}

	// Second broker down: the KRaft quorum (3 combined nodes) is lost with it.
	t.Cleanup(func() { testenv.Service(t, "start", "kafka", "2") })
	testenv.Service(t, "stop", "kafka", "2")
	eventually(t, 30*time.Second, "brokers 2 and 3 down", func() string {
		rep, _ = auditJSON(t, "--brokers", c.bootstrap(), "--topic", pattern)
		got := findingKeys(rep, c.prefix, kprobe.Warn, true)
		for _, must := range []string{"broker-offline /b2", "broker-offline /b3", "partition-offline on23/p0", "partition-offline rf1-on3/p0"} {
			if !strings.Contains(strings.Join(got, "\n"), must) {
				return fmt.Sprintf("%q missing from %v", must, got)
			}
		}
		// misr2's partitions are offline (led by 2) or under min ISR (led by 1).
		for p := 0; p < 3; p++ {
			off, under := fmt.Sprintf("partition-offline misr2/p%d", p), fmt.Sprintf("partition-under-min-isr misr2/p%d", p)
			if !same(filter(got, fmt.Sprintf("misr2/p%d", p)), []string{off}) && !same(filter(got, fmt.Sprintf("misr2/p%d", p)), []string{under}) {
				return fmt.Sprintf("misr2/p%d: %v", p, filter(got, fmt.Sprintf("misr2/p%d", p)))
			}
		}
		return ""
	})

	// Restart both; once the replicas catch up the audit is back to the topic risks.
	testenv.Service(t, "start", "kafka", "3")
	testenv.Service(t, "start", "kafka", "2")
	waitFor("the restarted brokers back in sync", 90*time.Second, healthy)
}

// filter keeps the entries about one topic partition ("rule topic/pN").
func filter(list []string, partition string) []string {
	var out []string
	for _, s := range list {
		if strings.HasSuffix(s, " "+partition) {
			out = append(out, s)
		}
	}
	return out
}
