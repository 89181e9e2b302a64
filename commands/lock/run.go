package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// RunOptions are the flags and arguments of `dsctl lock run`.
type RunOptions struct {
	Name    string
	Command []string
	Shell   bool
	OnLost  string
	// Grace is --grace; zero when not given (then supervisor.DefaultGrace).
	Grace   time.Duration
	Backend backendFlags
	// Exit codes that replace dsctl's 3, 4 and 6, so a caller can tell them from the
	// command's own.
	ConflictExitCode    int
	LostExitCode        int
	UnreachableExitCode int
	acquireFlags
}

func newRunCmd(f *cmdutil.Factory) *cobra.Command {
	o := &RunOptions{}
	cmd := &cobra.Command{
		Use:   "run NAME [flags] -- COMMAND [ARGS...]",
		Short: "Run a command while holding a lock; stop it if the lock is lost",
		Long: `Take the lock, run COMMAND, renew the lease while it runs, release it when the
command exits, and exit with the command's exit code.

The command is started directly, without a shell (use --shell to run COMMAND ARGS as
one sh -c script). It gets DSCTL_LOCK_NAME, DSCTL_LOCK_TOKEN and DSCTL_LOCK_FENCE (the
fencing token; absent in quorum mode) and dsctl's environment without the variables
holding the backend's secrets (the Redis password variable and DSCTL_REDIS when it
is a URL with a password; the ZooKeeper digest password variable; DSCTL_SQL_DSN and
the DSN variable). SIGINT and SIGTERM are forwarded to it (when stdin is not
a terminal the command runs in its own process group and every process in it gets
them; on a terminal, ctrl-C reaches it directly).

The command never outlives the lease. dsctl renews every TTL/3 (retrying failures,
each attempt bounded), and its own clock alone decides when the command is stopped:
the lease ends, by dsctl's reckoning, TTL after the last successful renewal was sent
(less 1% for clock drift), and unless a renewal succeeds first
  --on-lost term (default)  SIGTERM at end - grace - margin, SIGKILL at end - margin
  --on-lost kill            SIGKILL at end - margin
  --on-lost ignore          the command runs on; the lease counts as lost at its end
where margin is TTL/20 (20ms to 1s). A renewal hung on a dead network delays nothing.
A renewal that finds the lease gone (broken, taken, expired on the server) acts at
once: SIGTERM, then SIGKILL at most --grace later (kill: SIGKILL at once). dsctl asks
the server who holds the lock only after the signals, then exits 4 saying when and why.
--grace defaults to 5s or TTL/4, whichever is less, and must be under TTL/2.

On ZooKeeper the lease also ends with dsctl's session, so when the session timeout
is shorter than --ttl, it is the lease's length above (renewals every third of it).
A lost connection is Curator's SUSPENDED: renewals fail, the command runs on, and the
lease ends by dsctl's clock a session timeout after the last renewal was sent, when
the server may expire the session; an expired session is LOST (stopped at once).

One risk no client can close: if dsctl itself is paused (SIGSTOP, a frozen VM or
container, a machine suspend) while the command keeps running, nothing stops the
command until dsctl runs again; it then kills it at once and reports that it did
not run past the lease's end. A storage that checks DSCTL_LOCK_FENCE (refusing a
token lower than one it has seen) rejects the command's writes in that window:
use the fencing token wherever the work must not overlap.

Exit codes: the command's own code (128+N if signal N ended it); 3 lock not acquired
within --wait (--conflict-exit-code); 4 lease lost (--lost-exit-code); 6 the
backend unreachable, the command did not run (--unreachable-exit-code); 127 command not found,
126 not executable (the lock is not taken then); 2 bad input; 130 interrupted while
waiting. Set the three codes to values your command never uses to tell them apart,
as flock -E does; --conflict-exit-code 0 skips quietly when the lock is busy.`,
		Example: `  dsctl lock run deploy-prod --ttl 30s --wait 10m -- ./deploy.sh --env prod
  dsctl lock run nightly --wait forever --shell -- 'pg_dump app | gzip > /backups/app.gz'
  dsctl lock run cron-report --on-lost kill -- python3 report.py
  dsctl lock run hourly --conflict-exit-code 0 --lost-exit-code 75 -- ./hourly.sh   # busy: skip quietly`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errs.Usage("lock run needs a lock name, then -- and the command").
					WithHint("e.g. dsctl lock run deploy -- ./deploy.sh prod")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Command = args[0], args[1:]
			if cmd.Flags().Changed("grace") && o.Grace == 0 {
				return errs.Usage("--grace must be positive, got 0").WithHint("leave it out for the default (5s or TTL/4, whichever is less)")
			}
			return RunRun(cmd.Context(), f, o)
		},
	}
	o.acquireFlags.register(cmd)
	cmd.Flags().BoolVar(&o.Shell, "shell", false, "run COMMAND ARGS as one script with sh -c")
	cmd.Flags().StringVar(&o.OnLost, "on-lost", "term", "when the lease cannot be kept: term (SIGTERM, then SIGKILL --grace later, before the lease ends), kill, or ignore")
	cmd.Flags().DurationVar(&o.Grace, "grace", 0, "time between SIGTERM and SIGKILL; default 5s or TTL/4, whichever is less; must be under TTL/2")
	cmd.Flags().IntVar(&o.ConflictExitCode, "conflict-exit-code", 3, "exit code when the lock is not acquired within --wait (0-255; 0 skips quietly)")
	cmd.Flags().IntVar(&o.LostExitCode, "lost-exit-code", 4, "exit code when the lease is lost while the command runs (1-255)")
	cmd.Flags().IntVar(&o.UnreachableExitCode, "unreachable-exit-code", 6, "exit code when the backend cannot be reached to take the lock (1-255)")
	o.Backend.register(cmd)
	names := completeLockName(f, &o.Backend)
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return names(cmd, args, toComplete)
		}
		return nil, cobra.ShellCompDirectiveDefault // the command to run and its arguments
	}
	registerAcquireCompletions(cmd)
	cmdutil.RegisterFlag(cmd, "on-lost", cmdutil.Fixed("term\tSIGTERM, then SIGKILL --grace later", "kill\tSIGKILL before the lease ends", "ignore\tlet the command run on"))
	cmdutil.SetOutputFormats(cmd, nil)
	return cmd
}

