package sandbox

import (
	"context"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
)

func TestSandboxServesRedisAndThreeBrokersWithDemoTopics(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	d := endpoint.Dialer{Timeout: 3 * time.Second}
	clients, err := d.ConnectRedis(ctx, endpoint.Redis{Addrs: []string{s.RedisAddr}})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	if got := clients[0].Ping(ctx).Val(); got != "PONG" {
		t.Fatalf("PING = %q, want PONG", got)
	}
	clients[0].Close()

	kc, err := d.ConnectKafka(ctx, endpoint.Kafka{Brokers: s.KafkaBrokers})
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	defer kc.Close()
	if n := len(kc.Brokers()); n != 3 {
		t.Fatalf("sarama sees %d brokers, want 3", n)
	}
	topics, err := kc.Topics()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(topics)
	for _, want := range DemoTopics {
		i := sort.SearchStrings(topics, want.Name)
		if i == len(topics) || topics[i] != want.Name {
			t.Fatalf("demo topic %s missing from %v", want.Name, topics)
		}
		parts, err := kc.Partitions(want.Name)
		if err != nil || int32(len(parts)) != want.Partitions {
			t.Fatalf("%s: %d partitions (%v), want %d", want.Name, len(parts), err, want.Partitions)
		}
		replicas, err := kc.Replicas(want.Name, 0)
		if err != nil || len(replicas) != int(want.ReplicationFactor) {
			t.Fatalf("%s: replicas %v (%v), want %d", want.Name, replicas, err, want.ReplicationFactor)
		}
	}

	admin, err := sarama.NewClusterAdminFromClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "payments"}}, sarama.DescribeConfigsOptions{})
	if err != nil || len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
		t.Fatalf("describe configs: %v %+v", err, res)
	}
	found := false
	for _, e := range res[0].Configs {
		if e.Name == "min.insync.replicas" {
			found = true
			if e.Value != "3" || e.Source != sarama.SourceTopic {
				t.Fatalf("payments min.insync.replicas = %q from %v, want 3 from the topic", e.Value, e.Source)
			}
		}
	}
	if !found {
		t.Fatal("payments: min.insync.replicas not described")
	}
}

func TestSandboxFixedPortInUseIsAClearError(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, port, _ := splitPort(a.RedisAddr)
	_, err = Start(ctx, Options{RedisPort: port})
	if err == nil {
		t.Fatal("second sandbox on the same Redis port started")
	}
}

func splitPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

func TestSandboxRedisKeysExpireWithTheWallClock(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clients, err := endpoint.Dialer{Timeout: 3 * time.Second}.ConnectRedis(ctx, endpoint.Redis{Addrs: []string{s.RedisAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer clients[0].Close()
	c := clients[0]
	if err := c.Set(ctx, "lease", "x", 150*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := c.Exists(ctx, "lease").Val(); n != 0 {
		t.Fatalf("a key with a 150ms TTL still exists after 300ms: sandbox leases would never expire")
	}
}

// The demo cluster is the same on every run, so the audit's what-if findings (which
// broker takes which clickstream partition offline) can be documented. kfake alone
// picks each leader at random.
func TestSandboxLeadersAreDeterministic(t *testing.T) {
	for run := range 2 {
		s, err := Start(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		kc, err := endpoint.Dialer{Timeout: 3 * time.Second}.ConnectKafka(context.Background(), endpoint.Kafka{Brokers: s.KafkaBrokers})
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		var nodes []int32
		for _, b := range kc.Brokers() {
			nodes = append(nodes, b.ID())
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
		for _, dt := range DemoTopics {
			for p := range dt.Partitions {
				want := DemoLeader(nodes, p)
				leader, err := kc.Leader(dt.Name, p)
				if err != nil {
					t.Fatalf("run %d: %s-%d: %v", run, dt.Name, p, err)
				}
				replicas, _ := kc.Replicas(dt.Name, p)
				if leader.ID() != want || len(replicas) == 0 || replicas[0] != want {
					t.Fatalf("run %d: %s-%d led by %d with replicas %v, want leader %d (brokers %v)", run, dt.Name, p, leader.ID(), replicas, want, nodes)
				}
			}
		}
		kc.Close()
		s.Close()
	}
}

func TestSandboxServesZooKeeperWithTheDemoTree(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ZooKeeperAddr == "" || s.ZKDemo == nil || s.ZooKeeper() == nil {
		t.Fatalf("no embedded zookeeper: %q %+v", s.ZooKeeperAddr, s.ZKDemo)
	}
	zs, err := endpoint.Dialer{Timeout: 3 * time.Second}.ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: []string{s.ZooKeeperAddr}})
	if err != nil {
		t.Fatalf("zookeeper: %v", err)
	}
	defer zs.Close()
	go func() {
		for range zs.Events {
		}
	}()
	members, _, err := zs.Conn.Children("/services/checkout/members")
	if err != nil || len(members) != 3 {
		t.Fatalf("demo registry: %v %v", members, err)
	}
	queue, _, err := zs.Conn.Children(s.ZKDemo.LockPath)
	if err != nil || len(queue) != 3 {
		t.Fatalf("demo lock queue: %v %v", queue, err)
	}
	if !strings.Contains(s.Describe(), "zookeeper "+s.ZooKeeperAddr) {
		t.Fatalf("Describe: %s", s.Describe())
	}
}

func TestSandboxZooKeeperPortInUseIsAClearError(t *testing.T) {
	ctx := context.Background()
	a, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, port, _ := splitPort(a.ZooKeeperAddr)
	_, err = Start(ctx, Options{ZooKeeperPort: port})
	if err == nil || !strings.Contains(err.Error(), "zookeeper") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("second sandbox on the same ZooKeeper port: %v", err)
	}
}
