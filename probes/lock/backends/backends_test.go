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
	"github.com/dsctl/dsctl/probes/lock/sqllock"
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
	if d := backends.Describe(backends.Redis, backends.Options{}); !d.Detached || !d.Purge || !d.Notify || d.Semaphore {
		t.Fatalf("redis: %+v", d)
	}
	if d := backends.Describe(backends.ZooKeeper, backends.Options{}); d.Detached || d.Purge || !d.Notify || !d.Semaphore {
		t.Fatalf("zookeeper: %+v", d)
	}
	// SQL: lease rows outlive the process, session locks do not; PostgreSQL notifies.
	for _, c := range []struct {
		kind             backends.Kind
		mode             string
		detached, notify bool
	}{
		{backends.MySQL, "", true, false},
		{backends.MySQL, "lease", true, false},
		{backends.MySQL, "session", false, true},
		{backends.Postgres, "lease", true, true},
		{backends.Postgres, "session", false, true},
	} {
		d := backends.Describe(c.kind, backends.Options{Mode: sqlMode(c.mode)})
		if d.Detached != c.detached || d.Detachable != c.detached || d.Notify != c.notify || d.Semaphore {
			t.Errorf("%s %s: %+v", c.kind, c.mode, d)
		}
	}
	for _, k := range backends.Kinds {
		if backends.Describe(k, backends.Options{}).Kind != k || backends.Describe(k, backends.Options{}).Endpoints == "" {
			t.Errorf("%s: %+v", k, backends.Describe(k, backends.Options{}))
		}
	}
}

func TestCheckOptionsRefusesSQLOptionsElsewhere(t *testing.T) {
	for _, c := range []struct {
		kind backends.Kind
		opt  backends.Options
		err  string
	}{
		{backends.Redis, backends.Options{Mode: "session"}, "--mode: only SQL locks"},
		{backends.ZooKeeper, backends.Options{Table: "t", Format: "shedlock"}, "--table, --format: only SQL locks"},
		{"", backends.Options{Format: "shedlock"}, "the backend here is redis"},
		{backends.MySQL, backends.Options{Mode: "sessoin"}, `unknown --mode "sessoin"`},
		{backends.Postgres, backends.Options{Format: "quartz"}, `unknown --format "quartz"`},
		{backends.Postgres, backends.Options{Format: "shedlock", Mode: "session"}, "--format shedlock works with --mode lease only"},
		{backends.MySQL, backends.Options{Table: "a;drop"}, "is not a plain table name"},
		{backends.MySQL, backends.Options{Mode: "session", Table: "app.locks"}, ""},
		{backends.Redis, backends.Options{Format: "dsctl"}, ""},
	} {
		err := backends.CheckOptions(c.kind, c.opt)
		if c.err == "" && err != nil || c.err != "" && (errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s %+v: %v, want %q", c.kind, c.opt, err, c.err)
		}
	}
}

func TestCheckPermits(t *testing.T) {
	if err := backends.CheckPermits(backends.ZooKeeper, backends.Options{}, 3); err != nil {
		t.Fatal(err)
	}
	for _, k := range []backends.Kind{backends.Redis, backends.MySQL, backends.Postgres} {
		if err := backends.CheckPermits(k, backends.Options{}, 1); err != nil {
			t.Fatalf("%s, 1 permit: %v", k, err)
		}
		err := backends.CheckPermits(k, backends.Options{}, 2)
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "--semaphore 2: "+string(k)+" locks admit one holder") ||
			!strings.Contains(err.(*errs.Error).Hint, "work on zookeeper") {
			t.Fatalf("%s: %v", k, err)
		}
	}
}

