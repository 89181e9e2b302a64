// Package tui implements `dsctl tui`: it resolves the endpoints, starts the sandbox
// when asked, and runs the dashboard of the tui package on the terminal.
package tui

import (
	"context"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/health"
	dash "github.com/dsctl/dsctl/tui"
)

// Options are the flags of `dsctl tui`.
type Options struct {
	Refresh  time.Duration
	ReadOnly bool
	Redis    []string
	ZK       []string
	Brokers  []string
	Pane     string
}

// NewCmd builds `dsctl tui`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "A live dashboard of locks, Kafka, ZooKeeper, hash rings and IDs",
		Long: `A live dashboard over every configured backend, in six panes:

  1 Overview   each backend connected / degraded / unreachable, latency, version;
               locks held, audit findings by severity, the ZooKeeper verdict
  2 Locks      every lock: holder, TTL counting down, fencing token, waiters;
               inspect, break (after typing the lock's name), hand-over history
  3 Kafka      audit by severity, topics (filter with /), partitions (leader,
               replicas, ISR), what losing each broker would do, consumer-group lag
  4 ZooKeeper  ensemble state per member, a tree browser, a live watch of chosen
               znodes with gaps marked
  5 Ring       add and remove nodes, change vnodes and algorithm: load per node
               beside the ideal, and the keys each change moved
  6 IDs        paste a snowflake ID, UUID, ULID or KSUID: decoded under every
               layout, most plausible first

A backend that is down never stops the dashboard: it gets a banner and is retried
with backoff (the interval doubled per failure, at most 30s). Data refreshes every
--refresh (at least 500ms; the Kafka audit every second interval); a refresh still
running is never started twice. Endpoints resolve as for every command (flags, env,
context, defaults); --sandbox starts embedded Redis, Kafka and ZooKeeper.
--read-only removes every key that changes a backend.

Needs a terminal of at least 80x24; works without colour (NO_COLOR, --no-color).

Keys:
` + indent(dash.KeysHelp(false)),
		Example: `  dsctl tui --sandbox
  dsctl tui --read-only --refresh 5s
  dsctl tui --redis 10.0.0.5:6379 --brokers kafka-1:9092 --zk zk-1:2181 --pane kafka`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmdutil.Context(cmd), f, o)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.Refresh, "refresh", 2*time.Second, "how often to refresh the data (at least 500ms)")
	fl.BoolVar(&o.ReadOnly, "read-only", false, "hide and disable every action that changes a backend (breaking a lock)")
	fl.StringSliceVar(&o.Redis, "redis", nil, "Redis addresses (overrides DSCTL_REDIS and the context)")
	fl.StringSliceVar(&o.ZK, "zk", nil, "ZooKeeper servers (overrides DSCTL_ZK and the context)")
	fl.StringSliceVar(&o.Brokers, "brokers", nil, "Kafka brokers (overrides DSCTL_KAFKA and the context)")
	fl.StringVar(&o.Pane, "pane", "overview", "pane to open first: "+strings.ToLower(strings.Join(dash.PaneOrder, ", ")))
	cmdutil.RegisterFlag(cmd, "pane", cmdutil.Fixed(lowered(dash.PaneOrder)...))
	cmd.Annotations = cmdutil.PrintsNoData()
	return cmd
}

func lowered(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// Run checks the options, resolves the endpoints and runs the dashboard until q.
func Run(ctx context.Context, f *cmdutil.Factory, o *Options) error {
	if o.Refresh < dash.MinRefresh {
		return errs.Usage("--refresh %s is below the floor of %s", o.Refresh, dash.MinRefresh).
			WithHint("faster refreshes only load the backends; use e.g. --refresh 1s")
	}
	pane := ""
	for _, p := range dash.PaneOrder {
		if strings.EqualFold(p, o.Pane) || (strings.EqualFold(o.Pane, "zk") && p == dash.PaneZK) {
			pane = p
		}
	}
	if pane == "" {
		return errs.Usage("unknown pane %q", o.Pane).WithHint("choose from %s", strings.Join(lowered(dash.PaneOrder), ", "))
	}
	if !f.IO.StdoutTTY || !f.IO.StdinTTY {
		return errs.Usage("dsctl tui needs a terminal (stdin and stdout)").
			WithHint("for scripts use the commands it is built on: dsctl ping, lock list, kafka audit, zk status")
	}
	e, err := f.Endpoints(ctx, config.Overrides{Redis: o.Redis, ZooKeeper: o.ZK, Kafka: o.Brokers})
	if err != nil {
		return err
	}
	// Warnings must not scribble over the dashboard: they are shown after it ends.
	var warnMu sync.Mutex
	var warnings []string
	d := endpoint.Dialer{Timeout: f.Timeout(), Warn: func(m string) {
		warnMu.Lock()
		defer warnMu.Unlock()
		if !slices.Contains(warnings, m) {
			warnings = append(warnings, m)
		}
	}}
	live := dash.NewLive(e, d, Configured(e), breaker())
	defer live.Close()
	if f.IO.NoColor {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	title := "dsctl tui"
	if f.Sandbox != nil {
		title += " · sandbox"
	}
	if e.Context != "" {
		title += " · " + e.Context
	}
	err = dash.Run(dash.Config{Backend: live, Refresh: o.Refresh, ReadOnly: o.ReadOnly, Title: title, Ctx: runCtx, StartPane: pane},
		tea.WithContext(ctx)) // the terminal itself: f.IO.Out is wrapped (it counts bytes) and would hide the TTY
	for _, w := range warnings {
		f.IO.Warnf("%s", w)
	}
	if err != nil && ctx.Err() != nil {
		return errs.New(errs.KindInterrupted, "tui: interrupted").Wrap(err)
	}
	if err != nil {
		return errs.New(errs.KindRuntime, "tui: %v", err).Wrap(err)
	}
	return nil
}

// Configured lists the backends the dashboard shows: those set by flag, env, context
// or the sandbox (with none, the defaults of Redis, ZooKeeper and Kafka), less those
// this run cannot use (the sandbox has no SQL).
func Configured(e config.Endpoints) []string {
	var out []string
	for _, b := range health.Configured(e) {
		if e.Unavailable[b] == nil {
			out = append(out, b)
		}
	}
	return out
}

// breaker is user@host, recorded with a lock break.
func breaker() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
