package backends_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock/backends"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]backends.Kind{
		"": "", "redis": backends.Redis, "ZooKeeper": backends.ZooKeeper, "zk": backends.ZooKeeper,
		"mysql": backends.MySQL, "mariadb": backends.MySQL, "postgres": backends.Postgres, "PostgreSQL": backends.Postgres, "pg": backends.Postgres,
	} {
		if got, err := backends.ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := backends.ParseKind("etcd")
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), `"etcd"`) ||
		!strings.Contains(err.(*errs.Error).Hint, "redis, zookeeper, mysql, postgres") {
		t.Fatalf("ParseKind(etcd): %v", err)
	}
}

// endpoints builds resolved endpoints as config.Resolve would, with each kind set by
// the given source ("" = built-in default).
func endpoints(redis, zk config.Source, dsn string) config.Endpoints {
	e := config.Endpoints{RedisSource: config.SourceDefault, ZKSource: config.SourceDefault, SQLSource: config.SourceDefault}
	if redis != "" {
		e.RedisSource = redis
	}
	if zk != "" {
		e.ZKSource = zk
	}
	if dsn != "" {
		e.SQL = e.SQL.WithDSNValue(dsn)
		e.SQLSource = config.SourceEnv
	}
	return e
}

func TestPick(t *testing.T) {
	const pg, my = "postgres://u@db:5432/app", "u:p@tcp(db:3306)/app"
	for _, c := range []struct {
		name string
		e    config.Endpoints
		x    backends.Explicit
		want backends.Kind
		err  string
	}{
		{"nothing configured: redis at its default, as always", endpoints("", "", ""), backends.Explicit{}, backends.Redis, ""},
		{"only redis", endpoints(config.SourceContext, "", ""), backends.Explicit{}, backends.Redis, ""},
		{"only zookeeper", endpoints("", config.SourceContext, ""), backends.Explicit{}, backends.ZooKeeper, ""},
		{"only postgres", endpoints("", "", pg), backends.Explicit{}, backends.Postgres, ""},
		{"only mysql", endpoints("", "", my), backends.Explicit{}, backends.MySQL, ""},
		{"redis and zookeeper: redis stays", endpoints(config.SourceEnv, config.SourceContext, ""), backends.Explicit{}, backends.Redis, ""},
		{"redis and sql: redis stays", endpoints(config.SourceContext, "", pg), backends.Explicit{}, backends.Redis, ""},
		{"zookeeper and sql: ambiguous", endpoints("", config.SourceContext, pg), backends.Explicit{}, "", "several lock backends are configured: zookeeper (context), postgres (env)"},
		{"sandbox: redis", endpoints(config.SourceSandbox, config.SourceSandbox, ""), backends.Explicit{}, backends.Redis, ""},
		{"sandbox with --backend zookeeper", endpoints(config.SourceSandbox, config.SourceSandbox, ""), backends.Explicit{Backend: backends.ZooKeeper}, backends.ZooKeeper, ""},
		{"--zk", endpoints(config.SourceContext, config.SourceFlag, ""), backends.Explicit{ZooKeeper: true}, backends.ZooKeeper, ""},
		{"--redis", endpoints(config.SourceFlag, config.SourceContext, pg), backends.Explicit{Redis: true}, backends.Redis, ""},
		{"--redis and --zk", endpoints(config.SourceFlag, config.SourceFlag, ""), backends.Explicit{Redis: true, ZooKeeper: true}, "", "--redis and --zk name two lock backends"},
		{"--backend wins over the context", endpoints(config.SourceContext, "", ""), backends.Explicit{Backend: backends.Postgres}, backends.Postgres, ""},
		{"--backend and --zk agree", endpoints("", config.SourceFlag, ""), backends.Explicit{Backend: backends.ZooKeeper, ZooKeeper: true}, backends.ZooKeeper, ""},
		{"--backend redis with --zk", endpoints("", config.SourceFlag, ""), backends.Explicit{Backend: backends.Redis, ZooKeeper: true}, "", "--zk and --backend redis contradict each other"},
		{"env backend with --redis", endpoints(config.SourceFlag, "", ""), backends.Explicit{Backend: backends.ZooKeeper, BackendFrom: backends.EnvBackend, Redis: true}, "", "--redis and DSCTL_LOCK_BACKEND zookeeper contradict"},
	} {
		got, err := backends.Pick(c.e, c.x)
		switch {
		case c.err != "" && (errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %q %v, want error %q", c.name, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s: %q %v, want %q", c.name, got, err, c.want)
		}
	}
}

func TestChildEnvDropsOnlyThatBackendsSecrets(t *testing.T) {
	e := config.Endpoints{
		Redis:     endpoint.Redis{Password: endpoint.Secret{Env: "APP_REDIS_PW"}},
		ZooKeeper: endpoint.ZooKeeper{DigestUser: "u", DigestPassword: endpoint.Secret{Env: "APP_ZK_PW"}},
		SQL:       endpoint.SQL{DSN: endpoint.Secret{Env: "APP_DSN"}},
	}
	environ := []string{"PATH=/bin", "APP_REDIS_PW=r", "APP_ZK_PW=z", "APP_DSN=d", "DSCTL_SQL_DSN=postgres://u:p@h/db",
		"DSCTL_REDIS=redis://:pw@h:6379", "DSCTL_ZK=h:2181"}
	for _, c := range []struct {
		kind backends.Kind
		gone []string
	}{
		{backends.Redis, []string{"APP_REDIS_PW", "DSCTL_REDIS"}},
		{backends.ZooKeeper, []string{"APP_ZK_PW"}},
		{backends.MySQL, []string{"APP_DSN", "DSCTL_SQL_DSN"}},
		{backends.Postgres, []string{"APP_DSN", "DSCTL_SQL_DSN"}},
	} {
		got := backends.ChildEnv(environ, c.kind, e)
		for _, kv := range environ {
			k, _, _ := strings.Cut(kv, "=")
			if slices.Contains(got, kv) == slices.Contains(c.gone, k) {
				t.Errorf("%s: %s kept=%v, want kept=%v", c.kind, k, slices.Contains(got, kv), !slices.Contains(c.gone, k))
			}
		}
	}
	// DSCTL_REDIS without a password is not a secret.
	if got := backends.ChildEnv([]string{"DSCTL_REDIS=h:6379"}, backends.Redis, config.Endpoints{}); len(got) != 1 {
		t.Fatalf("DSCTL_REDIS without a password dropped: %v", got)
	}
}

func TestDescribe(t *testing.T) {
	if d := backends.Describe(backends.Redis); !d.Detached || !d.Purge || !d.Notify {
		t.Fatalf("redis: %+v", d)
	}
	if d := backends.Describe(backends.ZooKeeper); d.Detached || d.Purge || !d.Notify {
		t.Fatalf("zookeeper: %+v", d)
	}
	for _, k := range backends.Kinds {
		if backends.Describe(k).Kind != k || backends.Describe(k).Endpoints == "" {
			t.Errorf("%s: %+v", k, backends.Describe(k))
		}
	}
}

func TestOpenSQLIsNotInThisBuildYet(t *testing.T) {
	for _, k := range []backends.Kind{backends.MySQL, backends.Postgres} {
		_, err := backends.Open(context.Background(), endpoint.Dialer{}, config.Endpoints{}, k, backends.Options{})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "not in this build") {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if _, err := backends.Open(context.Background(), endpoint.Dialer{}, config.Endpoints{}, "etcd", backends.Options{}); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("etcd: %v", err)
	}
}
