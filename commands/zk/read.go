package zk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// DefaultMaxNodes caps ls -R and tree unless --max-nodes says otherwise.
const DefaultMaxNodes = 10_000

// ---- ls ----

// LsOptions are the arguments of `dsctl zk ls`.
type LsOptions struct {
	Path      string
	Recursive bool
	MaxNodes  int
}

// LsResult is what ls prints.
type LsResult struct {
	Path     string   `json:"path"`
	Children []string `json:"children,omitempty"`
	// Paths is the subtree with -R (the path itself first).
	Paths     []string `json:"paths,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Unlisted  int64    `json:"unlisted,omitempty"`
}

// Table prints one name (or, with -R, one path) per line, like ls.
func (r LsResult) Table() *output.TableData {
	t := &output.TableData{}
	for _, c := range r.Children {
		t.AddRow(c)
	}
	for _, p := range r.Paths {
		t.AddRow(p)
	}
	if r.Truncated {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("... %d more nodes not listed: over --max-nodes (raise it, or list a smaller subtree)", r.Unlisted), output.Warn))
	}
	return t
}

func newLsCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	o := &LsOptions{}
	cmd := &cobra.Command{
		Use:   "ls [PATH]",
		Short: "List a node's children (-R: the whole subtree)",
		Long: `List a node's children, sorted, one per line (default path /). With -R, list every
path in the subtree, depth-first, read with pipelined requests and capped by
--max-nodes (child counts are read before any listing, so the cap is never overrun).

JSON keys: path, children (without -R), paths (with -R), truncated, unlisted.`,
		Example: `  dsctl zk ls /
  dsctl zk ls -R /app --max-nodes 50000 -o json`,
		RunE: runOnPath(f, "ls", onePath, func(ctx context.Context, pr *output.Printer, path string) error {
			o.Path = path
			return RunLs(ctx, f, conn, pr, o)
		}),
	}
	cmd.Flags().BoolVarP(&o.Recursive, "recursive", "R", false, "list the whole subtree")
	cmd.Flags().IntVar(&o.MaxNodes, "max-nodes", DefaultMaxNodes, "with -R, stop listing after this many nodes")
	cmd.ValidArgsFunction = cmdutil.FirstArg(completePath(f, conn))
	return cmd
}

// RunLs lists children or the subtree.
func RunLs(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, o *LsOptions) error {
	if o.MaxNodes <= 0 {
		return errs.Usage("--max-nodes must be positive, got %d", o.MaxNodes)
	}
	c, err := Connect(ctx, f, conn)
	if err != nil {
		return err
	}
	if !o.Recursive {
		kids, _, err := c.Children(ctx, o.Path)
		if err != nil {
			return err
		}
		return p.Print(LsResult{Path: o.Path, Children: kids})
	}
	t, err := walk(ctx, f, c, o.Path, zkprobe.WalkOptions{MaxDepth: -1, MaxNodes: o.MaxNodes})
	if err != nil {
		return err
	}
	r := LsResult{Path: o.Path, Truncated: t.Truncated, Unlisted: t.Unlisted}
	for _, n := range t.Nodes {
		r.Paths = append(r.Paths, n.Path)
	}
	if t.Truncated {
		f.IO.Warnf("zk ls -R %s: stopped at --max-nodes %d; %d more nodes not listed", o.Path, o.MaxNodes, t.Unlisted)
	}
	return p.Print(r)
}

// walk runs a tree walk with progress on stderr when it is a TTY.
func walk(ctx context.Context, f *cmdutil.Factory, c *zkprobe.Client, root string, opt zkprobe.WalkOptions) (*zkprobe.Tree, error) {
	start := time.Now()
	if line := f.IO.Progress(time.Second, 0); line != nil {
		opt.Progress = func(visited int) {
			line.Updatef("reading %s: %d nodes, %s", root, visited, line.Elapsed().Round(100*time.Millisecond))
		}
		defer line.Clear()
	}
	t, err := c.Walk(ctx, root, opt)
	if err == nil {
		f.IO.Debugf("zookeeper: walked %d nodes of %s with %d requests in %s", len(t.Nodes), root, t.Requests, time.Since(start).Round(time.Millisecond))
	}
	return t, err
}

// ---- get ----

// GetOptions are the arguments of `dsctl zk get`.
type GetOptions struct {
	Path string
	As   string
}

// GetResult is what get prints.
type GetResult struct {
	Path       string           `json:"path"`
	Rendering  string           `json:"rendering"`
	Data       string           `json:"data"`
	DataBase64 string           `json:"data_base64"`
	Value      json.RawMessage  `json:"value,omitempty"`
	Stat       zkprobe.StatJSON `json:"stat"`
}

func newGetCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	o := &GetOptions{}
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Print a node's data as text, hex or JSON",
		Long: `Print a node's data. --as auto (the default) pretty-prints JSON, prints printable
UTF-8 as it is, and anything else as a hex dump; --as text, hex or json force one
(text and json refuse data that is not UTF-8 or not JSON, exit 2).

The table output is the rendered data alone, so 'dsctl zk get /cfg > cfg' works.
JSON keys: path, rendering, data (rendered), data_base64 (the exact bytes), value
(the parsed JSON, when the rendering is json), stat{czxid, mzxid, pzxid, ctime, mtime,
version, cversion, aversion, ephemeral_owner, data_length, num_children}.`,
		Example: `  dsctl zk get /app/config
  dsctl zk get /app/blob --as hex
  dsctl zk get /app/config -o json | jq .value`,
		RunE: runOnPath(f, "get", exactlyOnePath, func(ctx context.Context, pr *output.Printer, path string) error {
			o.Path = path
			return RunGet(ctx, f, conn, pr, o)
		}),
	}
	cmd.Flags().StringVar(&o.As, "as", "auto", "rendering: auto|text|hex|json")
	cmd.ValidArgsFunction = cmdutil.FirstArg(completePath(f, conn))
	cmdutil.RegisterFlag(cmd, "as", renderings)
	return cmd
}

// RunGet reads and renders a node's data.
func RunGet(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, o *GetOptions) error {
	as, err := zkprobe.ParseRendering(o.As)
	if err != nil {
		return err
	}
	c, err := Connect(ctx, f, conn)
	if err != nil {
		return err
	}
	n, err := c.Get(ctx, o.Path)
	if err != nil {
		return err
	}
	text, used, err := zkprobe.Render(n.Data, as)
	if err != nil {
		return errs.Usage("zookeeper: %s: %s", o.Path, strings.TrimPrefix(err.Error(), "zookeeper: "))
	}
	r := GetResult{Path: o.Path, Rendering: string(used), Data: text, DataBase64: base64.StdEncoding.EncodeToString(n.Data),
		Stat: n.Stat.JSON()}
	if used == zkprobe.RenderJSON {
		r.Value = json.RawMessage(n.Data)
	}
	if p.Format == output.Table {
		out := text
		if !strings.HasSuffix(out, "\n") && out != "" {
			out += "\n"
		}
		_, err := fmt.Fprint(p.Out, out)
		return err
	}
	return p.Print(r)
}

// ---- stat ----

// StatResult is what stat prints.
type StatResult struct {
	Path string `json:"path"`
	zkprobe.StatJSON
	stat zkprobe.Stat
}

// Table is zkCli's stat layout.
// nodeTime renders a node's ctime or mtime; zxid 0 means no transaction ever made or
// changed it (/, /zookeeper: the server creates them at start, with time 0).
func nodeTime(t time.Time, zxid int64) string {
	if zxid == 0 {
		return "never (made by the server at start)"
	}
	return t.Local().Format(time.RFC3339Nano)
}

func (r StatResult) Table() *output.TableData {
	s := r.stat
	owner := "none (persistent)"
	if s.EphemeralOwner != 0 {
		owner = "session " + zkprobe.Hex(s.EphemeralOwner) + " (ephemeral)"
	}
	return output.KV(
		"path", r.Path,
		"czxid", fmt.Sprintf("%s (epoch %d, counter %d)", zkprobe.Hex(s.Czxid), s.Czxid>>32, s.Czxid&0xffffffff),
		"ctime", nodeTime(s.Ctime, s.Czxid),
		"mzxid", fmt.Sprintf("%s (epoch %d, counter %d)", zkprobe.Hex(s.Mzxid), s.Mzxid>>32, s.Mzxid&0xffffffff),
		"mtime", nodeTime(s.Mtime, s.Mzxid),
		"pzxid", zkprobe.Hex(s.Pzxid),
		"version", fmt.Sprint(s.Version),
		"cversion", fmt.Sprint(s.Cversion),
		"aversion", fmt.Sprint(s.Aversion),
		"ephemeral owner", owner,
		"data length", fmt.Sprint(s.DataLength),
		"children", fmt.Sprint(s.NumChildren),
	)
}

func newStatCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stat PATH",
		Short: "Show a node's zxids, versions, ephemeral owner, data length and child count",
		Long: `Show a node's metadata: czxid, mzxid, pzxid (with epoch and counter), ctime, mtime,
data version, child version (cversion), ACL version, the ephemeral owner's session,
data length and number of children. A missing node is exit 2.

JSON keys: path, czxid, mzxid, pzxid (hex strings), ctime, mtime, version, cversion,
aversion, ephemeral_owner (hex, "0x0" when persistent), data_length, num_children.`,
		Example: `  dsctl zk stat /app/config
  dsctl zk stat /app/locks/lock-0000000001 -o json`,
		RunE: runOnPath(f, "stat", exactlyOnePath, func(ctx context.Context, pr *output.Printer, path string) error {
			return RunStat(ctx, f, conn, pr, path)
		}),
	}
	cmd.ValidArgsFunction = cmdutil.FirstArg(completePath(f, conn))
	return cmd
}

// RunStat prints a node's stat.
func RunStat(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, path string) error {
	c, err := Connect(ctx, f, conn)
	if err != nil {
		return err
	}
	st, err := c.Stat(ctx, path)
	if err != nil {
		return err
	}
	return p.Print(StatResult{Path: path, StatJSON: st.JSON(), stat: st})
}

// ---- tree ----

// TreeOptions are the arguments of `dsctl zk tree`.
type TreeOptions struct {
	Path        string
	Depth       int
	MaxNodes    int
	Concurrency int
}

// TreeResult is what tree prints.
type TreeResult struct {
	Root      string     `json:"root"`
	Nodes     []treeNode `json:"nodes"`
	Truncated bool       `json:"truncated"`
	Unlisted  int64      `json:"unlisted"`
	Vanished  int        `json:"vanished,omitempty"`
	Requests  int64      `json:"requests"`
	ElapsedMs float64    `json:"elapsed_ms"`
	maxNodes  int
}

type treeNode struct {
	Path           string `json:"path"`
	Depth          int    `json:"depth"`
	NumChildren    int32  `json:"num_children"`
	Version        int32  `json:"version"`
	DataLength     int32  `json:"data_length"`
	EphemeralOwner string `json:"ephemeral_owner,omitempty"`
	Cut            string `json:"cut,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Table draws the tree with each node's child count, data size and version.
func (r TreeResult) Table() *output.TableData {
	t := &output.TableData{Header: []string{"node", "children", "bytes", "version"}, RightAlign: map[int]bool{1: true, 2: true, 3: true}}
	for i, n := range r.Nodes {
		name := n.Path
		if i > 0 {
			name = strings.Repeat("  ", n.Depth) + n.Path[strings.LastIndexByte(n.Path, '/')+1:]
		}
		if n.EphemeralOwner != "" {
			name += " (ephemeral)"
		}
		kids := output.C(fmt.Sprint(n.NumChildren))
		switch n.Cut {
		case "max-nodes":
			kids = output.S(fmt.Sprintf("%d not listed", n.NumChildren), output.Warn)
		case "depth":
			kids = output.S(fmt.Sprintf("%d below depth", n.NumChildren), output.Dim)
		}
		row := []output.Cell{output.C(name), kids, output.C(fmt.Sprint(n.DataLength)), output.C(fmt.Sprint(n.Version))}
		if n.Error != "" {
			row[0] = output.S(name+" ("+n.Error+")", output.Error)
		}
		t.AddCells(row...)
	}
	t.Notes = append(t.Notes, output.S(fmt.Sprintf("%s under %s, %s in %.0fms", output.Plural(len(r.Nodes), "node"), r.Root, output.Plural(int(r.Requests), "request"), r.ElapsedMs), output.Dim))
	if r.Truncated {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("stopped at --max-nodes %d: %d more nodes not listed (raise --max-nodes, lower --depth, or pick a smaller subtree)", r.maxNodes, r.Unlisted), output.Warn))
	}
	return t
}

func newTreeCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	o := &TreeOptions{}
	cmd := &cobra.Command{
		Use:   "tree [PATH]",
		Short: "Show the subtree with child counts, data sizes and versions",
		Long: `Show the subtree under PATH (default /) level by level. Each level's child counts
are read first (one pipelined batch of stat requests), and only then are the nodes
whose children fit under --max-nodes listed (another pipelined batch): a node with
300,000 children is shown with its count instead of being listed blindly.

JSON keys: root, nodes[{path, depth, num_children, version, data_length,
ephemeral_owner, cut ("depth" or "max-nodes"), error}], truncated, unlisted,
vanished, requests, elapsed_ms.`,
		Example: `  dsctl zk tree /app
  dsctl zk tree / --depth 1
  dsctl zk tree /services --max-nodes 200000 -o json`,
		RunE: runOnPath(f, "tree", onePath, func(ctx context.Context, pr *output.Printer, path string) error {
			o.Path = path
			return RunTree(ctx, f, conn, pr, o)
		}),
	}
	cmd.Flags().IntVar(&o.Depth, "depth", -1, "levels below PATH to descend (-1: all)")
	cmd.Flags().IntVar(&o.MaxNodes, "max-nodes", DefaultMaxNodes, "stop listing after this many nodes")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", zkprobe.DefaultConcurrency, "requests in flight on the session")
	cmd.ValidArgsFunction = cmdutil.FirstArg(completePath(f, conn))
	return cmd
}

