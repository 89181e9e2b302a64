package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// markHandler commits the first upTo messages of each partition, then signals.
type markHandler struct {
	upTo int64
	done chan int32
}

func (h *markHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *markHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *markHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		if msg.Offset < h.upTo {
			s.MarkMessage(msg, "")
			if msg.Offset == h.upTo-1 {
				s.Commit()
				h.done <- claim.Partition()
			}
		}
	}
	return nil
}

// kfake (the --sandbox cluster) serves the classic group protocol: a sarama consumer
// group that commits 3 of 8 messages per partition shows lag 5 per partition, Stable
// with one member while it runs and Empty after it leaves.
func TestGroupsOnKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	pcfg := sarama.NewConfig()
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	pcfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(brokers, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 8; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "orders", Partition: p, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	prod.Close()

	ccfg := sarama.NewConfig()
	ccfg.Version = sarama.V3_0_0_0
	ccfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	ccfg.Consumer.Offsets.AutoCommit.Enable = false
	group, err := sarama.NewConsumerGroup(brokers, "billing", ccfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &markHandler{upTo: 3, done: make(chan int32, 2)}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			_ = group.Consume(ctx, []string{"orders"}, h)
		}
	}()
	for i := 0; i < 2; i++ {
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Fatal("the consumer did not commit within 30s")
		}
	}

	read := func(sample time.Duration, wait func(context.Context, time.Duration) error) (*GroupsReport, *endpoint.RequestCounter) {
		t.Helper()
		counter := &endpoint.RequestCounter{}
		rep, err := Groups(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: brokers},
			GroupsOptions{Sample: sample, Counter: counter, Wait: wait})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Groups) != 1 || rep.Groups[0].Group != "billing" {
			t.Fatalf("groups: %+v", rep.Groups)
		}
		return rep, counter
	}
	rep, counter := read(0, nil)
	g := rep.Groups[0]
	if g.State != "Stable" || len(g.Members) != 1 || g.TotalLag != 10 || len(g.Partitions) != 2 || *g.Partitions[1].Lag != 5 {
		t.Fatalf("live: state %q members %d total %d partitions %d", g.State, len(g.Members), g.TotalLag, len(g.Partitions))
	}
	if by := counter.ByAPI(); by["ListGroups"] != 3 || by["DescribeGroups"] != 1 || by["OffsetFetch"] != 1 {
		t.Fatalf("requests: %s", counter)
	}

	cancel()
	<-stopped
	group.Close()
	var state string
	for i := 0; i < 50 && state != "Empty"; i++ {
		rep, _ = read(0, nil)
		state = rep.Groups[0].State
		time.Sleep(100 * time.Millisecond)
	}
	if state != "Empty" || rep.Groups[0].TotalLag != 10 {
		t.Fatalf("stopped: state %q total %d, want Empty, 10", state, rep.Groups[0].TotalLag)
	}

	// Stuck: more messages on partition 0 during the sample.
	rep, _ = read(time.Second, func(context.Context, time.Duration) error {
		p, err := sarama.NewSyncProducer(brokers, pcfg)
		if err != nil {
			return err
		}
		defer p.Close()
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "orders", Partition: 0, Value: sarama.StringEncoder("x")})
		return err
	})
	g = rep.Groups[0]
	if g.Stuck != 1 || !g.Partitions[0].Stuck || g.Partitions[1].Stuck || g.TotalLag != 11 {
		t.Fatalf("sampled: stuck %d (%v, %v), total %d", g.Stuck, g.Partitions[0].Stuck, g.Partitions[1].Stuck, g.TotalLag)
	}
}
