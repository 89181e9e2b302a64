// Package sandbox runs embedded, in-process servers on loopback so dsctl can be tried
// with no infrastructure: a Redis-protocol server (miniredis), a 3-broker
// Kafka-protocol cluster (kfake) seeded with demo topics that exercise the durability
// rules, and a standalone ZooKeeper (zkserver, dsctl's own) seeded with a demo tree.
// There is no embedded SQL database.
package sandbox

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
)

// Options choose the ports. Zero ports mean "any free port".
type Options struct {
	RedisPort int
	// KafkaPort is the first of three consecutive broker ports.
	KafkaPort int
	// ZooKeeperPort is the embedded ZooKeeper's client port.
	ZooKeeperPort int
	// ZooKeeper tunes the embedded ZooKeeper (its Addr is set from ZooKeeperPort).
	ZooKeeper zkserver.Options
	// ZKDemo tunes the seeded ZooKeeper tree (how often the config node changes).
	ZKDemo zkserver.DemoOptions
}

// DemoTopic is a seeded topic and the durability risk it demonstrates.
type DemoTopic struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	Demonstrates      string            `json:"demonstrates"`
}

// DemoTopics are the topics every sandbox starts with.
var DemoTopics = []DemoTopic{
	{Name: "orders", Partitions: 3, ReplicationFactor: 3,
		Configs:      map[string]string{"min.insync.replicas": "2"},
		Demonstrates: "healthy: replication factor 3, min.insync.replicas 2"},
	{Name: "clickstream", Partitions: 3, ReplicationFactor: 1,
		Demonstrates: "replication factor 1: one broker loss loses data"},
	{Name: "payments", Partitions: 3, ReplicationFactor: 3,
		Configs:      map[string]string{"min.insync.replicas": "3"},
		Demonstrates: "min.insync.replicas equals replication factor: one broker down blocks acks=all writes"},
	{Name: "audit-log", Partitions: 3, ReplicationFactor: 3,
		Configs:      map[string]string{"min.insync.replicas": "2", "unclean.leader.election.enable": "true"},
		Demonstrates: "unclean leader election on: an out-of-sync replica may become leader and drop acknowledged writes"},
	{Name: "inventory", Partitions: 3, ReplicationFactor: 3,
		Configs:      map[string]string{"min.insync.replicas": "1"},
		Demonstrates: "min.insync.replicas 1: acks=all is acknowledged by the leader alone"},
}

// Sandbox is a running set of embedded servers.
type Sandbox struct {
	redis *miniredis.Miniredis
	kafka *kfake.Cluster
	zk    *zkserver.Server

	RedisAddr    string
	KafkaBrokers []string
	// ZooKeeperAddr is the embedded standalone ZooKeeper; ZKDemo its seeded tree.
	ZooKeeperAddr string
	ZKDemo        *zkserver.Demo
}

// Start starts the servers, seeds the demo topics and returns when they answer.
func Start(ctx context.Context, opt Options) (*Sandbox, error) {
	s := &Sandbox{}
	s.redis = miniredis.NewMiniRedis()
	s.redis.ClockTTL(true) // TTLs run down with the wall clock, as on a real server
	if err := s.redis.StartAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(opt.RedisPort))); err != nil {
		return nil, portError("redis", opt.RedisPort, err)
	}
	s.RedisAddr = s.redis.Addr()

	kopts := []kfake.Opt{kfake.NumBrokers(3), kfake.ListenFn(loopbackListen)}
	if opt.KafkaPort != 0 {
		kopts = append(kopts, kfake.Ports(opt.KafkaPort, opt.KafkaPort+1, opt.KafkaPort+2))
	}
	k, err := kfake.NewCluster(kopts...)
	if err != nil {
		s.Close()
		return nil, portError("kafka", opt.KafkaPort, err)
	}
	s.kafka = k
	s.KafkaBrokers = k.ListenAddrs()
	if err := s.seed(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startZooKeeper(ctx, opt); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// startZooKeeper starts the embedded ZooKeeper and seeds its demo tree.
func (s *Sandbox) startZooKeeper(ctx context.Context, opt Options) error {
	zopt := opt.ZooKeeper
	zopt.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(opt.ZooKeeperPort))
	z, err := zkserver.Start(ctx, zopt)
	if err != nil {
		return portError("zookeeper", opt.ZooKeeperPort, err)
	}
	s.zk = z
	s.ZooKeeperAddr = z.Addr()
	demo, err := z.SeedDemo(opt.ZKDemo)
	if err != nil {
		return errs.New(errs.KindRuntime, "sandbox: cannot seed the embedded zookeeper: %v", err)
	}
	s.ZKDemo = demo
	return nil
}

