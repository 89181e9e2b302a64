package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// RunOptions are the flags and arguments of `dsctl lock run`.
type RunOptions struct {
	Name    string
	Command []string
	Shell   bool
	OnLost  string
	Grace   time.Duration
	Backend backendFlags
	acquireFlags
}

func newRunCmd(f *cmdutil.Factory) *cobra.Command {
	o := &RunOptions{}
	cmd := &cobra.Command{
		Use:   "run NAME [flags] -- COMMAND [ARGS...]",
		Short: "Run a command while holding a lock; stop it if the lock is lost",
		Long: `Take the lock, run COMMAND, renew the lease every TTL/3 while it runs, release it
when the command exits, and exit with the command's exit code.

The command is started directly, without a shell (use --shell to run COMMAND ARGS as
one sh -c script). It gets DSCTL_LOCK_NAME, DSCTL_LOCK_TOKEN and DSCTL_LOCK_FENCE (the
fencing token; absent in quorum mode) and dsctl's environment without the variable
holding the Redis password. SIGINT and SIGTERM are forwarded to it (when stdin is not
a terminal the command runs in its own process group and every process in it gets
them; on a terminal, ctrl-C reaches it directly).

If the lease is lost while the command runs (a renewal finds the lock expired, broken
or held by someone else, renewals fail until the lease runs out, or dsctl itself did
not run past the lease's end, e.g. stopped with SIGSTOP), --on-lost decides: term
(default) sends SIGTERM, then SIGKILL after --grace; kill sends SIGKILL at once;
ignore lets it finish. Then dsctl exits 4, saying when and why the lease was lost.

Exit codes: the command's own code (128+N if signal N ended it); 3 lock not acquired
within --wait; 4 lease lost; 6 Redis unreachable; 127 command not found, 126 not
executable (the lock is not taken then); 2 bad input; 130 interrupted while waiting.`,
		Example: `  dsctl lock run deploy-prod --ttl 30s --wait 10m -- ./deploy.sh --env prod
  dsctl lock run nightly --wait forever --shell -- 'pg_dump app | gzip > /backups/app.gz'
  dsctl lock run cron-report --on-lost kill --grace 2s -- python3 report.py`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errs.Usage("lock run needs a lock name, then -- and the command").
					WithHint("e.g. dsctl lock run deploy -- ./deploy.sh prod")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Command = args[0], args[1:]
			return RunRun(cmd.Context(), f, o)
		},
	}
	o.acquireFlags.register(cmd)
	cmd.Flags().BoolVar(&o.Shell, "shell", false, "run COMMAND ARGS as one script with sh -c")
	cmd.Flags().StringVar(&o.OnLost, "on-lost", "term", "when the lease is lost: term (SIGTERM, then SIGKILL after --grace), kill, or ignore")
	cmd.Flags().DurationVar(&o.Grace, "grace", 5*time.Second, "time between SIGTERM and SIGKILL when the lease is lost")
	o.Backend.register(cmd)
	return cmd
}

// RunRun runs the command under the lock. It prints nothing on stdout (that is the
// command's), and returns the command's exit code as errs.ExitStatus.
func RunRun(ctx context.Context, f *cmdutil.Factory, o *RunOptions) error {
	onLost, err := supervisor.ParseOnLost(o.OnLost)
	if err != nil {
		return err
	}
	if o.Grace <= 0 {
		return errs.Usage("--grace must be positive, got %s", o.Grace)
	}
	owner := lock.CurrentOwner(os.Getpid(), lock.QuoteCommand(o.Command), "", tool(f))
	opt, err := o.options(o.Name, owner)
	if err != nil {
		return err
	}
	l, e, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	opt.OnWait = onWait(f, o.Name, opt.Wait)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	res, err := supervisor.Run(ctx, supervisor.Options{
		Locker: l, Name: o.Name, Acquire: opt, Command: o.Command, Shell: o.Shell,
		OnLost: onLost, Grace: o.Grace, Env: childEnv(e.Redis),
		Stdin: f.IO.In, Stdout: f.IO.Out, Stderr: f.IO.ErrOut,
		Signals: sigs, Foreground: f.IO.StdinTTY,
		OnEvent: func(ev supervisor.Event) { f.IO.Debugf("lock run %s: %s %s", o.Name, ev.What, ev.Detail) },
	})
	var se *supervisor.StartError
	if errors.As(err, &se) {
		// Exit 127/126 as shells do; the message is printed here since an exit
		// status prints nothing of its own.
		fmt.Fprintf(f.IO.ErrOut, "error: lock run %s: %v (the lock was not kept)\n", o.Name, se)
		return &errs.ExitStatus{Code: se.Code}
	}
	if err != nil {
		return err
	}
	if res.ReleaseErr != nil {
		f.IO.Warnf("lock run %s: could not release the lock (%v); it ends at its TTL, within %s", o.Name, res.ReleaseErr, res.Lease.TTL)
	}
	err = res.Err()
	var st *errs.ExitStatus
	if errors.As(err, &st) && ctx.Err() != nil {
		// After a forwarded ctrl-C/SIGTERM the root would report "interrupted" (130);
		// the command's own exit code is what lock run promises.
		return &errs.Error{Kind: errs.KindInterrupted, Msg: "interrupted", Err: st}
	}
	return err
}
