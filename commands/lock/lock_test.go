package lock_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/dsctl/dsctl/commands"
	"github.com/dsctl/dsctl/commands/cmdutil"
)

type result struct {
	out, errOut string
	err         error
	code        int
}

// dsctl runs the whole command tree in process, as main does.
func dsctl(t *testing.T, env map[string]string, args ...string) result {
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
	err := commands.Execute(context.Background(), f, commands.NewRoot(f), args)
	commands.PrintError(ios.ErrOut, false, err)
	return result{out: out.String(), errOut: errOut.String(), err: err, code: commands.CodeFor(err)}
}

func miniredisT(t *testing.T) *miniredis.Miniredis {
	m := miniredis.RunT(t)
	m.ClockTTL(true)
	return m
}

func TestAcquireInspectRenewReleaseOnMiniredis(t *testing.T) {
	m := miniredisT(t)
	r := dsctl(t, nil, "lock", "acquire", "deploy", "--redis", m.Addr(), "--ttl", "20s", "--owner", "release 1.4", "-o", "json")
	if r.code != 0 {
		t.Fatalf("acquire: exit %d %s", r.code, r.errOut)
	}
	var lease map[string]any
	if err := json.Unmarshal([]byte(r.out), &lease); err != nil {
		t.Fatal(err)
	}
	token, _ := lease["token"].(string)
	fence, isString := lease["fence"].(string)
	if token == "" || !isString || fence == "" || lease["fencing_safe"] != true || lease["ttl_ms"] != 20000.0 {
		t.Fatalf("lease json: %s", r.out)
	}
	owner := lease["owner"].(map[string]any)
	if owner["label"] != "release 1.4" || owner["tool"] != "dsctl 1.2.3" || owner["pid"] != float64(os.Getppid()) {
		t.Fatalf("owner: %v", owner)
	}

	// Held: a second acquire fails at once with exit 3, naming the holder and TTL left.
	r = dsctl(t, nil, "lock", "acquire", "deploy", "--redis", m.Addr())
	if r.code != 3 || !strings.Contains(r.errOut, `"release 1.4"`) || !strings.Contains(r.errOut, "left") || !strings.Contains(r.errOut, "--wait 0") {
		t.Fatalf("second acquire: exit %d %q", r.code, r.errOut)
	}

	r = dsctl(t, nil, "lock", "inspect", "deploy", "--redis", m.Addr())
	for _, want := range []string{"state:       held", "format:      dsctl", "token:       " + token, "fence:       " + fence, `"release 1.4"`, "waiters:     0"} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("inspect lacks %q:\n%s", want, r.out)
		}
	}

	// A wrong token changes nothing: exit 4, naming the holder.
	r = dsctl(t, nil, "lock", "release", "deploy", "--redis", m.Addr(), "--token", "0000")
	if r.code != 4 || !strings.Contains(r.errOut, "held by") {
		t.Fatalf("release with a wrong token: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "renew", "deploy", "--redis", m.Addr(), "--token", "0000")
	if r.code != 4 {
		t.Fatalf("renew with a wrong token: exit %d", r.code)
	}
	if got, _ := m.Get("dsctl:lock:{deploy}"); got != token || m.TTL("dsctl:lock:{deploy}") > 20*time.Second {
		t.Fatalf("state changed by a wrong token: %q %s", got, m.TTL("dsctl:lock:{deploy}"))
	}

	r = dsctl(t, nil, "lock", "renew", "deploy", "--redis", m.Addr(), "--token", token, "--ttl", "1m")
	if r.code != 0 || !strings.Contains(r.out, "ttl:      1m0s") || m.TTL("dsctl:lock:{deploy}") <= 50*time.Second {
		t.Fatalf("renew: exit %d %s (ttl %s)", r.code, r.out, m.TTL("dsctl:lock:{deploy}"))
	}
	// The token may come from the environment left by `acquire -o env`.
	env := map[string]string{"DSCTL_LOCK_NAME": "deploy", "DSCTL_LOCK_TOKEN": token}
	r = dsctl(t, env, "lock", "release", "deploy", "--redis", m.Addr())
	if r.code != 0 || m.Exists("dsctl:lock:{deploy}") {
		t.Fatalf("release: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, env, "lock", "release", "other", "--redis", m.Addr())
	if r.code != 2 || !strings.Contains(r.errOut, "--token") {
		t.Fatalf("release of another name does not take DSCTL_LOCK_TOKEN: exit %d %q", r.code, r.errOut)
	}
}

func TestAcquireEnvOutputEvals(t *testing.T) {
	m := miniredisT(t)
	r := dsctl(t, nil, "lock", "acquire", "jobs/nightly", "--redis", m.Addr(), "-o", "env")
	if r.code != 0 {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "export DSCTL_LOCK_NAME=jobs/nightly") ||
		!strings.HasPrefix(lines[1], "export DSCTL_LOCK_TOKEN=") || !strings.HasPrefix(lines[2], "export DSCTL_LOCK_FENCE=") ||
		!strings.HasPrefix(lines[3], "export DSCTL_LOCK_EXPIRES=") {
		t.Fatalf("-o env:\n%s", r.out)
	}
}

func TestQuorumModeSaysThereIsNoSafeFence(t *testing.T) {
	a, b, c := miniredisT(t), miniredisT(t), miniredisT(t)
	addrs := a.Addr() + "," + b.Addr() + "," + c.Addr()
	r := dsctl(t, nil, "lock", "acquire", "q", "--redis", addrs, "--require-fencing")
	if r.code != 2 || !strings.Contains(r.errOut, "cannot give safe fencing tokens") || a.Exists("dsctl:lock:{q}") {
		t.Fatalf("--require-fencing in quorum mode: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "acquire", "q", "--redis", addrs)
	if r.code != 0 || !strings.Contains(r.out, "fence:    none") || !strings.Contains(r.out, "no safe fencing token") {
		t.Fatalf("quorum acquire:\n%s", r.out)
	}
	r = dsctl(t, nil, "lock", "inspect", "q", "--redis", addrs)
	if r.code != 0 || strings.Count(r.out, "held by token") != 3 || !strings.Contains(r.out, "not safe on this backend") {
		t.Fatalf("quorum inspect:\n%s", r.out)
	}
	r = dsctl(t, nil, "lock", "acquire", "q", "--redis", addrs, "-o", "env")
	if r.code != 3 {
		t.Fatalf("second quorum acquire: exit %d", r.code)
	}
}

func TestBadInputExit2AndChangesNothing(t *testing.T) {
	m := miniredisT(t)
	addr := m.Addr()
	long := strings.Repeat("x", 201)
	for _, args := range [][]string{
		{"lock", "acquire", "", "--redis", addr},
		{"lock", "acquire", long, "--redis", addr},
		{"lock", "acquire", "a b", "--redis", addr},
		{"lock", "acquire", "x", "--ttl", "0s", "--redis", addr},
		{"lock", "acquire", "x", "--ttl", "-1s", "--redis", addr},
		{"lock", "acquire", "x", "--ttl", "50ms", "--redis", addr},
		{"lock", "acquire", "x", "--wait", "soon", "--redis", addr},
		{"lock", "acquire", "x", "--wait-strategy", "spin", "--redis", addr},
		{"lock", "acquire", "x", "--owner", "bad\x01label", "--redis", addr},
		{"lock", "acquire", "x", "-o", "csv", "--redis", addr},
		{"lock", "run", "x", "--on-lost", "explode", "--redis", addr, "--", "true"},
		{"lock", "run", "x", "--grace", "0s", "--redis", addr, "--", "true"},
		{"lock", "run", "x", "true", "--redis", addr},
		{"lock", "run", "--redis", addr, "--", "true"},
		{"lock", "release", "x", "--redis", addr},
		{"lock", "renew", "x", "--token", "t", "--ttl", "1ms", "--redis", addr},
		{"lock", "break", "x", "--redis", addr},
		{"lock", "bench", "--clients", "0", "--redis", addr},
		{"lock", "bench", "--ops", "3", "--clients", "8", "--redis", addr},
		{"lock", "acquire"},
	} {
		r := dsctl(t, nil, args...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (%v)", args, r.code, r.err)
			continue
		}
		if !strings.HasPrefix(r.errOut, "error: ") || strings.Count(r.errOut, "\n") != 1 {
			t.Errorf("%q: want one error line, got %q", args, r.errOut)
		}
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("bad input left keys %v", keys)
	}
	r := dsctl(t, nil, "lock", "acquire", long, "--redis", addr)
	if !strings.Contains(r.errOut, "201 bytes") {
		t.Fatalf("over-long name message: %q", r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", "x", "--redis", addr)
	if !strings.Contains(r.errOut, "--force") || !strings.Contains(r.errOut, "fencing") {
		t.Fatalf("break without --force does not explain: %q", r.errOut)
	}
}

func TestRunPassesExitCodeAndEnvWithoutPassword(t *testing.T) {
	m := miniredisT(t)
	m.RequireAuth("s3cret-pw-for-dsctl")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("current_context: t\ncontexts:\n  t:\n    redis:\n      addrs: ["+m.Addr()+"]\n      password: {env: DSCTL_TEST_LOCK_PW}\n"), 0o600)
	t.Setenv("DSCTL_TEST_LOCK_PW", "s3cret-pw-for-dsctl") // secrets are read from the process env
	env := map[string]string{"DSCTL_CONFIG": cfg}

	r := dsctl(t, env, "lock", "run", "envjob", "--", "sh", "-c", "env; exit 7")
	if r.code != 7 || r.errOut != "" {
		t.Fatalf("exit %d, stderr %q; want the child's 7 and nothing printed", r.code, r.errOut)
	}
	if strings.Contains(r.out, "s3cret-pw-for-dsctl") || strings.Contains(r.out, "DSCTL_TEST_LOCK_PW") {
		t.Fatal("the child's environment holds the Redis password")
	}
	for _, want := range []string{"DSCTL_LOCK_NAME=envjob\n", "DSCTL_LOCK_TOKEN=", "DSCTL_LOCK_FENCE="} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("child env lacks %s", want)
		}
	}
	if m.Exists("dsctl:lock:{envjob}") {
		t.Fatal("lock still held after run")
	}
	if r := dsctl(t, env, "lock", "run", "envjob", "--", "true"); r.code != 0 {
		t.Fatalf("exit 0 child: %d", r.code)
	}
	r = dsctl(t, env, "lock", "run", "envjob", "--", "/no/such/dsctl-cmd", "x")
	if r.code != 127 || !strings.Contains(r.errOut, "cannot start /no/such/dsctl-cmd") || m.Exists("dsctl:lock:{envjob}") {
		t.Fatalf("missing command: exit %d %q", r.code, r.errOut)
	}
}

func TestRunLostByBreakExit4SaysWhenAndWhy(t *testing.T) {
	m := miniredisT(t)
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for !m.Exists("dsctl:lock:{victim}") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		dsctl(t, nil, "lock", "break", "victim", "--force", "--reason", "INC-42 runner died", "--redis", m.Addr())
	}()
	start := time.Now()
	r := dsctl(t, nil, "lock", "run", "victim", "--ttl", "600ms", "--grace", "200ms", "--redis", m.Addr(), "--", "sleep", "30")
	if r.code != 4 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s: %q", r.code, time.Since(start), r.errOut)
	}
	for _, want := range []string{`lock "victim" lost at `, "broken by", "INC-42 runner died", "SIGTERM"} {
		if !strings.Contains(r.errOut, want) {
			t.Fatalf("message lacks %q: %q", want, r.errOut)
		}
	}
}

func TestListAndBreakForeign(t *testing.T) {
	m := miniredisT(t)
	for _, n := range []string{"deploy/api", "deploy/web", "other"} {
		if r := dsctl(t, nil, "lock", "acquire", n, "--redis", m.Addr()); r.code != 0 {
			t.Fatal(r.err)
		}
	}
	m.Set("orders:lock:1", "AAAAAAAAAAAAAAAAAAAAAA==") // a redsync token
	m.SetTTL("orders:lock:1", time.Minute)
	r := dsctl(t, nil, "lock", "list", "--prefix", "deploy/", "--redis", m.Addr())
	if r.code != 0 || strings.Count(r.out, "\n") != 3 || !strings.Contains(r.out, "deploy/api") || strings.Contains(r.out, "other") {
		t.Fatalf("list --prefix deploy/:\n%s", r.out)
	}
	r = dsctl(t, nil, "lock", "list", "--prefix", "orders:", "--foreign", "--redis", m.Addr(), "-o", "json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 1 || rows[0]["format"] != "redsync" {
		t.Fatalf("list --foreign: %v\n%s", err, r.out)
	}
	r = dsctl(t, nil, "lock", "break", "orders:lock:1", "--force", "--redis", m.Addr())
	if r.code != 2 || r.err == nil || !strings.Contains(r.err.Error(), "--if-token AAAAAAAAAAAAAAAAAAAAAA==") || !m.Exists("orders:lock:1") {
		t.Fatalf("break of a lock known by its value's shape only, without --if-token: exit %d\n%s%v", r.code, r.out, r.err)
	}
	r = dsctl(t, nil, "lock", "break", "orders:lock:1", "--force", "--if-token", "AAAAAAAAAAAAAAAAAAAAAA==", "--redis", m.Addr())
	if r.code != 0 || !strings.Contains(r.out, "broken (was held)") || m.Exists("orders:lock:1") {
		t.Fatalf("break foreign: exit %d\n%s", r.code, r.out)
	}
	r = dsctl(t, nil, "lock", "list", "--prefix", "nothing-here", "--redis", m.Addr(), "-o", "json")
	if strings.TrimSpace(r.out) != "[]" {
		t.Fatalf("empty list json: %q", r.out)
	}
}

func TestSandboxRunsLockCommands(t *testing.T) {
	if r := dsctl(t, nil, "lock", "run", "sb", "--sandbox", "--", "true"); r.code != 0 {
		t.Fatalf("run --sandbox: %d %q", r.code, r.errOut)
	}
	r := dsctl(t, nil, "lock", "bench", "--sandbox", "--ops", "200", "-o", "json")
	var res map[string]any
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || r.code != 0 || res["ok"] != true || res["ops"] != 200.0 {
		t.Fatalf("bench --sandbox: %v %d\n%s%s", err, r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "lock", "bench", "--sandbox", "--ops", "40", "--wait-strategy", "poll", "--poll-interval", "5ms")
	if r.code != 0 || !strings.Contains(r.out, "wait strategy:    poll every 5ms") || !strings.Contains(r.out, "correctness:      ok") {
		t.Fatalf("bench poll:\n%s", r.out)
	}
}

// A server that accepts connections and never answers: dsctl must give up within
// --timeout with exit 6.
func TestUnreachableExit6WithinTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, args := range [][]string{
		{"lock", "acquire", "x", "--redis", ln.Addr().String(), "--timeout", "1s"},
		{"lock", "run", "x", "--redis", ln.Addr().String(), "--timeout", "1s", "--", "true"},
		{"lock", "acquire", "x", "--redis", "127.0.0.1:1", "--timeout", "1s"},
	} {
		start := time.Now()
		r := dsctl(t, nil, args...)
		if r.code != 6 || time.Since(start) > 2500*time.Millisecond {
			t.Fatalf("%v: exit %d after %s: %q", args, r.code, time.Since(start), r.errOut)
		}
		if !strings.Contains(r.errOut, "within 1s") {
			t.Fatalf("%v: message %q", args, r.errOut)
		}
	}
}

func TestHelpListsLockAndItsVerbs(t *testing.T) {
	r := dsctl(t, nil, "--help")
	if !strings.Contains(r.out, "\n  lock ") {
		t.Fatal("dsctl --help does not list lock")
	}
	r = dsctl(t, nil, "lock", "--help")
	for _, verb := range []string{"acquire", "run", "renew", "release", "inspect", "list", "break", "bench"} {
		if !strings.Contains(r.out, "\n  "+verb+" ") {
			t.Errorf("lock --help does not list %s", verb)
		}
		h := dsctl(t, nil, "lock", verb, "--help")
		if !strings.Contains(h.out, "Examples:") {
			t.Errorf("lock %s --help has no example", verb)
		}
	}
}

// lock bench with its generated name leaves nothing behind (not even the fencing
// counter); with --name the counter stays, as for any lock.
func TestBenchLeavesNoKeysForItsOwnName(t *testing.T) {
	m := miniredisT(t)
	if r := dsctl(t, nil, "lock", "bench", "--redis", m.Addr(), "--clients", "3", "--ops", "30"); r.code != 0 {
		t.Fatalf("bench: %d %s", r.code, r.errOut)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("bench left keys %v", keys)
	}
	if r := dsctl(t, nil, "lock", "bench", "--redis", m.Addr(), "--clients", "3", "--ops", "30", "--name", "mine"); r.code != 0 {
		t.Fatalf("bench --name: %d %s", r.code, r.errOut)
	}
	if keys := m.Keys(); len(keys) != 1 || keys[0] != "dsctl:lock:{mine}:fence" {
		t.Fatalf("bench --name left %v, want only the fencing counter", keys)
	}
}

func TestSandboxAndAnExplicitRedisAreExclusive(t *testing.T) {
	r := dsctl(t, nil, "lock", "inspect", "x", "--sandbox", "--redis", "127.0.0.1:16379")
	if r.code != 2 || !strings.Contains(r.errOut, "--sandbox and --redis are mutually exclusive") {
		t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
	}
}

// -v shows the lock commands' Redis connections (go-redis dials from its pool, outside
// the command's context), never the password.
func TestVerboseShowsRedisDialsWithoutThePassword(t *testing.T) {
	m := miniredisT(t)
	m.RequireAuth("s3cret-v-pw")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte("current_context: t\ncontexts:\n  t:\n    redis:\n      addrs: ["+m.Addr()+"]\n      password: {env: DSCTL_TEST_V_PW}\n"), 0o600)
	t.Setenv("DSCTL_TEST_V_PW", "s3cret-v-pw")
	r := dsctl(t, map[string]string{"DSCTL_CONFIG": cfg}, "-v", "lock", "acquire", "verbose")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.errOut)
	}
	if !strings.Contains(r.errOut, "redis: dial "+m.Addr()+" (tls off, user default with a password): ok") {
		t.Fatalf("-v stderr lacks the dial: %q", r.errOut)
	}
	if strings.Contains(r.errOut, "s3cret-v-pw") {
		t.Fatal("-v printed the password")
	}
}
