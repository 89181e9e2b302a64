package id

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/sortid"
)

// CheckOptions are the flags of `dsctl id check`.
type CheckOptions struct {
	// File is where the IDs come from: a path, or "" or "-" for stdin.
	File      string
	Layout    string
	Epoch     string
	MaxListed int
	// Now is the reference time for warnings (zero: the current time).
	Now time.Time
}

var checkFormats = []output.Format{output.Table, output.JSON, output.YAML, output.JSONL}

func newCheckCmd(f *cmdutil.Factory) *cobra.Command {
	o := &CheckOptions{}
	cmd := &cobra.Command{
		Use:   "check --layout NAME [FILE | -]",
		Short: "Diagnose a stream of IDs: duplicates, ordering, clock skew per worker",
		Long: `Read one ID per line from FILE, or from stdin when FILE is - or not given (in the
order they were minted or stored), and report: how many, the time span, duplicates (listed with the lines they repeat on),
adjacent pairs where the ID goes down, and per worker (each combination of node
fields): its count, time span, IDs per second, out-of-order pairs, and whether its
time ever goes backwards. A worker whose time steps back is a clock-skew suspect;
the report gives the size of each step.

Finding duplicates keeps every distinct ID: about 11 to 21 bytes each, so 10 million
IDs take 110 to 215 MB. Lines that are not IDs are reported on stderr as "line N: ..."
and the exit code is then 2; a check that runs to the end exits 0 whatever it finds.

With --layout ulid (or ksuid) the stream is ULIDs (KSUIDs): the report gives count,
distinct, duplicates, out_of_order (lower than the ID before), same_time_pairs (same
millisecond; second for KSUID), not_monotonic (same-time pairs that do not increase:
a monotonic ULID generator makes each larger), monotonic, first, last, span_ms and
problems [kind, line, id, prev_line, prev_id], truncated.

Output: -o table (the default), json, yaml or jsonl.
JSON keys: layout, count, distinct, first, last, span_ms, duplicates [id, count,
repeat_lines], duplicate_ids, duplicate_extra, out_of_order, out_of_order_pairs
[prev_line, prev_id, line, id], workers [worker, fields, count, first, last,
ids_per_second (null, "-" in the table, when first = last), out_of_order, clock_skew_suspect, clock_steps, max_step_ms, steps
[prev_line, line, from, to, step_ms]], clock_skew_suspects, warnings {code: count},
truncated (a list hit --max-listed). IDs are strings.`,
		Example: `  dsctl id check --layout twitter ids.txt
  dsctl id check --layout ulid ulids.txt -o json
  dsctl id check --layout twitter - < ids.txt
  dsctl id generate --layout discord --worker 1 -n 100000 | dsctl id check --layout discord
  kafka-console-consumer ... | jq -r .id | dsctl id check --layout sonyflake -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return errs.Usage("id check reads one input, got %d arguments", len(args)).
					WithHint("give one FILE, or - (or nothing) for stdin; see 'dsctl id check --help'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.File = args[0]
			}
			p, err := f.Printer(checkFormats)
			if err != nil {
				return err
			}
			return RunCheck(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().StringVarP(&o.Layout, "layout", "l", "", layoutHelp(" (required)"))
	cmd.Flags().StringVar(&o.Epoch, "epoch", "", epochFlagHelp)
	cmd.Flags().IntVar(&o.MaxListed, "max-listed", 100, "most duplicates, out-of-order pairs and clock steps per worker to list (all are counted)")
	cmdutil.RegisterFlag(cmd, "layout", layoutCompletion(false, true))
	cmdutil.SetOutputFormats(cmd, checkFormats)
	return cmd
}

// RunCheck reads IDs from stdin and prints the check report.
func RunCheck(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *CheckOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.MaxListed < 1 {
		return errs.Usage("id check: --max-listed %d is out of range; want 1 or more", o.MaxListed)
	}
	kind := sortid.ParseKind(o.Layout)
	var l *snowflake.Layout
	if kind == "" {
		var err error
		if l, err = resolveLayout("check", "checking a stream", o.Layout, o.Epoch); err != nil {
			return err
		}
	}
	src := f.IO.In
	if o.File != "" && o.File != "-" {
		file, err := os.Open(o.File)
		if err != nil {
			return errs.Usage("id check: cannot read %s: %v", o.File, pathErr(err)).
				WithHint("give a readable file, or - to read stdin")
		}
		defer file.Close()
		src = file
	} else {
		readingStdinNote(f.IO, "check")
	}
	prog := newProgress(f.IO, "check", "lines", 0, false)
	defer prog.finish()
	if kind != "" {
		return checkSortIDs(ctx, f, p, o, kind, &inputReader{ctx: ctx, r: src, p: prog}, prog)
	}
	c := snowflake.NewChecker(l, snowflake.CheckOptions{MaxListed: o.MaxListed, Now: nowOr(o.Now)})
	bad := &badLines{ios: f.IO, prog: prog, other: uuidInSnowflakes}
	st, err := snowflake.ReadIDs(&inputReader{ctx: ctx, r: src, p: prog}, func(line int, id uint64) error {
		c.Add(id, line)
		return nil
	}, bad.report)
	prog.finish()
	bad.finish()
	if err != nil {
		return readError(ctx, err)
	}
	if st.Good == 0 && st.Failed == 0 {
		if o.File != "" && o.File != "-" {
			return errs.Usage("id check: %s holds no IDs", o.File).WithHint("one ID per line")
		}
		return noInput("check")
	}
	rep := checkReport(c.Report())
	if p.Format == output.Table {
		err = renderSections(p.Out, p.Color, rep.sections())
	} else {
		err = p.Print(rep)
	}
	if err != nil {
		return err
	}
	return partial(st.Failed, st.Good+st.Failed)
}

// checkReport prints a snowflake.CheckReport (same JSON).
type checkReport snowflake.CheckReport

// sections are the table view: the summary, then each list that has entries.
func (r checkReport) sections() []section {
	sum := output.KV("layout", r.Layout)
	sum.AddCells(output.S("ids:", output.Dim), output.C(fmt.Sprintf("%s (%s distinct)", commas(int64(r.Count)), commas(int64(r.Distinct)))))
	if r.Count > 0 {
		sum.AddCells(output.S("time span:", output.Dim), output.C(fmt.Sprintf("%s .. %s (%s)", r.First, r.Last, snowflake.AppendAge(nil, r.SpanMs))))
	}
	sum.AddCells(output.S("duplicates:", output.Dim), countCell(r.DuplicateIDs, fmt.Sprintf("%s repeated, %s extra occurrences",
		plural(r.DuplicateIDs, "ID"), commas(int64(r.DuplicateExtra))), output.Error))
	sum.AddCells(output.S("out of order:", output.Dim), countCell(r.OutOfOrder, fmt.Sprintf("%s where the ID goes down",
		plural(r.OutOfOrder, "adjacent pair")), output.Warn))
	skew := "none"
	if len(r.SkewSuspects) > 0 {
		skew = fmt.Sprintf("%s whose time steps back: %s", plural(len(r.SkewSuspects), "worker"), strings.Join(r.SkewSuspects, "; "))
	}
	sum.AddCells(output.S("clock skew:", output.Dim), countCell(len(r.SkewSuspects), skew, output.Error))
	sum.AddCells(output.S("workers:", output.Dim), output.C(commas(int64(len(r.Workers)))))
	if len(r.Warnings) > 0 {
		var ws []string
		for _, code := range (snowflake.Warnings(0xff)).Codes() {
			if n := r.Warnings[code]; n > 0 {
				ws = append(ws, fmt.Sprintf("%s %s", code, commas(int64(n))))
			}
		}
		sum.AddCells(output.S("warnings:", output.Dim), output.S(strings.Join(ws, ", "), output.Warn))
	}
	secs := []section{{t: sum}}

	if len(r.Duplicates) > 0 {
		t := &output.TableData{Header: []string{"id", "count", "repeat_lines"}, RightAlign: map[int]bool{1: true}}
		for _, d := range r.Duplicates {
			t.AddCells(output.S(strconv.FormatUint(d.ID, 10), output.Error), output.C(strconv.Itoa(d.Count)), output.C(lineList(d.RepeatLines)))
		}
		secs = append(secs, section{title: "Duplicates:", t: t})
	}
	if len(r.OutOfOrderList) > 0 {
		t := &output.TableData{Header: []string{"prev_line", "prev_id", "line", "id"}, RightAlign: map[int]bool{0: true, 2: true}}
		for _, o := range r.OutOfOrderList {
			t.AddRow(strconv.Itoa(o.PrevLine), strconv.FormatUint(o.PrevID, 10), strconv.Itoa(o.Line), strconv.FormatUint(o.ID, 10))
		}
		secs = append(secs, section{title: "Out of order (the ID goes down):", t: t})
	}
	if len(r.Workers) > 0 {
		t := &output.TableData{Header: []string{"worker", "ids", "first", "last", "ids_per_s", "out_of_order", "clock_steps", "max_step", "skew"},
			RightAlign: map[int]bool{1: true, 4: true, 5: true, 6: true, 7: true}}
		for _, w := range r.Workers {
			skew, maxStep := output.C(""), output.C("-")
			if w.ClockSkewSuspect {
				skew = output.S("SUSPECT", output.Error)
				maxStep = output.S(string(snowflake.AppendAge(nil, w.MaxStepMs)), output.Error)
			}
			t.AddCells(output.C(w.Worker), output.C(commas(int64(w.Count))), output.C(w.First.String()), output.C(w.Last.String()),
				output.C(rateText(w.IDsPerSecond)), output.C(strconv.Itoa(w.OutOfOrder)), output.C(strconv.Itoa(w.ClockSteps)), maxStep, skew)
		}
		secs = append(secs, section{title: "Workers:", t: t})
	}
	if len(r.SkewSuspects) > 0 {
		t := &output.TableData{Header: []string{"worker", "prev_line", "line", "from", "to", "step"}, RightAlign: map[int]bool{1: true, 2: true, 5: true}}
		for _, w := range r.Workers {
			for _, s := range w.Steps {
				t.AddCells(output.C(w.Worker), output.C(strconv.Itoa(s.PrevLine)), output.C(strconv.Itoa(s.Line)),
					output.C(s.From.String()), output.C(s.To.String()), output.S(string(snowflake.AppendAge(nil, s.StepMs)), output.Error))
			}
		}
		secs = append(secs, section{title: "Clock steps back (clock-skew suspects):", t: t})
	}
	if r.Truncated {
		secs[len(secs)-1].t.Notes = append(secs[len(secs)-1].t.Notes,
			output.S("lists are cut at --max-listed; the counts above are complete", output.Dim))
	}
	return secs
}

// rateText is a worker's IDs per second, or "-" when its IDs span no time.
func rateText(r *float64) string {
	if r == nil {
		return "-"
	}
	return perSecond(*r)
}

func countCell(n int, text string, st output.Style) output.Cell {
	if n == 0 {
		return output.S("none", output.OK)
	}
	return output.S(text, st)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return commas(int64(n)) + " " + noun + "s"
}

// lineList shows up to 10 line numbers.
func lineList(lines []int) string {
	const show = 10
	parts := make([]string, 0, min(len(lines), show)+1)
	for i, l := range lines {
		if i == show {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(lines)-show))
			break
		}
		parts = append(parts, strconv.Itoa(l))
	}
	return strings.Join(parts, ", ")
}

// pathErr is the part of a file error a user acts on ("no such file or directory").
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkSortIDs checks a stream of ULIDs or KSUIDs: duplicates, order, monotonicity.
func checkSortIDs(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *CheckOptions, kind string, r io.Reader, prog *progress) error {
	c := sortid.NewChecker(kind, o.MaxListed)
	bad := &badLines{ios: f.IO, prog: prog}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	line, good := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if err := c.Add(text, line); err != nil {
			bad.report(line, []byte(text), err)
			continue
		}
		good++
	}
	prog.finish()
	bad.finish()
	if err := sc.Err(); err != nil {
		return readError(ctx, err)
	}
	if good == 0 && bad.failed == 0 {
		return noInput("check")
	}
	rep := sortIDCheck(c.Report())
	if err := p.Print(rep); err != nil {
		return err
	}
	return partial(bad.failed, good+bad.failed)
}

// sortIDCheck prints a sortid.CheckReport.
type sortIDCheck sortid.CheckReport

func (r sortIDCheck) MarshalJSON() ([]byte, error) { return json.Marshal(sortid.CheckReport(r)) }

func (r sortIDCheck) Table() *output.TableData {
	mono := "no same-time pairs"
	if r.SameTimePairs > 0 {
		mono = fmt.Sprintf("%t (%s of %s same-time pairs do not increase)", r.Monotonic, commas(r.NotMonotonic), commas(r.SameTimePairs))
	}
	t := output.KV("kind", r.Kind, "count", commas(r.Count), "distinct", commas(r.Distinct),
		"duplicates", commas(r.Duplicates), "out of order", commas(r.OutOfOrder), "monotonic", mono,
		"first", r.First, "last", r.Last, "span", time.Duration(r.SpanMs*int64(time.Millisecond)).String())
	for _, pr := range r.Problems {
		t.AddCells(output.S(pr.Kind+":", output.Warn), output.C(fmt.Sprintf("line %d %s after line %d %s", pr.Line, pr.ID, pr.PrevLine, pr.PrevID)))
	}
	if r.Truncated {
		t.Notes = append(t.Notes, output.S("more problems than --max-listed; all are counted", output.Dim))
	}
	return t
}
