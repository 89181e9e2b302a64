package id

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

// GenerateOptions are the flags of `dsctl id generate`.
type GenerateOptions struct {
	Layout string
	Epoch  string
	// Worker sets the layout's worker field (WorkerSet says it was given).
	Worker    int64
	WorkerSet bool
	// Datacenter sets the datacenter field (DatacenterSet says it was given).
	Datacenter    int64
	DatacenterSet bool
	// Fields are NAME=N values for other node fields (discord's process, ...).
	Fields      []string
	Count       int64
	OnRollback  string
	MaxRollback time.Duration
	// Clock is the generator's time source (nil: the system clock); tests inject one.
	Clock snowflake.Clock
}

func newGenerateCmd(f *cmdutil.Factory) *cobra.Command {
	o := &GenerateOptions{}
	cmd := &cobra.Command{
		Use:   "generate --layout NAME --worker N [--datacenter N] [-n COUNT]",
		Short: "Generate IDs: strictly increasing, never duplicated",
		Long: `Generate IDs of a layout for one node: strictly increasing and never repeated.
When a tick's sequence is used up, generate waits for the next tick (twitter mints at
most 4,096 IDs per millisecond per node). When the clock moves backwards,
--on-clock-rollback wait waits for it to catch up, at most --max-rollback, then fails;
fail fails at once.

--worker sets the layout's worker field (shard for instagram, machine for sonyflake
and influxdb, node for bwmarrin) and is required: two generators with the same worker
number mint the same IDs. --datacenter sets twitter's datacenter; --field NAME=N sets
any other node field (discord's process). Values outside a field's range are refused
with the range (exit 2).

Output: -o table (the default: one ID per line, ready for 'dsctl id decode' and
'dsctl id check'), json, yaml, jsonl or csv. JSON keys: id (a string).`,
		Example: `  dsctl id generate --layout twitter --worker 3 --datacenter 1
  dsctl id generate --layout discord --worker 1 --field process=2 -n 1000 > ids.txt
  dsctl id generate --layout sonyflake --worker 7 -n 3 -o json
  dsctl id generate --layout 'time:41:1ms,worker:10,sequence:12' --epoch 2020-01-01 --worker 5 -n 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.WorkerSet = cmd.Flags().Changed("worker")
			o.DatacenterSet = cmd.Flags().Changed("datacenter")
			p, err := f.Printer(recordFormats)
			if err != nil {
				return err
			}
			return RunGenerate(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Layout, "layout", "l", "", layoutHelp(" (required)"))
	fl.StringVar(&o.Epoch, "epoch", "", epochFlagHelp)
	fl.Int64VarP(&o.Worker, "worker", "w", 0, "worker number (the layout's worker, shard, machine or node field; required)")
	fl.Int64Var(&o.Datacenter, "datacenter", 0, "datacenter number (layouts with a datacenter field)")
	fl.StringArrayVar(&o.Fields, "field", nil, "another node field as NAME=N, e.g. process=2 (repeatable)")
	fl.Int64VarP(&o.Count, "count", "n", 1, "how many IDs")
	fl.StringVar(&o.OnRollback, "on-clock-rollback", "wait", "when the clock moves backwards: wait (up to --max-rollback) or fail")
	fl.DurationVar(&o.MaxRollback, "max-rollback", snowflake.DefaultMaxRollback, "longest wait for a clock that moved backwards")
	cmdutil.RegisterFlag(cmd, "layout", layoutCompletion(false, false))
	cmdutil.RegisterFlag(cmd, "on-clock-rollback", cmdutil.Fixed("wait\twait up to --max-rollback", "fail\tfail at once"))
	cmdutil.SetOutputFormats(cmd, recordFormats)
	return cmd
}

// RunGenerate mints o.Count IDs and streams them to stdout.
func RunGenerate(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *GenerateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	l, err := resolveLayout("generate", "generating IDs", o.Layout, o.Epoch)
	if err != nil {
		return err
	}
	if o.Count < 1 {
		return errs.Usage("id generate: -n %d is out of range; want 1 or more", o.Count)
	}
	if o.Clock == nil && l.Expired(time.Now()) {
		// A layout that cannot mint now is a bad choice of input (exit 2), not a failure.
		return errs.Usage("id generate: layout %s: its %d time bits ran out on %s; it cannot mint IDs after that",
			l.Name(), l.TimeField().Bits, snowflake.Instant(l.RunsOutMs())).
			WithHint("pick a layout with a later epoch or more time bits ('dsctl id layout' lists them)")
	}
	policy, err := snowflake.ParseRollbackPolicy(o.OnRollback)
	if err != nil {
		return err
	}
	if o.MaxRollback <= 0 {
		return errs.Usage("id generate: --max-rollback %s is out of range; want a positive duration", o.MaxRollback).
			WithHint("--on-clock-rollback fail fails at once")
	}
	nodes, err := o.nodes(l)
	if err != nil {
		return err
	}
	g, err := snowflake.NewGenerator(snowflake.GeneratorConfig{Layout: l, Nodes: nodes, OnRollback: policy,
		MaxRollback: o.MaxRollback, Clock: o.Clock})
	if err != nil {
		return err
	}

	out := newBufferedOut(f.IO)
	prog := newProgress(f.IO, "generate", "IDs", o.Count, f.IO.StdoutTTY)
	defer prog.finish()
	pre, post, head, foot := idFraming(p.Format)
	out.WriteString(head)
	buf := make([]byte, 0, 64)
	for i := int64(0); i < o.Count; i++ {
		if i&4095 == 0 && i > 0 {
			if err := ctx.Err(); err != nil {
				out.Flush()
				return err
			}
			prog.update(i)
		}
		id, err := g.Next()
		if err != nil {
			out.Flush()
			prog.finish()
			return err
		}
		buf = buf[:0]
		if p.Format == output.JSON && i > 0 {
			buf = append(buf, ',', '\n')
		}
		buf = append(buf, pre...)
		buf = strconv.AppendUint(buf, id, 10)
		buf = append(buf, post...)
		out.Write(buf)
		if err := out.record(); err != nil {
			return err
		}
	}
	out.WriteString(foot)
	return out.Flush()
}

// idFraming is how each format frames one generated ID: text before and after it, and
// once before and after all of them.
func idFraming(f output.Format) (pre, post, head, foot string) {
	switch f {
	case output.JSON:
		return `  {"id": "`, `"}`, "[\n", "\n]\n"
	case output.JSONL:
		return `{"id":"`, "\"}\n", "", ""
	case output.YAML:
		// One YAML list, laid out as the printer lays out lists (see output.AppendYAMLListItem).
		return "  - id: \"", "\"\n", "", ""
	case output.CSV:
		return "", "\n", "id\n", ""
	}
	return "", "\n", "", ""
}

// nodes maps --worker, --datacenter and --field to the layout's node fields.
func (o *GenerateOptions) nodes(l *snowflake.Layout) (map[string]int64, error) {
	nodes := map[string]int64{}
	set := func(name string, v int64, flag string) error {
		if _, dup := nodes[name]; dup {
			return errs.Usage("id generate: %s is set twice (again by %s)", name, flag)
		}
		nodes[name] = v
		return nil
	}
	workerField := l.WorkerFieldName()
	if o.WorkerSet {
		if workerField == "" {
			return nil, errs.Usage("id generate: layout %s has no worker field", l.Name()).
				WithHint("drop --worker; its IDs are %s", fieldList(l))
		}
		if err := set(workerField, o.Worker, "--worker"); err != nil {
			return nil, err
		}
	}
	if o.DatacenterSet {
		if err := set("datacenter", o.Datacenter, "--datacenter"); err != nil {
			return nil, err
		}
	}
	for _, kv := range o.Fields {
		name, val, ok := strings.Cut(kv, "=")
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if !ok || err != nil {
			return nil, errs.Usage("id generate: --field %q: want NAME=N, e.g. process=2", kv)
		}
		if err := set(strings.ToLower(strings.TrimSpace(name)), v, "--field "+kv); err != nil {
			return nil, err
		}
	}
	if workerField != "" {
		if _, ok := nodes[workerField]; !ok {
			f := fieldNamed(l, workerField)
			return nil, errs.Usage("id generate: --worker is required for layout %s (its %s field, 0..%d)", l.Name(), workerField, f.Max()).
				WithHint("every generator needs a worker number of its own, or two of them mint the same IDs")
		}
	}
	return nodes, nil
}

func fieldNamed(l *snowflake.Layout, name string) snowflake.Field {
	for i := range l.NumFields() {
		if f := l.FieldAt(i); f.Name == name {
			return f
		}
	}
	return snowflake.Field{}
}

// fieldList describes a layout's fields: "time 48 bits, sequence 16 bits".
func fieldList(l *snowflake.Layout) string {
	parts := make([]string, l.NumFields())
	for i := range parts {
		f := l.FieldAt(i)
		parts[i] = fmt.Sprintf("%s %d bits", f.Name, f.Bits)
	}
	return strings.Join(parts, ", ")
}
