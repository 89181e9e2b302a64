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
	IfToken string
	Raw     bool
	Backend backendFlags
}

func newBreakCmd(f *cmdutil.Factory) *cobra.Command {
	o := &BreakOptions{}
	cmd := &cobra.Command{
		Use:   "break NAME --force [--reason TEXT] [--if-token TOKEN] [--raw]",
		Short: "Delete a lock whoever holds it, and wake the waiters",
		Long: `Delete a lock whoever holds it, print the holder it had, and wake the waiters.
For dsctl locks the break is recorded (who, when, --reason) for a day: inspect shows
it, and the broken holder's renewal reports it (a ` + "`lock run`" + ` holder stops its
command and exits 4). Other libraries' locks (redsync, redislock, Redisson) can be
broken too; Redisson's waiters are sent its unlock message.

The holder may still be working: unless your storage checks fencing tokens, its
writes are no longer protected. So break needs --force; without it, exit 2.

On ZooKeeper, break deletes the holder's queue node (after writing the break record
on the lock node); the next waiter, watching that node, takes the lock. The holder's
session is not touched: it sees the break at its next renewal (a ` + "`lock run`" + ` or a
foreground ` + "`lock acquire`" + ` holder then stops and exits 4, told who broke it).
Only lock queue nodes are ever deleted; --raw changes nothing there.

Only locks are broken: a key counts as a lock when it matches a known format (see
` + "`dsctl lock inspect --help`" + `). Anything else, such as an application counter or a
cache entry that shares the name, is refused with exit 2 and left as it is; --raw
deletes it anyway, and is the only way to. In quorum mode every server is inspected
first: if the key is not a lock on even one of them, nothing is deleted on any.

--if-token TOKEN breaks the lock only while that holder token holds it (the token
from inspect's holder.token; for redislock also its whole value, for Redisson the
<client uuid>:<thread id> field; with --raw, the whole value of a string key). If
another token holds it, or nobody, nothing is deleted and break exits 4, naming the
current holder and its token. In quorum mode the token must hold a majority of the
servers, and only the servers it holds are touched. Each delete is a compare-and-delete
on the server, so a lock that changes hands between inspect and delete is left alone.

Exit codes: 0 broken, or nothing to break; 2 without --force, or the key is not a
lock and --raw was not given; 4 --if-token does not hold the lock; 6 the
backend unreachable.

` + infoKeys + `
Plus action: "broken" (a lock; nothing was there when held is false) or "deleted"
(--raw removed a key that was not a lock).`,
		Example: `  dsctl lock break deploy-prod --force --reason "runner died, see INC-1234"
  dsctl lock break deploy-prod --force --if-token 3f2a9c0d1b7e4c55a1e0c2b3d4f5a6b7
  dsctl lock break 'orders:lock:42' --force --raw   # an unidentified key: deleted as it is`,
		Args: oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if cmd.Flags().Changed("if-token") && o.IfToken == "" {
				return errs.Usage("--if-token needs the holder token to match").
					WithHint("take it from `dsctl lock inspect %s -o json` (holder.token), or leave --if-token out", lock.QuoteCommand([]string{o.Name}))
			}
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunBreak(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "really break it (required)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, recorded with the break and shown to the broken holder")
	cmd.Flags().StringVar(&o.IfToken, "if-token", "", "break only while this holder token holds the lock (else exit 4, nothing deleted)")
	cmd.Flags().BoolVar(&o.Raw, "raw", false, "also delete a key that is not a lock of any known format (refused otherwise, exit 2)")
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
	return cmd
}

// RunBreak breaks the lock and prints what it was.
func RunBreak(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *BreakOptions) error {
	if !o.Force {
		return errs.Usage("lock break deletes %q whoever holds it; its holder may still be working, and its writes are then unprotected unless your storage checks fencing tokens", o.Name).
			WithHint("check with `dsctl lock inspect %s`, then re-run with --force", lock.QuoteCommand([]string{o.Name}))
	}
	if err := lock.ValidateLabel(o.Reason); err != nil {
		return errs.Usage("--reason is too long or has control characters")
	}
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.Break(ctx, o.Name, lock.BreakOptions{Reason: o.Reason, By: who(), IfToken: o.IfToken, Raw: o.Raw})
	if err != nil {
		return err
	}
	action := "broken"
	if info.Format == lock.FormatNotALock {
		action = "deleted"
	}
	if info.Held && len(info.Queue) > 0 && info.Queue[0].Session != "" {
		f.IO.Notef("lock %q broken: the holder's session %s was not touched; it sees the break at its next renewal (a dsctl holder then stops, exit 4)",
			o.Name, info.Queue[0].Session)
	}
	return p.Print(InfoView{Info: info, Action: action})
}
