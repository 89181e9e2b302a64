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
	if r := dsctl(t, env, "config", "set-context", "prod", "--redis", "redis://:inlinepw@prod:6379",
		"--sql-driver", "postgres", "--sql-dsn-env", "DSCTL_TEST_PG"); r.code != 0 {
		t.Fatalf("set-context prod: %v", r.err)
	}
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
	if err := json.Unmarshal([]byte(r.out), &results); err != nil || len(results) != 2 {
		t.Fatalf("ping --sandbox: %v\n%s", err, r.out)
	}
	if results[0]["backend"] != "redis" || results[1]["backend"] != "kafka" ||
		!strings.HasPrefix(results[1]["detail"].(string), "3 brokers") {
		t.Fatalf("results: %v", results)
	}
	if !strings.Contains(r.errOut, "sandbox:") {
		t.Fatalf("no sandbox banner on stderr: %q", r.errOut)
	}
	r = dsctl(t, nil, "ping", "zookeeper", "--sandbox")
	if r.code != 2 || !strings.Contains(r.out+r.errOut, "no embedded ZooKeeper") {
		t.Fatalf("zookeeper under --sandbox: exit %d\n%s%s", r.code, r.out, r.errOut)
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
