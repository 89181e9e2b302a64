package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/commands/cmdutil"
)

// dsctlIn is dsctl with stdin.
func dsctlIn(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	ios, in, out, errOut := cmdutil.Test()
	in.WriteString(stdin)
	f := cmdutil.New(ios, cmdutil.BuildInfo{Version: "1.2.3"})
	home := t.TempDir()
	f.Getenv = func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	err := Execute(context.Background(), f, NewRoot(f), args)
	PrintError(ios.ErrOut, false, err)
	return run{out: out.String(), errOut: errOut.String(), err: err, code: CodeFor(err)}
}

// "-" reads standard input wherever an input can be a file or stdin.
func TestDashReadsStdin(t *testing.T) {
	ids := "175928847299117063\n175928847299117064\n"
	r := dsctlIn(t, ids, "id", "decode", "--layout", "discord", "-", "-o", "jsonl")
	if r.code != 0 || strings.Count(r.out, `"id":"1759288472991170`) != 2 {
		t.Errorf("id decode -: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctlIn(t, ids, "id", "decode", "--layout", "discord", "-", "175928847299117063")
	if r.code != 2 || !strings.Contains(r.errOut, "cannot be mixed") {
		t.Errorf("id decode - ID: exit %d\n%s", r.code, r.errOut)
	}

	var rep struct {
		Count int `json:"count"`
	}
	r = dsctlIn(t, ids, "id", "check", "--layout", "discord", "-", "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &rep); r.code != 0 || err != nil || rep.Count != 2 {
		t.Errorf("id check -: exit %d %v\n%s%s", r.code, err, r.out, r.errOut)
	}
	file := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(file, []byte(ids+"175928847299117065\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = dsctlIn(t, "", "id", "check", "--layout", "discord", file, "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &rep); r.code != 0 || err != nil || rep.Count != 3 {
		t.Errorf("id check FILE: exit %d %v\n%s%s", r.code, err, r.out, r.errOut)
	}
	r = dsctlIn(t, "", "id", "check", "--layout", "discord", file+".missing")
	if r.code != 2 || !strings.Contains(r.errOut, "ids.txt.missing") || !strings.Contains(r.errOut, "no such file") {
		t.Errorf("id check missing file: exit %d\n%s", r.code, r.errOut)
	}
	r = dsctlIn(t, "", "id", "check", "--layout", "discord", file, file)
	if r.code != 2 {
		t.Errorf("id check two files: exit %d\n%s", r.code, r.errOut)
	}

	props := "acks=1\nenable.idempotence=false\n"
	r = dsctlIn(t, props, "kafka", "audit", "--clients-only", "--producer-config", "-", "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, cmdutil.StdinName) || !strings.Contains(r.out, "acks") {
		t.Errorf("kafka audit --producer-config -: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctlIn(t, props, "kafka", "audit", "--clients-only", "--producer-config", "-", "--consumer-config", "-")
	if r.code != 2 || !strings.Contains(r.errOut, "already read by --producer-config") {
		t.Errorf("two -: exit %d\n%s", r.code, r.errOut)
	}
	r = dsctlIn(t, "fail_on: warn\n", "kafka", "audit", "--clients-only", "--policy", "-", "--producer-config",
		"../probes/kafka/testdata/producer-acks1.properties", "-o", "json")
	if r.code != 5 {
		t.Errorf("kafka audit --policy -: exit %d (want 5: the policy's fail_on warn)\n%s%s", r.code, r.out, r.errOut)
	}
}

func TestVersionFlag(t *testing.T) {
	r := dsctlIn(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.out, "dsctl 1.2.3 (commit ") {
		t.Errorf("exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}
