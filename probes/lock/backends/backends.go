// Package backends is the one place that knows every lock backend: it picks the
// backend a command means (Pick), opens a Locker on it (Open), and describes what each
// backend can do and which environment variables carry its secrets (Describe,
// ChildEnv), so commands, `lock verify`, `lock bench` and the dashboard never
// special-case a backend. Package lock cannot import its backends; this package can.
package backends

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// Kind names a lock backend.
type Kind string

// The backends.
const (
	Redis     Kind = "redis"
	ZooKeeper Kind = "zookeeper"
	MySQL     Kind = "mysql"
	Postgres  Kind = "postgres"
)

// Kinds lists every backend, in the order help shows them.
var Kinds = []Kind{Redis, ZooKeeper, MySQL, Postgres}

// EnvBackend chooses the backend when --backend is not given.
const EnvBackend = "DSCTL_LOCK_BACKEND"

// DefaultZKRoot is where ZooKeeper locks live unless --zk-root says otherwise.
const DefaultZKRoot = zklock.DefaultRoot

func kindNames() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// ParseKind reads --backend (or DSCTL_LOCK_BACKEND). Empty is "not chosen" (""),
// a few common spellings are accepted; anything else is a usage error (exit 2) that
// lists the backends.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "redis":
		return Redis, nil
	case "zookeeper", "zk":
		return ZooKeeper, nil
	case "mysql", "mariadb":
		return MySQL, nil
	case "postgres", "postgresql", "pg":
		return Postgres, nil
	}
	return "", errs.Usage("unknown lock backend %q", s).WithHint("use one of: %s", kindNames())
}

// Explicit is what the command line (and DSCTL_LOCK_BACKEND) said about the backend.
type Explicit struct {
	// Backend is --backend or DSCTL_LOCK_BACKEND, "" when neither is set.
	Backend Kind
	// BackendFrom names where Backend came from ("--backend", "DSCTL_LOCK_BACKEND"),
	// for messages.
	BackendFrom string
	// Redis and ZooKeeper are whether --redis and --zk were given.
	Redis, ZooKeeper bool
}

// PickRule is the backend selection rule, for help texts.
const PickRule = `The backend is --backend (or DSCTL_LOCK_BACKEND) when given. Otherwise:
  --redis given                         redis
  --zk given                            zookeeper
  else the one kind configured by env or context (DSCTL_REDIS or redis.addrs,
  DSCTL_ZK or zookeeper.servers, DSCTL_SQL_DSN or sql.dsn: mysql or postgres)
  several configured, Redis among them  redis (what dsctl lock always used)
  several configured, no Redis          refused: choose with --backend (exit 2)
  none configured                       redis at its default address (127.0.0.1:6379)
With --sandbox the embedded Redis is used unless --backend zookeeper.`

// Pick decides the backend for resolved endpoints e and the command line x (see
// PickRule). It does no I/O beyond reading an SQL DSN's secret to tell MySQL from
// PostgreSQL.
func Pick(e config.Endpoints, x Explicit) (Kind, error) {
	if x.Backend != "" {
		switch {
		case x.Redis && x.Backend != Redis:
			return "", errs.Usage("--redis and %s %s contradict each other", from(x), x.Backend).WithHint("drop --redis, or use --backend redis")
		case x.ZooKeeper && x.Backend != ZooKeeper:
			return "", errs.Usage("--zk and %s %s contradict each other", from(x), x.Backend).WithHint("drop --zk, or use --backend zookeeper")
		}
		if err := sqlKindMatches(e, x.Backend, from(x)); err != nil {
			return "", err
		}
		return x.Backend, nil
	}
	switch {
	case x.Redis && x.ZooKeeper:
		return "", errs.Usage("--redis and --zk name two lock backends").WithHint("choose one with --backend redis or --backend zookeeper")
	case x.Redis:
		return Redis, nil
	case x.ZooKeeper:
		return ZooKeeper, nil
	}
	configured := Configured(e)
	switch {
	case len(configured) == 0:
		return Redis, nil
	case len(configured) == 1:
		return configured[0], nil
	case slices.Contains(configured, Redis):
		return Redis, nil
	}
	var parts []string
	for _, k := range configured {
		parts = append(parts, string(k)+" ("+sourceOf(e, k)+")")
	}
	return "", errs.Usage("several lock backends are configured: %s", strings.Join(parts, ", ")).
		WithHint("choose one with --backend %s, or set %s", configured[0], EnvBackend)
}

