package ring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	hashring "github.com/dsctl/dsctl/probes/ring"
	"github.com/dsctl/dsctl/probes/ring/plot"
)

// SweepOptions are the flags of `dsctl ring sweep`.
type SweepOptions struct {
	ClusterOptions
	KeysOptions
	Vnodes string // comma-separated V list; "" means the default list
	Algo   string // one of ring, bounded, groupcache, stathat; "" means ring
	Compat string
	Target float64
	Plot   string // FILE.svg or FILE.png
}

func newSweepCmd(f *cmdutil.Factory) *cobra.Command {
	o := &SweepOptions{}
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Measure imbalance against the number of virtual nodes, and find the V you need",
		Long: `Run the same keys through a ring at each number of virtual nodes V in --vnodes and
report the imbalance at each: standard deviation of load in percent of the mean,
max/mean and min/mean, lookup cost and memory. The answer is the smallest V whose
max/mean is at most --target-max-over-mean. --plot FILE.svg or FILE.png draws
max/mean and min/mean against V, with the target and the answer marked.

Sweep varies V, so the algorithm is one that uses it: ring (default), bounded,
or --compat groupcache or stathat. Keys are generated (--keys, --dist, --seed) or
replayed from --keys-file; runs longer than a second show progress on stderr
when it is a terminal.

JSON keys: algo, hash, keys, nodes (the node count), target_max_over_mean, points
(each vnodes, stddev_pct, max_over_mean, min_over_mean, meets_target, lookup_ns,
memory_bytes), smallest_vnodes (null when no V meets the target).`,
		Example: `  dsctl ring sweep --nodes 10
  dsctl ring sweep --nodes 10 --vnodes 10,20,50,100,200,500,1000 --target-max-over-mean 1.1
  dsctl ring sweep --nodes 50 --keys 2000000 --plot docs/ring-sweep.png
  dsctl ring sweep --node a,b,c --compat groupcache --keys-file keys.txt -o json`,
		Args: cobra.NoArgs,
		RunE: runWithKeys(f, &o.ClusterOptions, &o.KeysOptions, func(ctx context.Context, p *output.Printer) error {
			return RunSweep(ctx, f, p, o)
		}),
	}
	addClusterFlags(cmd, &o.ClusterOptions)
	addKeysFlags(cmd, &o.KeysOptions)
	fl := cmd.Flags()
	fl.StringVar(&o.Vnodes, "vnodes", joinInts(hashring.DefaultSweepVnodes()), "virtual-node counts to try, comma-separated")
	fl.StringVar(&o.Algo, "algo", string(hashring.AlgoRing), "the algorithm to sweep: ring or bounded")
	fl.StringVar(&o.Compat, "compat", "", "sweep a library's ring instead: groupcache or stathat")
	fl.Float64Var(&o.Target, "target-max-over-mean", hashring.DefaultTarget, "the most loaded node may hold at most this times its fair share")
	fl.StringVar(&o.Plot, "plot", "", "also write a chart to FILE.svg or FILE.png")
	registerCompletions(cmd, true)
	return cmd
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// RunSweep runs the sweep, prints it and writes the plot.
func RunSweep(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *SweepOptions) error {
	c, err := o.cluster(0, 0)
	if err != nil {
		return err
	}
	algo, err := o.algo()
	if err != nil {
		return err
	}
	var vs []int
	if strings.TrimSpace(o.Vnodes) != "" {
		if vs, err = hashring.ParseVnodesList(o.Vnodes); err != nil {
			return err
		}
	}
	// Check the plot file before the run, so a typo does not cost the whole sweep.
	var out *plotFile
	if o.Plot != "" {
		if out, err = createPlotFile(o.Plot); err != nil {
			return err
		}
		defer out.abandon()
	}
	src, closeKeys, err := o.keySource(f.IO.In)
	if err != nil {
		return err
	}
	defer closeKeys()
	prog := newProgress(f.IO, "sweep")
	res, err := hashring.Sweep(ctx, hashring.SweepSpec{Cluster: c, Algo: algo, VnodesList: vs, TargetMaxOverMean: o.Target}, src, prog.callback())
	prog.finish()
	if err != nil {
		return o.namedKeysError(err)
	}
	if out != nil {
		if err := out.write(res); err != nil {
			return err
		}
		f.IO.Infof("ring: wrote the sweep plot to %s", o.Plot)
	}
	return p.Print(SweepReport(res))
}

