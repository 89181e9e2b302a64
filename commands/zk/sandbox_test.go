package zk_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/sandbox"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
)

// The sandbox's ZooKeeper is the embedded zkserver seeded with the demo tree; these
// tests run the zk commands exactly as a user types them with --sandbox.

func TestSandboxTree(t *testing.T) {
	r := dsctl(t, nil, "zk", "tree", "/", "--sandbox", "-o", "json")
	if r.code != 0 {
		t.Fatalf("zk tree / --sandbox: exit %d: %v\n%s", r.code, r.err, r.errOut)
	}
	if !strings.Contains(r.errOut, "sandbox: embedded") || !strings.Contains(r.errOut, "ZooKeeper at 127.0.0.1:") {
		t.Errorf("stderr should say the sandbox started: %q", r.errOut)
	}
	var tr struct {
		Nodes []struct {
			Path           string `json:"path"`
			NumChildren    int    `json:"num_children"`
			EphemeralOwner string `json:"ephemeral_owner"`
		} `json:"nodes"`
		Truncated bool `json:"truncated"`
	}
	if err := json.Unmarshal([]byte(r.out), &tr); err != nil || tr.Truncated {
		t.Fatalf("tree json: %v truncated=%v\n%s", err, tr.Truncated, r.out)
	}
	kids := map[string]int{}
	for _, n := range tr.Nodes {
		kids[n.Path] = n.NumChildren
	}
	for path, want := range map[string]int{
		"/":                          4, // config, dsctl, services, zookeeper
		zkserver.DemoConfigPath:      0,
		"/services/checkout/members": 3,
		"/services/search/members":   2,
		zkserver.DemoLockPath:        3,
	} {
		if got, ok := kids[path]; !ok || got != want {
			t.Errorf("%s: %d children (listed %v), want %d", path, got, ok, want)
		}
	}
	// The table form, as on a terminal.
	r = dsctl(t, nil, "zk", "tree", "/", "--sandbox")
	if r.code != 0 || !strings.Contains(r.out, "member-0000000000 (ephemeral)") || !strings.Contains(r.out, "nodes under /") {
		t.Errorf("tree table: exit %d\n%s", r.code, r.out)
	}
}

func TestSandboxStatusIsStandalone(t *testing.T) {
	r := dsctl(t, nil, "zk", "status", "--sandbox", "-o", "json")
	var st struct {
		Verdict  string `json:"verdict"`
		Ensemble int    `json:"ensemble_size"`
		Quorum   int    `json:"quorum"`
		Members  []struct {
			State  string `json:"state"`
			Mode   string `json:"mode"`
			Zxid   string `json:"zxid"`
			Epoch  *int64 `json:"epoch"`
			Znodes int64  `json:"znode_count"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.out), &st); err != nil || r.code != 0 {
		t.Fatalf("zk status --sandbox: exit %d: %v %v\n%s%s", r.code, r.err, err, r.out, r.errOut)
	}
	if st.Verdict != "healthy" || st.Ensemble != 1 || st.Quorum != 1 || len(st.Members) != 1 {
		t.Fatalf("status: %+v", st)
	}
	m := st.Members[0]
	// The demo tree was written, so the zxid has moved; a standalone server stays in epoch 0.
	if m.State != "up" || m.Mode != "standalone" || m.Zxid == "" || m.Zxid == "0x0" || m.Epoch == nil || *m.Epoch != 0 || m.Znodes < 20 {
		t.Fatalf("member: %+v", m)
	}
	r = dsctl(t, nil, "zk", "status", "--sandbox")
	if r.code != 0 || !strings.Contains(r.out, "standalone") || !strings.Contains(r.out, "verdict: healthy: 1 of 1 members serving, quorum 1") {
		t.Fatalf("status table: exit %d\n%s", r.code, r.out)
	}
}

func TestSandboxRefusesAnExplicitEnsemble(t *testing.T) {
	r := dsctl(t, nil, "zk", "ls", "/", "--sandbox", "--zk", "127.0.0.1:2181")
	if r.code != 2 || !strings.Contains(r.errOut, "--sandbox and --zk are mutually exclusive") {
		t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
	}
}

// TestSandboxWatchConfig runs the README's `zk watch /config --sandbox -r --duration`
// as typed (the demo config node changes every 5s): it ends by itself with exit 0 and
// a summary, having shown the change.
func TestSandboxWatchConfig(t *testing.T) {
	r := dsctl(t, nil, "zk", "watch", "/config", "--sandbox", "-r", "--duration", "7s", "-o", "jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.errOut)
	}
	changes, _ := configChain(t, r.out)
	if changes < 1 {
		t.Fatalf("no change of %s in 7s (it changes every 5s):\n%s", zkserver.DemoConfigPath, r.out)
	}
}

// TestSandboxWatchAccountsForEveryConfigChange speeds the demo config up to every
// 50ms and checks the stream accounts for every version: consecutive data_changed
// and gap lines chain with no hole, and the summary agrees.
func TestSandboxWatchAccountsForEveryConfigChange(t *testing.T) {
	fast := func(f *cmdutil.Factory) {
		if err := f.StartSandbox(context.Background(), sandbox.Options{ZKDemo: zkserver.DemoOptions{ConfigInterval: 50 * time.Millisecond}}); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut := &syncBuffer{}, &syncBuffer{}
	r := dsctlSetup(context.Background(), t, nil, out, errOut, fast, "zk", "watch", "/config", "--sandbox", "-r", "--data", "--duration", "1500ms", "-o", "jsonl")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.errOut)
	}
	changes, lines := configChain(t, r.out)
	if changes < 5 {
		t.Fatalf("%d changes in 1.5s at one per 50ms:\n%s", changes, r.out)
	}
	var sum struct {
		Type   string `json:"type"`
		Events int    `json:"events"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" || sum.Events != len(lines)-1 {
		t.Fatalf("last line is not a summary of %d events: %s", len(lines)-1, lines[len(lines)-1])
	}
}

// configChain checks the demo config node's events account for every version: each
// data_changed starts where the last ended (old_version -> version, however many
// versions it jumps), a gap line after it counts the versions in between it did not
// see, and 1 per data_changed + missed per gap == the versions covered. It returns
// that count and the output's lines.
func configChain(t *testing.T, out string) (int64, []string) {
	t.Helper()
	var lines []string
	var changes int64
	first, last := int32(-1), int32(-1)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var ev struct {
			Type       string `json:"type"`
			Path       string `json:"path"`
			Change     string `json:"change"`
			OldVersion int32  `json:"old_version"`
			Version    int32  `json:"version"`
			Missed     int64  `json:"missed"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		if ev.Path != zkserver.DemoConfigPath {
			continue
		}
		switch {
		case ev.Type == "data_changed":
			if first < 0 {
				first = ev.OldVersion
			} else if ev.OldVersion != last {
				t.Errorf("hole: version %d follows %d: %s", ev.OldVersion, last, sc.Text())
			}
			changes++
			last = ev.Version
		case ev.Type == "gap" && ev.Change == "data_changed":
			if ev.Version != last || ev.Missed != int64(ev.Version-ev.OldVersion-1) {
				t.Errorf("gap does not follow its data_changed (last version %d): %s", last, sc.Text())
			}
			changes += ev.Missed
		}
	}
	if len(lines) == 0 {
		t.Fatal("no output")
	}
	if changes != int64(last-first) {
		t.Errorf("versions %d -> %d, %d accounted for", first, last, changes)
	}
	return changes, lines
}
