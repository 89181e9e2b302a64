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

// LocateOptions are the flags and arguments of `dsctl ring locate`.
type LocateOptions struct {
	ClusterOptions
	PlacementOptions
	Replicas int
	Keys     []string
}

func newLocateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &LocateOptions{}
	cmd := &cobra.Command{
		Use:   "locate KEY...",
		Short: "Show which node owns each key (and its replicas) under each algorithm",
		Long: `Show the node that owns each key under each algorithm, side by side; with
--replicas R, the R distinct nodes the key goes to in preference order (the next
points clockwise on a ring, the next table entries for maglev, the next best
scores for rendezvous). Use --compat to predict where golang/groupcache,
stathat/consistent or libketama put a key in production.

bounded shows a key's first choice with no load counted: under load a full node
passes the key clockwise, which depends on every other key.

JSON: an array with one object per key and algorithm, key by key. Keys: key,
algo, hash, owners (array, preference order), note (bounded only).`,
		Example: `  dsctl ring locate user:42 --nodes 5
  dsctl ring locate user:42 session:9 --node cache-a --node cache-b --node cache-c --algo ring,jump
  dsctl ring locate user:42 --node a,b,c,d --replicas 2 --algo rendezvous
  dsctl ring locate user:42 --node 10.0.0.1:11211 --node 10.0.0.2:11211 --compat ketama -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNumericFlags(cmd, o.Nodes); err != nil {
				return err
			}
			o.Keys = args
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunLocate(cmdutil.Context(cmd), f, p, o)
		},
	}
	addClusterFlags(cmd, &o.ClusterOptions)
	addPlacementFlags(cmd, &o.PlacementOptions)
	fl := cmd.Flags()
	fl.IntVar(&o.Replicas, "replicas", 1, "owners per key, in preference order")
	registerCompletions(cmd, false)
	return cmd
}

// RunLocate prints the owners of each key under each algorithm.
func RunLocate(_ context.Context, _ *cmdutil.Factory, p *output.Printer, o *LocateOptions) error {
	c, algos, err := o.resolve(o.ClusterOptions)
	if err != nil {
		return err
	}
	ps, err := hashring.Locate(hashring.LocateSpec{Cluster: c, Algos: algos, Replicas: o.Replicas}, o.Keys)
	if err != nil {
		return err
	}
	return p.Print(Placements(ps))
}

// Placements is what locate prints: one entry per key and algorithm, key by key.
type Placements []hashring.Placement

// Table puts one key per row and one algorithm per column.
func (ps Placements) Table() *output.TableData {
	var algos []hashring.Algo
	hashOf := map[hashring.Algo]string{}
	notes := map[hashring.Algo]string{}
	for _, p := range ps {
		if !slices.Contains(algos, p.Algo) {
			algos = append(algos, p.Algo)
			hashOf[p.Algo] = p.Hash
			if p.Note != "" {
				notes[p.Algo] = p.Note
			}
		}
	}
	header := []string{"key"}
	for _, a := range algos {
		header = append(header, string(a))
	}
	t := &output.TableData{Header: header}
	for i := 0; i+len(algos) <= len(ps); i += len(algos) {
		key := ps[i].Key
		if key == "" {
			key = `""` // the empty key is a key too
		}
		row := []output.Cell{output.C(key)}
		for _, p := range ps[i : i+len(algos)] {
			row = append(row, output.C(strings.Join(p.Owners, ",")))
		}
		t.AddCells(row...)
	}
	t.Notes = append(t.Notes, output.S("hash: "+hashNote(algos, hashOf), output.Dim))
	for _, a := range algos {
		if notes[a] != "" {
			t.Notes = append(t.Notes, output.S(fmt.Sprintf("%s: %s", a, notes[a]), output.Dim))
		}
	}
	return t
}

// hashNote names the key hash once when every algorithm uses the same, else per algorithm.
func hashNote(algos []hashring.Algo, hashOf map[hashring.Algo]string) string {
	var hs []string
	same := true
	for _, a := range algos {
		hs = append(hs, fmt.Sprintf("%s %s", a, hashOf[a]))
		same = same && hashOf[a] == hashOf[algos[0]]
	}
	if same && len(algos) > 0 {
		return hashOf[algos[0]]
	}
	return strings.Join(hs, ", ")
}
