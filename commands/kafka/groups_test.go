package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// groupsJSON is `kafka groups -o json` as the tests read it.
type groupsJSON struct {
	kprobe.GroupsReport
	FailOnLag *int64 `json:"fail_on_lag"`
	Failed    bool   `json:"failed"`
}

func runGroupsJSON(t *testing.T, wantCode int, args ...string) groupsJSON {
	t.Helper()
	r := dsctl(t, nil, append([]string{"kafka", "groups", "-o", "json"}, args...)...)
	if r.code != wantCode {
		t.Fatalf("groups %v: exit %d, want %d\nstderr: %s\nstdout: %s", args, r.code, wantCode, r.errOut, r.out)
	}
	var g groupsJSON
	if err := json.Unmarshal([]byte(r.out), &g); err != nil {
		t.Fatalf("groups %v: bad JSON: %v\n%s", args, err, r.out)
	}
	return g
}

// produce sends n messages to each listed partition of topic, synchronously.
func (c *cluster) produce(topic string, perPartition map[int32]int) {
	c.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	p, err := sarama.NewSyncProducer(c.brokers, cfg)
	if err != nil {
		c.t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for part, n := range perPartition {
		for i := 0; i < n; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(fmt.Sprintf("m-%d-%d", part, i))})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		c.t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumer is a real sarama consumer group member that processes (and commits) the
// first commitUpTo[p] messages of each partition p, then idles in the group.
type consumer struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
}

type partHandler struct {
	commitUpTo map[int32]int64
	mu         sync.Mutex
	reached    map[int32]bool
	ready      chan struct{}
	once       sync.Once
}

func (h *partHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *partHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *partHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	target := h.commitUpTo[claim.Partition()]
	h.check(claim.Partition(), target == 0)
	for msg := range claim.Messages() {
		if msg.Offset < target {
			s.MarkMessage(msg, "")
			if msg.Offset == target-1 {
				s.Commit()
				h.check(claim.Partition(), true)
			}
		}
	}
	return nil
}

func (h *partHandler) check(p int32, done bool) {
	if !done {
		return
	}
	h.mu.Lock()
	h.reached[p] = true
	all := len(h.reached) == len(h.commitUpTo)
	h.mu.Unlock()
	if all {
		h.once.Do(func() { close(h.ready) })
	}
}