// RunRun runs the command under the lock. It prints nothing on stdout (that is the
// command's), and returns the command's exit code as errs.ExitStatus.
func RunRun(ctx context.Context, f *cmdutil.Factory, o *RunOptions) error {
	onLost, err := supervisor.ParseOnLost(o.OnLost)
	if err != nil {
		return err
	}
	if o.Grace < 0 {
		return errs.Usage("--grace must be positive, got %s", o.Grace)
	}
	if err := o.checkExitCodes(); err != nil {
		return err
	}
	owner := lock.CurrentOwner(os.Getpid(), lock.QuoteCommand(o.Command), "", tool(f))
	opt, err := o.options(o.Name, owner)
	if err != nil {
		return err
	}
	l, r, err := open(ctx, f, o.Backend)
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
		OnLost: onLost, Grace: o.Grace, Env: backends.OSChildEnv(r.kind, r.e),
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
		return o.exitCode(f, err)
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
	return o.exitCode(f, err)
}

// checkExitCodes checks the exit-code flags before anything else happens.
func (o *RunOptions) checkExitCodes() error {
	for _, c := range []struct {
		flag string
		code int
		min  int
		why  string
	}{
		{"--conflict-exit-code", o.ConflictExitCode, 0, "an exit status is 0-255"},
		{"--lost-exit-code", o.LostExitCode, 1, "0 would report a lost lease as success"},
		{"--unreachable-exit-code", o.UnreachableExitCode, 1, "0 would report a command that never ran as success"},
	} {
		if c.code < c.min || c.code > 255 {
			return errs.Usage("%s %d is out of range", c.flag, c.code).WithHint("use %d-255 (%s)", c.min, c.why)
		}
	}
	return nil
}

// exitCode applies --conflict-exit-code, --lost-exit-code and --unreachable-exit-code:
// the message is printed here (an exit status prints nothing of its own) and the
// chosen code returned. With --conflict-exit-code 0 the message is only shown on a
// terminal or with -v, so a cron job that finds the lock busy stays quiet.
func (o *RunOptions) exitCode(f *cmdutil.Factory, err error) error {
	var code, std int
	switch errs.KindOf(err) {
	case errs.KindLockNotAcquired:
		code, std = o.ConflictExitCode, 3
	case errs.KindLockLost:
		code, std = o.LostExitCode, 4
	case errs.KindUnreachable:
		code, std = o.UnreachableExitCode, 6
	default:
		return err
	}
	var st *errs.ExitStatus
	if code == std || errors.As(err, &st) {
		return err
	}
	msg := strings.TrimSpace(err.Error())
	if code == 0 {
		f.IO.Infof("lock run %s: not run: %s (exit 0: --conflict-exit-code 0)", o.Name, msg)
	} else {
		fmt.Fprintf(f.IO.ErrOut, "error: %s\n", msg)
	}
	return &errs.ExitStatus{Code: code}
}
