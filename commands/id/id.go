// Package id implements `dsctl id`: decode, generate and check snowflake-style IDs and
// UUIDs, and describe their layouts. The engine is probes/snowflake and probes/uuidinfo;
// this package turns flags into their inputs, streams stdin to stdout, reports bad lines,
// shows progress and prints.
package id

import (
	"bufio"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
)

// recordFormats are the outputs of decode, generate and layout: one record per ID or
// layout, so CSV too.
var recordFormats = []output.Format{output.Table, output.JSON, output.YAML, output.JSONL, output.CSV}

// NewCmd builds `dsctl id`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Decode, generate and check snowflake-style IDs, UUIDs, ULIDs and KSUIDs (pure: needs no server)",
		Long: `Decode, generate and check the 64-bit time-ordered IDs sharded backends mint
(Twitter snowflake and its many variants), UUIDs (RFC 9562), and decode and check
ULIDs and KSUIDs.

Layouts: ` + strings.Join(snowflake.PresetNames(), ", ") + `,
or a custom spec such as 'time:41:1ms,datacenter:5,worker:5,sequence:12' with --epoch.
'dsctl id layout' describes each one: bits, epoch, when its time bits run out,
how many IDs per second one node can mint and how many nodes it addresses.`,
		Example: `  dsctl id decode 175928847299117063
  dsctl id decode --layout discord 175928847299117063 -o json
  dsctl id decode C232AB00-9414-11EC-B3C8-9F6BDECED846
  dsctl id decode 01ARZ3NDEKTSV4RRFFQ69G5FAV
  dsctl id generate --layout twitter --worker 3 --datacenter 1 -n 5
  dsctl id layout twitter
  dsctl id check --layout twitter < ids.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDecodeCmd(f), newGenerateCmd(f), newLayoutCmd(f), newCheckCmd(f))
	return cmd
}

const (
	layoutFlagHelp = "layout: a preset (%s), a custom spec like time:41:1ms,worker:10,sequence:12 (needs --epoch)"
	epochFlagHelp  = "epoch as RFC 3339, a date or Unix ms: required for a custom spec, replaces a preset's (instagram's is per deployment)"
	autoLayout     = "auto"
)

func layoutHelp(extra string) string {
	h := strings.Replace(layoutFlagHelp, "%s", strings.Join(snowflake.PresetNames(), ", "), 1)
	return h + "; ulid or ksuid for those" + extra
}

// resolveLayout turns --layout and --epoch into one layout; "auto" and "" are refused
// with a hint, since the caller needs one concrete layout. what says what needs it.
func resolveLayout(verb, what, layout, epoch string) (*snowflake.Layout, error) {
	name := strings.TrimSpace(layout)
	if name == "" || strings.EqualFold(name, autoLayout) {
		notAuto := ""
		if name != "" {
			notAuto = ", not auto"
		}
		return nil, errs.Usage("id %s: %s needs one --layout%s", verb, what, notAuto).
			WithHint("a preset (%s) or a custom spec; 'dsctl id decode <one id>' ranks the presets for an ID", strings.Join(snowflake.PresetNames(), ", "))
	}
	return snowflake.Resolve(name, epoch)
}

// nowOr returns t, or the current time when t is zero (tests pin it).
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// bufferedOut wraps stdout for bulk output. On a terminal each record is flushed as it is
// written (someone is watching); elsewhere output goes out in 64 KiB blocks.
type bufferedOut struct {
	*bufio.Writer
	live bool
}

func newBufferedOut(ios *cmdutil.IOStreams) *bufferedOut {
	return &bufferedOut{Writer: bufio.NewWriterSize(ios.Out, 64<<10), live: ios.StdoutTTY}
}

// record ends one record: on a terminal it goes out now.
func (b *bufferedOut) record() error {
	if b.live {
		return b.Flush()
	}
	return nil
}

// printerOn is p writing to w instead of p.Out.
func printerOn(p *output.Printer, w *bufferedOut) *output.Printer {
	c := *p
	c.Out = w
	return &c
}

// partial turns bad lines into the exit status: the good lines were printed, the bad
// ones reported on stderr.
func partial(failed, total int) error {
	if failed == 0 {
		return nil
	}
	return &errs.Partial{Kind: errs.KindUsage, Failed: failed, Total: total, What: "lines"}
}

// noInput is the error for an empty stdin.
func noInput(verb string) error {
	return errs.Usage("id %s: no IDs on stdin", verb).
		WithHint("pipe one ID per line, e.g. dsctl id %s --layout twitter < ids.txt", verb)
}

// readingStdinNote tells someone at a terminal that dsctl waits for them.
func readingStdinNote(ios *cmdutil.IOStreams, verb string) {
	if ios.StdinTTY {
		ios.Infof("id %s: reading one ID per line from stdin (ctrl-D to end)", verb)
	}
}
