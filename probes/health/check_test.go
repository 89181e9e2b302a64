package health

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Check against every real backend: one result per Redis master, then ZooKeeper,
// Kafka and SQL, all connected, with versions where the server tells them.
func TestCheckAllRealBackends(t *testing.T) {
	redisAddrs := testenv.List(t, testenv.Redis)
	e := config.Endpoints{
		Redis: endpoint.Redis{Addrs: redisAddrs}, RedisSource: config.SourceFlag,
		ZooKeeper: endpoint.ZooKeeper{Servers: testenv.List(t, testenv.ZK)}, ZKSource: config.SourceFlag,
		Kafka: endpoint.Kafka{Brokers: testenv.List(t, testenv.Kafka)}, KafkaSource: config.SourceFlag,
		SQL: endpoint.SQL{}.WithDSNValue(testenv.Get(t, testenv.Postgres)), SQLSource: config.SourceEnv,
	}
	rs := Check(context.Background(), d, Targets{Endpoints: e})
	if len(rs) != len(redisAddrs)+3 {
		t.Fatalf("%d results, want %d: %+v", len(rs), len(redisAddrs)+3, rs)
	}
	wantOrder := append(slicesRepeat("redis", len(redisAddrs)), "zookeeper", "kafka", "sql")
	for i, r := range rs {
		if r.Backend != wantOrder[i] || r.State != Connected || !r.OK || r.Err != nil || r.Latency <= 0 || r.LatencyMs <= 0 {
			t.Errorf("result %d: %+v, want %s connected with a latency", i, r, wantOrder[i])
		}
		if r.Backend != "kafka" && r.Version == "" {
			t.Errorf("%s %s: no version (%s)", r.Backend, r.Endpoint, r.Detail)
		}
	}
	if !strings.HasPrefix(rs[len(redisAddrs)].Version, "3.") || !strings.Contains(rs[len(rs)-1].Version, "PostgreSQL") {
		t.Errorf("versions: zookeeper %q, sql %q", rs[len(redisAddrs)].Version, rs[len(rs)-1].Version)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Configured picks what was configured; nothing configured means the three defaults.
func TestConfiguredBackends(t *testing.T) {
	if got := Configured(config.Endpoints{RedisSource: config.SourceDefault, ZKSource: config.SourceDefault, KafkaSource: config.SourceDefault, SQLSource: config.SourceDefault}); strings.Join(got, ",") != "redis,zookeeper,kafka" {
		t.Errorf("nothing configured: %v", got)
	}
	got := Configured(config.Endpoints{RedisSource: config.SourceDefault, ZKSource: config.SourceContext, KafkaSource: config.SourceSandbox, SQLSource: config.SourceEnv})
	if strings.Join(got, ",") != "zookeeper,kafka,sql" {
		t.Errorf("configured: %v", got)
	}
}

// An unavailable backend is reported with its reason and contacts nothing; one that
// does not answer is unreachable with a typed error, and the others still report.
func TestCheckUnavailableAndUnreachable(t *testing.T) {
	why := errs.Usage("sql: --sandbox has no embedded database")
	e := config.Endpoints{Redis: endpoint.Redis{Addrs: []string{"127.0.0.1:1"}}, Kafka: endpoint.Kafka{Brokers: []string{"127.0.0.1:1"}}}
	rs := Check(context.Background(), endpoint.Dialer{Timeout: time.Second}, Targets{Endpoints: e,
		Backends: []string{"sql", "redis", "kafka"}, Unavailable: map[string]error{"sql": why}})
	if len(rs) != 3 || rs[0].Backend != "sql" || rs[0].Err != why || rs[0].State != Unreachable || rs[0].Endpoint != "-" {
		t.Fatalf("unavailable sql: %+v", rs)
	}
	for _, r := range rs[1:] {
		if r.State != Unreachable || r.OK || errs.KindOf(r.Err) != errs.KindUnreachable || !strings.Contains(r.Error, "127.0.0.1:1") {
			t.Errorf("%s: %+v, want unreachable naming 127.0.0.1:1", r.Backend, r)
		}
	}
	if rs := Check(context.Background(), d, Targets{Backends: []string{"cassandra"}}); len(rs) != 1 || errs.KindOf(rs[0].Err) != errs.KindUsage {
		t.Fatalf("unknown backend: %+v", rs)
	}
}

// An ensemble with a member down still answers, as degraded, naming the member.
func TestCheckZooKeeperMemberDownIsDegraded(t *testing.T) {
	servers := append(testenv.List(t, testenv.ZK), "127.0.0.1:1")
	r := ZooKeeper(context.Background(), d, endpoint.ZooKeeper{Servers: servers})
	if r.State != Degraded || !r.OK || !strings.Contains(r.Warning, "127.0.0.1:1 down") || !strings.Contains(r.Warning, "1 of 4") {
		t.Fatalf("%+v", r)
	}
}

// A private Redis replica of a master that does not exist is degraded: it answers
// PING but serves stale data. (A private server: the shared ones must stay masters.)
func TestCheckRedisReplicaWithLinkDownIsDegraded(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed: cannot start a private replica")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "log"), "--replicaof", "127.0.0.1", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 50 {
			t.Fatal("private redis-server did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rs := Redis(context.Background(), d, endpoint.Redis{Addrs: []string{addr}})
	if len(rs) != 1 || rs[0].State != Degraded || !strings.Contains(rs[0].Warning, "replica of 127.0.0.1:1 with the link down") || rs[0].Version == "" {
		t.Fatalf("%+v", rs)
	}
}
