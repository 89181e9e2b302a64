package kafka

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/testenv"
)

// BenchPrefix names the benchmark's topics; they are kept between runs.
const BenchPrefix = "dsctl-bench-"

// BenchmarkAuditRealCluster times Collect + Audit of the whole real cluster. With
// DSCTL_BENCH_TOPICS=N it first creates N topics of 3 partitions named
// dsctl-bench-NNNNN, if missing, outside the timer. They have replication factor 1:
// the harness's brokers run with a 512 MB heap, which 2,000 x 3 partitions at
// replication factor 3 (6,000 replicas per broker) exhausts.
// scripts/bench-kafka-audit runs it with N=2000 and compares the CLI with the Java
// tools. It reports the requests sent per audit.
//
//	DSCTL_BENCH_TOPICS=2000 go test -run '^$' -bench AuditRealCluster -benchtime 5x ./probes/kafka
func BenchmarkAuditRealCluster(b *testing.B) {
	brokers := testenv.List(b, testenv.Kafka)
	ep := endpoint.Kafka{Brokers: brokers}
	d := endpoint.Dialer{Timeout: 30 * time.Second}
	if n, _ := strconv.Atoi(os.Getenv("DSCTL_BENCH_TOPICS")); n > 0 {
		if err := EnsureBenchTopics(context.Background(), d, ep, n); err != nil {
			b.Fatal(err)
		}
	}
	var topics, requests int
	for b.Loop() {
		counter := &endpoint.RequestCounter{}
		snap, err := Collect(context.Background(), d, ep, CollectOptions{
			TopicConfigs: AuditTopicConfigs, BrokerConfigs: BrokerKeyConfigs, Counter: counter,
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Audit(AuditInput{Snapshot: snap, Bootstrap: brokers[0], Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
		topics, requests = len(snap.Topics), counter.Total()
	}
	b.ReportMetric(float64(topics), "topics")
	b.ReportMetric(float64(requests), "requests/op")
}

// EnsureBenchTopics creates the missing dsctl-bench-NNNNN topics, 200 per
// CreateTopics request.
func EnsureBenchTopics(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, n int) error {
	sess, err := d.KafkaBootstrap(ctx, ep, endpoint.KafkaSessionOptions{})
	if err != nil {
		return err
	}
	defer sess.Close()
	have := map[string]bool{}
	for _, t := range sess.Metadata.Topics {
		if strings.HasPrefix(t.Name, BenchPrefix) {
			have[t.Name] = true
		}
	}
	batch := map[string]*sarama.TopicDetail{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		req := sarama.NewCreateTopicsRequest(sess.Config.Version, batch, time.Minute, false)
		resp, err := sess.Seed.CreateTopics(req)
		if err != nil {
			return err
		}
		for name, e := range resp.TopicErrors {
			if e.Err != sarama.ErrNoError && e.Err != sarama.ErrTopicAlreadyExists {
				return fmt.Errorf("create %s: %v", name, e.Err)
			}
		}
		batch = map[string]*sarama.TopicDetail{}
		return nil
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s%05d", BenchPrefix, i)
		if have[name] {
			continue
		}
		batch[name] = &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}
		if len(batch) == 200 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return waitBenchTopics(ctx, d, ep, n)
}

// waitBenchTopics waits until every broker's metadata has the n topics with full ISRs
// (brokers apply a burst of new topics over seconds).
func waitBenchTopics(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, n int) error {
	pattern, _ := CompileTopicPatterns([]string{BenchPrefix + ".*"})
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ready := true
		for _, b := range ep.Brokers {
			snap, err := Collect(ctx, d, endpoint.Kafka{Brokers: []string{b}}, CollectOptions{Topics: pattern, SkipTopicConfigs: true, BrokerConfigs: []string{}})
			if err != nil {
				return err
			}
			if len(snap.Topics) < n {
				ready = false
				break
			}
			for _, t := range snap.Topics {
				for _, p := range t.Partitions {
					if len(p.ISR) < len(p.Replicas) {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %d benchmark topics are not all in every broker's metadata after 5 minutes", n)
		}
		time.Sleep(2 * time.Second)
	}
}

// DeleteBenchTopics deletes the dsctl-bench- topics, 200 per DeleteTopics request.
func DeleteBenchTopics(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka) (int, error) {
	sess, err := d.KafkaBootstrap(ctx, ep, endpoint.KafkaSessionOptions{})
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	var names []string
	for _, t := range sess.Metadata.Topics {
		if strings.HasPrefix(t.Name, BenchPrefix) {
			names = append(names, t.Name)
		}
	}
	for i := 0; i < len(names); i += 200 {
		req := &sarama.DeleteTopicsRequest{Version: 4, Topics: names[i:min(i+200, len(names))], Timeout: time.Minute}
		if _, err := sess.Seed.DeleteTopics(req); err != nil {
			return i, err
		}
	}
	return len(names), nil
}

// TestDeleteBenchTopics removes the benchmark's topics when DSCTL_BENCH_CLEAN=1
// (scripts/bench-kafka-audit runs it at the end unless BENCH_KEEP=1).
func TestDeleteBenchTopics(t *testing.T) {
	if os.Getenv("DSCTL_BENCH_CLEAN") != "1" {
		t.Skip("only for scripts/bench-kafka-audit (DSCTL_BENCH_CLEAN=1)")
	}
	n, err := DeleteBenchTopics(context.Background(), endpoint.Dialer{Timeout: 30 * time.Second}, endpoint.Kafka{Brokers: testenv.List(t, testenv.Kafka)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted %d benchmark topics", n)
}