// startConsumer joins group on topic and returns once every partition has committed
// its target (each partition of the topic must be in commitUpTo).
func (c *cluster) startConsumer(groupID, topic string, commitUpTo map[int32]int64) *consumer {
	c.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.ClientID = "dsctl-test-consumer"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	g, err := sarama.NewConsumerGroup(c.brokers, groupID, cfg)
	if err != nil {
		c.t.Fatalf("consumer group: %v", err)
	}
	c.t.Cleanup(func() {
		if err := c.admin.DeleteConsumerGroup(groupID); err != nil {
			c.t.Logf("cleanup: delete group %s: %v", groupID, err)
		}
	})
	h := &partHandler{commitUpTo: commitUpTo, reached: map[int32]bool{}, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cons := &consumer{group: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(cons.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	select {
	case <-h.ready:
	case <-time.After(60 * time.Second):
		cons.stop()
		c.t.Fatalf("consumer %s did not commit its targets within 60s", groupID)
	}
	return cons
}

// stop leaves the group (sarama sends LeaveGroup on Close).
func (c *consumer) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
	_ = c.group.Close()
}

func lagOf(p kprobe.PartitionLag) string {
	s := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	return fmt.Sprintf("p%d committed=%s end=%s lag=%s", p.Partition, s(p.CommittedOffset), s(p.EndOffset), s(p.Lag))
}

func partitionsOf(g kprobe.GroupLag) string {
	var out []string
	for _, p := range g.Partitions {
		out = append(out, lagOf(p))
	}
	return strings.Join(out, "; ")
}

// A real consumer group consumes part of a topic and commits; while it runs the group
// is Stable with one member owning every partition, after it stops it is Empty, with
// the committed offsets and lags exact; --fail-on-lag fails (exit 5) only above the
// total lag.
func TestGroupsLagOfARealConsumerGroup(t *testing.T) {
	c := realCluster(t)
	topic := c.prefix + "lag"
	group := c.prefix + "group"
	c.create("lag", 3, 3, nil, nil)
	c.produce(topic, map[int32]int{0: 10, 1: 10, 2: 10})
	cons := c.startConsumer(group, topic, map[int32]int64{0: 3, 1: 7, 2: 10})
	stopped := false
	defer func() {
		if !stopped {
			cons.stop()
		}
	}()
	const want = "p0 committed=3 end=10 lag=7; p1 committed=7 end=10 lag=3; p2 committed=10 end=10 lag=0"

	live := runGroupsJSON(t, 0, group, "--brokers", c.bootstrap(), "--sample", "0")
	if len(live.Groups) != 1 {
		t.Fatalf("live: %d groups, want 1", len(live.Groups))
	}
	g := live.Groups[0]
	if g.State != "Stable" || len(g.Members) != 1 || g.ProtocolType != "consumer" || g.Protocol != "range" {
		t.Fatalf("live: state %q, %d members, protocol %s/%s; want Stable, 1 member, consumer/range", g.State, len(g.Members), g.ProtocolType, g.Protocol)
	}
	if got := partitionsOf(g); got != want || g.TotalLag != 10 || g.MaxLag != 7 {
		t.Fatalf("live: %s (total %d, max %d), want %s (total 10, max 7)", got, g.TotalLag, g.MaxLag, want)
	}
	m := g.Members[0]
	if m.ClientID != "dsctl-test-consumer" || fmt.Sprint(m.Assigned[topic]) != "[0 1 2]" {
		t.Fatalf("live member: client %q assigned %v", m.ClientID, m.Assigned)
	}
	for _, p := range g.Partitions {
		if p.MemberID != m.MemberID {
			t.Fatalf("live: p%d owned by %q, want %q", p.Partition, p.MemberID, m.MemberID)
		}
	}

	cons.stop()
	stopped = true
	var after groupsJSON
	eventually(t, 20*time.Second, "group Empty after the consumer stopped", func() string {
		after = runGroupsJSON(t, 0, group, "--brokers", c.bootstrap(), "--sample", "0")
		if s := after.Groups[0].State; s != "Empty" {
			return "state " + s
		}
		return ""
	})
	g = after.Groups[0]
	if got := partitionsOf(g); got != want || g.TotalLag != 10 || len(g.Members) != 0 {
		t.Fatalf("stopped: %s (total %d, %d members), want %s (total 10, 0 members)", got, g.TotalLag, len(g.Members), want)
	}
	for _, p := range g.Partitions {
		if p.MemberID != "" || p.Stuck || p.LagChange != nil {
			t.Fatalf("stopped: p%d member %q stuck %v lag_change %v", p.Partition, p.MemberID, p.Stuck, p.LagChange)
		}
	}
	if len(after.Notes) == 0 || !strings.Contains(after.Notes[0], "--consumer-config") {
		t.Fatalf("notes do not point to the client lint: %v", after.Notes)
	}

	// Listing every group finds it too, from ListGroups on each broker.
	all := runGroupsJSON(t, 0, "--brokers", c.bootstrap(), "--sample", "0")
	found := false
	for _, gl := range all.Groups {
		if gl.Group == group {
			found = gl.TotalLag == 10 && gl.State == "Empty"
		}
	}
	if !found || all.Requests.ByAPI["ListGroups"] != 3 {
		t.Fatalf("all groups: found %v (total 10, Empty), ListGroups %d (want 3)", found, all.Requests.ByAPI["ListGroups"])
	}

	// --fail-on-lag: the total (10) is compared, exit 5 above it only.
	ok := runGroupsJSON(t, 0, group, "--brokers", c.bootstrap(), "--sample", "0", "--fail-on-lag", "10")
	if ok.Failed || ok.FailOnLag == nil || *ok.FailOnLag != 10 {
		t.Fatalf("--fail-on-lag 10: failed %v, fail_on_lag %v", ok.Failed, ok.FailOnLag)
	}
	bad := runGroupsJSON(t, 5, group, "--brokers", c.bootstrap(), "--sample", "0", "--fail-on-lag", "9")
	if !bad.Failed {
		t.Fatal("--fail-on-lag 9: failed is false")
	}
	r := dsctl(t, nil, "kafka", "groups", group, "--brokers", c.bootstrap(), "--sample", "0", "--fail-on-lag", "9")
	if r.code != 5 || !strings.Contains(r.errOut, group+" (10)") {
		t.Fatalf("--fail-on-lag 9 table: exit %d, stderr %s", r.code, r.errOut)
	}
	t.Logf("table:\n%s", r.out)
	if !strings.Contains(r.out, "lint the client settings") || !strings.Contains(r.out, group+": Empty, 0 members, total lag 10") {
		t.Fatalf("table misses the summary or the client-lint note:\n%s", r.out)
	}
}

// Produced messages while the group stays stopped: over the sample the lag grows and
// the committed offset does not move, so the partition is stuck; the others are not.
// The probe's sample wait is replaced by the production itself, so the numbers are exact.
func TestGroupsStuckPartition(t *testing.T) {
	c := realCluster(t)
	topic := c.prefix + "stuck"
	group := c.prefix + "stuck-group"
	c.create("stuck", 2, 3, nil, nil)
	c.produce(topic, map[int32]int{0: 5, 1: 5})
	c.startConsumer(group, topic, map[int32]int64{0: 2, 1: 5}).stop()

	counter := &endpoint.RequestCounter{}
	rep, err := kprobe.Groups(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: c.brokers}, kprobe.GroupsOptions{
		Groups: []string{group}, Sample: time.Second, Counter: counter,
		Wait: func(context.Context, time.Duration) error {
			c.produce(topic, map[int32]int{0: 4})
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	g := rep.Groups[0]
	if g.Stuck != 1 || g.TotalLag != 7 || rep.SampleSeconds <= 0 {
		t.Fatalf("stuck %d total %d sample %v; want 1 stuck, total 7 (%s)", g.Stuck, g.TotalLag, rep.SampleSeconds, partitionsOf(g))
	}
	p0, p1 := g.Partitions[0], g.Partitions[1]
	if !p0.Stuck || *p0.LagChange != 4 || *p0.CommittedChange != 0 || *p0.Lag != 7 {
		t.Fatalf("p0: stuck %v lag_change %d committed_change %d lag %d; want stuck, +4, 0, 7", p0.Stuck, *p0.LagChange, *p0.CommittedChange, *p0.Lag)
	}
	if p1.Stuck || *p1.LagChange != 0 || *p1.Lag != 0 {
		t.Fatalf("p1: stuck %v lag_change %d lag %d; want not stuck, 0, 0", p1.Stuck, *p1.LagChange, *p1.Lag)
	}
	// Two rounds of one DescribeGroups, one OffsetFetch, and ListOffsets per leader.
	by := counter.ByAPI()
	if by["DescribeGroups"] != 2 || by["OffsetFetch"] != 2 || by["ListOffsets"] > 4 || by["FindCoordinator"] != 1 {
		t.Fatalf("requests: %s", counter)
	}

	// Through the CLI with a real timer: a producer keeps writing to p0 during the
	// sample, --fail-on-stuck exits 5.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 100; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				c.produce(topic, map[int32]int{0: 1})
			}
		}
	})
	out := runGroupsJSON(t, 5, group, "--brokers", c.bootstrap(), "--sample", "2s", "--fail-on-stuck")
	close(stop)
	wg.Wait()
	g = out.Groups[0]
	if g.Stuck != 1 || !g.Partitions[0].Stuck || g.Partitions[1].Stuck || out.SampleSeconds < 2 || !out.Failed {
		t.Fatalf("CLI sample: stuck %d (%v/%v), sample %v, failed %v", g.Stuck, g.Partitions[0].Stuck, g.Partitions[1].Stuck, out.SampleSeconds, out.Failed)
	}
}

