// Package version implements `dsctl version`.
package version

import (
	"runtime"

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
