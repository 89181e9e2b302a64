package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Smoke tests: the harness's real servers answer through dsctl's one connection layer.

func dialer() endpoint.Dialer { return endpoint.Dialer{Timeout: 5 * time.Second} }

func TestRealRedisPingsAllThree(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) != 3 {
		t.Fatalf("want 3 independent Redis servers, got %v", addrs)
	}
	ctx := context.Background()
	clients, err := dialer().ConnectRedis(ctx, endpoint.Redis{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
			t.Fatalf("redis %s: PING = %q, %v", addrs[i], got, err)
		}
		// Independent servers: a key set on one is not visible on the others.
		key := "dsctl:test:smoke:" + addrs[i]
		if err := c.Set(ctx, key, "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		defer c.Del(ctx, key)
		for j, other := range clients {
			if j != i && other.Exists(ctx, key).Val() != 0 {
				t.Fatalf("key set on %s is visible on %s: servers are not independent", addrs[i], addrs[j])
			}
		}
	}
	for _, c := range clients {
		c.Close()
	}
}

func TestRealZooKeeperEnsembleHasOneLeader(t *testing.T) {
	servers := testenv.List(t, testenv.ZK)
	if len(servers) != 3 {
		t.Fatalf("want a 3-node ensemble, got %v", servers)
	}
	s, err := dialer().ConnectZooKeeper(context.Background(), endpoint.ZooKeeper{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	children, _, err := s.Conn.Children("/zookeeper")
	if err != nil {
		t.Fatalf("list /zookeeper: %v", err)
	}
	sort.Strings(children)
	if !contains(children, "config") && !contains(children, "quota") {
		t.Fatalf("/zookeeper children = %v, want config or quota", children)
	}
	// The ensemble configuration node lists all three servers.
	data, _, err := s.Conn.Get("/zookeeper/config")
	if err != nil {
		t.Fatalf("get /zookeeper/config: %v", err)
	}
	if n := strings.Count(string(data), "server."); n != 3 {
		t.Fatalf("/zookeeper/config lists %d servers, want 3:\n%s", n, data)
	}
}

func TestRealKafkaListsThreeBrokers(t *testing.T) {
	brokers := testenv.List(t, testenv.Kafka)
	c, err := dialer().ConnectKafka(context.Background(), endpoint.Kafka{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []int
	for _, b := range c.Brokers() {
		ids = append(ids, int(b.ID()))
	}
	sort.Ints(ids)
	if len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("sarama sees brokers %v, want [1 2 3]", ids)
	}
	if _, err := c.Controller(); err != nil {
		t.Fatalf("no controller: %v", err)
	}
}

func TestRealSQLSelectOne(t *testing.T) {
	for _, tc := range []struct{ env, driver string }{{testenv.MySQL, "mysql"}, {testenv.Postgres, "postgres"}} {
		t.Run(tc.driver, func(t *testing.T) {
			dsn := testenv.Get(t, tc.env)
			db, target, err := dialer().ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue(dsn))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if target.Driver != tc.driver {
				t.Fatalf("driver inferred as %q, want %q", target.Driver, tc.driver)
			}
			var one int
			if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		})
	}
}

func TestUnreachableWithinTimeoutNamesEndpoint(t *testing.T) {
	// A loopback port nothing listens on: refused at once, reported as exit-6 errors.
	d := endpoint.Dialer{Timeout: time.Second}
	ctx := context.Background()
	const dead = "127.0.0.1:1"
	checks := map[string]func() error{
		"redis": func() error { _, err := d.ConnectRedis(ctx, endpoint.Redis{Addrs: []string{dead}}); return err },
		"kafka": func() error { _, err := d.ConnectKafka(ctx, endpoint.Kafka{Brokers: []string{dead}}); return err },
		"zookeeper": func() error {
			_, err := d.ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: []string{dead}})
			return err
		},
		"sql": func() error {
			_, _, err := d.ConnectSQL(ctx, endpoint.SQL{}.WithDSNValue("postgres://u:hunter22@"+dead+"/db"))
			return err
		},
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := check()
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("connected to a dead port")
			}
			if errs.KindOf(err) != errs.KindUnreachable {
				t.Fatalf("kind = %v, want unreachable: %v", errs.KindOf(err), err)
			}
			if !strings.Contains(err.Error(), dead) {
				t.Fatalf("error does not name the endpoint: %v", err)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if elapsed > 3*time.Second {
				t.Fatalf("took %s, want within the 1s timeout (+ slack)", elapsed)
			}
		})
	}
}

func contains(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}

func TestRealZooKeeperDigestAuth(t *testing.T) {
	servers := testenv.List(t, testenv.ZK)
	t.Setenv("DSCTL_TEST_ZK_DIGEST_PW", "s3cret")
	ctx := context.Background()
	authed, err := dialer().ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: servers, DigestUser: "dsctl",
		DigestPassword: endpoint.Secret{Env: "DSCTL_TEST_ZK_DIGEST_PW"}})
	if err != nil {
		t.Fatal(err)
	}
	defer authed.Close()
	path := fmt.Sprintf("/dsctl-test-digest-%d", time.Now().UnixNano())
	if _, err := authed.Conn.Create(path, []byte("x"), zk.FlagEphemeral, zk.DigestACL(zk.PermAll, "dsctl", "s3cret")); err != nil {
		t.Fatalf("create with digest ACL: %v", err)
	}
	if _, _, err := authed.Conn.Get(path); err != nil {
		t.Fatalf("the authenticated session cannot read its own node: %v", err)
	}
	anon, err := dialer().ConnectZooKeeper(ctx, endpoint.ZooKeeper{Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, _, err := anon.Conn.Get(path); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("anonymous read of a digest-protected node: %v, want ErrNoAuth", err)
	}
}