// ZooKeeper is the embedded ZooKeeper server, for tests that need its hooks
// (ExpireSession, DisconnectSession, Sessions).
func (s *Sandbox) ZooKeeper() *zkserver.Server { return s.zk }

func loopbackListen(network, address string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		port = "0"
	}
	return net.Listen(network, net.JoinHostPort("127.0.0.1", port))
}

func portError(what string, port int, err error) error {
	if port == 0 {
		return errs.New(errs.KindRuntime, "sandbox: cannot start embedded %s: %v", what, err)
	}
	return errs.New(errs.KindRuntime, "sandbox: cannot start embedded %s on port %d: %v", what, port, err).
		WithHint("is another sandbox running? choose another port")
}

// seed creates the demo topics through the Kafka protocol, as a user would, then
// places their leaders deterministically (see placeLeaders).
func (s *Sandbox) seed(ctx context.Context) error {
	d := endpoint.Dialer{Timeout: 5 * time.Second}
	cfg, err := d.KafkaConfig(endpoint.Kafka{})
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(s.KafkaBrokers, cfg)
	if err != nil {
		return errs.New(errs.KindRuntime, "sandbox: embedded kafka did not answer: %v", err)
	}
	defer admin.Close()
	for _, t := range DemoTopics {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		entries := map[string]*string{}
		for k, v := range t.Configs {
			entries[k] = &v
		}
		detail := &sarama.TopicDetail{NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, ConfigEntries: entries}
		if err := admin.CreateTopic(t.Name, detail, false); err != nil {
			return errs.New(errs.KindRuntime, "sandbox: cannot create demo topic %s: %v", t.Name, err)
		}
	}
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		return errs.New(errs.KindRuntime, "sandbox: embedded kafka did not describe its brokers: %v", err)
	}
	nodes := make([]int32, 0, len(brokers))
	for _, b := range brokers {
		nodes = append(nodes, b.ID())
	}
	return s.placeLeaders(nodes)
}

// placeLeaders makes the demo cluster the same on every run. kfake picks each new
// partition's leader at random (and lists the replicas as the leader followed by the
// next brokers), so where clickstream's single replicas land, and so the audit's
// what-if findings, would change between runs. Partition p of every demo topic is led
// by the p-th broker (by id, wrapping), as Kafka's round-robin assignment does from a
// fixed start.
func (s *Sandbox) placeLeaders(nodes []int32) error {
	if len(nodes) == 0 {
		return errs.New(errs.KindRuntime, "sandbox: embedded kafka lists no brokers")
	}
	slices.Sort(nodes)
	for _, t := range DemoTopics {
		for p := range t.Partitions {
			leader := DemoLeader(nodes, p)
			if err := s.kafka.MoveTopicPartition(t.Name, p, leader); err != nil {
				return errs.New(errs.KindRuntime, "sandbox: cannot place %s-%d on broker %d: %v", t.Name, p, leader, err)
			}
		}
	}
	return nil
}

// DemoLeader is the broker that leads partition p of every demo topic, given the
// brokers' ids in ascending order.
func DemoLeader(nodes []int32, p int32) int32 { return nodes[int(p)%len(nodes)] }

// Close stops the servers.
func (s *Sandbox) Close() {
	if s.zk != nil {
		s.zk.Close()
		s.zk = nil
	}
	if s.kafka != nil {
		s.kafka.Close()
		s.kafka = nil
	}
	if s.redis != nil {
		s.redis.Close()
		s.redis = nil
	}
}

// Describe lists the endpoints for humans.
func (s *Sandbox) Describe() string {
	return fmt.Sprintf("redis %s, kafka %v, zookeeper %s", s.RedisAddr, s.KafkaBrokers, s.ZooKeeperAddr)
}
