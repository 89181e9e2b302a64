package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
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

// commitGroups commits offset 1 on every partition of topic for each group, as a
// standalone commit (generation -1, no member: the groups are Empty).
func commitGroups(t *testing.T, brokers []string, topic string, partitions int32, groups []string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, g := range groups {
		coord, err := client.Coordinator(g)
		if err != nil {
			t.Fatal(err)
		}
		req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: g, ConsumerGroupGeneration: -1, RetentionTime: -1}
		for p := int32(0); p < partitions; p++ {
			req.AddBlock(topic, p, 1, 0, "")
		}
		resp, err := coord.CommitOffset(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range resp.Errors {
			for p, kerr := range ps {
				if kerr != sarama.ErrNoError {
					t.Fatalf("commit %s p%d: %v", g, p, kerr)
				}
			}
		}
	}
}

// Requests stay per broker whatever the number of groups: 1 group and 40 groups (on 6
// partitions each) cost the same ListGroups, and at most one DescribeGroups,
// OffsetFetch and ListOffsets per broker. 40 named groups (more than brokers) are
// located with ListGroups, not 40 FindCoordinator.
func TestGroupsRequestsDoNotGrowWithGroups(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	var names []string
	for i := 0; i < 40; i++ {
		names = append(names, fmt.Sprintf("g%02d", i))
	}
	commitGroups(t, brokers, "events", 6, names)

	read := func(named []string) (*GroupsReport, map[string]int, error) {
		counter := &endpoint.RequestCounter{}
		rep, err := Groups(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: brokers},
			GroupsOptions{Groups: named, Counter: counter})
		return rep, counter.ByAPI(), err
	}
	for _, named := range [][]string{nil, names, names[:1]} {
		rep, by, err := read(named)
		if err != nil {
			t.Fatal(err)
		}
		want := len(named)
		if want == 0 {
			want = 40
		}
		if len(rep.Groups) != want {
			t.Fatalf("%d named: %d groups, want %d", len(named), len(rep.Groups), want)
		}
		for _, g := range rep.Groups {
			if len(g.Partitions) != 6 || *g.Partitions[5].CommittedOffset != 1 || g.State != "Empty" {
				t.Fatalf("%s: %d partitions, state %s", g.Group, len(g.Partitions), g.State)
			}
		}
		perBroker := by["DescribeGroups"] <= 3 && by["OffsetFetch"] <= 3 && by["ListOffsets"] <= 3 && by["Metadata"] == 1
		switch {
		case len(named) == 1 && (by["FindCoordinator"] != 1 || by["ListGroups"] != 0 || by["DescribeGroups"] != 1):
			perBroker = false
		case len(named) != 1 && (by["FindCoordinator"] != 0 || by["ListGroups"] != 3):
			perBroker = false
		}
		if !perBroker {
			t.Fatalf("%d named groups: requests %v", len(named), by)
		}
		t.Logf("%d groups: %v", len(rep.Groups), by)
	}

	// Many named groups, one unknown: no broker lists it, exit 2 (usage).
	_, _, err = read(append(append([]string{}, names...), "nope"))
	if err == nil || !strings.Contains(err.Error(), `no consumer group "nope"`) || errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("unknown among many: %v", err)
	}

	// A leader that drops the ListOffsets connection: its partitions say so, the others
	// keep their lag, and the broker is reported.
	cluster.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, fmt.Errorf("injected"), true
	})
	rep, _, err := read(names[:1])
	if err != nil {
		t.Fatal(err)
	}
	bad, good := 0, 0
	for _, p := range rep.Groups[0].Partitions {
		if strings.Contains(p.Error, "did not answer ListOffsets") && p.Lag == nil {
			bad++
		} else if p.Error == "" && p.Lag != nil {
			good++
		}
	}
	if bad == 0 || bad+good != 6 || len(rep.BrokerErrors) != 1 || rep.BrokerErrors[0].Request != "ListOffsets" {
		t.Fatalf("failed leader: %d partitions with the error, %d fine, broker errors %+v", bad, good, rep.BrokerErrors)
	}
}
