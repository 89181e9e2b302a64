package zk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// WatchOptions are the arguments of `dsctl zk watch`.
type WatchOptions struct {
	Paths     []string
	Recursive bool
	Depth     int
	Data      bool
	As        string
	MaxNodes  int
	Duration  time.Duration
	// Ready, when set, is called once the watches are armed (tests).
	Ready func()
}

// EventRecord is one line of the stream. Zxids and session ids are hex strings.
type EventRecord struct {
	Time        string   `json:"time"`
	Type        string   `json:"type"`
	Path        string   `json:"path,omitempty"`
	Change      string   `json:"change,omitempty"`
	OldVersion  *int32   `json:"old_version,omitempty"`
	Version     *int32   `json:"version,omitempty"`
	OldCversion *int32   `json:"old_cversion,omitempty"`
	Cversion    *int32   `json:"cversion,omitempty"`
	Missed      int64    `json:"missed,omitempty"`
	Added       []string `json:"added,omitempty"`
	Removed     []string `json:"removed,omitempty"`
	Czxid       string   `json:"czxid,omitempty"`
	Mzxid       string   `json:"mzxid,omitempty"`
	Pzxid       string   `json:"pzxid,omitempty"`
	Data        *string  `json:"data,omitempty"`
	Rendering   string   `json:"rendering,omitempty"`
	Source      string   `json:"source,omitempty"`
	SessionID   string   `json:"session_id,omitempty"`
	Server      string   `json:"server,omitempty"`
	Nodes       int      `json:"nodes,omitempty"`
	Message     string   `json:"message,omitempty"`

	detail string
}

// Row is the table form: time, event, path, what happened.
func (r EventRecord) Row() []output.Cell {
	st := output.Plain
	switch zkprobe.EventType(r.Type) {
	case zkprobe.EventGap, zkprobe.EventLimit:
		st = output.Warn
	case zkprobe.EventSessionExpired, zkprobe.EventDisconnected:
		st = output.Error
	case zkprobe.EventReconnected, zkprobe.EventArmed:
		st = output.OK
	case zkprobe.EventResync:
		st = output.Info
	}
	t, _ := time.Parse(time.RFC3339Nano, r.Time)
	return []output.Cell{output.S(t.Format("15:04:05.000"), output.Dim), output.S(r.Type, st), output.C(r.Path), output.C(r.detail)}
}

// SummaryRecord ends the stream (ctrl-C or --duration).
type SummaryRecord struct {
	Type string `json:"type"` // "summary"
	zkprobe.Summary
}

func newWatchCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	o := &WatchOptions{}
	cmd := &cobra.Command{
		Use:   "watch PATH...",
		Short: "Stream every change under the paths, with gaps counted and session loss recovered",
		Long: `Watch nodes and print one event per change: created, deleted, data_changed (old and
new version; the new value with --data), children_changed (names added and removed).
After every trigger the node is re-read and the watch re-armed in the same request.
ZooKeeper watches fire once, so changes made between a trigger and the re-arm are
not seen one by one; dsctl counts them from the version jump and emits a gap event
("version 3 -> 6: 2 changes not observed"), likewise for children (cversion).
Changes shown plus changes counted in gaps equal the changes made. When a
notification proves changes but the node is deleted before the re-read, the gap says
"at least" (sets before a delete: at least 1; a watched absent path created and
deleted: 2), since no one can count them any more.

Without --recursive each PATH is watched for its data and its children; with it,
every descendant down to --depth levels is watched too (new nodes are armed as they
appear, up to --max-nodes).

Connection loss: a disconnected event; on reconnect within the session, reconnected,
and every watched node is re-read to verify nothing was missed (source "verify").
Session expiry: session_expired, then the watched subtree is re-read and re-armed on a
new session and what changed meanwhile is printed as resync events (change, old and
new versions, missed = changes it stands for: a node created meanwhile is 1 + its
version, one deleted and created again 2 + its version), then armed again. No session event is
dropped.

ctrl-C (or --duration) ends the watch with a summary (events, gaps, changes missed,
disconnects, reconnects, expirations) and exit 0.

-o jsonl keys: time (local, RFC 3339), type, path, change, old_version, version,
old_cversion, cversion, missed, added, removed, czxid, mzxid, pzxid (hex), data,
rendering, source (watch|verify|arm|resync), session_id, server, nodes, message; the
last line is {"type":"summary", events, by_type, gaps, missed, disconnects,
reconnects, session_expirations, resyncs, nodes_watched, started, duration}.`,
		Example: `  dsctl zk watch /app/config --data
  dsctl zk watch /services --recursive --depth 2 -o jsonl | jq 'select(.type=="gap")'
  dsctl zk watch /app/leader /app/members --duration 1h -o jsonl >> zk-events.jsonl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errs.Usage("zk watch needs at least one path").WithHint("e.g. dsctl zk watch /app/config")
			}
			for _, a := range args {
				if err := zkprobe.CheckPath(a); err != nil {
					return err
				}
			}
			o.Paths = args
			pr, err := f.Printer(output.Streaming)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("depth") && !o.Recursive {
				return errs.Usage("--depth needs --recursive")
			}
			return RunWatch(cmd.Context(), f, conn, pr, o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Recursive, "recursive", "r", false, "watch every descendant too")
	fl.IntVar(&o.Depth, "depth", -1, "with --recursive, levels below each path to watch (-1: all)")
	fl.BoolVar(&o.Data, "data", false, "read and print the new value on each change")
	fl.StringVar(&o.As, "as", "auto", "rendering of --data values: auto|text|hex|json")
	fl.IntVar(&o.MaxNodes, "max-nodes", 100_000, "most nodes to watch")
	fl.DurationVar(&o.Duration, "duration", 0, "stop after this long (default: until ctrl-C)")
	cmd.ValidArgsFunction = completePath(f, conn) // every PATH
	cmdutil.RegisterFlag(cmd, "as", renderings)
	cmdutil.SetOutputFormats(cmd, output.Streaming)
	return cmd
}

// RunWatch streams events until ctrl-C or --duration, then prints the summary.
func RunWatch(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, o *WatchOptions) error {
	as, err := zkprobe.ParseRendering(o.As)
	if err != nil {
		return err
	}
	if o.MaxNodes <= 0 {
		return errs.Usage("--max-nodes must be positive, got %d", o.MaxNodes)
	}
	if o.Duration < 0 {
		return errs.Usage("--duration must be positive, got %s", o.Duration)
	}
	c, err := Connect(ctx, f, conn)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		wctx, cancel = context.WithTimeout(wctx, o.Duration)
		defer cancel()
	}
	start := time.Now()
	var progress func(int)
	line := f.IO.Progress(time.Second, 0)
	if line != nil {
		progress = func(armed int) {
			line.Updatef("arming watches: %d nodes, %s", armed, line.Elapsed().Round(100*time.Millisecond))
		}
	}
	w, err := c.Watch(wctx, zkprobe.WatchOptions{Paths: o.Paths, Recursive: o.Recursive, Depth: o.Depth, Data: o.Data,
		MaxNodes: o.MaxNodes, Progress: progress})
	line.Clear()
	if err != nil {
		if ctx.Err() != nil {
			return errs.New(errs.KindInterrupted, "zookeeper: interrupted while arming watches")
		}
		return err
	}
	f.IO.Infof("watching %s (%s armed in %s); ctrl-C to stop", strings.Join(o.Paths, " "),
		output.Plural(w.Summary().Watched, "node"), time.Since(start).Round(time.Millisecond))
	if o.Ready != nil {
		o.Ready()
	}
	stream := p.NewStream([]string{"time", "event", "path", "detail"}, []int{12, 16, 0})
	var writeErr error
	for ev := range w.Events() {
		if writeErr != nil {
			continue // keep draining so the watcher can stop
		}
		if writeErr = stream.Write(Record(ev, as)); writeErr != nil {
			cancel()
		}
	}
	<-w.Done()
	if writeErr != nil {
		return errs.New(errs.KindRuntime, "zk watch: cannot write output: %v", writeErr)
	}
	sum := w.Summary()
	if p.Format == output.Table {
		if err := stream.Close(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(p.Out, SummaryLine(sum))
		return err
	}
	if p.Format == output.JSONL {
		return stream.Write(SummaryRecord{Type: "summary", Summary: sum})
	}
	if err := stream.Write(SummaryRecord{Type: "summary", Summary: sum}); err != nil {
		return err
	}
	return stream.Close()
}

// SummaryLine is the closing line of the table.
func SummaryLine(s zkprobe.Summary) string {
	return fmt.Sprintf("summary: %s in %s, %s (%d changes not observed one by one), %s, %s, %s, %s watched",
		output.Plural(int(s.Events), "event"), s.DurationText, output.Plural(int(s.Gaps), "gap"), s.Missed,
		output.Plural(int(s.Disconnects), "disconnect"), output.Plural(int(s.Reconnects), "reconnect"),
		output.Plural(int(s.Expirations), "session expiration"), output.Plural(s.Watched, "node"))
}

func i32(v int32) *int32 { return &v }

// Record turns an event into its output record.
func Record(ev zkprobe.Event, as zkprobe.Rendering) EventRecord {
	r := EventRecord{Time: ev.Time.Local().Format(time.RFC3339Nano), Type: string(ev.Type), Path: ev.Path,
		Missed: ev.Missed, Added: ev.Added, Removed: ev.Removed, Source: ev.Source, Nodes: ev.Nodes, Message: ev.Message}
	if ev.Change != "" {
		r.Change = string(ev.Change)
	}
	if ev.SessionID != 0 {
		r.SessionID = zkprobe.Hex(ev.SessionID)
	}
	r.Server = ev.Server
	if ev.Stat.Czxid != 0 {
		r.Czxid = zkprobe.Hex(ev.Stat.Czxid)
	}
	if ev.Stat.Mzxid != 0 {
		r.Mzxid = zkprobe.Hex(ev.Stat.Mzxid)
	}
	if ev.Stat.Pzxid != 0 {
		r.Pzxid = zkprobe.Hex(ev.Stat.Pzxid)
	}
	if ev.Data != nil {
		text, used, err := zkprobe.Render(ev.Data, as)
		if err != nil {
			text, used, _ = zkprobe.Render(ev.Data, zkprobe.RenderHex)
		}
		if used == zkprobe.RenderJSON {
			// one line per event: JSON values stay compact
			var b bytes.Buffer
			if json.Compact(&b, ev.Data) == nil {
				text = b.String()
			}
		}
		r.Data, r.Rendering = &text, string(used)
	}
	var d strings.Builder
	switch ev.Type {
	case zkprobe.EventCreated:
		r.Version, r.Cversion = i32(ev.Version), i32(ev.Cversion)
		fmt.Fprintf(&d, "version %d, mzxid %s", ev.Version, r.Mzxid)
	case zkprobe.EventDeleted:
		r.OldVersion, r.OldCversion = i32(ev.OldVersion), i32(ev.OldCversion)
		fmt.Fprintf(&d, "was version %d", ev.OldVersion)
	case zkprobe.EventDataChanged:
		r.OldVersion, r.Version = i32(ev.OldVersion), i32(ev.Version)
		fmt.Fprintf(&d, "version %d -> %d, mzxid %s", ev.OldVersion, ev.Version, r.Mzxid)
	case zkprobe.EventChildrenChanged:
		r.OldCversion, r.Cversion = i32(ev.OldCversion), i32(ev.Cversion)
		d.WriteString(kidsText(ev.Added, ev.Removed))
		fmt.Fprintf(&d, " (cversion %d -> %d)", ev.OldCversion, ev.Cversion)
	case zkprobe.EventGap:
		switch {
		case ev.Message != "":
			// changes proven by a notification, but the node was gone at the re-read
			what := "change"
			if ev.Change == zkprobe.EventChildrenChanged {
				what = "child change"
			}
			fmt.Fprintf(&d, "%s not observed: %s", output.Plural(int(ev.Missed), what), ev.Message)
		case ev.Change == zkprobe.EventChildrenChanged:
			r.OldCversion, r.Cversion = i32(ev.OldCversion), i32(ev.Cversion)
			fmt.Fprintf(&d, "cversion %d -> %d: %s not observed", ev.OldCversion, ev.Cversion, output.Plural(int(ev.Missed), "child change"))
		default:
			r.OldVersion, r.Version = i32(ev.OldVersion), i32(ev.Version)
			fmt.Fprintf(&d, "version %d -> %d: %s not observed", ev.OldVersion, ev.Version, output.Plural(int(ev.Missed), "change"))
		}
	case zkprobe.EventResync:
		switch ev.Change {
		case zkprobe.EventCreated:
			r.Version = i32(ev.Version)
			fmt.Fprintf(&d, "created while unwatched (version %d; %s)", ev.Version, output.Plural(int(ev.Missed), "change"))
			if ev.Message != "" {
				d.WriteString(": " + ev.Message)
			}
		case zkprobe.EventDeleted:
			r.OldVersion = i32(ev.OldVersion)
			fmt.Fprintf(&d, "deleted while unwatched (was version %d)", ev.OldVersion)
		default:
			r.OldVersion, r.Version, r.OldCversion, r.Cversion = i32(ev.OldVersion), i32(ev.Version), i32(ev.OldCversion), i32(ev.Cversion)
			if ev.Version != ev.OldVersion {
				fmt.Fprintf(&d, "version %d -> %d ", ev.OldVersion, ev.Version)
			}
			if k := kidsText(ev.Added, ev.Removed); k != "" {
				d.WriteString(k + " ")
			}
			fmt.Fprintf(&d, "(%s while unwatched)", output.Plural(int(ev.Missed), "change"))
		}
	case zkprobe.EventArmed:
		fmt.Fprintf(&d, "%s watched", output.Plural(ev.Nodes, "node"))
		if ev.Source == "arm" {
			d.WriteString(" " + ev.Message)
		}
		fmt.Fprintf(&d, ", session %s on %s", r.SessionID, ev.Server)
		if ev.Source != "arm" && ev.Message != "" {
			d.WriteString("; " + ev.Message)
		}
	case zkprobe.EventReconnected, zkprobe.EventSessionExpired, zkprobe.EventDisconnected:
		fmt.Fprintf(&d, "session %s", r.SessionID)
		if ev.Server != "" {
			d.WriteString(" on " + ev.Server)
		}
		if ev.Message != "" {
			d.WriteString(": " + ev.Message)
		}
	default:
		d.WriteString(ev.Message)
	}
	if ev.Source == "verify" {
		d.WriteString(" [found on reconnect]")
	}
	if r.Data != nil && *r.Data != "" {
		v := *r.Data
		if len(v) > 120 || strings.Contains(v, "\n") {
			v = strings.ReplaceAll(v, "\n", " ")
			if len(v) > 120 {
				cut := 117
				for cut > 0 && !utf8.RuneStart(v[cut]) {
					cut-- // never split a UTF-8 character
				}
				v = v[:cut] + "..."
			}
		}
		d.WriteString(" data: " + v)
	}
	r.detail = d.String()
	return r
}

func kidsText(added, removed []string) string {
	var parts []string
	for _, a := range added {
		parts = append(parts, "+"+a)
	}
	for _, r := range removed {
		parts = append(parts, "-"+r)
	}
	if len(parts) > 8 {
		parts = append(parts[:8], fmt.Sprintf("... %d more", len(parts)-8))
	}
	return strings.Join(parts, " ")
}
