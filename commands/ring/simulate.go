package ring

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// SimulateOptions are the flags of `dsctl ring simulate`.
type SimulateOptions struct {
	ClusterOptions
	KeysOptions
	PlacementOptions
	Add    []string // NAME[=WEIGHT]
	Remove []string
}

// maxNodeRows is the most nodes the per-node table lists; beyond that the JSON output
// has them and a TTY gets a one-character-per-node chart.
const maxNodeRows = 40

func newSimulateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SimulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Place keys on nodes with each algorithm and compare the balance, cost and churn",
		Long: `Run keys through each algorithm and report, side by side, how evenly they spread
over the nodes: per node its keys, share and ideal share (its weight's share);
overall the standard deviation of load in percent of the mean, max/mean and
min/mean (load = share / ideal share), the CPU time of one lookup (hashing
included) and the memory of the lookup structure.

With --add and/or --remove the keys are placed before and after the change:
keys moved, the fraction moved, and the ideal fraction (the least any scheme can
move: 1/(N+1) for one equal-weight add, the removed node's share for a remove).
The per-node figures then describe the node set after the change.

Keys are generated (--keys, --dist, --seed) or replayed from --keys-file, one per
line. The same seed or file gives the same output, except lookup_ns, which is
measured. On a terminal a bar chart of per-node load follows the table, and runs
longer than a second show progress on stderr.

JSON: an array with one object per algorithm. Keys: algo, hash, keys, vnodes,
maglev_m, maglev_m_auto (true when M was sized from the node count), balance_factor
(each only where the algorithm uses it), nodes (each
name, keys, share, ideal_share), stddev_pct, max_over_mean, min_over_mean,
moved_keys, moved_fraction, ideal_moved_fraction (null without --add/--remove),
lookup_ns, memory_bytes, and with a change before (nodes, stddev_pct,
max_over_mean, min_over_mean before it).`,
		Example: `  dsctl ring simulate --nodes 10 --vnodes 100 --keys 1000000
  dsctl ring simulate --nodes 100 --vnodes 200 --keys 10000000 --algo ring
  dsctl ring simulate --node a=1 --node b=1 --node c=2 --algo ring,rendezvous,maglev
  dsctl ring simulate --nodes 10 --add node-11 --algo modulo,ring,jump,maglev -o json
  dsctl ring simulate --nodes 10 --remove node-3 --compat ketama --keys-file keys.txt
  dsctl ring simulate --nodes 20 --dist zipf:1.1 --algo ring,bounded --balance-factor 125`,
		Args: cobra.NoArgs,
		RunE: runWithKeys(f, &o.ClusterOptions, &o.KeysOptions, func(ctx context.Context, p *output.Printer) error {
			return RunSimulate(ctx, f, p, o)
		}),
	}
	addClusterFlags(cmd, &o.ClusterOptions)
	addKeysFlags(cmd, &o.KeysOptions)
	addPlacementFlags(cmd, &o.PlacementOptions)
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Add, "add", nil, "add a node NAME[=WEIGHT] and count the keys that move (repeatable)")
	fl.StringSliceVar(&o.Remove, "remove", nil, "remove node NAME and count the keys that move (repeatable)")
	registerCompletions(cmd, false)
	return cmd
}

