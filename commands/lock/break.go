package lock

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// BreakOptions are the flags and arguments of `dsctl lock break`.
type BreakOptions struct {
	Name    string
	Force   bool
	Reason  string
	Backend backendFlags
}

func newBreakCmd(f *cmdutil.Factory) *cobra.Command {
	o := &BreakOptions{}
	cmd := &cobra.Command{
		Use:   "break NAME --force [--reason TEXT]",
		Short: "Delete a lock whoever holds it, and wake the waiters",
		Long: `Delete a lock whoever holds it, print the holder it had, and wake the waiters.
For dsctl locks the break is recorded (who, when, --reason) for a day: inspect shows
it, and the broken holder's renewal reports it (a ` + "`lock run`" + ` holder stops its
command and exits 4). Other libraries' locks (redsync, redislock, Redisson) can be
broken too; Redisson's waiters are sent its unlock message.

The holder may still be working: unless your storage checks fencing tokens, its
writes are no longer protected. So break needs --force; without it, exit 2.

` + infoKeys + ` Plus action: "broken".`,
		Example: `  dsctl lock break deploy-prod --force --reason "runner died, see INC-1234"`,
		Args:    oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunBreak(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "really break it (required)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, recorded with the break and shown to the broken holder")
	o.Backend.register(cmd)
	return cmd
}

// RunBreak breaks the lock and prints what it was.
func RunBreak(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *BreakOptions) error {
	if !o.Force {
		return errs.Usage("lock break deletes %q whoever holds it; its holder may still be working, and its writes are then unprotected unless your storage checks fencing tokens", o.Name).
			WithHint("check with `dsctl lock inspect %s`, then re-run with --force", o.Name)
	}
	if err := lock.ValidateLabel(o.Reason); err != nil {
		return errs.Usage("--reason is too long or has control characters")
	}
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.Break(ctx, o.Name, lock.BreakOptions{Reason: o.Reason, By: who()})
	if err != nil {
		return err
	}
	return p.Print(InfoView{Info: info, Action: "broken"})
}
