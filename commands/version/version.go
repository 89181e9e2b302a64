// Package version implements `dsctl version`.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
)

// Info is what `dsctl version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Table renders the info as key/value lines.
func (i Info) Table() *output.TableData {
	return output.KV("version", i.Version, "commit", i.Commit, "built", i.Date, "go", i.GoVersion, "platform", i.Platform)
}

// NewCmd builds `dsctl version`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print dsctl's version, commit and build date",
		Long: `Print dsctl's version, commit and build date.

JSON keys: version, commit, date, go_version, platform.`,
		Example: `  dsctl version
  dsctl version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return p.Print(Current(f.Build))
		},
	}
}

// Current returns the running binary's version info.
func Current(b cmdutil.BuildInfo) Info {
	return Info{Version: b.Version, Commit: b.Commit, Date: b.Date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// FromBuild fills what the linker flags left at their defaults (a `go install` or `go
// build` without -ldflags) from the module's build info: the module version, and the
// VCS revision and commit time the go command stamps (a "-dirty" suffix when the work
// tree had changes). Values set with -ldflags win.
func FromBuild(b cmdutil.BuildInfo) cmdutil.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	return fromBuildInfo(b, bi)
}

func fromBuildInfo(b cmdutil.BuildInfo, bi *debug.BuildInfo) cmdutil.BuildInfo {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if b.Version == "" || b.Version == "dev" {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = strings.TrimPrefix(v, "v")
		}
	}
	if b.Commit == "" || b.Commit == "none" {
		if rev := settings["vcs.revision"]; rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if settings["vcs.modified"] == "true" {
				rev += "-dirty"
			}
			b.Commit = rev
		} else if pseudo := pseudoRevision(bi.Main.Version); pseudo != "" {
			b.Commit = pseudo
		}
	}
	if b.Date == "" || b.Date == "unknown" {
		if t := settings["vcs.time"]; t != "" {
			b.Date = t
		}
	}
	return b
}

// pseudoRevision is the commit of a pseudo-version (v0.0.0-20261207083000-abcdef123456),
// what `go install module@commit` records instead of VCS settings.
func pseudoRevision(v string) string {
	v, _, _ = strings.Cut(v, "+")
	parts := strings.Split(v, "-")
	if len(parts) < 3 {
		return ""
	}
	rev := parts[len(parts)-1]
	if len(rev) != 12 || strings.Trim(rev, "0123456789abcdef") != "" {
		return ""
	}
	return rev
}

// Line is the one line `dsctl --version` prints.
func Line(b cmdutil.BuildInfo) string {
	i := Current(b)
	return "dsctl " + i.Version + " (commit " + i.Commit + ", built " + i.Date + ", " + i.GoVersion + ", " + i.Platform + ")"
}
