package commands

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
)

type run struct {
	out, errOut string
	err         error
	code        int
}

// dsctl runs the command tree in process, as main does, with test streams.
func dsctl(t *testing.T, env map[string]string, args ...string) run {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-11-25"})
	f.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}
	err := Execute(context.Background(), f, NewRoot(f), args)
	PrintError(ios.ErrOut, false, err)
	return run{out: out.String(), errOut: errOut.String(), err: err, code: CodeFor(err)}
}

func TestExitCodeTable(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{errs.Usage("bad"), 2},
		{errs.New(errs.KindLockNotAcquired, "held"), 3},
		{errs.New(errs.KindLockLost, "lost"), 4},
		{errs.New(errs.KindAuditFailed, "found"), 5},
		{errs.Unreachable("kafka", "h:1", time.Second, "", nil), 6},
		{errs.New(errs.KindInterrupted, "ctrl-c"), 130},
		{context.Canceled, 130},
		{&errs.ExitStatus{Code: 42}, 42},
		{&errs.Partial{Kind: errs.KindUsage, Failed: 1, Total: 3}, 2},
		{errors.Join(errors.New("x"), errs.Unreachable("redis", "h:1", time.Second, "", nil)), 6},
	}
	for _, c := range cases {
		if got := CodeFor(c.err); got != c.want {
			t.Errorf("CodeFor(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	help := ExitCodesHelp()
	for _, c := range ExitCodes {
		if !strings.Contains(help, c.Meaning) {
			t.Errorf("help lacks %q", c.Meaning)
		}
	}
}

func TestHelpListsExitCodesAndOnlyWorkingCommands(t *testing.T) {
	r := dsctl(t, nil, "--help")
	if r.code != 0 || !strings.Contains(r.out, "Exit codes:") || !strings.Contains(r.out, "6    backend unreachable") {
		t.Fatalf("help:\n%s", r.out)
	}
	for _, cmd := range []string{"version", "config", "ping", "sandbox", "completion"} {
		if !strings.Contains(r.out, "\n  "+cmd+" ") {
			t.Errorf("help does not list %s", cmd)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	r := dsctl(t, nil, "version", "-o", "json")
	var v map[string]string
	if err := json.Unmarshal([]byte(r.out), &v); err != nil || r.code != 0 {
		t.Fatalf("version -o json: %v (code %d)\n%s", err, r.code, r.out)
	}
	if v["version"] != "1.2.3" || v["commit"] != "abc" || v["date"] != "2026-11-25" || v["go_version"] == "" {
		t.Fatalf("version = %v", v)
	}
}

func TestUsageErrorsExit2WithHint(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"nosuchcommand"},
		{"version", "extra-arg"},
		{"version", "-o", "xml"},
		{"config", "use-context"},
		{"ping", "cassandra"},
		{"--timeout", "0s", "version"},
		{"config", "set-context", "x", "--kafka-password-env", "A", "--kafka-password-file", "B"},
	} {
		r := dsctl(t, nil, args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%v)", args, r.code, r.err)
			continue
		}
		if !strings.HasPrefix(r.errOut, "error: ") || strings.Count(r.errOut, "\n") != 1 {
			t.Errorf("%v: want one error line on stderr, got %q", args, r.errOut)
		}
	}
	r := dsctl(t, nil, "--bogus")
	if !strings.Contains(r.errOut, "--help") {
		t.Errorf("bad flag gives no hint: %q", r.errOut)
	}
}

func TestConfigContextsLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dsctl", "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": path}
	t.Setenv("DSCTL_TEST_PG", "postgres://app:hunter22@db:5432/app") // secrets are read from the process env

	r := dsctl(t, env, "config", "set-context", "local", "--redis", "127.0.0.1:16379,127.0.0.1:16380", "--zk", "z:2181",
		"--brokers", "k:9092", "--kafka-sasl", "scram-sha-512", "--kafka-username", "ops", "--kafka-password-env", "KPW")
	if r.code != 0 || !strings.Contains(r.errOut, "created context \"local\"") || !strings.Contains(r.errOut, "(current)") {
		t.Fatalf("set-context: %d %q", r.code, r.errOut)
	}
	if r := dsctl(t, env, "config", "set-context", "prod", "--redis", "redis://prod:6379",
		"--sql-driver", "postgres", "--sql-dsn-env", "DSCTL_TEST_PG"); r.code != 0 {
		t.Fatalf("set-context prod: %v", r.err)
	}
	// A password that reaches the file anyway (written by hand) is masked on output.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "redis://prod:6379", "redis://:inlinepw@prod:6379", 1)), 0o600)
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", info, err)
	}

	r = dsctl(t, env, "config", "get-contexts", "-o", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("get-contexts: %v\n%s", err, r.out)
	}
	if rows[0]["name"] != "local" || rows[0]["current"] != true || rows[1]["current"] != false {
		t.Fatalf("get-contexts rows: %v", rows)
	}

	r = dsctl(t, env, "config", "view")
	if strings.Contains(r.out, "inlinepw") || !strings.Contains(r.out, "redis://:****@prod:6379") || !strings.Contains(r.out, "KPW") {
		t.Fatalf("config view not masked:\n%s", r.out)
	}

	if r := dsctl(t, env, "config", "use-context", "staging"); r.code != 2 || !strings.Contains(r.errOut, "local, prod") {
		t.Fatalf("use-context unknown: %d %q", r.code, r.errOut)
	}
	if r := dsctl(t, env, "config", "use-context", "prod"); r.code != 0 {
		t.Fatalf("use-context: %v", r.err)
	}
	r = dsctl(t, env, "config", "view", "--resolved", "-o", "json")
	var view map[string]map[string]any
	json.Unmarshal([]byte(r.out), &view)
	if strings.Contains(r.out, "hunter22") || strings.Contains(r.out, "inlinepw") {
		t.Fatalf("resolved view leaks a secret:\n%s", r.out)
	}
	if view["sql"]["source"] != "context" || !strings.Contains(r.out, "postgres db:5432/app") {
		t.Fatalf("resolved sql: %v\n%s", view["sql"], r.out)
	}

	// Precedence: env beats the context, a flag would beat env (tested in probes/config).
	env["DSCTL_REDIS"] = "10.1.1.1:6379"
	r = dsctl(t, env, "config", "view", "--resolved", "-o", "json")
	json.Unmarshal([]byte(r.out), &view)
	if view["redis"]["source"] != "env" || !strings.Contains(r.out, "10.1.1.1:6379") {
		t.Fatalf("env did not win: %v", view["redis"])
	}
	// --context picks another context for one command.
	delete(env, "DSCTL_REDIS")
	r = dsctl(t, env, "--context", "local", "config", "view", "--resolved", "-o", "json")
	json.Unmarshal([]byte(r.out), &view)
	if !strings.Contains(r.out, "127.0.0.1:16380") {
		t.Fatalf("--context local not used:\n%s", r.out)
	}
	if r := dsctl(t, env, "--config", filepath.Join(dir, "missing.yaml"), "config", "view"); r.code != 2 {
		t.Fatalf("missing --config file: exit %d", r.code)
	}
}

