package kafka_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// Against the harness's 3-broker KRaft cluster: topics that break each topic rule are
// reported, exactly those, each with the config source that won. One rule's value is
// set as a dynamic cluster default to prove the source is read from the synonyms.
func TestRealAuditReportsEachTopicRuleWithItsSource(t *testing.T) {
	c := realCluster(t)
	off := map[string]string{"unclean.leader.election.enable": "false"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"unclean.leader.election.enable": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c.create("rf1", 2, 1, off, nil)
	c.create("rf2", 2, 2, with("min.insync.replicas", "1"), nil)
	c.create("misr1", 2, 3, with("min.insync.replicas", "1"), nil)
	c.create("misr3", 2, 3, with("min.insync.replicas", "3"), nil)
	c.create("unclean", 2, 3, map[string]string{"min.insync.replicas": "2", "unclean.leader.election.enable": "true"}, nil)
	c.create("healthy", 2, 3, with("min.insync.replicas", "2"), nil)
	// No unclean override: it inherits the cluster default set below.
	c.create("inherits", 2, 3, map[string]string{"min.insync.replicas": "2"}, nil)

	on := "true"
	c.setClusterDefault("unclean.leader.election.enable", &on)
	t.Cleanup(func() { c.setClusterDefault("unclean.leader.election.enable", nil) })

	want := []string{
		"topic-replication-factor rf1",
		"topic-replication-factor rf2",
		"topic-min-isr-low rf2", // RF 2, min.insync.replicas 1: the leader alone acknowledges while the follower lags
		"topic-min-isr-low misr1",
		"topic-min-isr-blocks-writes misr3",
		"topic-unclean-election unclean",
		"topic-unclean-election inherits",
	}
	pattern := c.prefix + ".*"
	var rep *kprobe.Report
	eventually(t, 20*time.Second, "audit shows the seeded risks", func() string {
		rep, _ = auditJSON(t, "--brokers", c.bootstrap(), "--topic", pattern)
		if got := findingKeys(rep, c.prefix, kprobe.Warn, true); !same(got, want) {
			return fmt.Sprintf("got %v", got)
		}
		return ""
	})
	if rep.Cluster.TopicsAudited != 7 || rep.Cluster.Partitions != 14 || len(rep.Cluster.Brokers) != 3 {
		t.Fatalf("cluster summary %+v", rep.Cluster)
	}
	sources := map[string]kprobe.Source{}
	for _, f := range rep.Findings {
		name := strings.TrimPrefix(f.Topic, c.prefix)
		sources[f.Rule+" "+name] = f.Source
		if f.Why == "" || f.Fix == "" || f.Observed == "" {
			t.Errorf("finding without why/fix/observed: %+v", f)
		}
		if f.Rule == kprobe.RuleMinISRLow && !strings.Contains(f.Fix, "kafka-configs.sh --bootstrap-server "+c.brokers[0]+" --alter --entity-type topics --entity-name "+f.Topic+" --add-config min.insync.replicas=2") {
			t.Errorf("fix %q", f.Fix)
		}
	}
	for key, src := range map[string]kprobe.Source{
		"topic-unclean-election unclean":    kprobe.SourceTopic,
		"topic-unclean-election inherits":   kprobe.SourceDynamicDefault,
		"topic-min-isr-low misr1":           kprobe.SourceTopic,
		"topic-min-isr-low rf2":             kprobe.SourceTopic,
		"topic-min-isr-blocks-writes misr3": kprobe.SourceTopic,
		"topic-replication-factor rf1":      kprobe.SourceMetadata,
	} {
		if sources[key] != src {
			t.Errorf("%s: source %q, want %q", key, sources[key], src)
		}
	}
	// What-if: losing any broker takes an rf1 partition offline or blocks misr3.
	if got := findingKeys(rep, c.prefix, kprobe.Info, true); len(got) <= len(want) {
		t.Fatalf("no what-if findings: %v", got)
	}
	// O(1) requests: one Metadata, one DescribeConfigs for all topics, one per broker.
	if rep.Requests.ByAPI["Metadata"] != 1 || rep.Requests.ByAPI["DescribeConfigs"] != 4 {
		t.Fatalf("requests %+v", rep.Requests)
	}
	// More topics outside the pattern (a fresh cluster may have no others): same requests.
	other := realCluster(t)
	for _, name := range []string{"a", "b", "c"} {
		other.create(name, 1, 1, off, nil)
	}
	full, _ := auditJSON(t, "--brokers", c.bootstrap())
	if full.Requests.Total != rep.Requests.Total || full.Cluster.TopicsAudited <= rep.Cluster.TopicsAudited {
		t.Fatalf("requests for %d topics: %+v; for %d topics: %+v", rep.Cluster.TopicsAudited, rep.Requests, full.Cluster.TopicsAudited, full.Requests)
	}

	// The table groups by topic and ends with the summary; --fail-on sets the exit code.
	r := dsctl(t, nil, "kafka", "audit", "--brokers", c.bootstrap(), "--topic", pattern, "--fail-on", "error")
	if r.code != 5 || !strings.Contains(r.out, "source: dynamic cluster default") ||
		!strings.Contains(r.out, "0 critical, 3 error, 4 warn") || !strings.Contains(r.errOut, "at or above error") {
		t.Fatalf("table with --fail-on error: exit %d\n%s\nstderr: %s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "kafka", "audit", "--brokers", c.bootstrap(), "--topic", c.prefix+"healthy", "--fail-on", "warn")
	if r.code != 0 {
		t.Fatalf("healthy topic: exit %d\n%s\nstderr: %s", r.code, r.out, r.errOut)
	}

	// describe topic shows every config with its source.
	r = dsctl(t, nil, "kafka", "describe", "topic", c.prefix+"inherits", "--brokers", c.bootstrap(), "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, `"source": "dynamic_cluster_default"`) || !strings.Contains(r.out, `"name": "retention.ms"`) {
		t.Fatalf("describe topic: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "kafka", "describe", "topic", c.prefix+"misr3", "--brokers", c.bootstrap())
	if r.code != 0 || !strings.Contains(r.out, "min.insync.replicas") || !strings.Contains(r.out, "replication factor 3") {
		t.Fatalf("describe topic table: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "kafka", "partition", "--brokers", c.bootstrap(), "--topic", c.prefix+"rf1", "--key", "21", "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, `"partitions": 2`) {
		t.Fatalf("partition --topic: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}