// RunTree walks and prints the subtree.
func RunTree(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, o *TreeOptions) error {
	if o.MaxNodes <= 0 {
		return errs.Usage("--max-nodes must be positive, got %d", o.MaxNodes)
	}
	if o.Concurrency <= 0 {
		return errs.Usage("--concurrency must be positive, got %d", o.Concurrency)
	}
	c, err := Connect(ctx, f, conn)
	if err != nil {
		return err
	}
	start := time.Now()
	t, err := walk(ctx, f, c, o.Path, zkprobe.WalkOptions{MaxDepth: o.Depth, MaxNodes: o.MaxNodes, Concurrency: o.Concurrency})
	if err != nil {
		return err
	}
	r := TreeResult{Root: t.Root, Truncated: t.Truncated, Unlisted: t.Unlisted, Vanished: t.Vanished, Requests: t.Requests,
		ElapsedMs: float64(time.Since(start).Microseconds()) / 1000, maxNodes: o.MaxNodes}
	r.Nodes = make([]treeNode, len(t.Nodes))
	for i, n := range t.Nodes {
		tn := treeNode{Path: n.Path, Depth: n.Depth, NumChildren: n.Stat.NumChildren, Version: n.Stat.Version,
			DataLength: n.Stat.DataLength, Cut: n.Cut, Error: n.Error}
		if n.Stat.EphemeralOwner != 0 {
			tn.EphemeralOwner = zkprobe.Hex(n.Stat.EphemeralOwner)
		}
		r.Nodes[i] = tn
	}
	if t.Truncated && p.Format != output.Table {
		f.IO.Warnf("zk tree %s: stopped at --max-nodes %d; %d more nodes not listed", o.Path, o.MaxNodes, t.Unlisted)
	}
	return p.Print(r)
}
