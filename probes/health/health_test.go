package health

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk/zktest"
)

var d = endpoint.Dialer{Timeout: 5 * time.Second}

func TestRealEnsembleModes(t *testing.T) {
	servers := testenv.List(t, testenv.ZK)
	r := ZooKeeper(context.Background(), d, endpoint.ZooKeeper{Servers: servers})
	if !r.OK {
		t.Fatal(r.Error)
	}
	if strings.Count(r.Detail, "=leader") != 1 || strings.Count(r.Detail, "=follower") != 2 {
		t.Fatalf("want one leader and two followers: %s", r.Detail)
	}
}

func TestRealBackends(t *testing.T) {
	ctx := context.Background()
	rs := Redis(ctx, d, endpoint.Redis{Addrs: testenv.List(t, testenv.Redis)})
	for _, r := range rs {
		if !r.OK || !strings.Contains(r.Detail, "redis ") {
			t.Fatalf("redis %s: %+v", r.Endpoint, r)
		}
	}
	k := Kafka(ctx, d, endpoint.Kafka{Brokers: testenv.List(t, testenv.Kafka)})
	if !k.OK || !strings.HasPrefix(k.Detail, "3 brokers [1 2 3]") {
		t.Fatalf("kafka: %+v", k)
	}
	for env, want := range map[string]string{testenv.MySQL: "MariaDB", testenv.Postgres: "PostgreSQL"} {
		r := SQL(ctx, d, endpoint.SQL{}.WithDSNValue(testenv.Get(t, env)))
		if !r.OK || !strings.Contains(r.Detail, want) {
			t.Fatalf("sql %s: %+v", want, r)
		}
	}
}

func TestServerModeOfDeadPort(t *testing.T) {
	if m := ServerMode(context.Background(), "127.0.0.1:1", time.Second); m != "down" {
		t.Fatalf("mode = %q, want down", m)
	}
}

func TestFirstErrorPrefersUnreachable(t *testing.T) {
	rt := errs.New(errs.KindRuntime, "auth")
	un := errs.Unreachable("redis", "h:1", time.Second, "", nil)
	got := FirstError([]Result{{OK: true}, {Err: rt}, {Err: un}})
	if got != error(un) {
		t.Fatalf("FirstError = %v, want the unreachable one", got)
	}
	if FirstError([]Result{{OK: true}}) != nil {
		t.Fatal("error from all-ok results")
	}
}

// lineServer is a private stand-in for Redis and other line-based servers: it answers
// only once a whole line (up to \n) has arrived, then keeps the connection open.
func lineServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					return
				}
				_, _ = io.WriteString(c, reply)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// notZooKeeperAddrs are a private line server and, when the shared servers run, a real
// Redis.
func notZooKeeperAddrs(t *testing.T) map[string]string {
	addrs := map[string]string{"line server": lineServer(t, "-ERR unknown command 'srvr', with args beginning with: \r\n")}
	if r := os.Getenv(testenv.Redis); r != "" {
		addrs["redis"] = strings.Split(r, ",")[0]
	}
	return addrs
}

// TestServerModeTellsANonZooKeeperAtOnce: srvr goes out with CRLF, so a line-based
// server answers at once and is named, instead of the probe waiting out its timeout
// for a reply that never comes (the mode was "unknown" after the whole timeout).
func TestServerModeTellsANonZooKeeperAtOnce(t *testing.T) {
	for name, addr := range notZooKeeperAddrs(t) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			m := ServerMode(context.Background(), addr, 10*time.Second)
			if m != ModeNotZooKeeper || time.Since(start) > 5*time.Second {
				t.Fatalf("mode %q after %s, want %q at once", m, time.Since(start), ModeNotZooKeeper)
			}
		})
	}
}

// TestPingZooKeeperAtANonZooKeeperPort: `dsctl ping zookeeper` at a Redis port fails
// with an error naming it (unreachable, exit 6, as for every backend), long before the timeout (it used to retry the session
// handshake until --timeout and call the address unreachable).
func TestPingZooKeeperAtANonZooKeeperPort(t *testing.T) {
	for name, addr := range notZooKeeperAddrs(t) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			r := ZooKeeper(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.ZooKeeper{Servers: []string{addr}})
			if r.OK || errs.KindOf(r.Err) != errs.KindUnreachable || !strings.Contains(r.Error, "is not a ZooKeeper server") ||
				time.Since(start) > 5*time.Second {
				t.Fatalf("after %s: %+v", time.Since(start), r)
			}
		})
	}
}

func TestServerModeRefusalsAndNotServing(t *testing.T) {
	for _, tc := range []struct {
		m    zktest.Member
		want string
	}{
		{zktest.Member{Mode: "follower", NotWhitelisted: true}, ModeSrvrDisabled},
		{zktest.Member{Mode: "follower", NotServing: true}, ModeNotServing},
		{zktest.Member{Mode: "leader"}, "leader"},
	} {
		if got := ServerMode(context.Background(), zktest.Start(t, tc.m), 2*time.Second); got != tc.want {
			t.Errorf("%+v: mode %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestEmbeddedZooKeeperIsStandalone pings the sandbox's ZooKeeper.
func TestEmbeddedZooKeeperIsStandalone(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := ZooKeeper(context.Background(), d, endpoint.ZooKeeper{Servers: []string{srv.Addr()}})
	if !r.OK || !strings.HasSuffix(r.Detail, srv.Addr()+"=standalone") || !strings.HasPrefix(r.Detail, "session 0x") {
		t.Fatalf("%+v", r)
	}
}
