package id

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

// LayoutOptions are the flags and argument of `dsctl id layout`.
type LayoutOptions struct {
	// Name is a preset or a custom spec; empty lists every preset.
	Name  string
	Epoch string
	// Now decides "expired" and the time left (zero: the current time).
	Now time.Time
}

func newLayoutCmd(f *cmdutil.Factory) *cobra.Command {
	o := &LayoutOptions{}
	cmd := &cobra.Command{
		Use:   "layout [NAME|SPEC]",
		Short: "Describe ID layouts: bits, epoch, when the time runs out, capacity",
		Long: `Describe a layout, or list every preset: its fields and bits, time unit and
epoch, the date its time bits run out, the most IDs per second one node can mint
(sequence values per tick / tick length) and how many nodes the node fields address.

NAME is a preset or a custom spec such as
'time:41:1ms,datacenter:5,worker:5,sequence:12' with --epoch. Presets:
` + strings.Join(snowflake.PresetNames(), ", ") + `.

Output: -o table (the default), json, yaml, jsonl or csv.
JSON keys: name, note, fields [name, bits, role, shift], total_bits, sign_bit,
time_bits, unit, epoch, runs_out, lifetime_years, expired,
max_ids_per_second_per_node, nodes. Without NAME, a list of those.
CSV columns: name, fields, unit, epoch, runs_out, ids_per_s_per_node, nodes, expired.`,
		Example: `  dsctl id layout
  dsctl id layout twitter
  dsctl id layout baidu -o json
  dsctl id layout 'time:41:1ms,datacenter:5,worker:5,sequence:12' --epoch 2020-01-01T00:00:00Z`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Name = args[0]
			}
			p, err := f.Printer(recordFormats)
			if err != nil {
				return err
			}
			return RunLayout(f, p, o)
		},
	}
	cmd.Flags().StringVar(&o.Epoch, "epoch", "", epochFlagHelp)
	cmd.ValidArgsFunction = cmdutil.FirstArg(layoutCompletion(false, false))
	cmdutil.SetOutputFormats(cmd, recordFormats)
	return cmd
}

// RunLayout describes one layout, or lists the presets.
func RunLayout(f *cmdutil.Factory, p *output.Printer, o *LayoutOptions) error {
	now := nowOr(o.Now)
	if strings.TrimSpace(o.Name) == "" {
		if strings.TrimSpace(o.Epoch) != "" {
			return errs.Usage("id layout: --epoch needs a layout name or spec").WithHint("e.g. dsctl id layout instagram --epoch 2020-01-01")
		}
		var list layoutList
		for _, l := range snowflake.Presets() {
			list = append(list, layoutInfo{l.Info(now), now})
		}
		switch p.Format {
		case output.JSONL:
			for _, in := range list {
				if err := p.Print(in); err != nil {
					return err
				}
			}
			return nil
		case output.CSV:
			return list.table(false).WriteCSV(p.Out)
		}
		return p.Print(list)
	}
	if strings.EqualFold(strings.TrimSpace(o.Name), autoLayout) {
		return errs.Usage("id layout: auto is not a layout").WithHint("'dsctl id layout' lists every preset")
	}
	l, err := snowflake.Resolve(o.Name, o.Epoch)
	if err != nil {
		return err
	}
	in := layoutInfo{l.Info(now), now}
	switch p.Format {
	case output.CSV:
		return layoutList{in}.table(false).WriteCSV(p.Out)
	case output.Table:
		return renderSections(p.Out, p.Color, in.sections())
	}
	return p.Print(in)
}

// layoutInfo is a layout's description; its JSON is snowflake.Info's.
type layoutInfo struct {
	snowflake.Info
	now time.Time
}

