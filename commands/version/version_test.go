package version

import (
	"runtime/debug"
	"testing"

	"github.com/dsctl/dsctl/commands/cmdutil"
)

func TestFromBuildInfo(t *testing.T) {
	unset := cmdutil.BuildInfo{Version: "dev", Commit: "none", Date: "unknown"}
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-07T08:00:00Z"}, {Key: "vcs.modified", Value: "false"}}
	cases := []struct {
		name string
		in   cmdutil.BuildInfo
		bi   debug.BuildInfo
		want cmdutil.BuildInfo
	}{
		{"go install module@version", unset, debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			cmdutil.BuildInfo{Version: "1.4.0", Commit: "none", Date: "unknown"}},
		{"go install module@commit", unset, debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207080000-abcdef123456"}},
			cmdutil.BuildInfo{Version: "0.0.0-20261207080000-abcdef123456", Commit: "abcdef123456", Date: "unknown"}},
		{"go build in a checkout", unset, debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			cmdutil.BuildInfo{Version: "dev", Commit: "0123456789ab", Date: "2026-12-07T08:00:00Z"}},
		{"dirty checkout", unset, debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, vcs[:2]...)},
			cmdutil.BuildInfo{Version: "dev", Commit: "0123456789ab-dirty", Date: "2026-12-07T08:00:00Z"}},
		{"ldflags win", cmdutil.BuildInfo{Version: "2.0.0", Commit: "feedbeef", Date: "2026-01-01"},
			debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs},
			cmdutil.BuildInfo{Version: "2.0.0", Commit: "feedbeef", Date: "2026-01-01"}},
	}
	for _, c := range cases {
		if got := fromBuildInfo(c.in, &c.bi); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}
