// Package configcmd implements `dsctl config`: view, get-contexts, use-context,
// set-context and delete-context.
package configcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// NewCmd builds `dsctl config`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "View and edit contexts (named sets of endpoints) in the config file",
		Long: `View and edit the config file: named contexts, each holding the endpoints of
Redis, ZooKeeper, Kafka and a SQL database. Secrets are never stored in the file:
it names an environment variable or a file that holds each one.

The file is --config, else $DSCTL_CONFIG, else $XDG_CONFIG_HOME/dsctl/config.yaml
(~/.config/dsctl/config.yaml). Example:

  current_context: local
  contexts:
    local:
      redis:
        addrs: [127.0.0.1:6379]
        password: {env: REDIS_PASSWORD}
      zookeeper:
        servers: [127.0.0.1:2181]
        session_timeout: 10s
      kafka:
        brokers: [127.0.0.1:9092]
        sasl: {mechanism: SCRAM-SHA-512, username: dsctl, password: {file: ~/.dsctl/kafka.pass}}
      sql:
        driver: postgres
        dsn: {env: APP_DATABASE_URL}`,
		Example: `  dsctl config set-context local --redis 127.0.0.1:6379 --brokers 127.0.0.1:9092 --use
  dsctl config get-contexts
  dsctl config view --resolved`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newViewCmd(f), newGetContextsCmd(f), newUseContextCmd(f), newSetContextCmd(f), newDeleteContextCmd(f))
	return cmd
}

// ViewOptions are the options of `config view`.
type ViewOptions struct {
	Resolved bool
}

func newViewCmd(f *cmdutil.Factory) *cobra.Command {
	opts := &ViewOptions{}
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Print the config file, with any secret masked",
		Long: `Print the config file with any password that appears in an address masked.

With --resolved, print what a command would use right now for the selected
context: each endpoint after flags, environment and defaults are applied, where it
came from (flag, env, context, default, sandbox), and whether each secret can be
read — the secret itself is always shown as ****.

JSON keys (--resolved): config_path, config_file_exists, context, and for each of
redis, zookeeper, kafka, sql: endpoints, source, auth, tls, secret.`,
		Example: `  dsctl config view
  dsctl config view --resolved -o json
  DSCTL_KAFKA=10.0.0.5:9092 dsctl config view --resolved`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer([]output.Format{output.Table, output.JSON, output.YAML})
			if err != nil {
				return err
			}
			return runView(cmd.Context(), f, p, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Resolved, "resolved", false, "show the endpoints in effect after flags, env and defaults")
	return cmd
}

func runView(ctx context.Context, f *cmdutil.Factory, p *output.Printer, opts *ViewOptions) error {
	cfg, err := f.Config()
	var inline *config.InlineSecretsError
	if err != nil && (opts.Resolved || cfg == nil || !errors.As(err, &inline)) {
		return err
	}
	if inline != nil {
		// The file is refused by every other command; here it is shown, the secret masked.
		f.IO.Warnf("%v", err)
	}
	if opts.Resolved {
		e, err := f.Endpoints(ctx, config.Overrides{})
		if err != nil {
			return err
		}
		return p.Print(resolvedView{e.View(cfg.Path, cfg.Exists, f.Dialer())})
	}
	if !cfg.Exists {
		f.IO.Warnf("no config file at %s; commands use flags, env and built-in defaults", cfg.Path)
	}
	return p.Print(maskedFile{cfg.Masked()})
}

// maskedFile prints a masked config file, with each inline secret shown as ****
// where it was written (the File keeps no value for it).
type maskedFile struct{ *config.File }

func (m maskedFile) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(m.File)
	if err != nil || len(m.Inline) == 0 {
		return b, err
	}
	var doc orderedJSON
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	for _, s := range m.Inline {
		doc.set(strings.Split(s.Key, "."), json.RawMessage(`"****"`))
	}
	return json.Marshal(doc)
}

// orderedJSON is a JSON object that keeps its keys in order (json.RawMessage values,
// objects decoded as orderedJSON when set reaches into them).
type orderedJSON struct {
	keys []string
	vals map[string]json.RawMessage
}