// ImplicitWarning is the warning for a backend picked by default among several
// configured ones (Redis, when the context or env also configure ZooKeeper or SQL):
// two hosts whose configurations differ would lock the same name on different
// systems, and neither would see the other. "" when the choice was explicit or the
// only one.
func ImplicitWarning(e config.Endpoints, x Explicit, kind Kind) string {
	if x.Backend != "" || x.Redis || x.ZooKeeper {
		return ""
	}
	configured := Configured(e)
	if len(configured) < 2 {
		return ""
	}
	var parts []string
	for _, k := range configured {
		parts = append(parts, string(k)+" ("+sourceOf(e, k)+")")
	}
	return fmt.Sprintf("several lock backends are configured: %s; using %s by default. A host whose configuration differs would take the same lock on another system without either seeing the other: choose explicitly with --backend %s or %s=%s",
		strings.Join(parts, ", "), kind, kind, EnvBackend, kind)
}

func from(x Explicit) string {
	if x.BackendFrom != "" {
		return x.BackendFrom
	}
	return "--backend"
}

// Configured lists the backends that env, the context or --sandbox configure (not
// those at their built-in default address), in Kinds order.
func Configured(e config.Endpoints) []Kind {
	var out []Kind
	if set(e.RedisSource) {
		out = append(out, Redis)
	}
	if set(e.ZKSource) && e.ZKSource != config.SourceSandbox {
		// The sandbox always embeds both Redis and ZooKeeper: Redis stays the default.
		out = append(out, ZooKeeper)
	}
	if e.SQL.HasDSN() {
		out = append(out, sqlKind(e.SQL))
	}
	return out
}

func set(s config.Source) bool { return s != "" && s != config.SourceDefault }

func sourceOf(e config.Endpoints, k Kind) string {
	switch k {
	case Redis:
		return string(e.RedisSource)
	case ZooKeeper:
		return string(e.ZKSource)
	}
	return string(e.SQLSource)
}

// sqlKindMatches refuses an SQL backend chosen by from (--backend mysql) when the
// configured DSN is the other database's.
func sqlKindMatches(e config.Endpoints, kind Kind, from string) error {
	if (kind != MySQL && kind != Postgres) || !e.SQL.HasDSN() {
		return nil
	}
	t, err := endpoint.Dialer{}.SQLTarget(e.SQL)
	if err != nil {
		return nil // opening it reports the real problem
	}
	if got := sqlKind(e.SQL); got != kind {
		return errs.Usage("%s %s, but the DSN in %s is a %s one (%s)", from, kind, dsnSource(e), got, t.Name).
			WithHint("use --backend %s, or point %s at a %s database", got, dsnSource(e), kind)
	}
	return nil
}

// dsnSource names where the SQL DSN comes from, for messages (never the DSN).
func dsnSource(e config.Endpoints) string {
	switch {
	case e.SQLSource == config.SourceEnv:
		return config.EnvSQLDSN
	case !e.SQL.DSN.IsZero():
		return "the context's sql.dsn (" + e.SQL.DSN.Source() + ")"
	}
	return "the SQL DSN"
}

// SQLKindOf is the SQL backend the configured DSN names (no I/O); false when no DSN
// is configured.
func SQLKindOf(e config.Endpoints) (Kind, bool) {
	if !e.SQL.HasDSN() {
		return "", false
	}
	return sqlKind(e.SQL), true
}

