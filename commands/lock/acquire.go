package lock

import (
	"context"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/supervisor"
)

// AcquireOptions are the flags and arguments of `dsctl lock acquire`.
type AcquireOptions struct {
	Name    string
	Backend backendFlags
	// For holds the lease in the foreground this long, then releases it (0: hold
	// only on backends whose leases live with the session, until ctrl-C/SIGTERM).
	For time.Duration
	// Detach asks for a lease that outlives this command on a backend whose leases
	// live with the session (ZooKeeper: a TTL node).
	Detach bool
	acquireFlags
}

func newAcquireCmd(f *cmdutil.Factory) *cobra.Command {
	o := &AcquireOptions{}
	cmd := &cobra.Command{
		Use:   "acquire NAME",
		Short: "Take a lease on a lock and print its holder token and fencing token",
		Long: `Take a lease on a lock and print the holder token, the fencing token and the
expiry.

On Redis the lease outlives this command until its TTL: renew it with
` + "`dsctl lock renew`" + ` and give it back with ` + "`dsctl lock release`" + ` (both need the
token). With -o env the output is shell assignments to eval; renew and release then
find the token in DSCTL_LOCK_TOKEN.

On ZooKeeper a lease is an ephemeral node: it lives as long as this process's
session. So acquire prints the lease at once and then holds it in the foreground,
renewing it, until ctrl-C or SIGTERM (or for --for DURATION), then releases it and
exits 0; exit 4 if the lease is lost meanwhile (session expired, lock broken, or the
ensemble unreachable until the lease's local end). Run your work with
` + "`dsctl lock run`" + ` instead, or keep acquire in the background, e.g.
  dsctl lock acquire nightly --backend zookeeper -o env > lease.env & holder=$!
or ask for a detached lease with --detach: the queue node is then a TTL node
(persistent-sequential with TTL; the servers must run with
-Dzookeeper.extendedTypesEnabled=true, else exit 2 saying so), acquire returns at
once as on Redis, and renew and release work with the token from any process.
ZooKeeper deletes a TTL node at its next container check after the TTL ran out
(zookeeper.containerCheckIntervalMs, 60s by default), so an abandoned detached lease
blocks others up to that much longer than its TTL. A waiting --detach acquire
rewrites its node every 250ms (TTL/3 if shorter) while it waits; if its process dies
while waiting, dsctl acquirers queued behind delete that node about 1.25s after it
stopped changing (Curator and kazoo acquirers wait for its TTL + the container
check). The TTL is timed on the ZooKeeper leader's wall clock
(from the node's last write): keep the ensemble's clocks in sync (NTP), since a new
leader whose clock runs ahead would end it early, and check DSCTL_LOCK_FENCE.

On MySQL and PostgreSQL in lease mode (--mode lease, the default) the lease is a row
that outlives this command until its TTL, as on Redis; its expiry is decided by the
database's clock. In session mode (--mode session) it is a GET_LOCK /
pg_try_advisory_lock held by this process's database connection: acquire holds it in
the foreground as on ZooKeeper (exit 4 if the connection is killed meanwhile), and
--detach is refused. --format shedlock takes the lock in an existing ShedLock table
(no fencing token).

--semaphore N (ZooKeeper only) lets up to N holders hold the lock at once; the
N+1th waits or gets exit 3. It cannot be combined with --detach (any N, and
--semaphore 1 on a semaphore's name: its lease lives with this process's session).

--for DURATION holds any lease in the foreground for that long, renewing it, then
releases it (ctrl-C releases it earlier), on Redis too.

--wait 0 fails at once when the lock is held (exit 3, naming the holder and its TTL
left); --wait 30s waits up to 30 s; --wait forever waits until ctrl-C. Waiters are
woken by the release (--wait-strategy notify) or retry every --poll-interval (poll).

The owner recorded is this host and user, the process that holds the lease (the
calling shell or script when acquire returns at once, dsctl itself when it holds in
the foreground) and the dsctl command line, plus --owner text.

JSON keys: name, token, fence (a string; absent when unsafe), fencing_safe, ttl_ms,
acquired_at, expires_at, owner {host, pid, user, command, label, tool},
backend {kind, mode, endpoints, fencing_safe, notify, detached}, note.`,
		Example: `  dsctl lock acquire nightly --ttl 10m --owner "nightly batch"
  eval "$(dsctl lock acquire nightly --ttl 10m -o env)" && ./batch.sh && dsctl lock release nightly
  dsctl lock acquire deploy --wait 2m -o json
  dsctl lock acquire maintenance --backend zookeeper --for 10m   # holds, then releases
  eval "$(dsctl lock acquire nightly --zk zk1:2181 --detach --ttl 10m -o env)"   # a TTL node
  DSCTL_SQL_DSN=postgres://app@db:5432/app dsctl lock acquire nightly --ttl 10m   # a lease row
  dsctl lock acquire report --backend mysql --mode session --for 5m   # GET_LOCK, held in the foreground
  dsctl lock acquire pool --zk zk1:2181 --semaphore 3   # one of 3 permits`,
		Args: oneName,
		RunE: runOnName(f, &o.Name, leaseFormats, func(ctx context.Context, p *output.Printer) error {
			return RunAcquire(ctx, f, p, o)
		}),
	}
	o.acquireFlags.register(cmd)
	cmd.Flags().BoolVar(&o.Detach, "detach", false, "let the lease outlive this command until its TTL (ZooKeeper: a TTL node; Redis and SQL lease-mode leases always do; refused in SQL session mode)")
	cmd.Flags().DurationVar(&o.For, "for", 0, "hold the lease in the foreground this long, renewing it, then release it (ZooKeeper always holds in the foreground: until ctrl-C without --for)")
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
	registerAcquireCompletions(cmd)
	cmdutil.SetOutputFormats(cmd, leaseFormats)
	return cmd
}