// RunSimulate runs the simulation and prints one result per algorithm.
func RunSimulate(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *SimulateOptions) error {
	c, algos, err := o.resolve(o.ClusterOptions)
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.Algos) == "" && o.Compat == "" && o.KeysFile == "" {
		var why string
		if algos, why = leaveOutSlowRendezvous(algos, len(c.Nodes)+len(o.Add), o.Keys); why != "" {
			f.IO.Warnf("%s", why)
		}
	}
	add := make([]hashring.Node, 0, len(o.Add))
	for _, s := range o.Add {
		n, err := hashring.ParseNode(s)
		if err != nil {
			return err
		}
		add = append(add, n)
	}
	src, closeKeys, err := o.keySource(f.IO.In)
	if err != nil {
		return err
	}
	defer closeKeys()
	prog := newProgress(f.IO, "simulate")
	res, err := hashring.Simulate(ctx, hashring.SimulateSpec{Cluster: c, Algos: algos, Add: add, Remove: o.Remove}, src, prog.callback())
	prog.finish()
	if err != nil {
		return o.namedKeysError(err)
	}
	results := SimulateResults(res)
	if err := p.Print(results); err != nil {
		return err
	}
	if p.Format != output.Table {
		return nil
	}
	if len(results[0].Nodes) <= maxNodeRows {
		if _, err := fmt.Fprintln(p.Out); err != nil {
			return err
		}
		if err := p.Print(nodeShares(results)); err != nil {
			return err
		}
	}
	if f.IO.StdoutTTY {
		return writeLoadChart(p.Out, terminalWidth(f), p.Color, results)
	}
	return nil
}

// SimulateResults is what simulate prints: one result per algorithm.
type SimulateResults []hashring.Result

func (rs SimulateResults) changed() bool { return len(rs) > 0 && rs[0].MovedKeys != nil }

// Table compares the algorithms, one row each.
func (rs SimulateResults) Table() *output.TableData {
	header := []string{"algo", "hash", "params", "stddev", "max/mean", "min/mean"}
	right := map[int]bool{3: true, 4: true, 5: true}
	if rs.changed() {
		header = append(header, "moved keys", "moved", "ideal")
		right[6], right[7], right[8] = true, true, true
	}
	header = append(header, "lookup", "memory")
	right[len(header)-2], right[len(header)-1] = true, true
	t := &output.TableData{Header: header, RightAlign: right}
	for _, r := range rs {
		row := []output.Cell{
			output.S(string(r.Algo), output.Bold), output.C(r.Hash), output.C(params(r)),
			output.C(fmt.Sprintf("%.2f%%", r.StddevPct)),
			output.S(ratio(r.MaxOverMean), maxStyle(r.MaxOverMean, hashring.DefaultTarget)),
			output.C(ratio(r.MinOverMean)),
		}
		if rs.changed() {
			row = append(row,
				output.C(commas(*r.MovedKeys)),
				output.S(pct(*r.MovedFraction), movedStyle(*r.MovedFraction, *r.IdealMovedFraction)),
				output.C(pct(*r.IdealMovedFraction)))
		}
		row = append(row, output.C(nanos(r.LookupNs)), output.C(bytesIEC(r.MemoryBytes)))
		t.AddCells(row...)
	}
	if len(rs) > 0 {
		note := fmt.Sprintf("%s keys over %s", commas(rs[0].Keys), output.Plural(len(rs[0].Nodes), "node"))
		if rs.changed() {
			note += " (after the change; moved = keys whose node changed)"
		}
		if n := len(rs[0].Nodes); n > maxNodeRows {
			note += fmt.Sprintf("; per-node loads of all %d nodes: -o json", n)
		}
		t.Notes = append(t.Notes, output.S(note, output.Dim))
	}
	for _, r := range rs {
		if r.Algo == hashring.AlgoMaglev && r.MaglevMAuto {
			t.Notes = append(t.Notes, output.S(fmt.Sprintf("maglev: table size M=%d chosen from the node count (the next prime above %dx the nodes, at least %d, at most %d); --maglev-m sets it",
				r.MaglevM, hashring.MaglevFactor, hashring.DefaultMaglevM, hashring.MaxAutoMaglevM), output.Dim))
		}
	}
	return t
}

// rendezvousBudget is how many node hashes the default --algo all spends on rendezvous
// (which hashes every node for every key) before leaving it out: about ten seconds.
const rendezvousBudget = 2_000_000_000

