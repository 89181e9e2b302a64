package ring

import (
	"io"
	"testing"

	"github.com/dsctl/dsctl/commands/cmdutil"
)

// runRing runs `dsctl ring ARGS...` through cobra, so flag checks made in RunE count.
func runRing(t *testing.T, args ...string) error {
	t.Helper()
	ios, _, _, _ := cmdutil.Test()
	cmd := NewCmd(cmdutil.New(ios, cmdutil.BuildInfo{Version: "test"}))
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.Execute()
}

// An explicit 0 for a flag whose engine field reads 0 as "the default" is an error,
// not the default: --replicas 0 used to print one owner and exit 0.
func TestExplicitZeroFlagsAreUsageErrors(t *testing.T) {
	cases := [][]string{
		{"locate", "k", "--nodes", "3", "--replicas", "0"},
		{"locate", "k", "--nodes", "3", "--maglev-m", "0"},
		{"locate", "k", "--nodes", "3", "--balance-factor", "0"},
		{"simulate", "--nodes", "3", "--keys", "10", "--maglev-m", "0"},
		{"simulate", "--nodes", "3", "--keys", "10", "--balance-factor", "0"},
		{"sweep", "--nodes", "3", "--keys", "10", "--target-max-over-mean", "0"},
		{"sweep", "--nodes", "3", "--keys", "10", "--vnodes", ""},
		{"sweep", "--nodes", "3", "--keys", "10", "--balance-factor", "0", "--algo", "bounded"},
	}
	for _, args := range cases {
		assertUsage(t, runRing(t, args...), "must be")
	}
	// The engine's own errors for values below zero, or above the node count, stand.
	assertUsage(t, runRing(t, "locate", "k", "--nodes", "3", "--replicas", "-1"), "--replicas -1")
	assertUsage(t, runRing(t, "locate", "k", "--nodes", "3", "--replicas", "5"), "--replicas 5")
	assertUsage(t, runRing(t, "locate", "k", "--nodes", "3", "--vnodes", "0"), "--vnodes must be at least 1")
	if err := runRing(t, "locate", "k", "--nodes", "3", "--replicas", "3"); err != nil {
		t.Fatalf("--replicas 3 of 3 nodes: %v", err)
	}
}
