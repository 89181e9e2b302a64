//go:build unix

package lock_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// --semaphore 2 on ZooKeeper: two holders at once (each holding in the foreground),
// a third is refused with exit 3; after both end nothing is left.
func TestSemaphoreOnZooKeeperAdmitsNHolders(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var holders []<-chan result
		for i, o := range []string{"first", "second"} {
			holders = append(holders, background(ctx, t, nil, b.args("lock", "acquire", "pool", "--semaphore", "2", "--owner", o, "-o", "env")...))
			want := i + 1
			waitFor(t, "holder "+o, 10*time.Second, func() bool { return len(b.held(t, "pool")) == want })
		}
		time.Sleep(200 * time.Millisecond)
		for i, h := range holders {
			select {
			case r := <-h:
				t.Fatalf("holder %d returned while it should hold (the semaphore admits 2): exit %d %q", i, r.code, r.errOut)
			default:
			}
		}
		r := dsctl(t, nil, b.args("lock", "acquire", "pool", "--semaphore", "2")...)
		if r.code != 3 {
			t.Fatalf("third holder of a 2-permit semaphore: exit %d %q", r.code, r.errOut)
		}
		if got := len(b.held(t, "pool")); got != 2 {
			t.Fatalf("after the refused third: %d nodes, want the 2 holders", got)
		}
		// lock run takes a permit too while one is free.
		cancel()
		for _, h := range holders {
			if r := await(t, h, 10*time.Second); r.code != 0 || !strings.Contains(r.out, "DSCTL_LOCK_TOKEN=") {
				t.Fatalf("holder: exit %d %q %q", r.code, r.out, r.errOut)
			}
		}
		r = dsctl(t, nil, b.args("lock", "run", "pool", "--semaphore", "2", "--", "sh", "-c", "test -n \"$DSCTL_LOCK_TOKEN\"")...)
		if r.code != 0 {
			t.Fatalf("run --semaphore 2: exit %d %q", r.code, r.errOut)
		}
		waitFor(t, "the semaphore's nodes to go", 10*time.Second, func() bool { return len(b.held(t, "pool")) == 0 })
	})
}

// --semaphore is refused (exit 2, naming the backends that have it) where it is not
// implemented, with --detach, and below 1; --mode/--table/--format are SQL's only.
func TestSemaphoreAndSQLFlagsRefusedWhereTheyDoNotApply(t *testing.T) {
	m := miniredisT(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lock", "acquire", "x", "--redis", m.Addr(), "--semaphore", "2"}, "--semaphore 2: redis locks admit one holder at a time"},
		{[]string{"lock", "run", "x", "--redis", m.Addr(), "--semaphore", "3", "--", "true"}, "semaphores (N holders at once) work on zookeeper"},
		{[]string{"lock", "acquire", "x", "--backend", "postgres", "--semaphore", "2"}, "--semaphore 2: postgres locks admit one holder"},
		{[]string{"lock", "acquire", "x", "--zk", "127.0.0.1:1", "--semaphore", "2", "--detach"}, "--semaphore and --detach cannot be combined"},
		{[]string{"lock", "acquire", "x", "--redis", m.Addr(), "--semaphore", "0"}, "--semaphore must be at least 1"},
		{[]string{"lock", "acquire", "x", "--redis", m.Addr(), "--mode", "session"}, "--mode: only SQL locks (mysql, postgres) have it"},
		{[]string{"lock", "inspect", "x", "--zk", "127.0.0.1:1", "--table", "shedlock"}, "--table: only SQL locks"},
		{[]string{"lock", "acquire", "x", "--redis", m.Addr(), "--format", "shedlock"}, "--format: only SQL locks"},
	} {
		env := map[string]string{"DSCTL_SQL_DSN": "postgres://u:pw@127.0.0.1:1/db"}
		r := dsctl(t, env, c.args...)
		if r.code != 2 || !strings.Contains(r.errOut, c.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, r.code, r.errOut, c.want)
		}
	}
	if m.Exists("dsctl:lock:{x}") {
		t.Fatal("a refused command took the lock")
	}
}

