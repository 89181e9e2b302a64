package endpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMaskURLAndDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://user:s3cret@host:6379/0", "redis://user:****@host:6379/0"},
		{"rediss://:s3cret@host:6380", "rediss://:****@host:6380"},
		{"redis://host:6379", "redis://host:6379"},
		{"127.0.0.1:6379", "127.0.0.1:6379"},
		{"postgres://app:s3cret@db:5432/app?sslmode=disable", "postgres://app:****@db:5432/app?sslmode=disable"},
		{"postgres://app@db/app?password=s3cret", "postgres://app@db/app?password=****"},
		{"app:s3cret@tcp(db:3306)/app", "app:****@tcp(db:3306)/app"},
		{"host=db user=app password=s3cret dbname=app", "host=db user=app password=**** dbname=app"},
	}
	for _, c := range cases {
		if got := MaskURL(c.in); got != c.want {
			t.Errorf("MaskURL(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(MaskURL(c.in), "s3cret") {
			t.Errorf("MaskURL(%q) leaks the secret", c.in)
		}
	}
}

func TestSecretResolveWarnsOnLoosePermissions(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	tight := filepath.Join(dir, "tight")
	os.WriteFile(loose, []byte("pw1\n"), 0o644)
	os.WriteFile(tight, []byte("pw2\n"), 0o600)

	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }
	v, err := Secret{File: loose}.Resolve("redis password", warn)
	if err != nil || v != "pw1" {
		t.Fatalf("loose: %q, %v", v, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "chmod 600") || strings.Contains(warnings[0], "pw1") {
		t.Fatalf("warnings = %q, want one chmod hint without the secret", warnings)
	}
	warnings = nil
	if v, err := (Secret{File: tight}).Resolve("x", warn); err != nil || v != "pw2" || len(warnings) != 0 {
		t.Fatalf("tight: %q, %v, warnings %q", v, err, warnings)
	}
	t.Setenv("DSCTL_TEST_SECRET_X", "pw3")
	if v, err := (Secret{Env: "DSCTL_TEST_SECRET_X"}).Resolve("x", warn); err != nil || v != "pw3" {
		t.Fatalf("env: %q, %v", v, err)
	}
	if _, err := (Secret{Env: "DSCTL_TEST_SECRET_UNSET_Y"}).Resolve("kafka sasl password", warn); err == nil ||
		!strings.Contains(err.Error(), "DSCTL_TEST_SECRET_UNSET_Y") {
		t.Fatalf("unset env var: %v, want an error naming it", err)
	}
	if _, err := (Secret{File: filepath.Join(dir, "missing")}).Resolve("x", warn); err == nil {
		t.Fatal("missing file resolved")
	}
}

func TestRedisTargets(t *testing.T) {
	t.Setenv("DSCTL_TEST_REDIS_PW", "pw")
	d := Dialer{}
	ts, err := d.RedisTargets(Redis{Addrs: []string{"127.0.0.1:7000", "localhost", "redis://:urlpw@h:7001/3"}, DB: 2,
		Username: "u", Password: Secret{Env: "DSCTL_TEST_REDIS_PW"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		addr, user, pw string
		db             int
	}{{"127.0.0.1:7000", "u", "pw", 2}, {"localhost:6379", "u", "pw", 2}, {"h:7001", "u", "urlpw", 3}}
	for i, w := range want {
		o := ts[i].Options
		if o.Addr != w.addr || o.Username != w.user || o.Password != w.pw || o.DB != w.db {
			t.Errorf("target %d = %s %s %s %d, want %+v", i, o.Addr, o.Username, o.Password, o.DB, w)
		}
		if o.DialTimeout != DefaultTimeout || o.ReadTimeout != DefaultTimeout {
			t.Errorf("target %d: timeouts %s/%s, want %s", i, o.DialTimeout, o.ReadTimeout, DefaultTimeout)
		}
	}
	for _, bad := range []string{"host:notaport", "host:70000", ":6379", "redis://h:x"} {
		if _, err := d.RedisTargets(Redis{Addrs: []string{bad}}); err == nil {
			t.Errorf("address %q accepted", bad)
		}
	}
}

func TestSQLTargetInfersDriverAndHidesPassword(t *testing.T) {
	d := Dialer{}
	cases := []struct{ dsn, driver, name string }{
		{"postgres://app:pw@db:5433/app", "postgres", "db:5433/app"},
		{"app:pw@tcp(db:3307)/app", "mysql", "db:3307/app"},
		{"mysql://app:pw@db/app", "mysql", "db:3306/app"},
		{"host=db port=5432 user=app password=pw dbname=app", "postgres", "db:5432/app"},
	}
	for _, c := range cases {
		tg, err := d.SQLTarget(SQL{}.WithDSNValue(c.dsn))
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		if tg.Driver != c.driver || tg.Name != c.name {
			t.Errorf("%s: driver %s name %s, want %s %s", c.dsn, tg.Driver, tg.Name, c.driver, c.name)
		}
	}
	if _, err := d.SQLTarget(SQL{}); err == nil || !strings.Contains(err.Error(), "DSCTL_SQL_DSN") {
		t.Fatalf("no DSN: %v, want a hint naming DSCTL_SQL_DSN", err)
	}
	if _, err := d.SQLTarget(SQL{Driver: "oracle"}.WithDSNValue("x")); err == nil {
		t.Fatal("unknown driver accepted")
	}
	if _, err := d.SQLTarget(SQL{}.WithDSNValue("just words")); err == nil {
		t.Fatal("DSN of unknown form accepted without a driver")
	}
}

func TestKafkaConfigSASLAndVersion(t *testing.T) {
	t.Setenv("DSCTL_TEST_KAFKA_PW", "pw")
	d := Dialer{}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512"} {
		cfg, err := d.KafkaConfig(Kafka{SASL: &SASL{Mechanism: mech, Username: "u", Password: Secret{Env: "DSCTL_TEST_KAFKA_PW"}}})
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		if !cfg.Net.SASL.Enable || cfg.Net.SASL.Password != "pw" || !strings.EqualFold(string(cfg.Net.SASL.Mechanism), mech) {
			t.Fatalf("%s: SASL config %+v", mech, cfg.Net.SASL)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: sarama rejects the config: %v", mech, err)
		}
	}
	if _, err := d.KafkaConfig(Kafka{SASL: &SASL{Mechanism: "GSSAPI", Username: "u"}}); err == nil {
		t.Fatal("unsupported mechanism accepted")
	}
	if _, err := d.KafkaConfig(Kafka{Version: "banana"}); err == nil {
		t.Fatal("bad version accepted")
	}
}

func FuzzMaskURL(f *testing.F) {
	for _, s := range []string{"redis://u:p@h:1", "a:b@tcp(h)/d", "password=x", "::::", "%zz://a:b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = MaskURL(s)
	})
}

func FuzzRedisAddress(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6379", "localhost", "[::1]:6379", "redis://:p@h:1/2", "rediss://h", "h:", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Dialer{}.RedisTargets(Redis{Addrs: []string{s}})
	})
}
