package lock

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/lock"
)

// AcquireOptions are the flags and arguments of `dsctl lock acquire`.
type AcquireOptions struct {
	Name    string
	Backend backendFlags
	acquireFlags
}

func newAcquireCmd(f *cmdutil.Factory) *cobra.Command {
	o := &AcquireOptions{}
	cmd := &cobra.Command{
		Use:   "acquire NAME",
		Short: "Take a lease on a lock and print its holder token and fencing token",
		Long: `Take a lease on a lock and print the holder token, the fencing token and the
expiry. The lease outlives this command until its TTL: renew it with
` + "`dsctl lock renew`" + ` and give it back with ` + "`dsctl lock release`" + ` (both need the
token). With -o env the output is shell assignments to eval; renew and release then
find the token in DSCTL_LOCK_TOKEN.

--wait 0 fails at once when the lock is held (exit 3, naming the holder and its TTL
left); --wait 30s waits up to 30 s; --wait forever waits until ctrl-C. Waiters are
woken by the release (--wait-strategy notify) or retry every --poll-interval (poll).

The owner recorded is this host and user, the calling process (the shell or script
that will hold the lease) and the dsctl command line, plus --owner text.

JSON keys: name, token, fence (a string; absent when unsafe), fencing_safe, ttl_ms,
acquired_at, expires_at, owner {host, pid, user, command, label, tool},
backend {kind, mode, endpoints, fencing_safe, notify, detached}, note.`,
		Example: `  dsctl lock acquire nightly --ttl 10m --owner "nightly batch"
  eval "$(dsctl lock acquire nightly --ttl 10m -o env)" && ./batch.sh && dsctl lock release nightly
  dsctl lock acquire deploy --wait 2m -o json`,
		Args: oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			p, err := f.Printer(leaseFormats)
			if err != nil {
				return err
			}
			return RunAcquire(cmd.Context(), f, p, o)
		},
	}
	o.acquireFlags.register(cmd)
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
	registerAcquireCompletions(cmd)
	cmdutil.SetOutputFormats(cmd, leaseFormats)
	return cmd
}

// RunAcquire takes the lease and prints it.
func RunAcquire(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *AcquireOptions) error {
	// The lease outlives this process: its owner is the script that called us.
	// An orphan (parent gone, re-parented to init) records its own pid instead.
	pid := os.Getppid()
	if pid <= 1 {
		pid = os.Getpid()
	}
	owner := lock.CurrentOwner(pid, lock.QuoteCommand(append([]string{"dsctl"}, os.Args[1:]...)), "", tool(f))
	opt, err := o.options(o.Name, owner)
	if err != nil {
		return err
	}
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	opt.OnWait = onWait(f, o.Name, opt.Wait)
	lease, err := l.Acquire(ctx, o.Name, opt)
	if err != nil {
		return err
	}
	return p.Print(LeaseView{lease})
}