// sqlKind tells MySQL from PostgreSQL by the driver or the DSN. A DSN that says
// neither counts as MySQL here; opening it reports the real problem.
func sqlKind(s endpoint.SQL) Kind {
	t, err := endpoint.Dialer{}.SQLTarget(s)
	if err == nil && t.Driver == "postgres" {
		return Postgres
	}
	return MySQL
}

// Mode is an SQL lock mode (lease or session).
type Mode = sqllock.Mode

// SQL lock modes and formats (--mode, --format), for commands and help.
const (
	ModeLease   = sqllock.ModeLease
	ModeSession = sqllock.ModeSession
	// FormatShedLock takes and releases locks in an existing ShedLock table.
	FormatShedLock = sqllock.FormatShedLock
	// FormatUniqueKey reads (inspect, list, break --raw/--if-token) a classic
	// unique-key lock table: a row per held lock (never inferred from a table's shape).
	FormatUniqueKey = sqllock.FormatUniqueKey
	// DefaultSQLTable is the table of dsctl's SQL lease rows.
	DefaultSQLTable = sqllock.DefaultTable
)

// Options are the backend-specific settings that are not endpoints.
type Options struct {
	// ZKRoot is the ZooKeeper node under which locks live (DefaultZKRoot when empty).
	ZKRoot string
	// Mode is how SQL locks are held: lease rows (ModeLease, the default) or session
	// locks (ModeSession: GET_LOCK / pg_try_advisory_lock held by dsctl's connection).
	Mode Mode
	// Table is the SQL lock table (dsctl_locks, or shedlock with Format shedlock), or a
	// ShedLock / unique-key table to inspect.
	Table string
	// Format is lock.FormatDsctl (default) or FormatShedLock (SQL only).
	Format lock.Format
}

// SQLSummary describes the SQL backend for -v: driver, host:port/db, user, mode,
// table and format. Never the DSN or its password.
func SQLSummary(d endpoint.Dialer, e config.Endpoints, opt Options) string {
	t, err := d.SQLTarget(e.SQL)
	if err != nil {
		return "sql (DSN unreadable: " + err.Error() + ")"
	}
	mode, format, table := opt.Mode, opt.Format, opt.Table
	if mode == "" {
		mode = ModeLease
	}
	if format == "" {
		format = lock.FormatDsctl
	}
	if table == "" {
		table = sqllock.DefaultTable
		if format == FormatShedLock {
			table = sqllock.DefaultShedLockTable
		}
	}
	user := d.SQLUser(e.SQL)
	if user == "" {
		user = "(none)"
	}
	return fmt.Sprintf("%s %s as user %s (DSN from %s), mode %s, table %s, format %s", t.Driver, t.Name, user, dsnSource(e), mode, table, format)
}

// IsSQL reports whether kind is MySQL or PostgreSQL.
func IsSQL(kind Kind) bool { return kind == MySQL || kind == Postgres }

// CheckOptions refuses options that backend kind does not have (--mode, --table and
// --format are SQL's), before any connection.
func CheckOptions(kind Kind, opt Options) error {
	if IsSQL(kind) {
		switch opt.Mode {
		case "", ModeLease, ModeSession:
		default:
			return errs.Usage("unknown --mode %q", string(opt.Mode)).WithHint("use lease (rows with a database-clock expiry) or session (GET_LOCK / pg_advisory_lock held by a connection)")
		}
		switch opt.Format {
		case "", lock.FormatDsctl:
		case FormatShedLock, FormatUniqueKey:
			if opt.Mode == ModeSession {
				return errs.Usage("--format %s works with --mode lease only", opt.Format).WithHint("%s tables are rows; drop --mode session", opt.Format)
			}
		default:
			return errs.Usage("unknown --format %q for SQL locks", string(opt.Format)).WithHint("use dsctl (default), shedlock, or unique-key (inspect, list and break of a classic unique-key table)")
		}
		if opt.Table != "" {
			return sqllock.ValidateTable(opt.Table)
		}
		return nil
	}
	var given []string
	if opt.Mode != "" {
		given = append(given, "--mode")
	}
	if opt.Table != "" {
		given = append(given, "--table")
	}
	if opt.Format != "" && opt.Format != lock.FormatDsctl {
		given = append(given, "--format")
	}
	if len(given) > 0 {
		return errs.Usage("%s: only SQL locks (mysql, postgres) have it; the backend here is %s", strings.Join(given, ", "), kindOrRedis(kind)).
			WithHint("drop %s, or choose --backend mysql or --backend postgres", strings.Join(given, ", "))
	}
	return nil
}