func TestSecretFileReadableByOthersWarns(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "kafka.pass")
	os.WriteFile(secret, []byte("pw"), 0o644)
	env := map[string]string{"DSCTL_CONFIG": filepath.Join(dir, "c.yaml")}
	if r := dsctl(t, env, "config", "set-context", "a", "--brokers", "k:1", "--kafka-sasl", "PLAIN",
		"--kafka-username", "u", "--kafka-password-file", secret); r.code != 0 {
		t.Fatal(r.err)
	}
	r := dsctl(t, env, "config", "view", "--resolved")
	if !strings.Contains(r.errOut, "readable by group or others") || strings.Contains(r.errOut+r.out, "pw\n") {
		t.Fatalf("no permission warning on stderr: %q", r.errOut)
	}
}

func TestPingSandbox(t *testing.T) {
	r := dsctl(t, nil, "ping", "--sandbox", "-o", "json")
	if r.code != 0 {
		t.Fatalf("ping --sandbox: exit %d: %v\n%s", r.code, r.err, r.errOut)
	}
	var results []map[string]any
	if err := json.Unmarshal([]byte(r.out), &results); err != nil || len(results) != 3 {
		t.Fatalf("ping --sandbox: %v\n%s", err, r.out)
	}
	if results[0]["backend"] != "redis" || results[1]["backend"] != "zookeeper" || results[2]["backend"] != "kafka" ||
		!strings.HasSuffix(results[1]["detail"].(string), "=standalone") ||
		!strings.HasPrefix(results[2]["detail"].(string), "3 brokers") {
		t.Fatalf("results: %v", results)
	}
	if !strings.Contains(r.errOut, "sandbox:") {
		t.Fatalf("no sandbox banner on stderr: %q", r.errOut)
	}
	r = dsctl(t, nil, "ping", "zookeeper", "--sandbox")
	if r.code != 0 || !strings.Contains(r.out, "standalone") {
		t.Fatalf("zookeeper under --sandbox: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "ping", "zookeeper", "--sandbox", "--zk", "127.0.0.1:2181")
	if r.code != 2 || !strings.Contains(r.errOut, "--sandbox and --zk are mutually exclusive") {
		t.Fatalf("--sandbox with --zk: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

func TestPingUnreachableExit6WithinTimeout(t *testing.T) {
	start := time.Now()
	r := dsctl(t, nil, "ping", "kafka", "redis", "--brokers", "127.0.0.1:1", "--redis", "127.0.0.1:1", "--timeout", "1s")
	if r.code != 6 {
		t.Fatalf("exit %d, want 6: %v", r.code, r.err)
	}
	if !strings.Contains(r.out, "cannot reach 127.0.0.1:1 within 1s") {
		t.Fatalf("output does not name the endpoint:\n%s", r.out)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("took %s with --timeout 1s", time.Since(start))
	}
}

func TestChildExitStatusSurvivesInterrupt(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	root := NewRoot(f)
	root.AddCommand(&cobra.Command{Use: "child-exit", RunE: func(*cobra.Command, []string) error {
		return &errs.ExitStatus{Code: 42}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if ctrl-C arrived while the child ran
	err := Execute(ctx, f, root, []string{"child-exit"})
	if code := CodeFor(err); code != 42 {
		t.Fatalf("exit %d after an interrupt, want the child's 42 (%v)", code, err)
	}
	root = NewRoot(f)
	root.AddCommand(&cobra.Command{Use: "plain-fail", RunE: func(*cobra.Command, []string) error { return errors.New("x") }})
	if code := CodeFor(Execute(ctx, f, root, []string{"plain-fail"})); code != 130 {
		t.Fatalf("a plain failure after an interrupt: exit %d, want 130", code)
	}
}

func TestSetContextRefusesPasswordInAddress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": path}
	for _, args := range [][]string{
		{"--redis", "redis://u:hunter2@127.0.0.1:16379"},
		{"--redis", "127.0.0.1:6379,rediss://:hunter2@r2:6380"},
		{"--brokers", "kafka://ops:hunter2@b1:9092"},
		{"--zk", "zk://ops:hunter2@z1:2181"},
	} {
		r := dsctl(t, env, append([]string{"config", "set-context", "sec"}, args...)...)
		if r.code != 2 || !strings.Contains(r.errOut, "carries a password") || !strings.Contains(r.errOut, "-password-") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying how to give the password", args, r.code, r.errOut)
		}
		if strings.Contains(r.out+r.errOut, "hunter2") {
			t.Errorf("%v: the password is echoed: %q", args, r.errOut)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused set-context wrote the file (%v)", err)
	}
}

func TestSetContextValidatesInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": path}
	for _, args := range [][]string{
		{"--redis", "127.0.0.1:notaport"},
		{"--redis", ""},
		{"--redis", " , "},
		{"--redis", "redis://127.0.0.1:6379/notadb"},
		{"--zk", "z1:99999"},
		{"--brokers", ":9092"},
		{"--redis-password-env", "hunter2 with spaces"},
		{"--kafka-password-env", "$KAFKA_PASSWORD"},
		{"--sql-dsn-file", dir},
	} {
		r := dsctl(t, env, append([]string{"config", "set-context", "bad"}, args...)...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%q)", args, r.code, r.errOut)
		}
		if strings.Contains(r.errOut, "hunter2") {
			t.Errorf("%v: a value given as an env var name is echoed: %q", args, r.errOut)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("refused input wrote the file (%v)", err)
	}

	// A password file that does not exist yet is accepted, with a warning.
	missing := filepath.Join(dir, "later.pass")
	r := dsctl(t, env, "config", "set-context", "ok", "--redis", "127.0.0.1:6379", "--redis-password-file", missing)
	if r.code != 0 || !strings.Contains(r.errOut, "warning: --redis-password-file "+missing+" does not exist yet") {
		t.Fatalf("missing password file: exit %d, stderr %q", r.code, r.errOut)
	}
	if r := dsctl(t, env, "config", "set-context", "ok", "--redis-password-file", path); r.code != 0 || strings.Contains(r.errOut, "warning") {
		t.Fatalf("existing password file: exit %d, stderr %q", r.code, r.errOut)
	}
}

func TestSetContextExplicitConfigInMissingDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	explicit := filepath.Join(dir, "nonexistent", "x.yaml")
	r := dsctl(t, nil, "--config", explicit, "config", "set-context", "a", "--redis", "127.0.0.1:6379")
	if r.code != 2 || !strings.Contains(r.errOut, "does not exist") || !strings.Contains(r.errOut, "mkdir -p") {
		t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
	}
	if _, err := os.Stat(filepath.Dir(explicit)); !os.IsNotExist(err) {
		t.Fatalf("the directory was created (%v)", err)
	}
	// An explicit file in an existing directory is created.
	ok := filepath.Join(dir, "x.yaml")
	if r := dsctl(t, nil, "--config", ok, "config", "set-context", "a", "--redis", "127.0.0.1:6379"); r.code != 0 {
		t.Fatalf("explicit file in an existing dir: exit %d %q", r.code, r.errOut)
	}
}

func TestGetContextsJSONListsAreNeverNull(t *testing.T) {
	env := map[string]string{"DSCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	if r := dsctl(t, env, "config", "set-context", "only-sql", "--sql-dsn-env", "DB_URL"); r.code != 0 {
		t.Fatal(r.err)
	}
	if r := dsctl(t, env, "config", "set-context", "redis", "--redis", "127.0.0.1:6379"); r.code != 0 {
		t.Fatal(r.err)
	}
	r := dsctl(t, env, "config", "get-contexts", "-o", "json")
	if strings.Contains(r.out, "null") {
		t.Fatalf("get-contexts mixes null and []:\n%s", r.out)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("%v\n%s", err, r.out)
	}
	for _, key := range []string{"redis", "zookeeper", "kafka"} {
		if _, ok := rows[0][key].([]any); !ok {
			t.Errorf("%s = %#v, want a list", key, rows[0][key])
		}
	}
}

func TestCompletionUnknownShell(t *testing.T) {
	r := dsctl(t, nil, "completion", "tcsh")
	if r.code != 2 || !strings.Contains(r.errOut, `unknown shell "tcsh"`) || !strings.Contains(r.errOut, "bash, fish, powershell, zsh") {
		t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
	}
	if r := dsctl(t, nil, "completion", "bash"); r.code != 0 || !strings.Contains(r.out, "bash completion") {
		t.Fatalf("completion bash: exit %d", r.code)
	}
}

func TestRootHelpDescribesOnlyWhatExists(t *testing.T) {
	r := dsctl(t, nil, "--help")
	// Every backend and command the help names is built and registered.
	for _, want := range []string{"Redis, ZooKeeper, MySQL/MariaDB and\nPostgreSQL", "dsctl tui --sandbox", "gap-free watches"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("root help does not say %q:\n%s", want, r.out)
		}
	}
	for _, sub := range []string{"lock", "kafka", "zk", "id", "ring", "ping", "tui", "sandbox", "config"} {
		if h := dsctl(t, nil, sub, "--help"); h.code != 0 {
			t.Errorf("root help names %q, but `dsctl %s --help` exits %d: %s", sub, sub, h.code, h.errOut)
		}
	}
}

func TestVerbosePrintsConnectionDetails(t *testing.T) {
	args := []string{"ping", "redis", "kafka", "--redis", "127.0.0.1:1", "--brokers", "127.0.0.1:1", "--timeout", "1s"}
	r := dsctl(t, nil, append(args, "-v")...)
	for _, want := range []string{
		"debug: redis: PING 127.0.0.1:1 (tls off, no auth, timeout 1s): failed after",
		"debug: kafka: bootstrap from 127.0.0.1:1 (tls off, no sasl, timeout 1s)",
		"debug: kafka: dial 127.0.0.1:1 (tls off, no sasl): failed after",
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("-v stderr lacks %q:\n%s", want, r.errOut)
		}
	}
	if r := dsctl(t, nil, args...); strings.Contains(r.errOut, "debug:") {
		t.Errorf("debug lines without -v:\n%s", r.errOut)
	}
	// Auth is described by where the secret comes from, never by its value.
	t.Setenv("DSCTL_TEST_VERBOSE_PW", "hunter2")
	env := map[string]string{"DSCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	if r := dsctl(t, env, "config", "set-context", "a", "--redis", "127.0.0.1:1", "--redis-username", "ops",
		"--redis-password-env", "DSCTL_TEST_VERBOSE_PW"); r.code != 0 {
		t.Fatal(r.err)
	}
	r = dsctl(t, env, "ping", "redis", "-v", "--timeout", "1s")
	if !strings.Contains(r.errOut, "user ops with a password") || strings.Contains(r.errOut, "hunter2") {
		t.Errorf("-v auth details:\n%s", r.errOut)
	}
}

// The README's ping example runs after `config use-context prod`, whose Kafka SASL
// password comes from KAFKA_PASSWORD: without it set, the context's auth applies to
// --brokers too and the error says how to proceed; with --context local it is a
// plain unreachable broker.
func TestPingWithContextAuthAndFlagBrokers(t *testing.T) {
	env := map[string]string{"DSCTL_CONFIG": filepath.Join(t.TempDir(), "c.yaml")}
	for _, args := range [][]string{
		{"config", "set-context", "local", "--redis", "127.0.0.1:6379", "--zk", "127.0.0.1:2181", "--brokers", "127.0.0.1:9092", "--use"},
		{"config", "set-context", "prod", "--brokers", "b1:9093", "--kafka-sasl", "SCRAM-SHA-512", "--kafka-username", "ops", "--kafka-password-env", "DSCTL_TEST_UNSET_KAFKA_PASSWORD"},
		{"config", "use-context", "prod"},
	} {
		if r := dsctl(t, env, args...); r.code != 0 {
			t.Fatalf("%v: %v", args, r.err)
		}
	}
	r := dsctl(t, env, "ping", "kafka", "--brokers", "127.0.0.1:1", "--timeout", "1s")
	if r.code != 2 || !strings.Contains(r.out+r.errOut, "export DSCTL_TEST_UNSET_KAFKA_PASSWORD") || !strings.Contains(r.out+r.errOut, "--context") {
		t.Fatalf("missing secret: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, env, "--context", "local", "ping", "kafka", "--brokers", "127.0.0.1:1", "--timeout", "1s")
	if r.code != 6 || !strings.Contains(r.out, "cannot reach 127.0.0.1:1 within 1s") {
		t.Fatalf("--context local: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

// A relative secret or CA file is stored as an absolute path: the context must work
// from whatever directory a later command runs in.
func TestRelativeSecretFileIsStoredAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("redis.pass", []byte("pw\n"), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": cfg}
	if r := dsctl(t, env, "config", "set-context", "rel", "--redis", "127.0.0.1:6379", "--redis-password-file", "redis.pass",
		"--redis-tls-ca", "ca.pem"); r.code != 0 {
		t.Fatalf("set-context: %d %s", r.code, r.errOut)
	}
	b, _ := os.ReadFile(cfg)
	for _, want := range []string{filepath.Join(dir, "redis.pass"), filepath.Join(dir, "ca.pem")} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("config does not name %s:\n%s", want, b)
		}
	}
}

// --redis-tls / --kafka-tls and their CA files land on their own endpoint; a CA file
// that does not exist yet is stored with a warning naming the flag.
func TestSetContextTLSFlags(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := filepath.Join(dir, "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": cfg}
	r := dsctl(t, env, "config", "set-context", "tls", "--redis", "127.0.0.1:6379", "--redis-tls",
		"--brokers", "127.0.0.1:9092", "--kafka-tls-ca", "kafka-ca.pem")
	if r.code != 0 || !strings.Contains(r.errOut, "--kafka-tls-ca kafka-ca.pem does not exist yet") || strings.Contains(r.errOut, "--redis-tls-ca") {
		t.Fatalf("set-context: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	c, err := config.Load(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := c.Contexts["tls"]
	if ctx == nil || ctx.Redis == nil || ctx.Redis.TLS == nil || !ctx.Redis.TLS.Enabled || ctx.Redis.TLS.CA != "" ||
		ctx.Kafka == nil || ctx.Kafka.TLS == nil || ctx.Kafka.TLS.Enabled || ctx.Kafka.TLS.CA != filepath.Join(dir, "kafka-ca.pem") {
		b, _ := os.ReadFile(cfg)
		t.Fatalf("stored context:\n%s", b)
	}
}
