package tui_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/commands/cmdutil"
	tuicmd "github.com/dsctl/dsctl/commands/tui"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	dash "github.com/dsctl/dsctl/tui"
)

func factory(tty bool) *cmdutil.Factory {
	ios := &cmdutil.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}, StdinTTY: tty, StdoutTTY: tty}
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	f.Global.Timeout = time.Second
	return f
}

// Bad input is a usage error (exit 2) that names it, before anything connects.
func TestRunRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tuicmd.Options
		tty  bool
		want string
	}{
		{"refresh floor", tuicmd.Options{Refresh: 100 * time.Millisecond, Pane: "overview"}, true, "below the floor of 500ms"},
		{"unknown pane", tuicmd.Options{Refresh: time.Second, Pane: "dashboard"}, true, `unknown pane "dashboard"`},
		{"bad watch path", tuicmd.Options{Refresh: time.Second, Pane: "zk", Watch: []string{"app/config"}}, true, "app/config"},
		{"no terminal", tuicmd.Options{Refresh: time.Second, Pane: "ring"}, false, "needs a terminal"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tuicmd.Run(context.Background(), factory(c.tty), &c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
			if k := errs.KindOf(err); k != errs.KindUsage {
				t.Fatalf("kind %v, want usage (exit 2)", k)
			}
		})
	}
}

func TestHelpDocumentsEveryKey(t *testing.T) {
	cmd := tuicmd.NewCmd(factory(false))
	for _, b := range dash.Keymap {
		if !strings.Contains(cmd.Long, b.Help) {
			t.Errorf("dsctl tui --help does not document %v: %s", b.Keys, b.Help)
		}
	}
}

func TestConfiguredLeavesOutWhatTheRunCannotUse(t *testing.T) {
	e := config.Endpoints{RedisSource: config.SourceSandbox, ZKSource: config.SourceSandbox, KafkaSource: config.SourceSandbox,
		SQLSource: config.SourceEnv, Unavailable: map[string]error{"sql": errs.Usage("no SQL in the sandbox")}}
	got := strings.Join(tuicmd.Configured(e), ",")
	if got != "redis,zookeeper,kafka" {
		t.Fatalf("configured %s, want redis,zookeeper,kafka (the sandbox has no SQL)", got)
	}
	none := config.Endpoints{RedisSource: config.SourceDefault, ZKSource: config.SourceDefault, KafkaSource: config.SourceDefault, SQLSource: config.SourceDefault}
	if got := strings.Join(tuicmd.Configured(none), ","); got != "redis,zookeeper,kafka" {
		t.Fatalf("nothing configured: %s, want the three defaults", got)
	}
}
