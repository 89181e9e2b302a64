package health

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/testenv"
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