func kindOrRedis(k Kind) Kind {
	if k == "" {
		return Redis
	}
	return k
}

func sqlOptions(opt Options) sqllock.Options {
	return sqllock.Options{Mode: opt.Mode, Table: opt.Table, Format: opt.Format}
}

// Open makes a Locker, with its own connections, on backend kind at e. It connects
// where the backend needs a session (ZooKeeper), so an unreachable ensemble is exit 6
// here; Redis connects on first use.
func Open(ctx context.Context, d endpoint.Dialer, e config.Endpoints, kind Kind, opt Options) (lock.Locker, error) {
	switch kind {
	case Redis, "":
		return redislock.New(d, e.Redis)
	case ZooKeeper:
		return zklock.New(ctx, d, zklock.Options{Endpoint: e.ZooKeeper, Root: opt.ZKRoot})
	case MySQL, Postgres:
		if err := CheckOptions(kind, opt); err != nil {
			return nil, err
		}
		if err := sqlKindMatches(e, kind, "--backend"); err != nil {
			return nil, err
		}
		return sqllock.New(ctx, d, e.SQL, sqlOptions(opt))
	}
	_, err := ParseKind(string(kind))
	return nil, err
}

// SQLInit creates the SQL lock table of opt (idempotent) and checks its shape
// (`dsctl lock sql init`).
func SQLInit(ctx context.Context, d endpoint.Dialer, e config.Endpoints, kind Kind, opt Options) (*sqllock.InitResult, error) {
	if !IsSQL(kind) {
		return nil, errs.Usage("lock sql init: the backend here is %s, not a database", kindOrRedis(kind)).
			WithHint("set DSCTL_SQL_DSN (or the context's sql.dsn), or choose --backend mysql or --backend postgres")
	}
	opt.Mode = "" // the table is the same in both modes
	l, err := Open(ctx, d, e, kind, opt)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.(*sqllock.Locker).Init(ctx)
}

// SQLDDL is the statement `dsctl lock sql init` runs for kind and opt (no I/O).
func SQLDDL(kind Kind, opt Options) (string, error) {
	if !IsSQL(kind) {
		return "", errs.Usage("lock sql init --print: say which database: --backend mysql or --backend postgres").
			WithHint("or set DSCTL_SQL_DSN, whose DSN tells them apart")
	}
	if err := CheckOptions(kind, Options{Table: opt.Table, Format: opt.Format}); err != nil {
		return "", err
	}
	return sqllock.DDL(string(kind), opt.Format, opt.Table)
}

// CheckPermits refuses --semaphore N (N > 1) on a backend that cannot admit N holders
// at once, naming those that can. The one place this is decided.
func CheckPermits(kind Kind, opt Options, permits int) error {
	if permits < 0 {
		return errs.Usage("--semaphore must be at least 1, got %d", permits)
	}
	if permits <= 1 || Describe(kind, opt).Semaphore {
		return nil
	}
	var can []string
	for _, k := range Kinds {
		if Describe(k, Options{}).Semaphore {
			can = append(can, string(k))
		}
	}
	return errs.Usage("--semaphore %d: %s locks admit one holder at a time", permits, kindOrRedis(kind)).
		WithHint("semaphores (N holders at once) work on %s; drop --semaphore or choose --backend %s", strings.Join(can, ", "), can[0])
}

