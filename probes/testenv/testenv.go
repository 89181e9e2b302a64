// Package testenv gives integration tests the real servers started by
// `scripts/services up`. Endpoints come from DSCTL_TEST_* env vars; without them a test
// skips with a message, and with CI=true it fails instead, so a missing service can
// never turn into a silently green run.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Env var names exported by `scripts/services env`.
const (
	Redis    = "DSCTL_TEST_REDIS"
	ZK       = "DSCTL_TEST_ZK"
	Kafka    = "DSCTL_TEST_KAFKA"
	MySQL    = "DSCTL_TEST_MYSQL_DSN"
	Postgres = "DSCTL_TEST_PG_DSN"
	Services = "DSCTL_TEST_SERVICES"
)

// Get returns the value of a DSCTL_TEST_* variable, or skips (fails under CI=true).
func Get(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set but CI=true: integration tests must run (start the servers with scripts/services up)", name)
		}
		t.Skipf("%s not set: run `eval \"$(scripts/services up)\"` to run this integration test", name)
	}
	return v
}

// List returns a comma-separated DSCTL_TEST_* variable as a list.
func List(t testing.TB, name string) []string {
	t.Helper()
	var out []string
	for _, s := range strings.Split(Get(t, name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Service runs `scripts/services ARGS...` (e.g. "stop", "kafka", "3") for fault tests.
func Service(t testing.TB, args ...string) {
	t.Helper()
	script := Get(t, Services)
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/services %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Faults skips a fault test (one that stops, kills or pauses a shared server) unless
// DSCTL_TEST_FAULTS=1. scripts/test sets it in a separate run with -p 1 after the main
// run, so no other test is using the servers while one is down.
func Faults(t testing.TB) {
	t.Helper()
	if os.Getenv("DSCTL_TEST_FAULTS") != "1" {
		t.Skip("fault test: runs in scripts/test's fault phase (DSCTL_TEST_FAULTS=1, -p 1)")
	}
}