func (o *orderedJSON) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	o.vals = map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		o.keys = append(o.keys, key)
		o.vals[key] = v
	}
	return nil
}

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// set puts v at path, making the objects on the way.
func (o *orderedJSON) set(path []string, v json.RawMessage) {
	if o.vals == nil {
		o.vals = map[string]json.RawMessage{}
	}
	k := path[0]
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	if len(path) == 1 {
		o.vals[k] = v
		return
	}
	var child orderedJSON
	if raw, ok := o.vals[k]; ok && json.Unmarshal(raw, &child) != nil {
		child = orderedJSON{}
	}
	child.set(path[1:], v)
	o.vals[k], _ = child.MarshalJSON()
}

type resolvedView struct{ config.ResolvedView }

func (v resolvedView) Table() *output.TableData {
	t := &output.TableData{Header: []string{"backend", "endpoints", "source", "auth", "tls", "secret"}}
	row := func(name string, it config.ResolvedItem) {
		eps := strings.Join(it.Endpoints, ",")
		if eps == "" {
			eps = "-"
		}
		t.AddRow(name, eps, string(it.Source), dash(it.Auth), yesNo(it.TLS), dash(it.Secret))
	}
	row("redis", v.Redis)
	row("zookeeper", v.ZooKeeper)
	row("kafka", v.Kafka)
	row("sql", v.SQL)
	ctx := v.Context
	if ctx == "" {
		ctx = "(none)"
	}
	file := v.ConfigPath
	if !v.ConfigFile {
		file += " (not found)"
	}
	t.Notes = []output.Cell{output.S(fmt.Sprintf("context %s from %s", ctx, file), output.Dim)}
	return t
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ContextRow is one line of `config get-contexts`.
type ContextRow struct {
	Current   bool     `json:"current"`
	Name      string   `json:"name"`
	Redis     []string `json:"redis"`
	ZooKeeper []string `json:"zookeeper"`
	Kafka     []string `json:"kafka"`
	SQL       string   `json:"sql"`
}

type contextList []ContextRow

func (l contextList) Table() *output.TableData {
	t := &output.TableData{Header: []string{"current", "name", "redis", "zookeeper", "kafka", "sql"}}
	for _, r := range l {
		cur := ""
		if r.Current {
			cur = "*"
		}
		t.AddRow(cur, r.Name, dash(strings.Join(r.Redis, ",")), dash(strings.Join(r.ZooKeeper, ",")),
			dash(strings.Join(r.Kafka, ",")), dash(r.SQL))
	}
	if len(l) == 0 {
		t.Notes = []output.Cell{output.S("no contexts; create one with dsctl config set-context NAME --redis HOST:PORT", output.Dim)}
	}
	return t
}

func newGetContextsCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts in the config file",
		Long: `List the contexts in the config file; * marks the current one.

JSON keys: current, name, redis, zookeeper, kafka (lists, [] when unset), sql (a
string, "" when unset).`,
		Example: `  dsctl config get-contexts
  dsctl config get-contexts -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			current := f.ContextName()
			if current == "" {
				current = cfg.CurrentContext
			}
			rows := contextList{}
			for _, name := range cfg.Names() {
				c := cfg.Contexts[name].Masked()
				// Lists are [] rather than null when empty, so scripts see one shape.
				r := ContextRow{Current: name == current, Name: name, Redis: []string{}, ZooKeeper: []string{}, Kafka: []string{}}
				if c.Redis != nil {
					r.Redis = append(r.Redis, c.Redis.Addrs...)
				}
				if c.ZooKeeper != nil {
					r.ZooKeeper = append(r.ZooKeeper, c.ZooKeeper.Servers...)
				}
				if c.Kafka != nil {
					r.Kafka = append(r.Kafka, c.Kafka.Brokers...)
				}
				if c.SQL != nil && !c.SQL.DSN.IsZero() {
					r.SQL = strings.TrimSpace(c.SQL.Driver + " " + c.SQL.DSN.Source())
				}
				rows = append(rows, r)
			}
			return p.Print(rows)
		},
	}
}

func newUseContextCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:               "use-context NAME",
		Short:             "Make NAME the current context",
		Example:           `  dsctl config use-context staging`,
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: cmdutil.FirstArg(f.CompleteContexts()),
		Annotations:       cmdutil.PrintsNoData(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if _, _, err := cfg.Context(args[0]); err != nil {
				return err
			}
			cfg.CurrentContext = args[0]
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.ErrOut, "current context is now %q (%s)\n", args[0], cfg.Path)
			return nil
		},
	}
}

func newDeleteContextCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:               "delete-context NAME",
		Short:             "Remove a context from the config file",
		Example:           `  dsctl config delete-context old-staging`,
		Args:              exactArgs(1, "NAME"),
		ValidArgsFunction: cmdutil.FirstArg(f.CompleteContexts()),
		Annotations:       cmdutil.PrintsNoData(),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.Config()
			if err != nil {
				return err
			}
			if _, _, err := cfg.Context(args[0]); err != nil {
				return err
			}
			delete(cfg.Contexts, args[0])
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := cfg.Save(); err != nil {
				return err
			}
			fmt.Fprintf(f.IO.ErrOut, "deleted context %q from %s\n", args[0], cfg.Path)
			return nil
		},
	}
}

// exactArgs is cobra.ExactArgs with a message that names the missing argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return errs.Usage("%s needs %s (got %d arguments)", cmd.CommandPath(), names, len(args)).
				WithHint("usage: %s", cmd.UseLine())
		}
		return nil
	}
}

// SetOptions are the flags of `config set-context`; only flags the user gave change
// the context.
type SetOptions struct {
	Name string
	Use  bool

	Redis             []string
	RedisDB           int
	RedisUsername     string
	RedisPasswordEnv  string
	RedisPasswordFile string
	RedisTLS          bool
	RedisTLSCA        string

	ZK                []string
	ZKSessionTimeout  time.Duration
	ZKDigestUser      string
	ZKDigestPassEnv   string
	ZKDigestPassFile  string
	Brokers           []string
	KafkaVersion      string
	KafkaTLS          bool
	KafkaTLSCA        string
	KafkaSASL         string
	KafkaUsername     string
	KafkaPasswordEnv  string
	KafkaPasswordFile string

	SQLDriver  string
	SQLDSNEnv  string
	SQLDSNFile string
}

func newSetContextCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SetOptions{}
	cmd := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create or update a context",
		Long: `Create a context, or update the endpoints of an existing one. Only the flags
given change the context. Secrets are named, never given: --redis-password-env
VAR or --redis-password-file PATH, and the same for ZooKeeper, Kafka and SQL.
An address that carries a password (redis://user:pass@host) is refused.

Addresses are checked before anything is written (exit 2 on a bad one). A secret
file or TLS CA file that does not exist yet is accepted with a warning, since it
may be created later; commands that need it fail until it exists.

The file is written with mode 0600. The first context created becomes current.
The default config location is created when missing; a --config FILE whose
directory does not exist is refused.`,
		Example: `  dsctl config set-context local --redis 127.0.0.1:6379 --zk 127.0.0.1:2181 --brokers 127.0.0.1:9092 --use
  dsctl config set-context prod --brokers b1:9093,b2:9093 --kafka-sasl SCRAM-SHA-512 \
      --kafka-username ops --kafka-password-env KAFKA_PASSWORD --kafka-tls
  dsctl config set-context prod --sql-driver postgres --sql-dsn-env APP_DATABASE_URL`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runSetContext(f, cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Use, "use", false, "also make it the current context")
	fl.StringSliceVar(&o.Redis, "redis", nil, "Redis addresses (host:port, redis:// or rediss:// URLs); several = quorum")
	fl.IntVar(&o.RedisDB, "redis-db", 0, "Redis database number")
	fl.StringVar(&o.RedisUsername, "redis-username", "", "Redis ACL username")
	fl.StringVar(&o.RedisPasswordEnv, "redis-password-env", "", "env var holding the Redis password")
	fl.StringVar(&o.RedisPasswordFile, "redis-password-file", "", "file holding the Redis password")
	fl.BoolVar(&o.RedisTLS, "redis-tls", false, "use TLS to Redis")
	fl.StringVar(&o.RedisTLSCA, "redis-tls-ca", "", "CA file for Redis TLS")
	fl.StringSliceVar(&o.ZK, "zk", nil, "ZooKeeper servers (host:port,...)")
	fl.DurationVar(&o.ZKSessionTimeout, "zk-session-timeout", 0, "ZooKeeper session timeout (default 10s)")
	fl.StringVar(&o.ZKDigestUser, "zk-digest-user", "", "ZooKeeper digest auth user")
	fl.StringVar(&o.ZKDigestPassEnv, "zk-digest-password-env", "", "env var holding the ZooKeeper digest password")
	fl.StringVar(&o.ZKDigestPassFile, "zk-digest-password-file", "", "file holding the ZooKeeper digest password")
	fl.StringSliceVar(&o.Brokers, "brokers", nil, "Kafka bootstrap brokers (host:port,...)")
	fl.StringVar(&o.KafkaVersion, "kafka-version", "", "cap the Kafka protocol version (e.g. 3.9.0)")
	fl.BoolVar(&o.KafkaTLS, "kafka-tls", false, "use TLS to Kafka")
	fl.StringVar(&o.KafkaTLSCA, "kafka-tls-ca", "", "CA file for Kafka TLS")
	fl.StringVar(&o.KafkaSASL, "kafka-sasl", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fl.StringVar(&o.KafkaUsername, "kafka-username", "", "SASL username")
	fl.StringVar(&o.KafkaPasswordEnv, "kafka-password-env", "", "env var holding the SASL password")
	fl.StringVar(&o.KafkaPasswordFile, "kafka-password-file", "", "file holding the SASL password")
	fl.StringVar(&o.SQLDriver, "sql-driver", "", "SQL driver: mysql or postgres")
	fl.StringVar(&o.SQLDSNEnv, "sql-dsn-env", "", "env var holding the SQL DSN")
	fl.StringVar(&o.SQLDSNFile, "sql-dsn-file", "", "file holding the SQL DSN")
	cmd.MarkFlagsMutuallyExclusive("redis-password-env", "redis-password-file")
	cmd.MarkFlagsMutuallyExclusive("zk-digest-password-env", "zk-digest-password-file")
	cmd.MarkFlagsMutuallyExclusive("kafka-password-env", "kafka-password-file")
	cmd.MarkFlagsMutuallyExclusive("sql-dsn-env", "sql-dsn-file")
	cmd.ValidArgsFunction = cmdutil.FirstArg(f.CompleteContexts()) // edit an existing one, or type a new name
	cmdutil.RegisterFlag(cmd, "sql-driver", cmdutil.Fixed("mysql", "postgres"))
	cmdutil.RegisterFlag(cmd, "kafka-sasl", cmdutil.Fixed("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"))
	for _, name := range []string{"redis-password-env", "zk-digest-password-env", "kafka-password-env", "sql-dsn-env"} {
		cmdutil.RegisterFlag(cmd, name, cmdutil.EnvNames)
	}
	cmdutil.SetOutputFormats(cmd, nil)
	return cmd
}

func runSetContext(f *cmdutil.Factory, cmd *cobra.Command, o *SetOptions) error {
	if err := config.ValidateContextName(o.Name); err != nil {
		return err
	}
	if err := checkExplicitConfigDir(f.Global.ConfigPath); err != nil {
		return err
	}
	cfg, err := f.ConfigForWrite()
	if err != nil {
		return err
	}
	changed := cmd.Flags().Changed
	c, existed := cfg.Contexts[o.Name]
	if !existed {
		c = &config.Context{}
	}
	if err := applySetOptions(c, o, changed, func(m string) { f.IO.Warnf("%s", m) }); err != nil {
		return err
	}
	cfg.Contexts[o.Name] = c
	if o.Use || cfg.CurrentContext == "" {
		cfg.CurrentContext = o.Name
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	verb := "created"
	if existed {
		verb = "updated"
	}
	fmt.Fprintf(f.IO.ErrOut, "%s context %q in %s", verb, o.Name, cfg.Path)
	if cfg.CurrentContext == o.Name {
		fmt.Fprint(f.IO.ErrOut, " (current)")
	}
	fmt.Fprintln(f.IO.ErrOut)
	return nil
}

// checkExplicitConfigDir refuses a --config path whose directory does not exist: a
// typo there would otherwise create directories silently. The default location's
// directory is created by Save.
func checkExplicitConfigDir(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(endpoint.ExpandHome(path))
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return errs.Usage("--config %s: directory %s does not exist", path, dir).
			WithHint("create it first (mkdir -p %s), or leave out --config to use the default location", dir)
	}
	if err == nil && !info.IsDir() {
		return errs.Usage("--config %s: %s is not a directory", path, dir)
	}
	return nil
}

// setAddrs stores the addresses given to --FLAG in *dst, when the flag is given, after
// checking them: at least one, none carrying a password, each valid for check.
func setAddrs(dst *[]string, flag string, vals []string, check func(string) error, secretHint string, changed func(string) bool) error {
	if !changed(flag) {
		return nil
	}
	list := config.SplitList(strings.Join(vals, ","))
	if len(list) == 0 {
		return errs.Usage("--%s needs at least one address", flag).WithHint("e.g. --%s 127.0.0.1:PORT; several are comma-separated", flag)
	}
	for _, a := range list {
		if endpoint.CarriesSecret(a) {
			return errs.Usage("--%s %s: the address carries a password, and secrets are never stored in the config file",
				flag, endpoint.MaskURL(a)).WithHint("%s", secretHint)
		}
		if err := check(a); err != nil {
			return errs.Usage("--%s %q: %v", flag, a, err)
		}
	}
	*dst = list
	return nil
}

func applySetOptions(c *config.Context, o *SetOptions, changed func(string) bool, warn func(string)) error {
	any := func(names ...string) bool {
		for _, n := range names {
			if changed(n) {
				return true
			}
		}
		return false
	}
	if any("redis", "redis-db", "redis-username", "redis-password-env", "redis-password-file", "redis-tls", "redis-tls-ca") {
		if c.Redis == nil {
			c.Redis = &endpoint.Redis{}
		}
		r := c.Redis
		if err := setAddrs(&r.Addrs, "redis", o.Redis, endpoint.CheckRedisAddr,
			"give the address without the password and name it with --redis-password-env VAR or --redis-password-file PATH (--redis-username for an ACL user)", changed); err != nil {
			return err
		}
		if changed("redis-db") {
			if o.RedisDB < 0 {
				return errs.Usage("--redis-db must be 0 or more, got %d", o.RedisDB)
			}
			r.DB = o.RedisDB
		}
		if changed("redis-username") {
			r.Username = o.RedisUsername
		}
		if err := setSecret(&r.Password, "redis-password", o.RedisPasswordEnv, o.RedisPasswordFile, changed, warn); err != nil {
			return err
		}
		setTLS(&r.TLS, "redis", o.RedisTLS, o.RedisTLSCA, changed, warn)
	}
	if any("zk", "zk-session-timeout", "zk-digest-user", "zk-digest-password-env", "zk-digest-password-file") {
		if c.ZooKeeper == nil {
			c.ZooKeeper = &endpoint.ZooKeeper{}
		}
		z := c.ZooKeeper
		if err := setAddrs(&z.Servers, "zk", o.ZK, func(a string) error { return endpoint.CheckHostPort(a, "2181") },
			"give host:port and name the digest password with --zk-digest-user and --zk-digest-password-env VAR or --zk-digest-password-file PATH", changed); err != nil {
			return err
		}
		if changed("zk-session-timeout") {
			if o.ZKSessionTimeout <= 0 {
				return errs.Usage("--zk-session-timeout must be positive, got %s", o.ZKSessionTimeout)
			}
			z.SessionTimeout = endpoint.Duration(o.ZKSessionTimeout)
		}
		if changed("zk-digest-user") {
			z.DigestUser = o.ZKDigestUser
		}
		if err := setSecret(&z.DigestPassword, "zk-digest-password", o.ZKDigestPassEnv, o.ZKDigestPassFile, changed, warn); err != nil {
			return err
		}
	}
	if any("brokers", "kafka-version", "kafka-tls", "kafka-tls-ca", "kafka-sasl", "kafka-username", "kafka-password-env", "kafka-password-file") {
		if c.Kafka == nil {
			c.Kafka = &endpoint.Kafka{}
		}
		k := c.Kafka
		if err := setAddrs(&k.Brokers, "brokers", o.Brokers, func(a string) error { return endpoint.CheckHostPort(a, "9092") },
			"give host:port and name the SASL password with --kafka-password-env VAR or --kafka-password-file PATH", changed); err != nil {
			return err
		}
		if changed("kafka-version") {
			k.Version = o.KafkaVersion
		}
		setTLS(&k.TLS, "kafka", o.KafkaTLS, o.KafkaTLSCA, changed, warn)
		if any("kafka-sasl", "kafka-username", "kafka-password-env", "kafka-password-file") {
			if k.SASL == nil {
				k.SASL = &endpoint.SASL{}
			}
			if changed("kafka-sasl") {
				switch m := strings.ToUpper(o.KafkaSASL); m {
				case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
					k.SASL.Mechanism = m
				default:
					return errs.Usage("--kafka-sasl %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", o.KafkaSASL)
				}
			}
			if changed("kafka-username") {
				k.SASL.Username = o.KafkaUsername
			}
			if err := setSecret(&k.SASL.Password, "kafka-password", o.KafkaPasswordEnv, o.KafkaPasswordFile, changed, warn); err != nil {
				return err
			}
		}
	}
	if any("sql-driver", "sql-dsn-env", "sql-dsn-file") {
		if c.SQL == nil {
			c.SQL = &endpoint.SQL{}
		}
		if changed("sql-driver") {
			switch d := strings.ToLower(o.SQLDriver); d {
			case "mysql", "mariadb":
				c.SQL.Driver = "mysql"
			case "postgres", "postgresql":
				c.SQL.Driver = "postgres"
			default:
				return errs.Usage("--sql-driver %q: use mysql or postgres", o.SQLDriver)
			}
		}
		if err := setSecret(&c.SQL.DSN, "sql-dsn", o.SQLDSNEnv, o.SQLDSNFile, changed, warn); err != nil {
			return err
		}
	}
	return nil
}

// setSecret stores the secret reference given by --NAME-env or --NAME-file (an empty
// value removes it). An env var name must look like one; a file that does not exist
// yet is accepted with a warning, since it may be created later.
func setSecret(s *endpoint.Secret, name, env, file string, changed func(string) bool, warn func(string)) error {
	if changed(name + "-env") {
		if env != "" {
			if err := endpoint.CheckEnvName(env); err != nil {
				return errs.Usage("--%s-env: %v", name, err)
			}
		}
		*s = endpoint.Secret{Env: env}
	}
	if changed(name + "-file") {
		if file != "" {
			info, err := os.Stat(endpoint.ExpandHome(file))
			if err == nil && info.IsDir() {
				return errs.Usage("--%s-file %s is a directory, not a file", name, file)
			}
		}
		warnMissingFile(name+"-file", file, warn)
		*s = endpoint.Secret{File: absPath(file)}
	}
	return nil
}

// setTLS applies --NAME-tls and --NAME-tls-ca to *t, created when either is given. A
// CA file that does not exist yet is accepted with a warning, as for secrets.
func setTLS(t **endpoint.TLS, name string, enabled bool, ca string, changed func(string) bool, warn func(string)) {
	if !changed(name+"-tls") && !changed(name+"-tls-ca") {
		return
	}
	if *t == nil {
		*t = &endpoint.TLS{}
	}
	if changed(name + "-tls") {
		(*t).Enabled = enabled
	}
	if changed(name + "-tls-ca") {
		warnMissingFile(name+"-tls-ca", ca, warn)
		(*t).CA = absPath(ca)
	}
}

// absPath makes a relative file path absolute, so the context works from any
// directory later; "~/..." and absolute paths are kept as given.
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// warnMissingFile warns that a file named in the context does not exist (yet).
func warnMissingFile(flag, path string, warn func(string)) {
	if path == "" {
		return
	}
	if _, err := os.Stat(endpoint.ExpandHome(path)); errors.Is(err, fs.ErrNotExist) {
		warn(fmt.Sprintf("--%s %s does not exist yet; commands that need it will fail until it is created", flag, path))
	}
}
