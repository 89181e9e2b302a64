// Package ring implements `dsctl ring`: simulate, locate and sweep consistent-hash
// placement. The engine is probes/ring; this package turns flags into its specs, opens
// the keys file, shows progress and prints the results.
package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// NewCmd builds `dsctl ring`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ring",
		Short: "Simulate and compare consistent-hash placement (pure: needs no server)",
		Long: `Simulate and compare consistent-hash placement on your own keys before you ship:
how evenly each scheme spreads keys, how many keys move when a node joins or
leaves, which node owns a key, and how many virtual nodes a ring needs.

Algorithms: modulo (the naive baseline), ring (hash ring with virtual nodes),
jump (Lamping & Veach), rendezvous (highest random weight), maglev (lookup table
of prime size M), bounded (consistent hashing with bounded loads). Hashes:
xxhash64 (default), murmur3, fnv1a-64, crc32, md5. --compat groupcache, stathat
or ketama reproduces exactly where that library puts each key (it then uses the
library's own hash).`,
		Example: `  dsctl ring simulate --nodes 10 --vnodes 100 --keys 1000000 --algo all
  dsctl ring simulate --nodes 10 --add node-11 --algo modulo,ring,jump
  dsctl ring locate user:42 --node cache-a --node cache-b --node cache-c --compat groupcache
  dsctl ring sweep --nodes 10 --target-max-over-mean 1.1 --plot sweep.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSimulateCmd(f), newLocateCmd(f), newSweepCmd(f))
	return cmd
}

// ClusterOptions are the node-set flags every ring command shares.
type ClusterOptions struct {
	// Nodes is --nodes N (node-1 .. node-N); 0 means not given.
	Nodes int
	// NodeSpecs are the --node NAME[=WEIGHT] values.
	NodeSpecs     []string
	Hash          string
	BalanceFactor int
}

const nodesHint = "give --nodes N for node-1..node-N, or one --node NAME[=WEIGHT] per node"

// nodes resolves --nodes or --node into the node list.
func (o ClusterOptions) nodes() ([]hashring.Node, error) {
	switch {
	case o.Nodes != 0 && len(o.NodeSpecs) > 0:
		return nil, errs.Usage("ring: --nodes and --node cannot be used together").WithHint("%s", nodesHint)
	case o.Nodes != 0:
		return hashring.GenerateNodes(o.Nodes)
	case len(o.NodeSpecs) > 0:
		return hashring.ParseNodes(o.NodeSpecs)
	}
	return nil, errs.Usage("ring: no nodes given").WithHint("%s", nodesHint)
}

func (o ClusterOptions) cluster(vnodes, maglevM int) (hashring.Cluster, error) {
	nodes, err := o.nodes()
	if err != nil {
		return hashring.Cluster{}, err
	}
	return hashring.Cluster{Nodes: nodes, Vnodes: vnodes, Hash: o.Hash, MaglevM: maglevM, BalanceFactor: o.BalanceFactor}, nil
}

func addClusterFlags(cmd *cobra.Command, o *ClusterOptions) {
	fl := cmd.Flags()
	fl.IntVar(&o.Nodes, "nodes", 0, "simulate N equal nodes named node-1..node-N")
	fl.StringSliceVar(&o.NodeSpecs, "node", nil, "a node as NAME or NAME=WEIGHT (repeat, or separate with commas)")
	fl.StringVar(&o.Hash, "hash", hashring.DefaultHash, "key hash: "+strings.Join(hashring.HashNames(), ", ")+" (compat modes use their library's)")
	fl.IntVar(&o.BalanceFactor, "balance-factor", hashring.DefaultBalanceFactor, "bounded: a node holds at most this percent of the average load (like HAProxy's hash-balance-factor)")
}

// checkNumericFlags turns an explicit --nodes 0 (or below) into the engine's error,
// which would otherwise read as "no nodes given", and rejects an explicit 0 (or an
// empty list) for the flags whose engine field reads zero as "use the default":
// --replicas 0 must not quietly mean 1.
func checkNumericFlags(cmd *cobra.Command, n int) error {
	if cmd.Flags().Changed("nodes") && n < 1 {
		_, err := hashring.GenerateNodes(n)
		return err
	}
	for _, z := range zeroMeansDefault {
		fl := cmd.Flags().Lookup(z.flag)
		if fl == nil || !fl.Changed || z.list != (fl.Value.Type() == "string") {
			continue
		}
		v := strings.TrimSpace(fl.Value.String())
		if v == "" {
			return errs.Usage("ring: --%s must be %s, got an empty value", z.flag, z.want).WithHint("%s", z.hint)
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil && x == 0 {
			return errs.Usage("ring: --%s must be %s, got %s", z.flag, z.want, v).WithHint("%s", z.hint)
		}
	}
	return nil
}

// zeroMeansDefault are the flags whose engine field takes 0 for "the default"; given
// explicitly, 0 is a mistake.
var zeroMeansDefault = []struct {
	flag, want, hint string
	list             bool // a comma-separated string flag: only an empty value is checked here
}{
	{"replicas", "at least 1", "--replicas R lists the R nodes a key goes to, in preference order", false},
	{"maglev-m", "a prime of at least 2", "leave it out to size the table from the node count; or give a prime well above it", false},
	{"balance-factor", "above 100 (percent of the average load)", "125 lets a node hold 1.25x the average", false},
	{"target-max-over-mean", "a number >= 1", fmt.Sprintf("the default is %v: the most loaded node may hold %vx its fair share", hashring.DefaultTarget, hashring.DefaultTarget), false},
	// sweep's --vnodes list; simulate and locate's int --vnodes 0 gets the engine's own error.
	{"vnodes", "a comma-separated list of whole numbers >= 1", "e.g. --vnodes 10,20,50,100,200,500,1000", true},
}

// compatModes are the --compat values, in help order.
func compatModes() []string {
	var names []string
	for _, a := range hashring.CompatModes() {
		names = append(names, string(a))
	}
	return names
}

func parseCompat(s string) (hashring.Algo, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if !slices.Contains(compatModes(), name) {
		return "", errs.Usage("ring: unknown --compat %q", s).WithHint("use one of %s", strings.Join(compatModes(), ", "))
	}
	return hashring.Algo(name), nil
}

// resolveAlgos turns --algo and --compat into the algorithm list: --compat alone runs
// only that mode; with --algo it is added to the list; with neither, def.
func resolveAlgos(list, compat, def string) ([]hashring.Algo, error) {
	var extra hashring.Algo
	if compat != "" {
		a, err := parseCompat(compat)
		if err != nil {
			return nil, err
		}
		extra = a
		if strings.TrimSpace(list) == "" {
			return []hashring.Algo{a}, nil
		}
	}
	if strings.TrimSpace(list) == "" {
		list = def
	}
	algos, err := hashring.ParseAlgos(list)
	if err != nil {
		return nil, err
	}
	if extra != "" && !slices.Contains(algos, extra) {
		algos = append(algos, extra)
	}
	return algos, nil
}

var maglevMHelp = fmt.Sprintf("maglev lookup table size, a prime well above the node count (default: the next prime above %dx the nodes, at least %d, at most %d)",
	hashring.MaglevFactor, hashring.DefaultMaglevM, hashring.MaxAutoMaglevM)

// PlacementOptions pick the algorithms and size their tables (simulate, locate).
type PlacementOptions struct {
	Vnodes  int
	MaglevM int
	Algos   string // --algo; "" means all (or only the --compat mode)
	Compat  string
}

func addPlacementFlags(cmd *cobra.Command, o *PlacementOptions) {
	fl := cmd.Flags()
	fl.IntVar(&o.Vnodes, "vnodes", hashring.DefaultVnodes, "virtual nodes per node (per unit of weight) for ring, bounded, groupcache, stathat")
	fl.IntVar(&o.MaglevM, "maglev-m", 0, maglevMHelp)
	fl.StringVar(&o.Algos, "algo", "", algoHelp+` (default "all", or only the --compat mode)`)
	fl.StringVar(&o.Compat, "compat", "", "reproduce a library's placement exactly: "+strings.Join(compatModes(), ", "))
}

// resolve builds the cluster c names with o's table sizes, and the algorithms to run.
func (o PlacementOptions) resolve(c ClusterOptions) (hashring.Cluster, []hashring.Algo, error) {
	cluster, err := c.cluster(o.Vnodes, o.MaglevM)
	if err != nil {
		return hashring.Cluster{}, nil, err
	}
	algos, err := resolveAlgos(o.Algos, o.Compat, "all")
	if err != nil {
		return hashring.Cluster{}, nil, err
	}
	return cluster, algos, nil
}

const algoHelp = "algorithms, comma-separated: modulo, ring, jump, rendezvous, maglev, bounded, or all (compat modes groupcache, stathat, ketama too)"

// KeysOptions say where keys come from: generated (--keys, --dist, --seed) or a file.
type KeysOptions struct {
	Keys     int64
	KeysFile string // one key per line; "-" is stdin
	Dist     string
	Seed     uint64
}

const defaultKeys = 1_000_000

func addKeysFlags(cmd *cobra.Command, o *KeysOptions) {
	fl := cmd.Flags()
	fl.Int64Var(&o.Keys, "keys", defaultKeys, "number of keys to generate")
	fl.StringVar(&o.KeysFile, "keys-file", "", "replay your own keys: a file with one key per line, streamed (- for stdin)")
	fl.StringVar(&o.Dist, "dist", "uniform", "generated key distribution: uniform (each key once) or zipf:S, S > 1 (hot keys repeat)")
	fl.Uint64Var(&o.Seed, "seed", 1, "seed of the generated keys: the same seed gives the same output (lookup_ns aside)")
}

// checkKeysFlags rejects --keys or --dist next to --keys-file: they describe generated
// keys, and silently ignoring them would mislead.
// runWithKeys is the RunE of a command that places keys (simulate, sweep): it checks
// the numeric flags and the key flags, then calls run with the standard printer.
func runWithKeys(f *cmdutil.Factory, c *ClusterOptions, k *KeysOptions, run func(ctx context.Context, p *output.Printer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := checkNumericFlags(cmd, c.Nodes); err != nil {
			return err
		}
		if err := checkKeysFlags(cmd, k); err != nil {
			return err
		}
		p, err := f.Printer(output.Standard)
		if err != nil {
			return err
		}
		return run(cmdutil.Context(cmd), p)
	}
}

func checkKeysFlags(cmd *cobra.Command, o *KeysOptions) error {
	if o.KeysFile == "" {
		return nil
	}
	for _, name := range []string{"keys", "dist"} {
		if cmd.Flags().Changed(name) {
			return errs.Usage("ring: --%s and --keys-file cannot be used together", name).
				WithHint("--%s shapes generated keys; --keys-file replays yours as they are", name)
		}
	}
	return nil
}

// keySource opens the keys: the caller must call the returned close function.
func (o KeysOptions) keySource(stdin io.Reader) (hashring.KeySource, func(), error) {
	nop := func() {}
	if o.KeysFile == "" {
		dist, err := hashring.ParseDist(o.Dist)
		if err != nil {
			return nil, nop, err
		}
		src, err := hashring.NewGeneratedKeys(o.Keys, dist, o.Seed)
		return src, nop, err
	}
	if o.KeysFile == "-" {
		return hashring.NewLineKeys(stdin), nop, nil
	}
	st, err := os.Stat(o.KeysFile)
	if err == nil && st.IsDir() {
		return nil, nop, errs.Usage("ring: keys file %q is a directory", o.KeysFile).WithHint("give a file with one key per line")
	}
	fh, err := os.Open(o.KeysFile)
	if err != nil {
		return nil, nop, keysFileError(o.KeysFile, err)
	}
	return hashring.NewLineKeys(fh), func() { fh.Close() }, nil
}

func keysFileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errs.Usage("ring: keys file %q does not exist", path).
			WithHint("give a file with one key per line, or --keys N to generate keys").Wrap(err)
	case errors.Is(err, fs.ErrPermission):
		return errs.Usage("ring: cannot read keys file %q: permission denied", path).
			WithHint("check the file's permissions").Wrap(err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return errs.Usage("ring: cannot open keys file %q: %v", path, err).Wrap(err)
}

// namedKeysError names the keys file in the engine's "the key stream is empty" error.
func (o KeysOptions) namedKeysError(err error) error {
	if o.KeysFile == "" || !errors.Is(err, hashring.ErrNoKeys) {
		return err
	}
	name := fmt.Sprintf("keys file %q", o.KeysFile)
	if o.KeysFile == "-" {
		name = "stdin"
	}
	return errs.Usage("ring: %s holds no keys", name).WithHint("put one key per line; blank lines are skipped").Wrap(err)
}
