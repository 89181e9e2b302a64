package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/bench"
)

// BenchOptions are the flags of `dsctl lock bench`.
type BenchOptions struct {
	Clients      int
	Ops          int
	TTL          time.Duration
	Hold         time.Duration
	Think        time.Duration
	Strategy     string
	PollInterval time.Duration
	Fair         bool
	Name         string
	Backend      backendFlags
}

func newBenchCmd(f *cmdutil.Factory) *cobra.Command {
	o := &BenchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [--clients 8] [--ops 2000] [--wait-strategy notify|poll]",
		Short: "Measure contended acquire/release: throughput, acquire and handoff latency, correctness",
		Long: `Run --clients clients, each with its own connections, taking and releasing one
lock --ops times in all. Report throughput, acquire latency, handoff latency (from a
holder sending its release to the next waiter holding the lock) and a correctness
check: never two holders at once, fencing tokens strictly increasing. Exit 1 if the
check fails.

--think makes each client work outside the lock between cycles: with 0 a client asks
again the moment it releases (with notify on one server it queues behind the waiters,
which are handed the lock in turn; an unfair lock would let it win again instead).
--wait-strategy poll retries every --poll-interval, as the common SET NX loop does,
for comparison.

JSON keys: backend, wait_strategy, poll_interval_ms, fair, clients, ops, hold_ms, think_ms,
elapsed_ms, throughput_ops_per_s, acquire_latency {count, p50_ms, p99_ms, max_ms},
handoff_latency {...}, overlaps, fence_violations, fencing_checked, ok.`,
		Example: `  dsctl lock bench --sandbox
  dsctl lock bench --redis 127.0.0.1:6379 --clients 8 --ops 2000 --think 1ms
  dsctl lock bench --wait-strategy poll --poll-interval 100ms --ops 200 -o json
  dsctl lock bench --zk zk1:2181,zk2:2181,zk3:2181 --clients 8 --ops 2000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunBench(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Clients, "clients", 8, "contending clients")
	fl.IntVar(&o.Ops, "ops", 2000, "acquire/release cycles in all")
	fl.DurationVar(&o.TTL, "ttl", 10*time.Second, "lease TTL")
	fl.DurationVar(&o.Hold, "hold", 0, "time each client holds the lock per cycle")
	fl.DurationVar(&o.Think, "think", 0, "time each client spends outside the lock between cycles")
	fl.StringVar(&o.Strategy, "wait-strategy", "notify", "notify or poll")
	fl.DurationVar(&o.PollInterval, "poll-interval", lock.DefaultPollInterval, "retry interval with --wait-strategy poll")
	fl.BoolVar(&o.Fair, "fair", false, "take the lock first come, first served (as lock acquire --fair)")
	fl.StringVar(&o.Name, "name", "", "lock name (default: dsctl-bench/ and a random suffix)")
	o.Backend.register(cmd)
	cmdutil.RegisterFlag(cmd, "wait-strategy", waitStrategies)
	return cmd
}

// RunBench runs the benchmark and prints the result.
func RunBench(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *BenchOptions) error {
	switch {
	case o.Clients < 1 || o.Clients > 1000:
		return errs.Usage("--clients must be between 1 and 1000, got %d", o.Clients)
	case o.Ops < o.Clients:
		return errs.Usage("--ops %d is fewer than --clients %d", o.Ops, o.Clients)
	case o.Hold < 0 || o.Think < 0:
		return errs.Usage("--hold and --think must not be negative")
	}
	if err := lock.ValidateTTL(o.TTL); err != nil {
		return err
	}
	strategy, err := lock.ParseStrategy(o.Strategy)
	if err != nil {
		return err
	}
	if err := lock.ValidatePollInterval(o.PollInterval); err != nil {
		return err
	}
	throwaway := o.Name == ""
	if throwaway {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Name = "dsctl-bench/" + hex.EncodeToString(b)
	}
	if err := lock.ValidateName(o.Name); err != nil {
		return err
	}
	r, err := o.Backend.resolve(ctx, f)
	if err != nil {
		return err
	}
	d := f.Dialer()
	if err := backends.Reach(ctx, d, r.kind, r.e, r.opt); err != nil {
		return err
	}
	opt := bench.Options{Clients: o.Clients, Ops: o.Ops, Name: o.Name, TTL: o.TTL, Hold: o.Hold, Think: o.Think,
		Strategy: strategy, PollInterval: o.PollInterval, Fair: o.Fair,
		NewLocker: func() (lock.Locker, error) { return backends.Open(ctx, d, r.e, r.kind, r.opt) }}
	if f.IO.StderrTTY {
		opt.Progress = func(done, total int) { fmt.Fprintf(f.IO.ErrOut, "\rlock bench: %d/%d cycles", done, total) }
	}
	res, err := bench.Run(ctx, opt)
	if f.IO.StderrTTY {
		fmt.Fprintln(f.IO.ErrOut)
	}
	if throwaway { // leave no fencing counter behind for a name nobody will use again
		purge(context.WithoutCancel(ctx), f, r, o.Name)
	}
	if err != nil {
		return err
	}
	if err := p.Print(BenchView{res}); err != nil {
		return err
	}
	if !res.OK {
		return errs.New(errs.KindRuntime, "lock bench: correctness check failed: %d overlaps, %d fencing tokens out of order", res.Overlaps, res.FenceViolations)
	}
	return nil
}

// purge deletes a throwaway lock's leftovers (best effort; see backends.Purge).
func purge(ctx context.Context, f *cmdutil.Factory, r resolved, name string) {
	l, err := backends.Open(ctx, f.Dialer(), r.e, r.kind, r.opt)
	if err != nil {
		return
	}
	defer l.Close()
	_ = backends.Purge(ctx, l, name)
}
