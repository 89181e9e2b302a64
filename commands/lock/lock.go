// Package lock wires `dsctl lock`: acquire, run, renew, release, inspect, list, break,
// bench and verify. Flags become Options, a run function calls the probes (probes/lock,
// backends.Open for the Locker of whichever backend, supervisor, bench, verify), and
// the printer renders the typed result.
package lock

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
)

// NewCmd builds `dsctl lock`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Take, hold, inspect and break distributed locks (Redis, ZooKeeper, MySQL, PostgreSQL), with fencing tokens",
		Long: `Take, hold, inspect and break distributed locks, with fencing tokens.

A lock is a lease: it has a holder token (needed to renew or release it), a fencing
token that is larger for every new holder (give it to your storage so it can refuse
writes from a holder that lost the lease without knowing), and a TTL after which the
backend drops it unless renewed. Waiters are woken by the release where the backend
can (Redis pub/sub, ZooKeeper watches, PostgreSQL LISTEN/NOTIFY, MySQL GET_LOCK);
MySQL lease rows are retried with capped exponential backoff and jitter.

Backends:
  redis      one address (--redis, DSCTL_REDIS or the context's redis.addrs) is a
             single server; several are independent masters used as a quorum
             (Redlock: a majority must agree; such leases have no safe fencing token).
             A lease outlives the command that took it, until its TTL.
  zookeeper  --zk, DSCTL_ZK or the context's zookeeper.servers; locks live under
             --zk-root (/dsctl/locks), Apache Curator InterProcessMutex-compatible
             (protected ephemeral-sequential nodes, each waiter watches only its
             predecessor); the fence is the holder node's czxid. A lease lives with
             dsctl's session (timeout: the context's zookeeper.session_timeout, 10s
             by default, as the server grants it): ` + "`lock acquire`" + ` holds it in the
             foreground, or --detach makes it a TTL node. Digest auth: the context's
             zookeeper.digest_user and digest_password. --semaphore N lets N holders
             in at once (Curator InterProcessSemaphoreV2 layout).
  mysql, postgres
             MySQL/MariaDB or PostgreSQL, from DSCTL_SQL_DSN or the context's sql.dsn
             (an env var or a file: never a flag, never printed; -v shows host and
             user only). Which one is read from the DSN. Two modes:
             --mode lease (default): one row per lock in a table (dsctl_locks, or
             --table NAME), created once with ` + "`dsctl lock sql init`" + ` (--print
             shows the DDL for a DBA). Taken and taken over by one statement that
             compares expiry by the DATABASE's clock, never the client's; every grant
             increments the row's fencing counter. A lease outlives the command, like
             a Redis key.
             --mode session: GET_LOCK on MySQL, pg_try_advisory_lock on PostgreSQL
             (key: the first 8 bytes of SHA-256("dsctl:" + name) as a signed
             int64), held by dsctl's connection, so ` + "`lock acquire`" + ` holds it in the
             foreground as on ZooKeeper and ` + "`lock run`" + ` is the natural use; the
             fence comes from the same table's counter. A connection killed
             server-side is a lost lock (exit 4).
             --format shedlock takes and releases locks in an existing ShedLock table
             (shedlock(name, lock_until, locked_at, locked_by); no fencing token), so
             a shell job and a Spring service using ShedLock exclude each other.
             inspect and list also read ShedLock and unique-key tables (--table), and
             name the sessions holding PostgreSQL advisory and MySQL user locks.
             No semaphores.

` + backends.PickRule + `
When several backends are configured and none is chosen, dsctl warns on stderr: two
hosts whose configurations differ would take the same lock on different systems.

` + "`lock verify`" + ` checks, Jepsen-style and with injected faults, that the lock you depend on
actually excludes.

Exit codes: 3 lock not acquired (held by someone else for the whole --wait), 4 lock
lost or not held by the given token, 5 ` + "`lock verify`" + ` found a violation, 6 the
backend is unreachable, 2 bad input (an unknown --backend, --mode on a backend that
is not SQL, --semaphore where semaphores are not supported, a missing SQL lock
table: run ` + "`dsctl lock sql init`" + `); ` + "`lock run`" + ` passes its command's exit code
through (its own 3, 4 and 6 can be changed with --conflict-exit-code,
--lost-exit-code and --unreachable-exit-code).`,
		Example: `  dsctl lock run deploy-prod --ttl 30s --wait 5m -- ./deploy.sh prod
  eval "$(dsctl lock acquire nightly -o env)"; ./job.sh; dsctl lock release nightly
  dsctl lock inspect deploy-prod
  dsctl lock run deploy-prod --zk zk1:2181,zk2:2181,zk3:2181 -- ./deploy.sh prod
  dsctl lock acquire maintenance --backend zookeeper --sandbox --for 1m
  dsctl lock run batch --zk zk1:2181 --semaphore 3 -- ./worker.sh
  export DSCTL_SQL_DSN='postgres://app@db:5432/app'   # or a file: see dsctl config
  dsctl lock sql init && dsctl lock run nightly --backend postgres -- ./nightly.sh
  dsctl lock run report --backend mysql --mode session -- ./report.sh
  dsctl lock run cleanup --backend postgres --format shedlock --ttl 10m -- ./cleanup.sh
  dsctl lock list --prefix deploy
  dsctl lock break deploy-prod --force --reason "host died"
  dsctl lock bench --sandbox
  dsctl lock verify --redis 127.0.0.1:6379 --duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newAcquireCmd(f),
		newRunCmd(f),
		newRenewCmd(f),
		newReleaseCmd(f),
		newInspectCmd(f),
		newListCmd(f),
		newBreakCmd(f),
		newBenchCmd(f),
		newVerifyCmd(f),
		newSQLCmd(f),
	)
	return cmd
}

// backendFlags are the backend and endpoint flags every lock command has.
type backendFlags struct {
	Backend string
	Redis   []string
	ZK      []string
	ZKRoot  string
	// SQL only: --mode, --table, --format.
	Mode   string
	Table  string
	Format string
	// quiet: no warnings (shell completion).
	quiet bool
}

func (b *backendFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&b.Backend, "backend", "", "lock backend: redis, zookeeper, mysql or postgres (default: the one configured, see `dsctl lock --help`; env "+backends.EnvBackend+")")
	fl.StringSliceVar(&b.Redis, "redis", nil,
		"Redis address(es); several = independent masters, quorum mode (overrides DSCTL_REDIS and the context)")
	fl.StringSliceVar(&b.ZK, "zk", nil, "ZooKeeper servers host:port,... (overrides DSCTL_ZK and the context; implies --backend zookeeper)")
	fl.StringVar(&b.ZKRoot, "zk-root", backends.DefaultZKRoot, "ZooKeeper node under which the locks live")
	fl.StringVar(&b.Mode, "mode", "", "SQL locks: lease (rows with a database-clock expiry; default) or session (GET_LOCK / pg_advisory_lock held by dsctl's connection)")
	fl.StringVar(&b.Table, "table", "", "SQL locks: the lock table (default "+backends.DefaultSQLTable+", or shedlock with --format shedlock); inspect and list also read ShedLock and unique-key tables")
	fl.StringVar(&b.Format, "format", "", "SQL locks: dsctl (default), shedlock (take and release locks in an existing ShedLock table) or unique-key (inspect, list and break --raw of a classic unique-key table given by --table)")
	registerBackendCompletions(cmd)
}

// registerBackendCompletions completes --backend, --mode and --format.
func registerBackendCompletions(cmd *cobra.Command) {
	if cmd.Flags().Lookup("backend") != nil {
		cmdutil.RegisterFlag(cmd, "backend", cmdutil.Fixed("redis\tRedis, single server or quorum", "zookeeper\tZooKeeper ensemble (Curator-compatible)",
			"mysql\tMySQL/MariaDB (DSCTL_SQL_DSN)", "postgres\tPostgreSQL (DSCTL_SQL_DSN)"))
	}
	if cmd.Flags().Lookup("mode") != nil {
		cmdutil.RegisterFlag(cmd, "mode", cmdutil.Fixed("lease\tSQL rows with a database-clock expiry (outlive dsctl)",
			"session\tGET_LOCK / pg_advisory_lock held by dsctl's connection"))
	}
	if cmd.Flags().Lookup("format") != nil {
		cmdutil.RegisterFlag(cmd, "format", cmdutil.Fixed("dsctl\tdsctl's lease table (fencing tokens)", "shedlock\tan existing ShedLock table (no fencing token)", "unique-key\ta classic unique-key table (inspect, list, break --raw)"))
	}
}

// resolved is a command's backend choice: the endpoints, the kind, its options.
type resolved struct {
	e    config.Endpoints
	kind backends.Kind
	opt  backends.Options
}

// resolve reads the backend flags (before any connection, so bad input changes
// nothing), resolves the endpoints and picks the backend.
func (b *backendFlags) resolve(ctx context.Context, f *cmdutil.Factory) (resolved, error) {
	from := "--backend"
	raw := b.Backend
	if raw == "" {
		raw, from = f.Getenv(backends.EnvBackend), backends.EnvBackend
	}
	kind, err := backends.ParseKind(raw)
	if err != nil {
		if from == backends.EnvBackend {
			return resolved{}, errs.Usage("%s=%s: unknown lock backend", backends.EnvBackend, raw).WithHint("use one of: redis, zookeeper, mysql, postgres")
		}
		return resolved{}, err
	}
	if b.ZKRoot == "" {
		b.ZKRoot = backends.DefaultZKRoot
	}
	x := backends.Explicit{Backend: kind, BackendFrom: from, Redis: len(cmdutil.Unique(b.Redis)) > 0, ZooKeeper: len(cmdutil.Unique(b.ZK)) > 0}
	e, err := f.Endpoints(ctx, config.Overrides{Redis: b.Redis, ZooKeeper: b.ZK})
	if err != nil {
		return resolved{}, err
	}
	kind, err = backends.Pick(e, x)
	if err != nil {
		return resolved{}, err
	}
	opt := backends.Options{ZKRoot: b.ZKRoot, Mode: backends.Mode(strings.ToLower(b.Mode)), Table: b.Table, Format: lock.Format(strings.ToLower(b.Format))}
	if err := backends.CheckOptions(kind, opt); err != nil {
		return resolved{}, err
	}
	if w := backends.ImplicitWarning(e, x, kind); w != "" && !b.quiet {
		f.IO.Warnf("%s", w)
	}
	return resolved{e: e, kind: kind, opt: opt}, nil
}

// open resolves the endpoints, picks the backend and makes the Locker: the one place
// commands get a Locker (backends.Open decides how).
func open(ctx context.Context, f *cmdutil.Factory, b backendFlags) (lock.Locker, resolved, error) {
	r, err := b.resolve(ctx, f)
	if err != nil {
		return nil, r, err
	}
	l, err := openResolved(ctx, f, r)
	return l, r, err
}

// openResolved makes the Locker of a resolved backend, saying on -v which one (for
// SQL: host and user only, never the DSN) and showing its warnings.
func openResolved(ctx context.Context, f *cmdutil.Factory, r resolved) (lock.Locker, error) {
	if backends.IsSQL(r.kind) {
		f.IO.Debugf("lock backend: %s", backends.SQLSummary(f.Dialer(), r.e, r.opt))
	} else {
		f.IO.Debugf("lock backend: %s", r.kind)
	}
	l, err := backends.Open(ctx, f.Dialer(), r.e, r.kind, r.opt)
	if err == nil {
		for _, w := range l.Backend().Warnings {
			f.IO.Warnf("%s", w)
		}
	}
	return l, err
}

// oneName accepts exactly one lock name, and says so plainly otherwise (two words are
// usually a name with a space that was not quoted).
func oneName(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return errs.Usage("%s needs a lock name", cmd.CommandPath()).WithHint("usage: %s", cmd.UseLine())
	case len(args) > 1:
		return errs.Usage("%s takes one lock name, got %d arguments: %s", cmd.CommandPath(), len(args), lock.QuoteCommand(args)).
			WithHint("quote a name that contains spaces; usage: %s", cmd.UseLine())
	}
	return nil
}

// runOnName is the RunE of a command on one lock (its Args is oneName): it sets *name
// to the argument, makes a printer for formats, then calls run.
func runOnName(f *cmdutil.Factory, name *string, formats []output.Format, run func(ctx context.Context, p *output.Printer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		*name = args[0]
		p, err := f.Printer(formats)
		if err != nil {
			return err
		}
		return run(cmd.Context(), p)
	}
}

// acquireFlags are the flags of acquire and run.
type acquireFlags struct {
	TTL            time.Duration
	Wait           string
	Owner          string
	Strategy       string
	PollInterval   time.Duration
	RequireFencing bool
	Fair           bool
	Semaphore      int
}

func (a *acquireFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&a.TTL, "ttl", lock.DefaultTTL, "lease TTL: the lock is dropped this long after the last renewal (min 100ms)")
	fl.StringVar(&a.Wait, "wait", "0", "how long to wait for a held lock: 0 (fail at once), a duration such as 30s, or forever")
	fl.StringVar(&a.Owner, "owner", "", "free text recorded with the lease, shown by inspect and list")
	fl.StringVar(&a.Strategy, "wait-strategy", "notify", "how to wait: notify (woken by the release) or poll (retry every --poll-interval)")
	fl.DurationVar(&a.PollInterval, "poll-interval", lock.DefaultPollInterval, "retry interval with --wait-strategy poll")
	fl.BoolVar(&a.RequireFencing, "require-fencing", false, "refuse backends that cannot give safe fencing tokens (quorum mode)")
	fl.IntVar(&a.Semaphore, "semaphore", 1, "let up to N holders hold the lock at once (a counting semaphore; ZooKeeper only, Curator InterProcessSemaphoreV2-compatible)")
	fl.BoolVar(&a.Fair, "fair", false, "first come, first served: never take a free lock ahead of a live waiter queued earlier (single server only; costs throughput, see docs/performance.md)")
}

// options checks the flags (before any connection, so bad input changes nothing)
// and builds the acquire options.
func (a *acquireFlags) options(name string, owner lock.Owner) (lock.AcquireOptions, error) {
	if err := lock.ValidateName(name); err != nil {
		return lock.AcquireOptions{}, err
	}
	if err := lock.ValidateTTL(a.TTL); err != nil {
		return lock.AcquireOptions{}, err
	}
	wait, err := lock.ParseWait(a.Wait)
	if err != nil {
		return lock.AcquireOptions{}, err
	}
	strategy, err := lock.ParseStrategy(a.Strategy)
	if err != nil {
		return lock.AcquireOptions{}, err
	}
	if err := lock.ValidatePollInterval(a.PollInterval); err != nil {
		return lock.AcquireOptions{}, err
	}
	if err := lock.ValidateLabel(a.Owner); err != nil {
		return lock.AcquireOptions{}, err
	}
	if a.Semaphore < 1 {
		return lock.AcquireOptions{}, errs.Usage("--semaphore must be at least 1, got %d", a.Semaphore).WithHint("e.g. --semaphore 3 lets three holders in at once")
	}
	owner.Label = a.Owner
	return lock.AcquireOptions{TTL: a.TTL, Wait: wait, Strategy: strategy, PollInterval: a.PollInterval,
		Owner: owner, RequireFencing: a.RequireFencing, Fair: a.Fair, Permits: a.Semaphore}, nil
}

// onWait reports on stderr (TTY or -v only) who holds the lock we wait for.
func onWait(f *cmdutil.Factory, name string, wait lock.Wait) func(*lock.Holder) {
	return func(h *lock.Holder) {
		f.IO.Infof("waiting for lock %q (--wait %s): held by %s", name, wait, h)
	}
}

func tool(f *cmdutil.Factory) string { return "dsctl " + f.Build.Version }

// who names the person breaking a lock: user@host.
func who() string {
	o := lock.CurrentOwner(0, "", "", "")
	return o.User + "@" + o.Host
}

// tokenFor is --token, or DSCTL_LOCK_TOKEN when DSCTL_LOCK_NAME names this lock (as
// left by `eval "$(dsctl lock acquire NAME -o env)"`).
func tokenFor(f *cmdutil.Factory, name, flag, verb string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if f.Getenv("DSCTL_LOCK_NAME") == name {
		if t := f.Getenv("DSCTL_LOCK_TOKEN"); t != "" {
			return t, nil
		}
	}
	return "", errs.Usage("%s %q needs the holder's token", verb, name).
		WithHint("pass --token, or eval the -o env output of `dsctl lock acquire %s` first", name)
}

var leaseFormats = []output.Format{output.Table, output.JSON, output.YAML, output.Env}
