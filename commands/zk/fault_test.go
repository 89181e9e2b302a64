package zk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/testenv"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// TestFaultStatusMemberDownThenQuorumLost stops zookeeper 3 (degraded, exit 5), then
// zookeeper 2 too (quorum lost, exit 6), each verdict within --timeout, and restarts
// both before returning.
func TestFaultStatusMemberDownThenQuorumLost(t *testing.T) {
	testenv.Faults(t)
	servers := testenv.Get(t, testenv.ZK)
	waitHealthy(t, servers) // an earlier fault test may have left an election running
	defer waitHealthy(t, servers)
	testenv.Service(t, "stop", "zookeeper", "3")
	defer testenv.Service(t, "start", "zookeeper", "3")

	// If zookeeper 3 led, the other two elect a new leader first (about a second, during
	// which neither serves): every answer comes within --timeout, and once they have
	// elected, the verdict is degraded.
	var r result
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		r = dsctl(t, nil, "zk", "status", "--zk", servers, "--timeout", "2s")
		if r.took > 3*time.Second {
			t.Fatalf("one member stopped: zk status took %s with --timeout 2s", r.took)
		}
		if r.code == 5 || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 5 || !strings.Contains(r.out, "verdict: degraded: 2 of 3 members serving") {
		t.Fatalf("one member stopped: exit %d in %s (want 5 within 2s)\n%s\n%s", r.code, r.took, r.out, r.errOut)
	}

	testenv.Service(t, "stop", "zookeeper", "2")
	defer testenv.Service(t, "start", "zookeeper", "2")
	r = dsctl(t, nil, "zk", "status", "--zk", servers, "--timeout", "2s", "-o", "json")
	if r.code != 6 || !strings.Contains(r.out, `"verdict": "quorum_lost"`) || r.took > 3*time.Second {
		t.Fatalf("two members stopped: exit %d in %s (want 6 within 2s)\n%s\n%s", r.code, r.took, r.out, r.errOut)
	}
	if !strings.Contains(r.errOut, "lost quorum") {
		t.Errorf("stderr should say quorum is lost: %q", r.errOut)
	}
	// Reads fail with the unreachable code, within the timeout, naming zk status.
	r = dsctl(t, nil, "zk", "ls", "/", "--zk", servers, "--timeout", "2s")
	if r.code != 6 || r.took > 5*time.Second {
		t.Fatalf("ls without quorum: exit %d in %s: %s", r.code, r.took, r.errOut)
	}
}

// waitHealthy waits (bounded) until the ensemble is healthy again after a fault test.
func waitHealthy(t *testing.T, servers string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := zkprobe.EnsembleStatus(context.Background(), zkprobe.StatusOptions{Servers: strings.Split(servers, ","), Timeout: 2 * time.Second})
		if st.Verdict == zkprobe.VerdictHealthy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ensemble not healthy 60s after the fault test: %s %v", st.Verdict, st.Problems)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
