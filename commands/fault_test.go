package commands

import (
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/testenv"
)

// Fault tests stop real servers, so scripts/test runs them on their own, one package at
// a time, after the main run (see testenv.Faults).

func TestFaultPingReportsAStoppedRedisAndRecovers(t *testing.T) {
	testenv.Faults(t)
	addrs := testenv.Get(t, testenv.Redis)
	testenv.Service(t, "stop", "redis", "3")
	defer testenv.Service(t, "start", "redis", "3")

	r := dsctl(t, nil, "ping", "redis", "--redis", addrs, "--timeout", "2s", "-o", "json")
	if r.code != 6 {
		t.Fatalf("exit %d with redis 3 stopped, want 6: %v", r.code, r.err)
	}
	if !strings.Contains(r.out, `"endpoint": "127.0.0.1:16381"`) || strings.Count(r.out, `"ok": true`) != 2 {
		t.Fatalf("want redis 1 and 2 ok and 16381 failed:\n%s", r.out)
	}

	testenv.Service(t, "start", "redis", "3")
	if r := dsctl(t, nil, "ping", "redis", "--redis", addrs); r.code != 0 {
		t.Fatalf("after restart: exit %d: %v", r.code, r.err)
	}
}