// leaveOutSlowRendezvous drops rendezvous from the default algorithm list when nodes x
// keys is beyond rendezvousBudget, and says why (asked for by name, it always runs).
func leaveOutSlowRendezvous(algos []hashring.Algo, nodes int, keys int64) ([]hashring.Algo, string) {
	if int64(nodes)*keys <= rendezvousBudget || !slices.Contains(algos, hashring.AlgoRendezvous) {
		return algos, ""
	}
	out := slices.DeleteFunc(slices.Clone(algos), func(a hashring.Algo) bool { return a == hashring.AlgoRendezvous })
	return out, fmt.Sprintf("rendezvous left out: it hashes every node for every key (%s nodes x %s keys); run it with --algo rendezvous, fewer keys, or both",
		commas(int64(nodes)), commas(keys))
}

// params shows the knobs that shaped an algorithm's placement.
func params(r hashring.Result) string {
	var ps []string
	if r.Vnodes > 0 {
		ps = append(ps, fmt.Sprintf("V=%d", r.Vnodes))
	}
	if r.MaglevM > 0 && r.MaglevMAuto {
		ps = append(ps, fmt.Sprintf("M=%d (auto)", r.MaglevM))
	} else if r.MaglevM > 0 {
		ps = append(ps, fmt.Sprintf("M=%d", r.MaglevM))
	}
	if r.BalanceFactor > 0 {
		ps = append(ps, fmt.Sprintf("f=%d%%", r.BalanceFactor))
	}
	if len(ps) == 0 {
		return "-"
	}
	return strings.Join(ps, " ")
}

// nodeShareTable lists per-node loads: with one algorithm its keys, share and ideal
// share; with several, each algorithm's share side by side.
type nodeShareTable struct{ rs SimulateResults }

func nodeShares(rs SimulateResults) nodeShareTable { return nodeShareTable{rs} }

func (n nodeShareTable) Table() *output.TableData {
	rs := n.rs
	added := addedNodes(rs)
	name := func(s string) string {
		if added[s] {
			return s + " (added)"
		}
		return s
	}
	if len(rs) == 1 {
		t := &output.TableData{Header: []string{"node", "keys", "share", "ideal", "load"}, RightAlign: map[int]bool{1: true, 2: true, 3: true, 4: true}}
		for _, nl := range rs[0].Nodes {
			load := nl.Share / nl.IdealShare
			t.AddCells(output.C(name(nl.Name)), output.C(commas(nl.Keys)), output.C(pct(nl.Share)), output.C(pct(nl.IdealShare)),
				output.S(ratio(load), loadStyle(load)))
		}
		t.Notes = removedNote(rs)
		return t
	}
	header := []string{"node", "ideal"}
	right := map[int]bool{1: true}
	for _, r := range rs {
		right[len(header)] = true
		header = append(header, string(r.Algo))
	}
	t := &output.TableData{Header: header, RightAlign: right}
	for i, nl := range rs[0].Nodes {
		row := []output.Cell{output.C(name(nl.Name)), output.C(pct(nl.IdealShare))}
		for _, r := range rs {
			x := r.Nodes[i]
			row = append(row, output.S(pct(x.Share), loadStyle(x.Share/x.IdealShare)))
		}
		t.AddCells(row...)
	}
	t.Notes = append(removedNote(rs), output.S("share of keys per node; keys per node: -o json", output.Dim))
	return t
}

// addedNodes are the nodes present after the change but not before it.
func addedNodes(rs SimulateResults) map[string]bool {
	out := map[string]bool{}
	if len(rs) == 0 || rs[0].Before == nil {
		return out
	}
	before := map[string]bool{}
	for _, n := range rs[0].Before.Nodes {
		before[n.Name] = true
	}
	for _, n := range rs[0].Nodes {
		if !before[n.Name] {
			out[n.Name] = true
		}
	}
	return out
}

func removedNote(rs SimulateResults) []output.Cell {
	if len(rs) == 0 || rs[0].Before == nil {
		return nil
	}
	after := map[string]bool{}
	for _, n := range rs[0].Nodes {
		after[n.Name] = true
	}
	var gone []string
	for _, n := range rs[0].Before.Nodes {
		if !after[n.Name] {
			gone = append(gone, n.Name)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return []output.Cell{output.S("removed: "+strings.Join(gone, ", "), output.Dim)}
}