// The requests do not grow with partitions: a group on 1 partition and one on 12 send
// the same DescribeGroups/OffsetFetch/FindCoordinator, and ListOffsets at most one per
// broker.
func TestGroupsRequestsDoNotGrowWithPartitions(t *testing.T) {
	c := realCluster(t)
	totals := map[int]int{}
	for _, n := range []int{1, 12} {
		name := fmt.Sprintf("parts-%d", n)
		topic, group := c.prefix+name, c.prefix+name+"-group"
		c.create(name, int32(n), 3, nil, nil)
		per, targets := map[int32]int{}, map[int32]int64{}
		for p := int32(0); p < int32(n); p++ {
			per[p], targets[p] = 2, 1
		}
		c.produce(topic, per)
		c.startConsumer(group, topic, targets).stop()
		out := runGroupsJSON(t, 0, group, "--brokers", c.bootstrap(), "--sample", "0")
		g := out.Groups[0]
		if len(g.Partitions) != n || g.TotalLag != int64(n) {
			t.Fatalf("%d partitions: got %d partitions, total lag %d", n, len(g.Partitions), g.TotalLag)
		}
		by := out.Requests.ByAPI
		if by["FindCoordinator"] != 1 || by["DescribeGroups"] != 1 || by["OffsetFetch"] != 1 || by["Metadata"] != 1 || by["ListOffsets"] > 3 {
			t.Fatalf("%d partitions: requests %v", n, by)
		}
		totals[n] = out.Requests.Total
	}
	// At most the extra leaders' ListOffsets and ApiVersions (2 brokers) more.
	if totals[12] > totals[1]+4 || totals[12] > 10 {
		t.Fatalf("requests: %d for 1 partition, %d for 12", totals[1], totals[12])
	}
	t.Logf("requests: 1 partition %d, 12 partitions %d", totals[1], totals[12])
}

func TestGroupsBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"negative lag", []string{"--sandbox", "--fail-on-lag", "-1"}, 2, "--fail-on-lag -1 is negative"},
		{"negative sample", []string{"--sandbox", "--sample", "-1s"}, 2, "--sample -1s is negative"},
		{"stuck without sample", []string{"--sandbox", "--sample", "0", "--fail-on-stuck"}, 2, "--fail-on-stuck needs two snapshots"},
		{"sandbox and brokers", []string{"--sandbox", "--brokers", "127.0.0.1:19092"}, 2, "mutually exclusive"},
		{"unknown group", []string{"--sandbox", "--sample", "1h", "no-such-group"}, 2, `no consumer group "no-such-group"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dsctl(t, nil, append([]string{"kafka", "groups"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.errOut, tc.want) {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tc.code, r.errOut)
			}
		})
	}
}

// --sandbox (kfake) serves groups but starts with none: the report says so and how to
// get one (probes/kafka TestGroupsOnKfake covers a real group on kfake).
func TestGroupsSandboxHasNoGroupYet(t *testing.T) {
	out := runGroupsJSON(t, 0, "--sandbox", "--sample", "0")
	if out.Groups == nil || len(out.Groups) != 0 || len(out.Notes) != 2 || !strings.Contains(out.Notes[0], "run dsctl sandbox") ||
		out.Requests.ByAPI["ListGroups"] != 3 {
		t.Fatalf("sandbox: groups %v notes %q requests %v", out.Groups, out.Notes, out.Requests.ByAPI)
	}
}

// A leader that fails ListOffsets (kfake drops the connection) makes the report
// incomplete: it is printed with the partitions marked, then exit 6.
func TestGroupsIncompleteReportIsExit6(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	coord, err := client.Coordinator("audit-log-reader")
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: "audit-log-reader", ConsumerGroupGeneration: -1, RetentionTime: -1}
	for p := int32(0); p < 3; p++ {
		req.AddBlock("events", p, 0, 0, "")
	}
	if _, err := coord.CommitOffset(req); err != nil {
		t.Fatal(err)
	}
	client.Close()

	bootstrap := strings.Join(brokers, ",")
	ok := runGroupsJSON(t, 0, "audit-log-reader", "--brokers", bootstrap, "--sample", "0", "--fail-on-lag", "0")
	if g := ok.Groups[0]; g.State != "Empty" || len(g.Partitions) != 3 || g.TotalLag != 0 || ok.Failed {
		t.Fatalf("healthy: state %s, %d partitions, total lag %d, failed %v", g.State, len(g.Partitions), g.TotalLag, ok.Failed)
	}
	cluster.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		return nil, fmt.Errorf("injected"), true
	})
	r := dsctl(t, nil, "kafka", "groups", "audit-log-reader", "--brokers", bootstrap, "--sample", "0")
	if r.code != 6 || !strings.Contains(r.errOut, "the report is incomplete") || !strings.Contains(r.out, "did not answer ListOffsets") ||
		!strings.Contains(r.out, "audit-log-reader: Empty, 0 members") {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", r.code, r.errOut, r.out)
	}
}