// WaitMethod says how a waiter on l learns that the lock may be free, for `lock
// bench` and -v.
func WaitMethod(l lock.Locker, s lock.WaitStrategy) string {
	if w, ok := l.(interface {
		WaitMethod(lock.WaitStrategy) string
	}); ok {
		return w.WaitMethod(s)
	}
	if s == lock.WaitPoll {
		return "poll every --poll-interval"
	}
	switch l.Backend().Kind {
	case string(ZooKeeper):
		return "a watch on the predecessor's node (one waiter woken per release)"
	case string(Redis):
		if l.Backend().Notify {
			return "pub/sub message on release, retry at the holder's expiry at the latest"
		}
	}
	return "retry until --wait ends"
}

// Description is what a backend is and can do, independent of any connection.
type Description struct {
	Kind Kind `json:"kind"`
	// Detached: a lease outlives the process that took it (until its TTL), so
	// `lock acquire` can return and hand it to a script. Otherwise the lease lives
	// with dsctl's session and `lock acquire` holds it in the foreground.
	Detached bool `json:"detached"`
	// Detachable: a lease that would live with the session can be asked to outlive
	// the process (lock.AcquireOptions.Detached, `lock acquire --detach`): ZooKeeper
	// TTL nodes, where the server enables them.
	Detachable bool `json:"detachable"`
	// Notify: waiters are woken by the backend (no polling).
	Notify bool `json:"notify"`
	// Purge: throwaway locks (bench, verify) can be wiped with their counters.
	Purge bool `json:"purge"`
	// Semaphore: N holders at once (--semaphore).
	Semaphore bool `json:"semaphore"`
	// Endpoints says where the endpoints come from, for help and messages.
	Endpoints string `json:"endpoints"`
}

// Describe says what backend kind can do with options opt (on SQL the mode decides
// whether a lease outlives the process).
func Describe(kind Kind, opt Options) Description {
	switch kind {
	case ZooKeeper:
		return Description{Kind: kind, Notify: true, Detachable: true, Semaphore: true,
			Endpoints: "--zk, DSCTL_ZK or the context's zookeeper.servers; locks under --zk-root (" + DefaultZKRoot + ")"}
	case MySQL, Postgres:
		session := opt.Mode == ModeSession
		// Notify: PostgreSQL wakes waiters with LISTEN/NOTIFY; MySQL session locks wait
		// inside GET_LOCK (the server wakes them); MySQL lease rows back off.
		return Description{Kind: kind, Detached: !session, Detachable: !session, Notify: kind == Postgres || session, Purge: true,
			Endpoints: "DSCTL_SQL_DSN or the context's sql.dsn (env or file only)"}
	}
	return Description{Kind: Redis, Detached: true, Detachable: true, Notify: true, Purge: true,
		Endpoints: "--redis, DSCTL_REDIS or the context's redis.addrs"}
}

// SecretEnv names the environment variables that carry backend kind's secrets at e:
// they are dsctl's, and must not reach the child of `lock run`.
func SecretEnv(kind Kind, e config.Endpoints, getenv func(string) string) []string {
	var out []string
	add := func(s endpoint.Secret) {
		if s.Env != "" {
			out = append(out, s.Env)
		}
	}
	switch kind {
	case Redis, "":
		add(e.Redis.Password)
		if v := getenv(config.EnvRedis); v != "" && endpoint.MaskURL(v) != v {
			out = append(out, config.EnvRedis) // a URL with a password in it
		}
	case ZooKeeper:
		add(e.ZooKeeper.DigestPassword)
	case MySQL, Postgres:
		add(e.SQL.DSN)
		out = append(out, config.EnvSQLDSN)
	}
	return out
}

// ChildEnv is environ (KEY=VALUE pairs) without the variables carrying backend kind's
// secrets at e.
func ChildEnv(environ []string, kind Kind, e config.Endpoints) []string {
	values := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		values[k] = v
	}
	drop := SecretEnv(kind, e, func(k string) string { return values[k] })
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			out = append(out, kv)
		}
	}
	return out
}

// OSChildEnv is ChildEnv of this process's environment.
func OSChildEnv(kind Kind, e config.Endpoints) []string { return ChildEnv(os.Environ(), kind, e) }

