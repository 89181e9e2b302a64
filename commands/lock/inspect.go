package lock

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/lock"
)

const infoKeys = `JSON keys: name, key, held, format (dsctl, redsync, redislock, redisson, string,
not-a-lock, or "" when free), format_detail, holder {token, fence (string), owner
{host, pid, user, command, label, tool}, acquired_at, ttl_left_ms (-1: no expiry),
reentrancy}, waiters (-1: unknown), last_fence, fencing_safe, last_break {at, by,
reason, token, fence}, instances [{endpoint, held, token, fence, ttl_left_ms, error}]
(quorum mode), backend, notes.`

// InspectOptions are the flags and arguments of `dsctl lock inspect`.
type InspectOptions struct {
	Name    string
	Backend backendFlags
}

func newInspectCmd(f *cmdutil.Factory) *cobra.Command {
	o := &InspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show who holds a lock: owner, fencing token, TTL left, waiters, format",
		Long: `Show whether a lock is held, and by whom: holder token, owner (host, pid, user,
command), when it was taken, TTL left, fencing token, the number of waiters, and the
last forced break.

It also recognises locks made by other libraries, looked up by their Redis key:
go-redsync/redsync and bsm/redislock (string keys holding a random token; redislock's
metadata is shown as the owner label) and Redisson RLock (a hash whose field is
<client uuid>:<thread id> and whose value is the hold count; its waiters are counted).
The format is a best guess from the value's shape, and is shown.

` + infoKeys,
		Example: `  dsctl lock inspect deploy-prod
  dsctl lock inspect 'orders:lock:42' -o json      # a Redisson or redsync lock by its key`,
		Args: oneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunInspect(cmd.Context(), f, p, o)
		},
	}
	o.Backend.register(cmd)
	return cmd
}

// RunInspect prints the lock's state.
func RunInspect(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *InspectOptions) error {
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.Inspect(ctx, o.Name)
	if err != nil {
		return err
	}
	return p.Print(InfoView{Info: info})
}

// ListOptions are the flags of `dsctl lock list`.
type ListOptions struct {
	Prefix  string
	Foreign bool
	Backend backendFlags
}

func newListCmd(f *cmdutil.Factory) *cobra.Command {
	o := &ListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--prefix P]",
		Short: "List held locks with holder and TTL left",
		Long: `List the held locks whose name starts with --prefix, with holder, fencing token,
TTL left and waiters. Keys are found with SCAN (never KEYS), so a large keyspace is
walked in steps without blocking Redis.

With --foreign, keys starting with --prefix that look like other libraries' locks
(redsync, redislock, Redisson; with a TTL) are listed too; this reads every such
key, so give a prefix on a big keyspace.

JSON: an array of objects as in ` + "`inspect`" + `.`,
		Example: `  dsctl lock list
  dsctl lock list --prefix deploy/ -o json
  dsctl lock list --prefix 'orders:' --foreign`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunList(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().StringVar(&o.Prefix, "prefix", "", "only locks whose name starts with this")
	cmd.Flags().BoolVar(&o.Foreign, "foreign", false, "also list other libraries' locks (redsync, redislock, Redisson) under --prefix")
	o.Backend.register(cmd)
	return cmd
}

// RunList prints the held locks.
func RunList(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *ListOptions) error {
	l, _, err := open(ctx, f, o.Backend)
	if err != nil {
		return err
	}
	defer l.Close()
	infos, err := l.List(ctx, lock.ListOptions{Prefix: o.Prefix, Foreign: o.Foreign})
	if err != nil {
		return err
	}
	if infos == nil {
		infos = []lock.Info{}
	}
	return p.Print(ListView(infos))
}
