// Package commands wires dsctl's cobra commands: flags become an Options struct, a run
// function calls a probe, and the printer renders the result. No domain logic lives here.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/configcmd"
	"github.com/dsctl/dsctl/commands/id"
	"github.com/dsctl/dsctl/commands/kafka"
	"github.com/dsctl/dsctl/commands/lock"
	"github.com/dsctl/dsctl/commands/ping"
	"github.com/dsctl/dsctl/commands/ring"
	"github.com/dsctl/dsctl/commands/sandboxcmd"
	tuicmd "github.com/dsctl/dsctl/commands/tui"
	"github.com/dsctl/dsctl/commands/version"
	"github.com/dsctl/dsctl/commands/zk"
	"github.com/dsctl/dsctl/internal/term"
	"github.com/dsctl/dsctl/probes/errs"
)

// NewRoot builds the dsctl command tree on the factory's streams.
func NewRoot(f *cmdutil.Factory) *cobra.Command {
	g := &f.Global
	root := &cobra.Command{
		Use:   "dsctl",
		Short: "Operate distributed systems: locks, Kafka durability, ZooKeeper, IDs, hash rings, a dashboard",
		Long: `dsctl is one binary for operating the distributed plumbing behind a backend:
distributed locks with fencing tokens on Redis, ZooKeeper, MySQL/MariaDB and
PostgreSQL, Kafka durability audits, ZooKeeper inspection and gap-free watches,
snowflake IDs and UUIDs, consistent-hash rings, reachability checks, and a live
dashboard over all of it (dsctl tui).

Try it with no infrastructure: dsctl tui --sandbox, or any command that needs Redis,
Kafka or ZooKeeper with --sandbox, which starts embedded servers for the length of the
command.

Endpoints come from, highest first: command flags, the environment (DSCTL_REDIS,
DSCTL_ZK, DSCTL_KAFKA, DSCTL_SQL_DSN), the current context of the config file
(--config, $DSCTL_CONFIG, $XDG_CONFIG_HOME/dsctl/config.yaml), then built-in defaults.

` + ExitCodesHelp(),
		Example: `  dsctl ping --sandbox
  dsctl config set-context local --redis 127.0.0.1:6379 --brokers 127.0.0.1:9092 --use
  dsctl version -o json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.Context, "context", "", "context from the config file to use (default: the file's current_context; env DSCTL_CONTEXT)")
	pf.StringVar(&g.ConfigPath, "config", "", "config file (default: $DSCTL_CONFIG, else $XDG_CONFIG_HOME/dsctl/config.yaml)")
	pf.StringVarP(&g.Output, "output", "o", "", "output format: table|json|yaml (jsonl for streams; each command's help lists its own)")
	pf.DurationVar(&g.Timeout, "timeout", 5*time.Second, "timeout for every network call")
	pf.BoolVar(&g.NoColor, "no-color", false, "disable colour (also NO_COLOR)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "print connection details on stderr: addresses dialed, TLS and auth in use (never secrets), time per attempt")
	pf.BoolVar(&g.Sandbox, "sandbox", false, "run against embedded in-process Redis, 3-broker Kafka and ZooKeeper servers (no SQL)")

	root.Version = version.Line(f.Build) // dsctl --version
	root.SetVersionTemplate("{{.Version}}\n")

	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(cmdutil.FlagError)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		f.PreRunStarted = true
		if g.NoColor {
			f.IO.NoColor = true
		}
		f.IO.Verbose = g.Verbose
		if g.Timeout <= 0 {
			return errs.Usage("--timeout must be positive, got %s", g.Timeout)
		}
		// cobra checks these after PersistentPreRunE; checking here makes them usage errors.
		if err := cmd.ValidateRequiredFlags(); err != nil {
			return errs.Usage("%v", err).WithHint("see '%s --help'", cmd.CommandPath())
		}
		if err := cmd.ValidateFlagGroups(); err != nil {
			return errs.Usage("%v", err).WithHint("see '%s --help'", cmd.CommandPath())
		}
		return nil
	}

	root.AddCommand(
		version.NewCmd(f),
		configcmd.NewCmd(f),
		ping.NewCmd(f),
		sandboxcmd.NewCmd(f),
		id.NewCmd(f),
		kafka.NewCmd(f),
		lock.NewCmd(f),
		ring.NewCmd(f),
		zk.NewCmd(f),
		tuicmd.NewCmd(f),
	)
	root.CompletionOptions.HiddenDefaultCmd = false
	strictCompletion(root)
	cmdutil.InstallCompletions(root, f)
	return root
}

// strictCompletion makes `dsctl completion SHELL` refuse a shell it cannot generate
// for (cobra prints help and exits 0).
func strictCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	var comp *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			comp = c
		}
	}
	if comp == nil {
		return
	}
	var shells []string
	for _, c := range comp.Commands() {
		shells = append(shells, c.Name())
	}
	comp.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return errs.Usage("unknown shell %q", args[0]).WithHint("supported shells: %s", strings.Join(shells, ", "))
		}
		return nil
	}
	comp.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// Execute runs the root command and returns the error to report (already classified).
func Execute(ctx context.Context, f *cmdutil.Factory, root *cobra.Command, args []string) error {
	root.SetArgs(args)
	defer f.Close()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var e *errs.Error
	var st *errs.ExitStatus
	if ctx.Err() != nil && errs.KindOf(err) == errs.KindRuntime && !errors.As(err, &st) {
		// A child's own exit status (lock run) stays as it is even after ctrl-C.
		return errs.New(errs.KindInterrupted, "interrupted").Wrap(err)
	}
	var p *errs.Partial
	if !f.PreRunStarted && !errors.As(err, &e) && !errors.As(err, &st) && !errors.As(err, &p) {
		// cobra rejected the command line before any dsctl code ran: unknown command,
		// wrong number of arguments. The help to see is that of the command it stopped
		// at (dsctl kafka bogus: dsctl kafka --help).
		path, msg := "dsctl", strings.TrimSpace(err.Error())
		if cmd != nil {
			path = cmd.CommandPath()
			var bad string
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only when it suggests itself
			}
			if _, scanErr := fmt.Sscanf(msg, "unknown command %q", &bad); scanErr == nil && !strings.Contains(msg, "Did you mean") {
				if s := cmd.SuggestionsFor(bad); len(s) > 0 {
					msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
				}
			}
		}
		return errs.Usage("%s", msg).WithHint("see '%s --help'", path)
	}
	return err
}

// PrintError writes the error on stderr in one line (nothing for a passed-through
// exit status).
func PrintError(w io.Writer, color bool, err error) {
	var st *errs.ExitStatus
	if err == nil || errors.As(err, &st) {
		return
	}
	fmt.Fprintln(w, term.Paint("error:", term.Error, color)+" "+strings.TrimSpace(err.Error()))
}