// sections are the detailed view: key/value lines, then the fields with their bits.
func (in layoutInfo) sections() []section {
	bits := strconv.Itoa(in.TotalBits)
	if in.SignBit {
		bits += " (bit 63 is a sign bit, always 0)"
	}
	sum := output.KV(
		"layout", in.Name,
		"bits", bits,
		"unit", in.Unit,
		"epoch", in.Epoch.String(),
	)
	sum.AddCells(output.S("runs out:", output.Dim), in.runsOutCell())
	sum.AddCells(output.S("lifetime:", output.Dim), output.C(fmt.Sprintf("%.1f years", in.LifetimeYears)))
	sum.AddCells(output.S("max IDs/s:", output.Dim), output.C(perSecond(in.MaxPerSecondPerNode)+" per node"))
	sum.AddCells(output.S("nodes:", output.Dim), output.C(commasU(in.Nodes)))
	fields := &output.TableData{Header: []string{"field", "bits", "position", "role", "range"}, RightAlign: map[int]bool{1: true}}
	for _, f := range in.Fields {
		pos := fmt.Sprintf("%d..%d", f.Shift+f.Bits-1, f.Shift)
		if f.Bits == 1 {
			pos = strconv.Itoa(f.Shift)
		}
		fields.AddRow(f.Name, strconv.Itoa(f.Bits), pos, f.Role.String(), "0.."+commasU(f.Max()))
	}
	if in.Note != "" {
		fields.Notes = append(fields.Notes, output.S("source: "+in.Note, output.Dim))
	}
	return []section{{t: sum}, {title: "Fields, most significant first:", t: fields}}
}

// runsOutCell is the run-out date and how far away it is; red once it has passed.
func (in layoutInfo) runsOutCell() output.Cell {
	left := int64(in.RunsOut) - in.now.UnixMilli()
	if in.RunsOut == math.MaxInt64 {
		return output.C("never (the time field outlasts the year 292277026596)")
	}
	if in.Expired {
		return output.S(fmt.Sprintf("%s (expired %s ago: the time bits have run out, no new IDs can be minted)",
			in.RunsOut, snowflake.AppendAge(nil, -left)), output.Error)
	}
	return output.C(fmt.Sprintf("%s (in %s)", in.RunsOut, snowflake.AppendAge(nil, left)))
}

// layoutList is the preset overview.
type layoutList []layoutInfo

// Table is the overview, one line per layout.
func (ls layoutList) Table() *output.TableData { return ls.table(true) }

// table is the overview for people (dates, 4,096,000) or for CSV (full timestamps, plain
// numbers).
func (ls layoutList) table(human bool) *output.TableData {
	t := &output.TableData{Header: []string{"name", "fields", "unit", "epoch", "runs_out", "ids_per_s_per_node", "nodes", "expired"},
		RightAlign: map[int]bool{5: true, 6: true}}
	for _, in := range ls {
		fields := make([]string, len(in.Fields))
		for i, f := range in.Fields {
			fields[i] = f.Name + ":" + strconv.Itoa(f.Bits)
		}
		epoch, runsOut := in.Epoch.String(), in.RunsOut.String()
		rate, nodes := strconv.FormatFloat(in.MaxPerSecondPerNode, 'f', -1, 64), strconv.FormatUint(in.Nodes, 10)
		if human {
			epoch, runsOut, rate, nodes = date(in.Epoch), date(in.RunsOut), perSecond(in.MaxPerSecondPerNode), commasU(in.Nodes)
		}
		expired := output.C("no")
		runsOutCell := output.C(runsOut)
		if in.Expired {
			runsOutCell, expired = output.S(runsOut, output.Error), output.S("yes", output.Error)
		}
		t.AddCells(output.C(in.Name), output.C(strings.Join(fields, " ")), output.C(in.Unit), output.C(epoch),
			runsOutCell, output.C(rate), output.C(nodes), expired)
	}
	return t
}

// date is the day of an instant, "never" for a time field that does not run out.
func date(i snowflake.Instant) string {
	if i == math.MaxInt64 {
		return "never"
	}
	s := i.String()
	return s[:strings.IndexByte(s, 'T')]
}

// perSecond formats an ID rate: 4,096,000.
func perSecond(x float64) string {
	if x >= 1 {
		return commas(int64(math.Round(x)))
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}
