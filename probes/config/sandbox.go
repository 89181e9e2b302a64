package config

import (
	"strings"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// SandboxAddrs are the addresses of running embedded servers (--sandbox, or the TUI's
// sandbox): they replace the configured endpoints of the backends they embed. An
// empty ZooKeeper or a nil SQL means the sandbox does not embed that backend.
type SandboxAddrs struct {
	Redis     []string
	Kafka     []string
	ZooKeeper []string
	SQL       *endpoint.SQL
}

// Backend names, as Endpoints.Unavailable keys them.
const (
	BackendRedis     = "redis"
	BackendZooKeeper = "zookeeper"
	BackendKafka     = "kafka"
	BackendSQL       = "sql"
)

// SandboxConflict is the usage error for an explicit endpoint flag given together with
// --sandbox (the sandbox would replace it silently); nil when there is none. SQL
// conflicts only with a sandbox that embeds SQL (nil sb: check every backend as if the
// sandbox embedded it, which is what a caller does before starting one).
func SandboxConflict(ov Overrides, sb *SandboxAddrs) error {
	switch {
	case len(ov.Redis) > 0:
		return errs.Usage("--sandbox and --redis are mutually exclusive").
			WithHint("--sandbox runs its own Redis: drop --sandbox to use %s, or drop --redis to use the embedded server", strings.Join(ov.Redis, ","))
	case len(ov.Kafka) > 0:
		return errs.Usage("--sandbox and --brokers are mutually exclusive").
			WithHint("--sandbox runs its own Kafka: drop --sandbox to use %s, or drop --brokers to use the embedded cluster", strings.Join(ov.Kafka, ","))
	case len(ov.ZooKeeper) > 0 && (sb == nil || len(sb.ZooKeeper) > 0):
		return errs.Usage("--sandbox and --zk are mutually exclusive").
			WithHint("--sandbox runs its own ZooKeeper: drop --sandbox to use %s, or drop --zk to use the embedded server", strings.Join(ov.ZooKeeper, ","))
	case ov.SQL != nil && sb != nil && sb.SQL != nil:
		return errs.Usage("--sandbox and an explicit SQL database are mutually exclusive").
			WithHint("--sandbox runs its own database; drop one of them")
	}
	return nil
}

// NoSandboxZooKeeper is why ZooKeeper is unavailable under a sandbox without one.
func NoSandboxZooKeeper() error {
	return errs.Usage("zookeeper: --sandbox has no embedded ZooKeeper").
		WithHint("it embeds only Redis and Kafka: drop --sandbox and point --zk, DSCTL_ZK or the context's zookeeper.servers at a ZooKeeper ensemble")
}

// NoSandboxSQL is why SQL is unavailable under a sandbox (it embeds no database).
func NoSandboxSQL() error {
	return errs.Usage("sql: --sandbox has no embedded database").
		WithHint("it embeds only Redis, Kafka and ZooKeeper: drop --sandbox and set DSCTL_SQL_DSN or the context's sql.dsn to your database")
}

// ResolveEndpoints is the one endpoint resolution: the context named contextName (""
// for the file's current one) of the loaded file, then flag > env > context > default
// for each backend, then the sandbox's addresses over the backends it embeds. With a
// sandbox, an explicit flag for an embedded backend is a usage error (SandboxConflict);
// a backend the sandbox lacks keeps an endpoint the user configured (env, context,
// flag) and is otherwise marked in Endpoints.Unavailable with the typed reason.
func ResolveEndpoints(f *File, contextName string, getenv func(string) string, ov Overrides, sb *SandboxAddrs) (Endpoints, error) {
	if sb != nil {
		if err := SandboxConflict(ov, sb); err != nil {
			return Endpoints{}, err
		}
	}
	c, name, err := f.Context(contextName)
	if err != nil {
		return Endpoints{}, err
	}
	e := Resolve(name, c, getenv, ov)
	if sb == nil {
		return e, nil
	}
	e.Redis, e.RedisSource = endpoint.Redis{Addrs: sb.Redis}, SourceSandbox
	e.Kafka, e.KafkaSource = endpoint.Kafka{Brokers: sb.Kafka}, SourceSandbox
	if len(sb.ZooKeeper) > 0 {
		e.ZooKeeper, e.ZKSource = endpoint.ZooKeeper{Servers: sb.ZooKeeper}, SourceSandbox
	} else if e.ZKSource == SourceDefault {
		e.markUnavailable(BackendZooKeeper, NoSandboxZooKeeper())
	}
	switch {
	case sb.SQL != nil:
		e.SQL, e.SQLSource = *sb.SQL, SourceSandbox
	case e.SQLSource == SourceDefault:
		e.markUnavailable(BackendSQL, NoSandboxSQL())
	}
	return e, nil
}

func (e *Endpoints) markUnavailable(backend string, why error) {
	if e.Unavailable == nil {
		e.Unavailable = map[string]error{}
	}
	e.Unavailable[backend] = why
}
