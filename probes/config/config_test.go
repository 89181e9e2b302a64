package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

const sample = `current_context: local
contexts:
  local:
    redis:
      addrs: [127.0.0.1:6379]
      password: {env: REDIS_PW}
    zookeeper:
      servers: [127.0.0.1:2181]
      session_timeout: 4s
    kafka:
      brokers: [k1:9092, k2:9092]
      sasl: {mechanism: SCRAM-SHA-512, username: ops, password: {file: /run/secrets/kafka}}
    sql:
      driver: postgres
      dsn: {env: APP_DB}
  prod:
    redis:
      addrs: ["redis://:inline-secret@prod-redis:6379"]
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	var f File
	if err := Parse([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	local := f.Contexts["local"]
	if f.CurrentContext != "local" || local.Redis.Password.Env != "REDIS_PW" ||
		local.ZooKeeper.SessionTimeout.String() != "4s" || local.Kafka.SASL.Password.File != "/run/secrets/kafka" ||
		local.SQL.DSN.Env != "APP_DB" {
		t.Fatalf("parsed %+v", local)
	}
}

func TestParseRejectsBadInputWithLine(t *testing.T) {
	cases := map[string]string{
		"unknown key":       "contexts:\n  a:\n    redis:\n      adrs: [x]\n",
		"inline password":   "contexts:\n  a:\n    redis:\n      password: hunter2\n",
		"bad duration":      "contexts:\n  a:\n    zookeeper:\n      session_timeout: soon\n",
		"unknown current":   "current_context: nope\ncontexts:\n  a: {}\n",
		"bad context name":  "contexts:\n  \"a b\": {}\n",
		"not yaml":          "contexts: [\n",
		"wrong type for db": "contexts:\n  a:\n    redis:\n      db: zero\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			var f File
			err := Parse([]byte(text), &f)
			if err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
			if name == "inline password" && !strings.Contains(err.Error(), "never stored inline") {
				t.Fatalf("no hint about inline secrets: %v", err)
			}
			if (name == "unknown key" && !strings.Contains(err.Error(), "[4:")) || (name == "inline password" && !strings.Contains(err.Error(), "line 4")) {
				t.Fatalf("error does not give the line: %v", err)
			}
		})
	}
}

func TestPrecedenceFlagEnvContextDefault(t *testing.T) {
	var f File
	if err := Parse([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	local := f.Contexts["local"]

	e := Resolve("local", local, env(nil), Overrides{})
	if got := e.Kafka.Brokers; len(got) != 2 || got[0] != "k1:9092" || e.KafkaSource != SourceContext {
		t.Fatalf("context: %v from %s", got, e.KafkaSource)
	}
	e = Resolve("local", local, env(map[string]string{EnvKafka: "e1:9092, e2:9092"}), Overrides{})
	if got := e.Kafka.Brokers; len(got) != 2 || got[1] != "e2:9092" || e.KafkaSource != SourceEnv {
		t.Fatalf("env: %v from %s", got, e.KafkaSource)
	}
	// Auth stays from the context when the address comes from env.
	if e.Kafka.SASL == nil || e.Kafka.SASL.Username != "ops" {
		t.Fatal("env override dropped the context's SASL settings")
	}
	e = Resolve("local", local, env(map[string]string{EnvKafka: "e1:9092"}), Overrides{Kafka: []string{"f1:9092"}})
	if got := e.Kafka.Brokers; len(got) != 1 || got[0] != "f1:9092" || e.KafkaSource != SourceFlag {
		t.Fatalf("flag: %v from %s", got, e.KafkaSource)
	}
	e = Resolve("", &Context{}, env(nil), Overrides{})
	if e.Redis.Addrs[0] != endpoint.DefaultRedisAddr || e.RedisSource != SourceDefault ||
		e.ZooKeeper.Servers[0] != endpoint.DefaultZooKeeper || e.Kafka.Brokers[0] != endpoint.DefaultKafkaBroker {
		t.Fatalf("defaults: %+v", e)
	}
	if e.SQL.HasDSN() || e.SQLSource != SourceDefault {
		t.Fatal("a SQL DSN appeared from nowhere")
	}
	e = Resolve("local", local, env(map[string]string{EnvSQLDSN: "postgres://x@y/z", EnvRedis: "r:1", EnvZooKeeper: "z:1"}), Overrides{})
	if e.SQLSource != SourceEnv || !e.SQL.HasDSN() || e.RedisSource != SourceEnv || e.ZKSource != SourceEnv {
		t.Fatalf("env for all: %+v", e)
	}
}

func TestContextSelection(t *testing.T) {
	var f File
	if err := Parse([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	if _, name, err := f.Context(""); err != nil || name != "local" {
		t.Fatalf("current: %q %v", name, err)
	}
	if _, name, err := f.Context("prod"); err != nil || name != "prod" {
		t.Fatalf("named: %q %v", name, err)
	}
	_, _, err := f.Context("staging")
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "local, prod") {
		t.Fatalf("unknown context: %v", err)
	}
}

func TestMaskedHidesInlinePasswordsOnly(t *testing.T) {
	var f File
	if err := Parse([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	b, err := f.Masked().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "inline-secret") {
		t.Fatalf("masked config leaks a password:\n%s", out)
	}
	for _, want := range []string{"redis://:****@prod-redis:6379", "REDIS_PW", "/run/secrets/kafka"} {
		if !strings.Contains(out, want) {
			t.Fatalf("masked config lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(f.Contexts["prod"].Redis.Addrs[0], "inline-secret") {
		t.Fatal("Masked modified the original")
	}
}

func TestSaveRoundTripAndMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f, err := Load(path, false)
	if err != nil || f.Exists {
		t.Fatalf("missing default file: %v exists=%v", err, f.Exists)
	}
	if _, err := Load(path, true); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("missing explicit file: %v, want a usage error", err)
	}
	f.Contexts["dev"] = &Context{Redis: &endpoint.Redis{Addrs: []string{"r:1"}, Password: endpoint.Secret{Env: "PW"}}}
	f.CurrentContext = "dev"
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	g, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if g.CurrentContext != "dev" || g.Contexts["dev"].Redis.Addrs[0] != "r:1" || g.Contexts["dev"].Redis.Password.Env != "PW" {
		t.Fatalf("round trip: %+v", g.Contexts["dev"].Redis)
	}
}

func TestDefaultPath(t *testing.T) {
	if p := DefaultPath(env(map[string]string{EnvConfig: "/x.yaml", "XDG_CONFIG_HOME": "/xdg"})); p != "/x.yaml" {
		t.Fatal(p)
	}
	if p := DefaultPath(env(map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/h"})); p != "/xdg/dsctl/config.yaml" {
		t.Fatal(p)
	}
	if p := DefaultPath(env(map[string]string{"HOME": "/h"})); p != "/h/.config/dsctl/config.yaml" {
		t.Fatal(p)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("contexts: {a: {redis: {addrs: [x]}}}"))
	f.Add([]byte("current_context: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg File
		_ = Parse(b, &cfg)
	})
}

func TestInlineSecretsNamedByKeyAndLineNeverByValue(t *testing.T) {
	text := "current_context: prod\ncontexts:\n  prod:\n    redis:\n      addrs: [127.0.0.1:6379]\n      password: redis-secret-1\n" +
		"    kafka:\n      brokers: [b1:9092]\n      sasl:\n        mechanism: PLAIN\n        username: alice\n        password: kafka-secret-2\n"
	var f File
	err := Parse([]byte(text), &f)
	var inline *InlineSecretsError
	if !errors.As(err, &inline) {
		t.Fatalf("got %v", err)
	}
	want := []InlineSecret{{Key: "contexts.prod.redis.password", Line: 6}, {Key: "contexts.prod.kafka.sasl.password", Line: 12}}
	if len(f.Inline) != 2 || f.Inline[0] != want[0] || f.Inline[1] != want[1] {
		t.Fatalf("inline: %+v", f.Inline)
	}
	msg := err.Error() + inline.Hint()
	if strings.Contains(msg, "secret-1") || strings.Contains(msg, "secret-2") {
		t.Fatalf("the error shows a secret: %s", msg)
	}
	if !strings.Contains(msg, "line 6: contexts.prod.redis.password") || !strings.Contains(msg, "contexts.prod.kafka.sasl.password (line 12)") {
		t.Fatalf("error does not name the keys and lines: %s", msg)
	}
	// The rest of the file is read (for config view).
	if f.Contexts["prod"].Kafka.SASL.Username != "alice" || f.Contexts["prod"].Redis.Addrs[0] != "127.0.0.1:6379" {
		t.Fatalf("parsed %+v", f.Contexts["prod"])
	}
}

// A syntax or key error near an inline secret quotes the lines around it: never the secret.
func TestErrorContextMasksInlineSecrets(t *testing.T) {
	for _, text := range []string{
		"contexts:\n  prod:\n    kafka:\n      sasl:\n        password: hunter2\n        bogus: 1\n",
		"contexts:\n  prod:\n    kafka:\n      sasl: {mechanism: PLAIN, password: hunter2, bogus: 1}\n",
		"contexts:\n  prod:\n    sql:\n      dsn: postgres://u:hunter2@h/db\n      oops: [\n",
	} {
		var f File
		err := Parse([]byte(text), &f)
		if err == nil {
			t.Fatalf("accepted:\n%s", text)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the secret:\n%v", err)
		}
	}
}