// --backend mysql with a PostgreSQL DSN (and the reverse) is a usage error naming
// where the DSN comes from, never the DSN.
func TestPickRefusesTheOtherDatabasesDSN(t *testing.T) {
	const pg, my = "postgres://u:pgs3cret@db:5432/app", "u:mys3cret@tcp(db:3306)/app"
	for _, c := range []struct {
		dsn  string
		kind backends.Kind
		want string
	}{
		{pg, backends.MySQL, "--backend mysql, but the DSN in DSCTL_SQL_DSN is a postgres one (db:5432/app)"},
		{my, backends.Postgres, "--backend postgres, but the DSN in DSCTL_SQL_DSN is a mysql one (db:3306/app)"},
	} {
		e := endpoints("", "", c.dsn)
		_, err := backends.Pick(e, backends.Explicit{Backend: c.kind})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s with %s: %v", c.kind, c.dsn[:5], err)
		}
		_, err = backends.Open(context.Background(), endpoint.Dialer{}, e, c.kind, backends.Options{})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open %s: %v", c.kind, err)
		}
	}
	if k, err := backends.Pick(endpoints("", "", pg), backends.Explicit{Backend: backends.Postgres}); err != nil || k != backends.Postgres {
		t.Fatalf("matching: %s %v", k, err)
	}
}

// `lock verify` proxies SQL too: Targets is the DSN's host:port, Proxied rewrites only
// the address (user, password, database and parameters kept).
func TestTargetsAndProxiedSQL(t *testing.T) {
	d := endpoint.Dialer{}
	for _, c := range []struct {
		dsn, addr string
		kind      backends.Kind
	}{
		{"postgres://u:pw@db.internal:5433/app?sslmode=disable", "db.internal:5433", backends.Postgres},
		{"host=db.internal port=5433 user=u password=pw dbname=app sslmode=disable", "db.internal:5433", backends.Postgres},
		{"u:pw@tcp(db.internal:3307)/app?parseTime=true", "db.internal:3307", backends.MySQL},
		{"mysql://u:pw@db.internal/app", "db.internal:3306", backends.MySQL},
	} {
		e := endpoints("", "", c.dsn)
		ts, err := backends.Targets(d, c.kind, e)
		if err != nil || len(ts) != 1 || ts[0] != c.addr {
			t.Fatalf("%s: targets %v %v", c.dsn, ts, err)
		}
		p := backends.Proxied(c.kind, e, []string{"127.0.0.1:4001"})
		if ts, err := backends.Targets(d, c.kind, p); err != nil || ts[0] != "127.0.0.1:4001" {
			t.Fatalf("%s: proxied targets %v %v", c.dsn, ts, err)
		}
		tgt, err := d.SQLTarget(p.SQL)
		if err != nil || tgt.Driver != string(c.kind) || !strings.HasSuffix(tgt.Name, "/app") {
			t.Fatalf("%s: proxied target %+v %v", c.dsn, tgt, err)
		}
		if ts, _ := backends.Targets(d, c.kind, e); ts[0] != c.addr {
			t.Fatalf("Proxied changed the caller's endpoints")
		}
	}
	if _, err := backends.Targets(d, backends.MySQL, endpoints("", "", "u:pw@unix(/run/mysqld.sock)/app")); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "not TCP") {
		t.Fatalf("unix socket: %v", err)
	}
}

func TestOpenSQLWithoutADSNSaysHowToSetOne(t *testing.T) {
	for _, k := range []backends.Kind{backends.MySQL, backends.Postgres} {
		_, err := backends.Open(context.Background(), endpoint.Dialer{}, config.Endpoints{}, k, backends.Options{})
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "no database configured") {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if _, err := backends.Open(context.Background(), endpoint.Dialer{}, config.Endpoints{}, "etcd", backends.Options{}); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("etcd: %v", err)
	}
	if _, err := backends.SQLDDL(backends.Redis, backends.Options{}); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("SQLDDL(redis): %v", err)
	}
	ddl, err := backends.SQLDDL(backends.Postgres, backends.Options{Table: "ops.locks"})
	if err != nil || !strings.Contains(ddl, "CREATE TABLE IF NOT EXISTS") || !strings.Contains(ddl, "locks") {
		t.Fatalf("SQLDDL: %q %v", ddl, err)
	}
}

func sqlMode(s string) sqllock.Mode { return sqllock.Mode(s) }
