package lock

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
)

// completeLockName completes a lock name from `lock list` (held locks whose name
// starts with the word typed: found with SCAN on Redis, by walking --zk-root on
// ZooKeeper) on the backend the command would use (--backend, --redis, --zk, env or
// the context). Bounded by cmdutil.MaxCompletionWait.
func completeLockName(f *cmdutil.Factory, b *backendFlags) cobra.CompletionFunc {
	return f.Dynamic(func(ctx context.Context, toComplete string) ([]string, error) {
		// cobra's __complete parses list flags twice ([A A] for --redis A): read them once.
		once := *b
		once.Redis, once.ZK = cmdutil.Unique(b.Redis), cmdutil.Unique(b.ZK)
		r, err := once.resolve(ctx, f)
		if err != nil {
			return nil, err
		}
		l, err := backends.Open(ctx, f.CompletionDialer(), r.e, r.kind, r.opt) // the same backend as open, silent
		if err != nil {
			return nil, err
		}
		defer func() { _ = l.Close() }()
		infos, err := l.List(ctx, lock.ListOptions{Prefix: toComplete})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(infos))
		for _, in := range infos {
			names = append(names, in.Name)
		}
		return names, nil
	}, 0)
}

// registerAcquireCompletions completes the flags of acquire and run.
func registerAcquireCompletions(cmd *cobra.Command) {
	cmdutil.RegisterFlag(cmd, "wait-strategy", waitStrategies)
	cmdutil.RegisterFlag(cmd, "wait", cmdutil.Fixed("0\tfail at once if held", "30s\twait up to 30s", "5m\twait up to 5m", "forever\twait until it is free"))
}

var waitStrategies = cmdutil.Fixed("notify\twoken by the release", "poll\tretry every --poll-interval")
