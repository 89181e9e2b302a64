package lock

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/lock"
)

const infoKeys = `JSON keys: name, key, held, format (dsctl, redsync, redislock, redisson,
not-a-lock, or "" when free), format_detail (for not-a-lock the key's type, size and
expiry: "string, 5 bytes, no expiry; ..."), object {type, ttl_left_ms (-1: no expiry),
size (bytes, fields, elements or members; -1 unknown)} (not-a-lock only), holder {token,
fence (string), owner
{host, pid, user, command, label, tool}, acquired_at, ttl_left_ms (-1: no expiry),
reentrancy}, waiters (-1: unknown), queue [{node, token, seq, fence, holding, format,
session, owner, created, age_ms}] (ZooKeeper: holder first, then each waiter in
order), last_fence, fencing_safe, last_break {at, by,
reason, token, fence}, instances [{endpoint, held, format, token, fence, ttl_left_ms,
error}]
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
last forced break. On ZooKeeper also the queue in order: the holder, then each
waiter with its node, session, age and owner.

On ZooKeeper it recognises the queues of Apache Curator (InterProcessMutex,
_c_<uuid>-lock-<seq>), go-zookeeper's Lock (_c_<32 hex>-lock-<seq>) and kazoo's Lock
(<32 hex>__lock__<seq>) under --zk-root/NAME; a node with children that are not queue
nodes is shown as "not a lock", and any such children of a lock are named in a note.

On MySQL and PostgreSQL the table (--table, default dsctl_locks) is recognised by its
columns: dsctl's lease rows, a ShedLock table (name, lock_until, locked_at, locked_by:
the holder is locked_by, held while lock_until is ahead by the database's clock) or a
classic unique-key table (e.g. method_lock(method_name unique, ...): a row is a held
lock, with no expiry and no owner). When no live row holds the name, the holder of
its session lock is shown: MySQL user locks (GET_LOCK: IS_USED_LOCK and the
processlist; list reads performance_schema.metadata_locks) and PostgreSQL advisory
locks (pg_locks joined with pg_stat_activity: pid, user, client address,
application). In session mode it holds the lock (a dsctl client's connection is named
so; one whose lease on the row ran out while its connection lives is that lease's
holder, which break ends); in lease mode it is a note, as lease clients do not wait
for session locks.

On Redis it recognises locks made by other libraries, looked up by their Redis key:
  redsync    go-redsync/redsync: a string of 16 random bytes in base64 (24 characters
             ending in ==) with a TTL
  redislock  bsm/redislock: a string of 16 random bytes in URL-safe base64 (22
             characters), then optional metadata (shown as the owner label), with a TTL
  redisson   Redisson RLock: a hash with one field <client uuid>:<thread id> whose
             value is the hold count, with a TTL (its waiters are counted)
A key is a lock only when it matches one of these (or dsctl's own lease) in type,
value and TTL. Anything else, e.g. a counter or a cache entry named like a lock, is
shown as "not a lock" with its type, size and expiry, and ` + "`lock break`" + ` refuses it
(--raw deletes it). A value such a library made with a custom token (redsync
WithValue, redislock Options.Token) is not recognised. In quorum mode every server is
read; a server where the key is not a lock is named in a note.

` + infoKeys,
		Example: `  dsctl lock inspect deploy-prod
  dsctl lock inspect deploy-prod --zk zk1:2181 -o json   # holder and queue
  dsctl lock inspect 'orders:lock:42' -o json      # a Redisson or redsync lock by its key
  dsctl lock inspect reportJob --backend postgres --table shedlock   # a ShedLock row
  dsctl lock list --backend mysql --table method_lock                 # a unique-key table`,
		Args: oneName,
		RunE: runOnName(f, &o.Name, output.Standard, func(ctx context.Context, p *output.Printer) error {
			return RunInspect(ctx, f, p, o)
		}),
	}
	o.Backend.register(cmd)
	cmd.ValidArgsFunction = cmdutil.FirstArg(completeLockName(f, &o.Backend))
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
TTL left and waiters. On Redis keys are found with SCAN (never KEYS), so a large
keyspace is walked in steps without blocking Redis; on ZooKeeper the tree under
--zk-root is walked (at most 20,000 nodes: narrow it with --prefix).

With --foreign, keys starting with --prefix that are other libraries' locks (they
match the redsync, redislock or Redisson format described in ` + "`inspect --help`" + `,
TTL included) are listed too; keys that are not locks are never listed. This reads
every key under the prefix, so give a prefix on a big keyspace.

On MySQL and PostgreSQL the rows of --table are listed (dsctl, ShedLock or unique-key,
recognised by the columns), with the session locks held on the server (GET_LOCK user
locks, advisory locks) whose name starts with --prefix.

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
	cmdutil.RegisterFlag(cmd, "prefix", completeLockName(f, &o.Backend))
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
