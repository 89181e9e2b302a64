package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
)

// End-to-end checks of `dsctl id` through the whole command tree, as main runs it: flag
// parsing, the printer, error classification and exit codes. (Stdin-driven bulk modes
// are tested in commands/id, which feeds its own streams.)

func TestIDDecodeDiscordVectorThroughTheCLI(t *testing.T) {
	r := dsctl(t, nil, "id", "decode", "--layout", "discord", "175928847299117063", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.errOut)
	}
	var got []struct {
		ID        string            `json:"id"`
		Timestamp string            `json:"timestamp"`
		Fields    map[string]uint64 `json:"fields"`
	}
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || len(got) != 1 {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if got[0].ID != "175928847299117063" || got[0].Timestamp != "2016-04-30T11:18:25.796Z" ||
		got[0].Fields["worker"] != 1 || got[0].Fields["process"] != 0 || got[0].Fields["increment"] != 7 {
		t.Errorf("%+v", got[0])
	}
	// Without --layout the presets are ranked, Discord's reading first.
	r = dsctl(t, nil, "id", "decode", "175928847299117063")
	lines := strings.Split(r.out, "\n")
	if r.code != 0 || len(lines) < 3 || !strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "1 discord 2016-04-30T11:18:25.796Z") {
		t.Errorf("auto: exit %d\n%s", r.code, r.out)
	}
}

func TestIDDecodeUUIDVectorsThroughTheCLI(t *testing.T) {
	r := dsctl(t, nil, "id", "decode", "C232AB00-9414-11EC-B3C8-9F6BDECED846", "1EC9414C-232A-6B00-B3C8-9F6BDECED846",
		"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", "-o", "jsonl")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	for i, want := range []int{1, 6, 7} {
		var u struct {
			Version int   `json:"version"`
			UnixMs  int64 `json:"unix_ms"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &u); err != nil || u.Version != want || u.UnixMs != 1645557742000 {
			t.Errorf("%s: %v", lines[i], err)
		}
	}
}

// Bad input: exit 2, and one error line on stderr that names the input.
func TestIDBadInputExit2NamingTheInput(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"id", "decode", "abc"}, `id "abc": not a decimal or 0x-hex number`},
		{[]string{"id", "decode", "-5"}, `id "-5": negative`},
		{[]string{"id", "decode", "--layout", "twitter", "-12345"}, `id "-12345": negative`},
		{[]string{"id", "decode", "18446744073709551616"}, `id "18446744073709551616": above 2^64-1`},
		{[]string{"id", "decode", "017F22E2-79B0-7CC3-98C4-DC0C0C07398Z"}, `uuid "017F22E2-79B0-7CC3-98C4-DC0C0C07398Z": malformed`},
		{[]string{"id", "decode", "--layout", "time:41:1ms,worker:5", "--epoch", "2020-01-01", "1"}, `layout "time:41:1ms,worker:5"`},
		{[]string{"id", "decode", "--layout", "nope", "1"}, `layout "nope": unknown`},
		{[]string{"id", "decode", "-o", "xml", "1"}, `unsupported output format "xml"`},
		{[]string{"id", "generate", "--layout", "twitter", "--worker", "32"}, "worker 32 is out of range 0..31"},
		{[]string{"id", "generate", "--layout", "twitter", "--worker", "1", "--datacenter", "99"}, "datacenter 99 is out of range 0..31"},
		{[]string{"id", "generate", "--layout", "twitter"}, "--worker is required"},
		{[]string{"id", "generate", "--layout", "twitter", "-w", "1", "-n", "0"}, "-n 0 is out of range"},
		{[]string{"id", "generate", "--layout", "twitter", "-w", "1", "--on-clock-rollback", "panic"}, `clock rollback policy "panic"`},
		{[]string{"id", "layout", "nope"}, `layout "nope": unknown`},
		{[]string{"id", "layout", "a", "b"}, "accepts at most 1 arg"},
		{[]string{"id", "check", "-o", "csv", "--layout", "twitter"}, "unsupported output format"},
	} {
		r := dsctl(t, nil, tt.args...)
		if r.code != 2 || !strings.Contains(r.errOut, tt.want) || strings.Count(r.errOut, "\n") != 1 || !strings.HasPrefix(r.errOut, "error: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args, r.code, r.errOut, tt.want)
		}
	}
}

func TestIDGenerateAndLayoutThroughTheCLI(t *testing.T) {
	r := dsctl(t, nil, "id", "generate", "--layout", "twitter", "--worker", "3", "--datacenter", "1", "-n", "3")
	ids := strings.Fields(r.out)
	if r.code != 0 || len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("generate: exit %d\n%s", r.code, r.out)
	}
	r = dsctl(t, nil, "id", "decode", "--layout", "twitter", ids[2], "-o", "json")
	if !strings.Contains(r.out, `"datacenter": 1`) || !strings.Contains(r.out, `"worker": 3`) {
		t.Errorf("round trip:\n%s", r.out)
	}

	r = dsctl(t, nil, "id", "layout", "twitter")
	for _, want := range []string{"runs out:   2080-07-10T17:30:30.209Z", "max IDs/s:  4,096,000 per node", "nodes:      1,024"} {
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("layout twitter lacks %q:\n%s", want, r.out)
		}
	}
}

// Every id command has an example, and the ones that print data list their JSON keys.
func TestIDHelp(t *testing.T) {
	r := dsctl(t, nil, "--help")
	if !strings.Contains(r.out, "\n  id ") {
		t.Errorf("root help does not list id:\n%s", r.out)
	}
	ios, _, _, _ := cmdutil.Test()
	root := NewRoot(cmdutil.New(ios, cmdutil.BuildInfo{}))
	idCmd, _, err := root.Find([]string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, c := range append([]*cobra.Command{idCmd}, idCmd.Commands()...) {
		verbs = append(verbs, c.Name())
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		if c != idCmd && !strings.Contains(c.Long, "JSON keys") {
			t.Errorf("%s does not list its JSON keys", c.CommandPath())
		}
	}
	if got := strings.Join(verbs, " "); got != "id check decode generate layout" {
		t.Errorf("id commands: %s", got)
	}
}
