package cmdutil

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/probes/errs"
)

func TestFlagError(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "a,b,c"}, `--nodes "a,b,c" is not a whole number`},
		{[]string{"--nodes", "99999999999999999999"}, `--nodes "99999999999999999999" is out of range`},
		{[]string{"--ttl", "abc"}, `--ttl "abc" is not a duration such as 500ms, 30s, 5m or 1h30m`},
		{[]string{"--ratio", "x"}, `--ratio "x" is not a number`},
		{[]string{"--fast=maybe"}, `--fast "maybe" is not true or false`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	}
	for _, c := range cases {
		cmd := &cobra.Command{Use: "demo", RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().Int("nodes", 0, "")
		cmd.Flags().Duration("ttl", time.Second, "")
		cmd.Flags().Float64("ratio", 0, "")
		cmd.Flags().Bool("fast", false, "")
		cmd.SetFlagErrorFunc(FlagError)
		cmd.SetArgs(c.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		e, ok := err.(*errs.Error)
		if !ok || errs.KindOf(err) != errs.KindUsage || e.Msg != c.want || !strings.Contains(e.Hint, "demo --help") || strings.Contains(err.Error(), "strconv") {
			t.Errorf("%v: %v (%T)", c.args, err, err)
		}
	}
}
