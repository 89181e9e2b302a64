package config

import (
	"strings"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// Source says where a resolved value came from.
type Source string

// Sources, highest precedence first.
const (
	SourceFlag    Source = "flag"
	SourceEnv     Source = "env"
	SourceContext Source = "context"
	SourceDefault Source = "default"
	SourceSandbox Source = "sandbox"
)

// Overrides are endpoint values given as command flags (the highest precedence).
type Overrides struct {
	Redis     []string
	ZooKeeper []string
	Kafka     []string
	// SQL, when set, is a database named on the command line (its DSN still comes from
	// an env var or a file).
	SQL *endpoint.SQL
}

// Endpoints are the resolved endpoints for one command run, and where each came from.
type Endpoints struct {
	Context string `json:"context"`

	Redis       endpoint.Redis     `json:"redis"`
	RedisSource Source             `json:"redis_source"`
	ZooKeeper   endpoint.ZooKeeper `json:"zookeeper"`
	ZKSource    Source             `json:"zookeeper_source"`
	Kafka       endpoint.Kafka     `json:"kafka"`
	KafkaSource Source             `json:"kafka_source"`
	SQL         endpoint.SQL       `json:"sql"`
	SQLSource   Source             `json:"sql_source"`

	// Unavailable maps a backend (Backend* names) to why it cannot be used in this run:
	// a sandbox that does not embed it, when the user configured none.
	Unavailable map[string]error `json:"-"`
}

// Resolve applies the precedence flag > env > context > default to each endpoint's
// address list (and the SQL DSN). Auth and TLS settings always come from the context.
func Resolve(ctxName string, c *Context, getenv func(string) string, ov Overrides) Endpoints {
	e := Endpoints{Context: ctxName}
	if c.Redis != nil {
		e.Redis = *c.Redis
	}
	e.Redis.Addrs, e.RedisSource = pick(ov.Redis, getenv(EnvRedis), e.Redis.Addrs, endpoint.DefaultRedisAddr)

	if c.ZooKeeper != nil {
		e.ZooKeeper = *c.ZooKeeper
	}
	e.ZooKeeper.Servers, e.ZKSource = pick(ov.ZooKeeper, getenv(EnvZooKeeper), e.ZooKeeper.Servers, endpoint.DefaultZooKeeper)

	if c.Kafka != nil {
		e.Kafka = *c.Kafka
	}
	e.Kafka.Brokers, e.KafkaSource = pick(ov.Kafka, getenv(EnvKafka), e.Kafka.Brokers, endpoint.DefaultKafkaBroker)

	if c.SQL != nil {
		e.SQL = *c.SQL
	}
	e.SQLSource = SourceDefault
	if !e.SQL.DSN.IsZero() {
		e.SQLSource = SourceContext
	}
	if dsn := getenv(EnvSQLDSN); dsn != "" {
		e.SQL = e.SQL.WithDSNValue(dsn)
		e.SQLSource = SourceEnv
	}
	if drv := getenv(EnvSQLDriver); drv != "" {
		e.SQL.Driver = drv
	}
	if ov.SQL != nil && ov.SQL.HasDSN() {
		e.SQL, e.SQLSource = *ov.SQL, SourceFlag
	}
	return e
}

func pick(flag []string, env string, ctx []string, def string) ([]string, Source) {
	if list := clean(flag); len(list) > 0 {
		return list, SourceFlag
	}
	if list := SplitList(env); len(list) > 0 {
		return list, SourceEnv
	}
	if list := clean(ctx); len(list) > 0 {
		return list, SourceContext
	}
	return []string{def}, SourceDefault
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	return clean(strings.Split(s, ","))
}

func clean(in []string) []string {
	var out []string
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if p := strings.TrimSpace(part); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
