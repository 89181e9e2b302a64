// Package ping implements `dsctl ping`: is each backend reachable, and what is it?
package ping

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/health"
)

// Backends ping knows.
var Backends = health.Backends

// Options are the flags and arguments of `dsctl ping`.
type Options struct {
	Backends []string
	Redis    []string
	ZK       []string
	Brokers  []string
}

// Results is what ping prints.
type Results []health.Result

// Table renders one row per endpoint, coloured by status.
func (rs Results) Table() *output.TableData {
	t := &output.TableData{Header: []string{"backend", "endpoint", "status", "latency", "detail"}, RightAlign: map[int]bool{3: true}}
	for _, r := range rs {
		status, detail := output.S("ok", output.OK), r.Detail
		switch r.State {
		case health.Degraded:
			status, detail = output.S("degraded", output.Warn), r.Warning+"; "+r.Detail
		case health.Unreachable:
			status, detail = output.S("FAIL", output.Error), r.Error
		}
		t.AddCells(output.C(r.Backend), output.C(r.Endpoint), status, output.C(fmt.Sprintf("%.1fms", r.LatencyMs)), output.C(detail))
	}
	return t
}

// NewCmd builds `dsctl ping`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "ping [redis|zookeeper|kafka|sql]...",
		Short: "Check that backends answer, and show what they are",
		Long: `Check that each backend answers within --timeout, and show what it is:
Redis PING and version (every address, since quorum mode uses independent servers),
ZooKeeper session and each server's mode, Kafka brokers and controller, and the SQL
server's version. The backends are checked at once, each within --timeout.

Status ok, degraded (it answers, but: a ZooKeeper member down or out of quorum, a
Kafka broker in the metadata that does not answer, a Redis replica cut off from its
master or still loading, a read-only SQL server; exit 0, the warning says what) or
FAIL (unreachable or refused).

Without arguments, ping checks every backend that is configured (by flag, env,
context or --sandbox); when nothing is configured it checks the built-in defaults of
Redis, ZooKeeper and Kafka. Exit 6 when any backend is unreachable.

JSON keys: backend, endpoint, ok, state (connected|degraded|unreachable), latency_ms,
version, detail, warning, error.`,
		Example: `  dsctl ping --sandbox
  dsctl ping kafka --brokers 127.0.0.1:9092
  DSCTL_SQL_DSN='postgres://app@db:5432/app' dsctl ping sql -o json`,
		ValidArgs: Backends,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				name := normalize(a)
				if name == "" {
					return errs.Usage("unknown backend %q", a).WithHint("choose from %s", strings.Join(Backends, ", "))
				}
				o.Backends = append(o.Backends, name)
			}
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return Run(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().StringSliceVar(&o.Redis, "redis", nil, "Redis addresses (overrides DSCTL_REDIS and the context)")
	cmd.Flags().StringSliceVar(&o.ZK, "zk", nil, "ZooKeeper servers (overrides DSCTL_ZK and the context)")
	cmd.Flags().StringSliceVar(&o.Brokers, "brokers", nil, "Kafka brokers (overrides DSCTL_KAFKA and the context)")
	return cmd
}

func normalize(s string) string {
	switch strings.ToLower(s) {
	case "redis":
		return "redis"
	case "zk", "zookeeper":
		return "zookeeper"
	case "kafka":
		return "kafka"
	case "sql", "mysql", "mariadb", "postgres", "postgresql":
		return "sql"
	}
	return ""
}

// Run checks the chosen backends (health.Check, as the TUI's overview does) and prints
// the results; the error (if any) carries the exit code of the worst failure.
func Run(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *Options) error {
	e, err := f.Endpoints(ctx, config.Overrides{Redis: o.Redis, ZooKeeper: o.ZK, Kafka: o.Brokers})
	if err != nil {
		return err
	}
	results := Results(health.Check(ctx, f.Dialer(), health.Targets{Endpoints: e, Backends: o.Backends, Unavailable: e.Unavailable}))
	if err := p.Print(results); err != nil {
		return err
	}
	if err := health.FirstError(results); err != nil {
		failed := 0
		for _, r := range results {
			if !r.OK {
				failed++
			}
		}
		return &errs.Partial{Kind: errs.KindOf(err), Failed: failed, Total: len(results), What: "endpoints"}
	}
	return nil
}
