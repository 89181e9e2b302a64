package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/goccy/go-yaml"
)

func runArgs(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ios, in, out, errOut := cmdutil.Test()
	in.WriteString(stdin)
	t.Setenv("DSCTL_CONFIG", t.TempDir()+"/none.yaml")
	code = run(context.Background(), ios, cmdutil.BuildInfo{Version: "1.2.3"}, args, func() {})
	return code, out.String(), errOut.String()
}

type errorObject struct {
	Error struct {
		Message  string `json:"message"`
		Hint     string `json:"hint"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

// With -o json a failure still prints a JSON document on stdout: the error object.
func TestFailureWithJSONPrintsErrorObject(t *testing.T) {
	code, out, errOut := runArgs(t, "", "id", "decode", "--layout", "nope", "1", "-o", "json")
	var obj errorObject
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%q", err, out)
	}
	if code != 2 || obj.Error.ExitCode != 2 || !strings.Contains(obj.Error.Message, "nope") || obj.Error.Hint == "" ||
		strings.Contains(obj.Error.Message, obj.Error.Hint) || !strings.Contains(errOut, "error: ") {
		t.Errorf("exit %d %+v\nstderr: %s", code, obj, errOut)
	}
	// Unreachable backend: exit 6 in the object.
	code, out, _ = runArgs(t, "", "kafka", "audit", "--brokers", "127.0.0.1:1", "--timeout", "1s", "-o", "json")
	obj = errorObject{}
	if err := json.Unmarshal([]byte(out), &obj); err != nil || code != 6 || obj.Error.ExitCode != 6 || !strings.HasPrefix(out, "{\n") {
		t.Errorf("json: exit %d %v %+v\n%q", code, err, obj, out)
	}
	// YAML too.
	code, out, _ = runArgs(t, "", "kafka", "bogus", "-o", "yaml")
	obj = errorObject{}
	if err := yaml.Unmarshal([]byte(out), &obj); err != nil || code != 2 || obj.Error.ExitCode != 2 || !strings.Contains(obj.Error.Hint, "dsctl kafka --help") {
		t.Errorf("yaml: exit %d %v %+v\n%s", code, err, obj, out)
	}
	// Table output: nothing on stdout.
	code, out, _ = runArgs(t, "", "id", "decode", "--layout", "nope", "1")
	if code != 2 || out != "" {
		t.Errorf("table: exit %d, stdout %q", code, out)
	}
}

// Output already printed is not followed by an error object (two documents).
func TestNoErrorObjectAfterOutput(t *testing.T) {
	code, out, _ := runArgs(t, "1\nbad\n", "id", "decode", "--layout", "discord", "-", "-o", "json")
	var recs []map[string]any
	if err := json.Unmarshal([]byte(out), &recs); err != nil || code != 2 || len(recs) != 1 {
		t.Errorf("exit %d %v\n%s", code, err, out)
	}
}