// algo resolves --algo and --compat to the one algorithm swept.
func (o *SweepOptions) algo() (hashring.Algo, error) {
	if o.Compat != "" {
		if o.Algo != "" && o.Algo != string(hashring.AlgoRing) {
			return "", errs.Usage("ring: sweep takes --algo or --compat, not both").WithHint("sweep one algorithm at a time")
		}
		return parseCompat(o.Compat)
	}
	if o.Algo == "" {
		return hashring.AlgoRing, nil
	}
	if strings.Contains(o.Algo, ",") || strings.EqualFold(strings.TrimSpace(o.Algo), "all") {
		return "", errs.Usage("ring: sweep takes one algorithm, got --algo %q", o.Algo).
			WithHint("sweep ring, bounded, groupcache or stathat; compare several with ring simulate")
	}
	return hashring.ParseAlgo(o.Algo)
}

// plotFile is the chart on its way to its file: written to a temporary file beside it
// and renamed into place, so a failed or interrupted run leaves no half-written chart.
type plotFile struct {
	path   string
	format plot.Format
	tmp    *os.File
}

func createPlotFile(path string) (*plotFile, error) {
	format, err := plot.FormatForPath(path)
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			return nil, e.WithHint("e.g. --plot sweep.svg or --plot sweep.png")
		}
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, errs.Usage("ring: cannot write the plot to %q: %v", path, unwrapPath(err)).
			WithHint("check that the directory exists and is writable").Wrap(err)
	}
	return &plotFile{path: path, format: format, tmp: tmp}, nil
}

func (pf *plotFile) write(res hashring.SweepResult) error {
	var buf bytes.Buffer
	if err := plot.WriteSweep(&buf, pf.format, res); err != nil {
		return err
	}
	if _, err := pf.tmp.Write(buf.Bytes()); err != nil {
		return errs.New(errs.KindRuntime, "ring: cannot write the plot to %q: %v", pf.path, unwrapPath(err)).Wrap(err)
	}
	if err := pf.tmp.Close(); err != nil {
		return errs.New(errs.KindRuntime, "ring: cannot write the plot to %q: %v", pf.path, unwrapPath(err)).Wrap(err)
	}
	if err := os.Chmod(pf.tmp.Name(), 0o644); err != nil {
		return errs.New(errs.KindRuntime, "ring: cannot write the plot to %q: %v", pf.path, unwrapPath(err)).Wrap(err)
	}
	if err := os.Rename(pf.tmp.Name(), pf.path); err != nil {
		return errs.Usage("ring: cannot write the plot to %q: %v", pf.path, unwrapPath(err)).Wrap(err)
	}
	pf.tmp = nil
	return nil
}

// abandon removes the temporary file unless write renamed it into place.
func (pf *plotFile) abandon() {
	if pf.tmp != nil {
		pf.tmp.Close()
		os.Remove(pf.tmp.Name())
	}
}

// unwrapPath drops the operation and path from a file error: the message names the file.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// SweepReport is what sweep prints: the engine's result (same JSON keys) with a table.
type SweepReport hashring.SweepResult

// Table lists one row per V and says which V is the answer.
func (r SweepReport) Table() *output.TableData {
	t := &output.TableData{
		Header:     []string{"vnodes", "stddev", "max/mean", "min/mean", "meets", "lookup", "memory"},
		RightAlign: map[int]bool{0: true, 1: true, 2: true, 3: true, 5: true, 6: true},
	}
	for _, pt := range r.Points {
		meets := output.S("no", output.Warn)
		if pt.MeetsTarget {
			meets = output.S("yes", output.OK)
		}
		v := output.C(fmt.Sprint(pt.Vnodes))
		if r.SmallestVnodes != nil && pt.Vnodes == *r.SmallestVnodes {
			v = output.S(fmt.Sprint(pt.Vnodes), output.Bold)
		}
		t.AddCells(v, output.C(fmt.Sprintf("%.2f%%", pt.StddevPct)),
			output.S(ratio(pt.MaxOverMean), maxStyle(pt.MaxOverMean, r.Target)), output.C(ratio(pt.MinOverMean)),
			meets, output.C(nanos(pt.LookupNs)), output.C(bytesIEC(pt.MemoryBytes)))
	}
	t.Notes = append(t.Notes, output.S(fmt.Sprintf("%s, %s, %s keys, %s", r.Algo, output.Plural(r.Nodes, "node"), commas(r.Keys), r.Hash), output.Dim))
	if r.SmallestVnodes != nil {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("smallest V with max/mean <= %g: %d", r.Target, *r.SmallestVnodes), output.OK))
	} else {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("no V in the list keeps max/mean <= %g: try larger V, or a scheme like maglev or bounded (ring simulate)", r.Target), output.Warn))
	}
	return t
}
