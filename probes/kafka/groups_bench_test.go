package kafka

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/testenv"
)

// BenchmarkGroupsRealCluster compares `kafka groups` (requests batched per broker)
// with the usual sarama admin loop (ListConsumerGroups, DescribeConsumerGroups, then
// ListConsumerGroupOffsets per group and GetOffset per partition) in the same run, on
// DSCTL_BENCH_GROUPS groups (default 50) with committed offsets on every partition of
// one 12-partition topic. The topic and groups are created outside the timer and
// deleted at the end.
//
//	go test -run '^$' -bench GroupsRealCluster -benchtime 10x ./probes/kafka
func BenchmarkGroupsRealCluster(b *testing.B) {
	brokers := testenv.List(b, testenv.Kafka)
	n := 50
	if v, _ := strconv.Atoi(os.Getenv("DSCTL_BENCH_GROUPS")); v > 0 {
		n = v
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		b.Fatal(err)
	}
	prefix := fmt.Sprintf("dsctl-bench-groups-%d-", time.Now().UnixNano())
	topic := prefix + "t"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 12, ReplicationFactor: 3}, false); err != nil {
		b.Fatal(err)
	}
	var names []string
	defer func() {
		for _, g := range names {
			_ = admin.DeleteConsumerGroup(g)
		}
		_ = admin.DeleteTopic(topic)
	}()
	if err := waitTopic(client, topic, 12); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		g := fmt.Sprintf("%sg%03d", prefix, i)
		names = append(names, g)
		coord, err := client.Coordinator(g)
		if err != nil {
			b.Fatal(err)
		}
		req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: g, ConsumerGroupGeneration: -1, RetentionTime: -1}
		for p := int32(0); p < 12; p++ {
			req.AddBlock(topic, p, 0, 0, "")
		}
		if _, err := coord.CommitOffset(req); err != nil {
			b.Fatal(err)
		}
	}
	ep := endpoint.Kafka{Brokers: brokers}
	d := endpoint.Dialer{Timeout: 30 * time.Second}

	b.Run("dsctl", func(b *testing.B) {
		var requests, found int
		for b.Loop() {
			counter := &endpoint.RequestCounter{}
			rep, err := Groups(context.Background(), d, ep, GroupsOptions{Counter: counter})
			if err != nil {
				b.Fatal(err)
			}
			requests, found = counter.Total(), len(rep.Groups)
		}
		if found < n {
			b.Fatalf("%d groups found, want at least %d", found, n)
		}
		b.ReportMetric(float64(requests), "requests/op")
	})
	b.Run("sarama-admin-loop", func(b *testing.B) {
		var requests int
		for b.Loop() {
			counter := &endpoint.RequestCounter{}
			if err := adminLoop(d, ep, counter); err != nil {
				b.Fatal(err)
			}
			requests = counter.Total()
		}
		b.ReportMetric(float64(requests), "requests/op")
	})
}

// adminLoop is the common way to get lag with sarama: a fresh client, the admin's
// group calls, then the newest offset of each partition.
func adminLoop(d endpoint.Dialer, ep endpoint.Kafka, counter *endpoint.RequestCounter) error {
	// A session only to reuse the counting dialer's configuration.
	sess, err := d.KafkaBootstrap(context.Background(), ep, endpoint.KafkaSessionOptions{Counter: counter})
	if err != nil {
		return err
	}
	cfg := sess.Config
	sess.Close()
	client, err := sarama.NewClient(ep.Brokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		return err
	}
	var ids []string
	for g := range groups {
		ids = append(ids, g)
	}
	if _, err := admin.DescribeConsumerGroups(ids); err != nil {
		return err
	}
	for _, g := range ids {
		offs, err := admin.ListConsumerGroupOffsets(g, nil)
		if err != nil {
			return err
		}
		for t, ps := range offs.Blocks {
			for p := range ps {
				if _, err := client.GetOffset(t, p, sarama.OffsetNewest); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func waitTopic(client sarama.Client, topic string, partitions int) error {
	for i := 0; i < 50; i++ {
		if err := client.RefreshMetadata(topic); err == nil {
			if ps, err := client.Partitions(topic); err == nil && len(ps) == partitions {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("topic %s not ready", topic)
}
