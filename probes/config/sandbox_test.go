package config

import (
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

func sampleFile(t *testing.T) *File {
	t.Helper()
	var f File
	if err := Parse([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func TestResolveEndpointsWithoutSandbox(t *testing.T) {
	f := sampleFile(t)
	e, err := ResolveEndpoints(f, "", env(map[string]string{EnvKafka: "env-k:9092"}), Overrides{Redis: []string{"flag-r:6379"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Context != "local" || e.Redis.Addrs[0] != "flag-r:6379" || e.RedisSource != SourceFlag ||
		e.Kafka.Brokers[0] != "env-k:9092" || e.KafkaSource != SourceEnv ||
		e.ZooKeeper.Servers[0] != "127.0.0.1:2181" || e.ZKSource != SourceContext || e.SQLSource != SourceContext ||
		e.Redis.Password.Env != "REDIS_PW" || len(e.Unavailable) != 0 {
		t.Fatalf("resolved %+v", e)
	}
	sqlFlag := endpoint.SQL{Driver: "mysql"}.WithDSNValue("root@tcp(db:3306)/x")
	e, err = ResolveEndpoints(f, "local", env(nil), Overrides{SQL: &sqlFlag}, nil)
	if err != nil || e.SQLSource != SourceFlag || e.SQL.Driver != "mysql" {
		t.Fatalf("sql flag: %+v, %v", e, err)
	}
	if _, err := ResolveEndpoints(f, "staging", env(nil), Overrides{}, nil); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), `"staging"`) {
		t.Fatalf("unknown context: %v", err)
	}
}

func TestResolveEndpointsSandboxRule(t *testing.T) {
	f := sampleFile(t)
	sb := &SandboxAddrs{Redis: []string{"127.0.0.1:46379"}, Kafka: []string{"127.0.0.1:49092"}, ZooKeeper: []string{"127.0.0.1:42181"}}
	e, err := ResolveEndpoints(f, "", env(nil), Overrides{}, sb)
	if err != nil {
		t.Fatal(err)
	}
	if e.Redis.Addrs[0] != "127.0.0.1:46379" || e.RedisSource != SourceSandbox || e.Redis.Password.Env != "" ||
		e.Kafka.Brokers[0] != "127.0.0.1:49092" || e.KafkaSource != SourceSandbox || e.Kafka.SASL != nil ||
		e.ZooKeeper.Servers[0] != "127.0.0.1:42181" || e.ZKSource != SourceSandbox {
		t.Fatalf("sandbox did not replace Redis, Kafka and ZooKeeper (with their auth): %+v", e)
	}
	// The context configured SQL, which the sandbox lacks: it stays.
	if e.SQLSource != SourceContext || e.Unavailable[BackendSQL] != nil {
		t.Fatalf("configured SQL under a sandbox: %s %v", e.SQLSource, e.Unavailable)
	}
	// Nothing configured SQL: unavailable, with the typed reason.
	e, err = ResolveEndpoints(&File{}, "", env(nil), Overrides{}, sb)
	if err != nil || errs.KindOf(e.Unavailable[BackendSQL]) != errs.KindUsage || !strings.Contains(e.Unavailable[BackendSQL].Error(), "no embedded database") {
		t.Fatalf("unconfigured SQL under a sandbox: %v, %v", e.Unavailable, err)
	}
	// A sandbox without ZooKeeper: a configured ensemble stays, none is unavailable.
	noZK := &SandboxAddrs{Redis: sb.Redis, Kafka: sb.Kafka}
	if e, err = ResolveEndpoints(f, "", env(nil), Overrides{}, noZK); err != nil || e.ZKSource != SourceContext || e.Unavailable[BackendZooKeeper] != nil {
		t.Fatalf("configured ZooKeeper, sandbox without: %+v, %v", e, err)
	}
	if e, err = ResolveEndpoints(&File{}, "", env(nil), Overrides{}, noZK); err != nil || e.Unavailable[BackendZooKeeper] == nil {
		t.Fatalf("no ZooKeeper anywhere: %v, %v", e.Unavailable, err)
	}
	if e, err = ResolveEndpoints(&File{}, "", env(nil), Overrides{ZooKeeper: []string{"zk:2181"}}, noZK); err != nil || e.ZKSource != SourceFlag {
		t.Fatalf("--zk with a sandbox without ZooKeeper: %+v, %v", e, err)
	}

	sqlFlag := endpoint.SQL{}.WithDSNValue("postgres://db/x")
	for _, c := range []struct {
		ov   Overrides
		sb   *SandboxAddrs
		flag string
	}{
		{Overrides{Redis: []string{"r:6379"}}, sb, "--redis"},
		{Overrides{Kafka: []string{"k:9092"}}, sb, "--brokers"},
		{Overrides{ZooKeeper: []string{"zk:2181"}}, sb, "--zk"},
		{Overrides{SQL: &sqlFlag}, &SandboxAddrs{SQL: &endpoint.SQL{}}, "SQL"},
	} {
		_, err := ResolveEndpoints(f, "", env(nil), c.ov, c.sb)
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "--sandbox and") || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v, want a usage error naming %s", c.ov, err, c.flag)
		}
		if err := SandboxConflict(c.ov, nil); c.flag != "SQL" && err == nil {
			t.Errorf("SandboxConflict(%+v, nil) = nil before the sandbox starts", c.ov)
		}
	}
	if _, err := ResolveEndpoints(f, "", env(nil), Overrides{SQL: &sqlFlag}, sb); err != nil {
		t.Errorf("explicit SQL with a sandbox without SQL: %v", err)
	}
}
