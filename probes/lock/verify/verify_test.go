package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/lock/verify"
	"github.com/dsctl/dsctl/probes/testenv"
)

// A worker process for the --processes test: this test binary re-executed.
const workerEnv = "DSCTL_VERIFY_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		err := verify.ServeWorker(context.Background(), os.Stdin, os.Stdout, func(addrs []string, _ json.RawMessage) (lock.Locker, error) {
			return redislock.New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs})
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func redisAddrs(t *testing.T) []string {
	t.Helper()
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Fatalf("%s has %d addresses, want 3", testenv.Redis, len(addrs))
	}
	return addrs
}

func dsctlLocker(t *testing.T) func(int, []string) (lock.Locker, error) {
	return func(_ int, addrs []string) (lock.Locker, error) {
		// a short timeout, as a user verifying a 200ms TTL would set
		return redislock.New(endpoint.Dialer{Timeout: time.Second}, endpoint.Redis{Addrs: addrs})
	}
}

func purge(t *testing.T, addrs []string, name string) {
	t.Helper()
	l, err := redislock.New(endpoint.Dialer{Timeout: 2 * time.Second}, endpoint.Redis{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Purge(context.Background(), name); err != nil {
		t.Errorf("purge %s: %v", name, err)
	}
}

func property(t *testing.T, rep *verify.Report, name string) verify.Property {
	t.Helper()
	for _, p := range rep.Properties {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no property %s in %+v", name, rep.Properties)
	return verify.Property{}
}

func describe(rep *verify.Report) string {
	var b strings.Builder
	for _, p := range rep.Properties {
		fmt.Fprintf(&b, "  %-18s %-11s %d/%d  %s\n", p.Name, p.Verdict, p.Violations, p.Checked, p.Detail)
	}
	fmt.Fprintf(&b, "  counts %+v\n", rep.Counts)
	if ov := rep.WorstOverlap; ov != nil {
		for _, e := range ov.Timeline {
			b.WriteString("    " + verify.EventLine(e) + "\n")
		}
	}
	return b.String()
}

// saveHistory keeps a failing run's history for the report.
func saveHistory(t *testing.T, out *verify.Outcome) {
	dir := os.Getenv("DSCTL_VERIFY_HISTORY_DIR") // set: keep every history
	if dir == "" {
		if !t.Failed() {
			return
		}
		dir = t.TempDir()
	}
	path := dir + "/" + strings.ReplaceAll(t.Name(), "/", "_") + ".jsonl"
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = verify.WriteJSONL(f, out.Events)
	t.Logf("history written to %s", path)
}

func TestCatchesBrokenLocks(t *testing.T) {
	addr := redisAddrs(t)[0]
	cases := []struct {
		flaw   string
		faults []string
		want   []string // properties that must be violated
	}{
		{flawNoNX, nil, []string{verify.PropMutualExclusion, verify.PropLinearizable}},
		{flawShortTTL, []string{verify.FaultPause}, []string{verify.PropMutualExclusion, verify.PropLeaseDeadline, verify.PropRunStopsInTime}},
		{flawReleaseNoCheck, []string{verify.FaultPause}, []string{verify.PropMutualExclusion}},
		// A full-TTL lease is caught by the lease-deadline check every time its release
		// finds it gone; a second holder inside its stale window (mutual exclusion)
		// takes another worker's section overlapping it, and with most sections a few
		// milliseconds long one CI run of many had none: not required here.
		{flawFullTTL, nil, []string{verify.PropLeaseDeadline}},
		{flawSameFence, []string{verify.FaultPause}, []string{verify.PropFenceOrder, verify.PropStaleWrites}},
	}
	for _, c := range cases {
		t.Run(c.flaw, func(t *testing.T) {
			t.Parallel()
			name := locktest.Name(t, "broken")
			out, err := verify.Run(context.Background(), verify.Options{
				Workers: 6, Duration: 3 * time.Second, TTL: 200 * time.Millisecond, Faults: c.faults,
				Name: name, Targets: []string{addr},
				NewLocker: func(_ int, addrs []string) (lock.Locker, error) {
					return &brokenLocker{c: redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1}), flaw: c.flaw}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cleanupTestKeys(t, addr, name)
			rep := out.Report
			if rep.Safe || rep.Violations == 0 {
				t.Fatalf("flaw %s: judged safe:\n%s", c.flaw, describe(rep))
			}
			for _, want := range c.want {
				if p := property(t, rep, want); p.Verdict != verify.VerdictViolated || p.Violations == 0 {
					t.Errorf("flaw %s: %s = %s (%d): %s", c.flaw, want, p.Verdict, p.Violations, p.Detail)
				}
			}
			if t.Failed() {
				t.Log("\n" + describe(rep))
			}
			if c.want[0] == verify.PropMutualExclusion && (rep.WorstOverlap == nil || len(rep.WorstOverlap.Timeline) == 0) {
				t.Errorf("no worst overlap timeline")
			}
		})
	}
}

// The same test locker without its flaw passes, under pauses: the checker does not
// cry wolf about late writes that fencing refused.
func TestCorrectTestLockPasses(t *testing.T) {
	addr := redisAddrs(t)[0]
	name := locktest.Name(t, "correct")
	out, err := verify.Run(context.Background(), verify.Options{
		Workers: 6, Duration: 3 * time.Second, TTL: 200 * time.Millisecond, Faults: []string{verify.FaultPause},
		Name: name, Targets: []string{addr},
		NewLocker: func(_ int, addrs []string) (lock.Locker, error) {
			return &brokenLocker{c: redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1}), flaw: flawNone}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanupTestKeys(t, addr, name)
	rep := out.Report
	if !rep.Safe {
		t.Fatalf("correct lock judged unsafe:\n%s", describe(rep))
	}
	if rep.Counts.AcquireOK < 20 || rep.Counts.Pauses == 0 || rep.Counts.WritesRefused == 0 {
		t.Fatalf("too little happened to judge (want >= 20 leases, pauses, refused late writes):\n%s", describe(rep))
	}
}

func cleanupTestKeys(t *testing.T, addr, name string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	_ = c.Del(context.Background(), key(name), key(name)+":fence").Err()
}

func runDsctlLock(t *testing.T, addrs []string, faults []string, d time.Duration) *verify.Outcome {
	t.Helper()
	name := locktest.Name(t, "verify")
	out, err := verify.Run(context.Background(), verify.Options{
		Workers: 6, Duration: d, TTL: 300 * time.Millisecond, Faults: faults,
		Name: name, Targets: addrs, NewLocker: dsctlLocker(t), Tool: "dsctl test",
	})
	if err != nil {
		t.Fatal(err)
	}
	purge(t, addrs, name)
	return out
}

func TestDsctlRedisLockSingleWithFaults(t *testing.T) {
	out := runDsctlLock(t, redisAddrs(t)[:1], verify.AllFaults, 5*time.Second)
	defer saveHistory(t, out)
	rep := out.Report
	if !rep.Safe {
		t.Fatalf("dsctl's Redis lock (single) judged unsafe:\n%s", describe(rep))
	}
	if !rep.FencingChecked || property(t, rep, verify.PropFenceOrder).Verdict != verify.VerdictOK {
		t.Fatalf("single Redis: fences not checked:\n%s", describe(rep))
	}
	if rep.Counts.AcquireOK < 10 || rep.Counts.NetworkFaults == 0 || rep.Counts.Pauses == 0 {
		t.Fatalf("too little happened to judge:\n%s", describe(rep))
	}
}

func TestDsctlRedisLockQuorumWithFaults(t *testing.T) {
	out := runDsctlLock(t, redisAddrs(t), verify.AllFaults, 5*time.Second)
	defer saveHistory(t, out)
	rep := out.Report
	if !rep.Safe {
		t.Fatalf("dsctl's Redis lock (quorum) judged unsafe:\n%s", describe(rep))
	}
	if rep.FencingChecked || property(t, rep, verify.PropFenceOrder).Verdict != verify.VerdictNotChecked ||
		property(t, rep, verify.PropStaleWrites).Verdict != verify.VerdictNotChecked {
		t.Fatalf("quorum mode has no fencing tokens: fences must be reported not checked:\n%s", describe(rep))
	}
	if rep.Counts.AcquireOK < 10 || rep.Counts.NetworkFaults == 0 {
		t.Fatalf("too little happened to judge:\n%s", describe(rep))
	}
}

func TestProcessesWithSIGSTOP(t *testing.T) {
	addrs := redisAddrs(t)[:1]
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := locktest.Name(t, "procs")
	out, err := verify.Run(context.Background(), verify.Options{
		Workers: 3, Duration: 3 * time.Second, TTL: 300 * time.Millisecond, Faults: verify.AllFaults,
		Name: name, Targets: addrs,
		Processes: &verify.ProcessOptions{Command: func(int) *exec.Cmd {
			c := exec.Command(exe)
			c.Env = append(os.Environ(), workerEnv+"=1")
			return c
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	purge(t, addrs, name)
	defer saveHistory(t, out)
	rep := out.Report
	if !rep.Safe {
		t.Fatalf("unsafe with worker processes:\n%s", describe(rep))
	}
	if rep.Counts.AcquireOK < 5 || rep.Counts.Pauses == 0 || !rep.FencingChecked {
		t.Fatalf("too little happened (want leases and SIGSTOP pauses):\n%s", describe(rep))
	}
	var buf bytes.Buffer
	if err := verify.WriteJSONL(&buf, out.Events); err != nil {
		t.Fatal(err)
	}
	back, err := verify.ReadJSONL(&buf)
	if err != nil || len(back) != len(out.Events) {
		t.Fatalf("history round trip: %d of %d events, %v", len(back), len(out.Events), err)
	}
	if again := verify.Check(back, verify.CheckOptions{TTL: 300 * time.Millisecond, FencingSafe: true}); again.Safe != rep.Safe ||
		again.Counts.AcquireOK != rep.Counts.AcquireOK {
		t.Fatalf("re-checking the saved history gave %+v, want %+v", again.Counts, rep.Counts)
	}
}