// RunAcquire takes the lease and prints it. On a backend whose leases live with the
// session (or with --for) it then holds the lease in the foreground until ctrl-C,
// SIGTERM (ctx ends) or --for, and releases it.
func RunAcquire(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *AcquireOptions) error {
	if o.For < 0 {
		return errs.Usage("--for must be positive, got %s", o.For).WithHint("e.g. --for 10m, or leave it out")
	}
	if o.For > 0 && o.Detach {
		return errs.Usage("--for holds the lease in the foreground, --detach leaves it behind").WithHint("drop one of them")
	}
	// A lease that outlives this process belongs to the script that called us. An
	// orphan (parent gone, re-parented to init) records its own pid instead.
	pid := os.Getppid()
	if pid <= 1 {
		pid = os.Getpid()
	}
	owner := lock.CurrentOwner(pid, lock.QuoteCommand(append([]string{"dsctl"}, os.Args[1:]...)), "", tool(f))
	opt, err := o.options(o.Name, owner)
	if err != nil {
		return err
	}
	if o.Detach && opt.Permits > 1 {
		return errs.Usage("--semaphore and --detach cannot be combined: a semaphore lease lives with this process's session").
			WithHint("drop --detach (acquire then holds in the foreground), or use lock run")
	}
	r, err := o.Backend.resolve(ctx, f)
	if err != nil {
		return err
	}
	if err := backends.CheckPermits(r.kind, r.opt, opt.Permits); err != nil {
		return err
	}
	desc := backends.Describe(r.kind, r.opt)
	if o.Detach && !desc.Detachable {
		hint := "drop --detach, or use lock run"
		if backends.IsSQL(r.kind) {
			hint = "use --mode lease (rows that outlive dsctl), or lock run"
		}
		return errs.Usage("--detach: a %s %s lease cannot outlive this process", r.kind, leaseMode(r)).WithHint("%s", hint)
	}
	l, err := openResolved(ctx, f, r)
	if err != nil {
		return err
	}
	defer l.Close()
	opt.Detached = o.Detach
	hold := o.For > 0 || (!desc.Detached && !o.Detach)
	if hold {
		opt.Owner.PID = os.Getpid() // this process holds it
	}
	opt.OnWait = onWait(f, o.Name, opt.Wait)
	lease, err := l.Acquire(ctx, o.Name, opt)
	if err != nil {
		return err
	}
	if !hold {
		return p.Print(LeaseView{lease})
	}
	if err := p.Print(LeaseView{lease}); err != nil {
		_ = l.Release(context.WithoutCancel(ctx), o.Name, lease.Token)
		return err
	}
	flush(f.IO.Out)
	until := "ctrl-C or SIGTERM"
	if o.For > 0 {
		until = "--for " + o.For.String() + " (or ctrl-C/SIGTERM)"
	}
	if desc.Detached {
		f.IO.Notef("lock %q: holding it in the foreground, renewing every %s, until %s; then it is released", o.Name,
			lock.RoundDuration(lease.TTL/3), until)
	} else {
		f.IO.Notef("lock %q: a %s lease lives as long as this process's %s: holding it in the foreground until %s; then it is released (exit 4 if it is lost meanwhile)",
			o.Name, strings.TrimSpace(string(r.kind)+" "+leaseMode(r)), sessionWord(r), until)
	}
	res, err := supervisor.Hold(ctx, supervisor.HoldOptions{Locker: l, Lease: lease, For: o.For,
		OnEvent: func(ev supervisor.Event) { f.IO.Debugf("lock acquire %s: %s %s", o.Name, ev.What, ev.Detail) }})
	if err != nil {
		return err
	}
	if res.ReleaseErr != nil {
		f.IO.Warnf("lock %q: could not release it (%v); it ends with the session or at its TTL", o.Name, res.ReleaseErr)
		return nil
	}
	f.IO.Notef("lock %q released (%s, held %s, %d renewals)", o.Name, res.Why, lock.RoundDuration(time.Since(lease.AcquiredAt)), res.Renewals)
	return nil
}

// flush pushes buffered output out now, so a reader sees the lease while it is held.
func flush(w io.Writer) {
	switch x := w.(type) {
	case interface{ Flush() error }:
		_ = x.Flush()
	case interface{ Sync() error }:
		_ = x.Sync()
	}
}

// leaseMode is "session" for an SQL session-mode lock ("" otherwise), for messages.
func leaseMode(r resolved) string {
	if backends.IsSQL(r.kind) && r.opt.Mode == backends.ModeSession {
		return "session-mode"
	}
	return ""
}

// sessionWord is what a lease that lives with this process lives with.
func sessionWord(r resolved) string {
	if backends.IsSQL(r.kind) {
		return "database connection"
	}
	return "session"
}
