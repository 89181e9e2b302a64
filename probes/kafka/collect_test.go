package kafka

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// kfake (in process) holds 600 topics without minutes of topic creation on the real
// cluster: enough to show that the audit's request count does not grow with topics.
// (scripts/bench-kafka-audit measures 2,000 topics on the real cluster.)
func TestCollectRequestsAreConstantInTopics(t *testing.T) {
	counts := map[int]map[string]int{}
	for _, n := range []int{3, 600} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("t%04d", i)
		}
		cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, names...))
		if err != nil {
			t.Fatal(err)
		}
		counter := &endpoint.RequestCounter{}
		snap, err := Collect(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second}, endpoint.Kafka{Brokers: cluster.ListenAddrs()},
			CollectOptions{TopicConfigs: AuditTopicConfigs, BrokerConfigs: BrokerKeyConfigs, Counter: counter})
		cluster.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Topics) != n || len(snap.Brokers) != 3 {
			t.Fatalf("%d topics: snapshot has %d topics, %d brokers", n, len(snap.Topics), len(snap.Brokers))
		}
		for _, tp := range snap.Topics {
			if _, ok := tp.Configs["min.insync.replicas"]; !ok || tp.ConfigError != "" {
				t.Fatalf("%s: configs %v (%s)", tp.Name, tp.Configs, tp.ConfigError)
			}
		}
		for _, b := range snap.Brokers {
			if !b.Reachable || len(b.Configs) == 0 {
				t.Fatalf("broker %+v", b)
			}
		}
		counts[n] = counter.ByAPI()
	}
	want := map[string]int{"ApiVersions": 3, "Metadata": 1, "DescribeConfigs": 4}
	for n, got := range counts {
		if !maps.Equal(got, want) {
			t.Fatalf("%d topics: requests %v, want %v", n, got, want)
		}
	}
}
