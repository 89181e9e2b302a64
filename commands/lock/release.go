package lock

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/lock"
)

// ReleaseOptions are the flags and arguments of `dsctl lock release`.
type ReleaseOptions struct {
	Name    string
	Token   string
	Backend backendFlags
}

func newReleaseCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ReleaseOptions{}
	cmd := &cobra.Command{
		Use:   "release NAME [--token T]",
		Short: "Give a lease back (only with the holder's token)",
		Long: `Give a lease back and wake the waiters. Only the holder's token works (an atomic
compare-and-delete): with another token nothing changes, and the error (exit 4) says
who holds the lock now, or that it is free because the lease expired or was broken.

On ZooKeeper the holder token deletes the holder's node from any process (the holder
in the foreground then finds its lease gone: exit 4); ` + "`lock acquire`" + ` itself
releases its lease on ctrl-C.

The token comes from --token, or from DSCTL_LOCK_TOKEN when DSCTL_LOCK_NAME is NAME.

JSON keys: name, released, token.`,
		Example: `  dsctl lock release nightly --token 4f9c2d0e8a1b4c6d9e7f0a1b2c3d4e5f
  eval "$(dsctl lock acquire nightly -o env)"; ./batch.sh; dsctl lock release nightly`,
		Args: oneName,
		RunE: runOnName(f, &o.Name, output.Standard, func(ctx context.Context, p *output.Printer) error {
			return RunRelease(ctx, f, p, o)
		}),
	}
	cmd.Flags().StringVar(&o.Token, "token", "", "the holder token printed by acquire (default: $DSCTL_LOCK_TOKEN)")
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
	return cmd
}

// RunRelease releases the lease.
func RunRelease(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *ReleaseOptions) error {
	if err := lock.ValidateName(o.Name); err != nil {
		return err
	}
	token, err := tokenFor(f, o.Name, o.Token, "release")
	if err != nil {
		return err
	}
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Release(ctx, o.Name, token); err != nil {
		return err
	}
	return p.Print(ReleasedView{Name: o.Name, Released: true, Token: token})
}

// RenewOptions are the flags and arguments of `dsctl lock renew`.
type RenewOptions struct {
	Name    string
	Token   string
	TTL     time.Duration
	Backend backendFlags
}

func newRenewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &RenewOptions{}
	cmd := &cobra.Command{
		Use:   "renew NAME [--token T] [--ttl 30s]",
		Short: "Extend a lease (only with the holder's token)",
		Long: `Extend a lease to --ttl from now (an atomic compare-and-expire). Only the
holder's token works. A lease that already expired, was broken or taken by someone
else is never taken back: that is exit 4, saying why.

On ZooKeeper only the process that holds the lease renews it (the lease lives with its
session; ` + "`lock acquire`" + ` and ` + "`lock run`" + ` renew it themselves): from another
process renew says so (exit 2).

The token comes from --token, or from DSCTL_LOCK_TOKEN when DSCTL_LOCK_NAME is NAME.

JSON keys: as for acquire, without owner; acquired_at is when this renewal was sent.`,
		Example: `  dsctl lock renew nightly --ttl 10m
  while ./step.sh; do dsctl lock renew nightly --ttl 1m >/dev/null || exit 4; done`,
		Args: oneName,
		RunE: runOnName(f, &o.Name, leaseFormats, func(ctx context.Context, p *output.Printer) error {
			return RunRenew(ctx, f, p, o)
		}),
	}
	cmd.Flags().StringVar(&o.Token, "token", "", "the holder token printed by acquire (default: $DSCTL_LOCK_TOKEN)")
	cmd.Flags().DurationVar(&o.TTL, "ttl", lock.DefaultTTL, "new TTL, from now (min 100ms)")
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
	cmdutil.SetOutputFormats(cmd, leaseFormats)
	return cmd
}

// RunRenew extends the lease.
func RunRenew(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *RenewOptions) error {
	if err := lock.ValidateName(o.Name); err != nil {
		return err
	}
	if err := lock.ValidateTTL(o.TTL); err != nil {
		return err
	}
	token, err := tokenFor(f, o.Name, o.Token, "renew")
	if err != nil {
		return err
	}
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	lease, err := l.Renew(ctx, o.Name, token, o.TTL)
	if err != nil {
		return err
	}
	return p.Print(LeaseView{lease})
}
