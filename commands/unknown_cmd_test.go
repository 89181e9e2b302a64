package commands

import (
	"strings"
	"testing"
)

// An unknown subcommand points to the help of the command it was given to, and
// suggests close names.
func TestUnknownCommandPointsToItsParentsHelp(t *testing.T) {
	cases := []struct {
		args       []string
		hint, also string
	}{
		{[]string{"kafka", "bogus"}, "see 'dsctl kafka --help'", ""},
		{[]string{"ring", "simulat"}, "see 'dsctl ring --help'", "did you mean simulate?"},
		{[]string{"bogus"}, "see 'dsctl --help'", ""},
		{[]string{"kafak"}, "see 'dsctl --help'", "kafka"},
	}
	for _, c := range cases {
		r := dsctlIn(t, "", c.args...)
		if r.code != 2 || !strings.Contains(r.errOut, c.hint) || !strings.Contains(r.errOut, c.also) {
			t.Errorf("%v: exit %d\n%s", c.args, r.code, r.errOut)
		}
	}
}