// Several backends configured and none chosen: Redis is used, with one warning on
// stderr naming the configured backends and how to choose; an explicit choice, or a
// single configured backend, is silent.
func TestImplicitBackendChoiceWarnsOnce(t *testing.T) {
	m := miniredisT(t)
	const warn = "several lock backends are configured"
	both := map[string]string{"DSCTL_REDIS": m.Addr(), "DSCTL_ZK": "127.0.0.1:1"}
	r := dsctl(t, both, "lock", "run", "w", "--", "true")
	if r.code != 0 || strings.Count(r.errOut, warn) != 1 {
		t.Fatalf("implicit choice: exit %d %q", r.code, r.errOut)
	}
	for _, want := range []string{"redis (env), zookeeper (env)", "using redis by default", "--backend redis", "DSCTL_LOCK_BACKEND=redis", "on another system"} {
		if !strings.Contains(r.errOut, want) {
			t.Fatalf("warning lacks %q: %q", want, r.errOut)
		}
	}
	withSQL := map[string]string{"DSCTL_REDIS": m.Addr(), "DSCTL_SQL_DSN": "u:pw@tcp(127.0.0.1:1)/db"}
	if r = dsctl(t, withSQL, "lock", "inspect", "w"); r.code != 0 || !strings.Contains(r.errOut, "redis (env), mysql (env)") || strings.Contains(r.errOut, "pw@") {
		t.Fatalf("redis and mysql: exit %d %q", r.code, r.errOut)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{both, []string{"--backend", "redis"}},
		{both, []string{"--redis", m.Addr()}},
		{map[string]string{"DSCTL_REDIS": m.Addr(), "DSCTL_ZK": "127.0.0.1:1", "DSCTL_LOCK_BACKEND": "redis"}, nil},
		{map[string]string{"DSCTL_REDIS": m.Addr()}, nil},
	} {
		r := dsctl(t, c.env, append([]string{"lock", "inspect", "w"}, c.args...)...)
		if r.code != 0 || strings.Contains(r.errOut, warn) {
			t.Errorf("%v %v: exit %d %q, want no warning", c.env, c.args, r.code, r.errOut)
		}
	}
}

// `dsctl lock --help` describes all four backends, the SQL modes, sql init and
// --semaphore; --backend, --mode and --format complete their values.
func TestLockHelpAndCompletionCoverEveryBackend(t *testing.T) {
	r := dsctl(t, nil, "lock", "--help")
	for _, want := range []string{"redis ", "zookeeper ", "mysql, postgres", "--mode lease", "--mode session", "dsctl lock sql init",
		"--format shedlock", "--semaphore N", "pg_try_advisory_lock", "GET_LOCK", "DATABASE's clock", "sql "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("lock --help lacks %q", want)
		}
	}
	r = dsctl(t, nil, "lock", "sql", "init", "--help")
	if r.code != 0 || !strings.Contains(r.out, "--print") || !strings.Contains(r.out, "Exit codes") {
		t.Fatalf("lock sql init --help: %q", r.out)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "lock", "acquire", "x", "--backend", ""}, []string{"redis", "zookeeper", "mysql", "postgres"}},
		{[]string{"__complete", "lock", "run", "x", "--mode", ""}, []string{"lease", "session"}},
		{[]string{"__complete", "lock", "inspect", "x", "--format", ""}, []string{"dsctl", "shedlock", "unique-key"}},
		{[]string{"__complete", "lock", "sql", "init", "--backend", ""}, []string{"mysql", "postgres"}},
	} {
		r := dsctl(t, nil, c.args...)
		for _, w := range c.want {
			if !strings.Contains(r.out, w+"\t") {
				t.Errorf("%v: %q lacks %q", c.args, r.out, w)
			}
		}
	}
}