// Purge wipes a throwaway lock (bench, verify) with whatever the backend keeps for it
// (Redis: its fencing counter and break record). Best effort; a no-op on backends
// without purge (ZooKeeper reaps the empty lock node itself).
func Purge(ctx context.Context, l lock.Locker, name string) error {
	if p, ok := l.(interface {
		Purge(context.Context, string) error
	}); ok {
		return p.Purge(ctx, name)
	}
	return nil
}

// Targets are the server addresses (host:port) of backend kind at e, in order: `lock
// verify` puts a fault proxy in front of each.
func Targets(d endpoint.Dialer, kind Kind, e config.Endpoints) ([]string, error) {
	switch kind {
	case Redis, "":
		ts, err := d.RedisTargets(e.Redis)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.Addr
		}
		return out, nil
	case ZooKeeper:
		if len(e.ZooKeeper.Servers) == 0 {
			return []string{endpoint.DefaultZooKeeper}, nil
		}
		return slices.Clone(e.ZooKeeper.Servers), nil
	case MySQL, Postgres:
		addr, err := d.SQLAddr(e.SQL)
		if err != nil {
			return nil, err
		}
		return []string{addr}, nil
	}
	_, err := ParseKind(string(kind))
	return nil, err
}

// Proxied is e with backend kind's server addresses replaced by proxied (in the
// order of Targets). A Redis URL keeps its scheme, credentials and database, and TLS
// keeps verifying the real server's name. An SQL DSN keeps its user, password,
// database and parameters (the rewritten DSN is a value, never printed).
func Proxied(kind Kind, e config.Endpoints, proxied []string) config.Endpoints {
	switch kind {
	case Redis, "":
		e.Redis = proxiedRedis(e.Redis, proxied)
	case ZooKeeper:
		e.ZooKeeper.Servers = slices.Clone(proxied)
	case MySQL, Postgres:
		if len(proxied) == 0 {
			break
		}
		ep, err := endpoint.Dialer{}.SQLAt(e.SQL, proxied[0])
		if err != nil {
			// Never fall back to the real address (that would bypass the proxy):
			// no DSN, so opening it says what is missing.
			ep = endpoint.SQL{Driver: e.SQL.Driver}
		}
		e.SQL = ep
	}
	return e
}

func proxiedRedis(ep endpoint.Redis, proxied []string) endpoint.Redis {
	orig := ep.Addrs
	ep.Addrs = make([]string, len(proxied))
	for i, p := range proxied {
		ep.Addrs[i] = p
		if i >= len(orig) || !strings.Contains(orig[i], "://") {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(orig[i]))
		if err != nil {
			continue
		}
		host := u.Hostname()
		u.Host = p
		ep.Addrs[i] = u.String()
		if u.Scheme == "rediss" && (ep.TLS == nil || ep.TLS.ServerName == "") {
			t := endpoint.TLS{Enabled: true}
			if ep.TLS != nil {
				t = *ep.TLS
			}
			t.ServerName = host
			ep.TLS = &t
		}
	}
	if ep.TLS.On() && ep.TLS.ServerName == "" && len(orig) > 0 {
		t := *ep.TLS
		if host, _, err := splitHost(orig[0]); err == nil {
			t.ServerName = host
		}
		ep.TLS = &t
	}
	return ep
}

func splitHost(addr string) (string, string, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return addr, "", nil
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:], nil
}

// Reach checks that backend kind at e answers (exit 6 when it does not), before a
// run that would otherwise be a stream of failed acquisitions.
func Reach(ctx context.Context, d endpoint.Dialer, kind Kind, e config.Endpoints, opt Options) error {
	if kind == Redis || kind == "" {
		clients, err := d.ConnectRedis(ctx, e.Redis)
		for _, c := range clients {
			c.Close()
		}
		return err
	}
	l, err := Open(ctx, d, e, kind, opt)
	if err != nil {
		return err
	}
	defer l.Close()
	// SQL: a missing or misshapen table is reported now, with the next step.
	if c, ok := l.(interface{ CheckTable(context.Context) error }); ok {
		return c.CheckTable(ctx)
	}
	return nil
}
