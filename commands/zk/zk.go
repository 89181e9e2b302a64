// Package zk wires `dsctl zk`: ls, get, stat, tree, watch and status. The work is done
// by probes/zk; this package turns flags into options and results into output.
package zk

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// Environment variables for digest authentication given outside the config file.
const (
	EnvDigestUser     = "DSCTL_ZK_DIGEST_USER"
	EnvDigestPassword = "DSCTL_ZK_DIGEST_PASSWORD"
)

// ConnOptions are the connection flags every zk command shares.
type ConnOptions struct {
	Servers        []string
	Chroot         string
	DigestUser     string
	DigestPassFile string
	SessionTimeout time.Duration
}

// NewCmd builds `dsctl zk`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	conn := &ConnOptions{}
	cmd := &cobra.Command{
		Use:   "zk",
		Short: "Inspect and watch ZooKeeper nodes; check the ensemble",
		Long: `ZooKeeper commands, against the ensemble from --zk, DSCTL_ZK or the context's
zookeeper.servers (digest auth and session timeout from the context too), or with
--sandbox against an embedded standalone ZooKeeper (in process, gone on exit) seeded
with a demo tree: /services/*/members (ephemeral members), /config/checkout/settings
(changes every 5s) and /dsctl/locks/orders (a Curator-style lock queue).

  ls       children of a node; -R lists the subtree
  get      a node's data, rendered as text, hex or JSON
  stat     a node's zxids, versions, ephemeral owner, data length, child count
  tree     the subtree with child counts (read first, so huge nodes are not listed blindly)
  watch    a stream of every change, with gaps counted, reconnects verified and
           session expiry followed by a resync
  status   each member's mode, zxid, latency, outstanding requests, connections, znodes
           and watches, and the ensemble verdict (exit 5 degraded, 6 quorum lost)

Digest auth: --digest-user (or DSCTL_ZK_DIGEST_USER) with the password in
DSCTL_ZK_DIGEST_PASSWORD or --digest-password-file; without them the context's
zookeeper.digest_user and digest_password (env or file) apply. Passwords are never
taken from flags.

Paths are absolute; --chroot PATH prefixes every path (like host:port/PATH in the
Java client's connect string).

Exit codes: 2 for an invalid path or a missing node; 1 when the node's ACL refuses
the request; 6 when the ensemble does not answer within --timeout or no address is a
ZooKeeper server (what answered is named); zk status: 5 when degraded, 6 when quorum
is lost.`,
		Example: `  dsctl zk ls -R /app --zk 127.0.0.1:2181
  dsctl zk tree / --sandbox
  dsctl zk watch /config --sandbox -r --duration 12s
  dsctl zk get /app/config --as json
  dsctl zk tree /app --depth 2
  dsctl zk watch /app/config /app/members --recursive -o jsonl
  dsctl zk status --zk zk1:2181,zk2:2181,zk3:2181`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringSliceVar(&conn.Servers, "zk", nil, "ZooKeeper servers host:port,... (overrides DSCTL_ZK and the context)")
	pf.StringVar(&conn.Chroot, "chroot", "", "path prefix applied to every path, e.g. /app")
	pf.StringVar(&conn.DigestUser, "digest-user", "", "digest auth user (env "+EnvDigestUser+"); password from "+EnvDigestPassword+" or --digest-password-file")
	pf.StringVar(&conn.DigestPassFile, "digest-password-file", "", "file holding the digest password (chmod 600)")
	pf.DurationVar(&conn.SessionTimeout, "session-timeout", 0, "session timeout to ask for (default: the context's, else 10s; the server bounds it)")
	cmd.AddCommand(newLsCmd(f, conn), newGetCmd(f, conn), newStatCmd(f, conn), newTreeCmd(f, conn),
		newWatchCmd(f, conn), newStatusCmd(f, conn))
	return cmd
}

// Endpoint resolves the ensemble, auth and session timeout for this run.
func Endpoint(ctx context.Context, f *cmdutil.Factory, o *ConnOptions) (endpoint.ZooKeeper, error) {
	e, err := f.Endpoints(ctx, config.Overrides{ZooKeeper: o.Servers})
	if err != nil {
		return endpoint.ZooKeeper{}, err
	}
	if err := f.NoSandboxZooKeeper(); err != nil { // a sandbox started without ZooKeeper
		return endpoint.ZooKeeper{}, err
	}
	ep := e.ZooKeeper
	user := o.DigestUser
	if user == "" {
		user = f.Getenv(EnvDigestUser)
	}
	switch {
	case user != "":
		ep.DigestUser = user
		ep.DigestPassword = endpoint.Secret{Env: EnvDigestPassword}
		if o.DigestPassFile != "" {
			ep.DigestPassword = endpoint.Secret{File: o.DigestPassFile}
		} else if _, ok := os.LookupEnv(EnvDigestPassword); !ok && f.Getenv(EnvDigestPassword) == "" {
			return endpoint.ZooKeeper{}, errs.Usage("zookeeper: digest user %q needs a password", user).
				WithHint("export %s, or pass --digest-password-file FILE", EnvDigestPassword)
		}
	case o.DigestPassFile != "":
		return endpoint.ZooKeeper{}, errs.Usage("--digest-password-file needs --digest-user (or %s)", EnvDigestUser)
	}
	if o.SessionTimeout < 0 {
		return endpoint.ZooKeeper{}, errs.Usage("--session-timeout must be positive, got %s", o.SessionTimeout)
	}
	if o.SessionTimeout > 0 {
		ep.SessionTimeout = endpoint.Duration(o.SessionTimeout)
	}
	return ep, nil
}

// Connect opens a session for a command and closes it when the command ends.
func Connect(ctx context.Context, f *cmdutil.Factory, o *ConnOptions) (*zkprobe.Client, error) {
	ep, err := Endpoint(ctx, f, o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := zkprobe.Connect(ctx, f.Dialer(), zkprobe.Options{Endpoint: ep, Chroot: o.Chroot})
	if err != nil {
		return nil, err
	}
	chroot := "no chroot"
	if c.Chroot() != "" {
		chroot = "chroot " + c.Chroot()
	}
	f.IO.Debugf("zookeeper: connected in %s, %s, timeout %s per call", time.Since(start).Round(time.Microsecond), chroot, c.Timeout())
	f.OnClose(c.Close)
	return c, nil
}

// onePath checks a command's single PATH argument (default "/").
func onePath(args []string, what string) (string, error) {
	switch len(args) {
	case 0:
		return "/", nil
	case 1:
		return args[0], zkprobe.CheckPath(args[0])
	}
	return "", errs.Usage("zk %s takes one path, got %d: %s", what, len(args), strings.Join(args, " ")).
		WithHint("e.g. dsctl zk %s /app", what)
}

// exactlyOnePath is onePath without the default.
func exactlyOnePath(args []string, what string) (string, error) {
	if len(args) == 0 {
		return "", errs.Usage("zk %s needs a path", what).WithHint("e.g. dsctl zk %s /app/config", what)
	}
	return onePath(args, what)
}

// runOnPath is the RunE of a read command: it checks the PATH argument with pathArg
// (onePath or exactlyOnePath), makes the standard printer, then calls run.
func runOnPath(f *cmdutil.Factory, what string, pathArg func(args []string, what string) (string, error),
	run func(ctx context.Context, pr *output.Printer, path string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		path, err := pathArg(args, what)
		if err != nil {
			return err
		}
		pr, err := f.Printer(output.Standard)
		if err != nil {
			return err
		}
		return run(cmd.Context(), pr, path)
	}
}
