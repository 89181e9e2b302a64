package zk

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	gozk "github.com/go-zookeeper/zk"
)

// DefaultConcurrency is how many requests a walk keeps in flight on the one session.
// go-zookeeper's Conn pipelines concurrent requests on its connection.
const DefaultConcurrency = 256

// WalkOptions bound a tree walk.
type WalkOptions struct {
	// MaxDepth is how many levels below the root to descend (0: the root only;
	// negative: no limit).
	MaxDepth int
	// MaxNodes caps the nodes visited (0: no cap). A node whose children would
	// exceed the cap is not listed; its child count is still known.
	MaxNodes int
	// Concurrency is the number of requests in flight (default DefaultConcurrency;
	// 1 means one round trip at a time).
	Concurrency int
	// Progress, when set, is called after each level with the nodes visited so far.
	Progress func(visited int)
}

// TreeNode is one visited node.
type TreeNode struct {
	Path  string `json:"path"`
	Depth int    `json:"depth"`
	Stat  Stat   `json:"-"`
	// Listed reports whether the children were listed (false when cut by depth or cap).
	Listed bool `json:"listed"`
	// Children are the child names when listed, sorted.
	Children []string `json:"-"`
	// Cut says why the children were not listed: "depth" or "max-nodes".
	Cut string `json:"cut,omitempty"`
	// Error is a per-node failure that did not stop the walk (e.g. not authorized).
	Error string `json:"error,omitempty"`
}

// Tree is the result of a walk, nodes in depth-first path order.
type Tree struct {
	Root  string     `json:"root"`
	Nodes []TreeNode `json:"nodes"`
	// Truncated reports that --max-nodes stopped the walk somewhere.
	Truncated bool `json:"truncated"`
	// Unlisted is the number of nodes known to exist (from child counts) but not visited.
	Unlisted int64 `json:"unlisted"`
	// Vanished counts nodes deleted between being listed and being read.
	Vanished int `json:"vanished"`
	// Requests is the number of ZooKeeper requests made.
	Requests int64 `json:"requests"`
}

// Walk visits root and its descendants level by level. For each level it reads every
// node's stat (the child count) first, pipelined, and only then lists the children of
// the nodes whose children fit under MaxNodes, pipelined too: a node with 300,000
// children is never listed blindly.
func (c *Client) Walk(ctx context.Context, root string, opt WalkOptions) (*Tree, error) {
	if err := CheckPath(root); err != nil {
		return nil, err
	}
	conc := opt.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	t := &Tree{Root: root}
	var requests atomic.Int64
	visited := 0
	level := []string{root}
	var all []TreeNode
	for depth := 0; len(level) > 0; depth++ {
		nodes := make([]TreeNode, len(level))
		gone := make([]bool, len(level))
		err := parallel(ctx, len(level), conc, func(ctx context.Context, i int) error {
			requests.Add(1)
			ok, st, err := c.existsRaw(ctx, c.abs(level[i]))
			if err != nil {
				return err
			}
			if !ok {
				gone[i] = true
				return nil
			}
			nodes[i] = TreeNode{Path: level[i], Depth: depth, Stat: statOf(st)}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if depth == 0 && gone[0] {
			return nil, c.classify("tree", root, gozk.ErrNoNode)
		}
		var kept []int
		for i := range nodes {
			if gone[i] {
				t.Vanished++
				continue
			}
			kept = append(kept, i)
		}
		visited += len(kept)
		// Decide which nodes to list, in path order, from their child counts.
		var toList []int
		budget := visited
		for _, i := range kept {
			n := &nodes[i]
			kids := int(n.Stat.NumChildren)
			switch {
			case kids == 0:
				n.Listed = true
			case opt.MaxDepth >= 0 && depth >= opt.MaxDepth:
				n.Cut = "depth"
				t.Unlisted += int64(kids)
			case opt.MaxNodes > 0 && budget+kids > opt.MaxNodes:
				n.Cut = "max-nodes"
				t.Truncated = true
				t.Unlisted += int64(kids)
			default:
				budget += kids
				toList = append(toList, i)
			}
		}
		err = parallel(ctx, len(toList), conc, func(ctx context.Context, j int) error {
			n := &nodes[toList[j]]
			requests.Add(1)
			type ch struct {
				kids []string
				st   *gozk.Stat
			}
			r, err := call(ctx, c, "ls", n.Path, func() (ch, error) {
				kids, st, err := c.conn.Children(c.abs(n.Path))
				return ch{kids, st}, err
			})
			switch {
			case ErrNoNode(err):
				n.Error = "deleted during the walk"
				return nil
			case ErrNoAuth(err):
				n.Error = "not authorized to list children"
				return nil
			case err != nil:
				return err
			}
			sort.Strings(r.kids)
			n.Children, n.Listed = r.kids, true
			if r.st != nil {
				n.Stat = statOf(r.st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var next []string
		for _, i := range kept {
			n := nodes[i]
			all = append(all, n)
			if !n.Listed || n.Cut != "" {
				continue
			}
			for _, k := range n.Children {
				if opt.MaxNodes > 0 && visited+len(next) >= opt.MaxNodes {
					// More children appeared between stat and list than the count said.
					t.Truncated = true
					t.Unlisted++
					continue
				}
				next = append(next, Join(n.Path, k))
			}
		}
		level = next
		if opt.Progress != nil {
			opt.Progress(visited)
		}
	}
	sortDepthFirst(all)
	t.Nodes = all
	t.Requests = requests.Load()
	return t, nil
}

// sortDepthFirst orders nodes as a tree prints: a parent, then each child's subtree in
// name order ("/a", "/a/b", "/a-c" sorts /a's subtree before /a-c).
func sortDepthFirst(nodes []TreeNode) {
	sort.Slice(nodes, func(i, j int) bool { return pathLess(nodes[i].Path, nodes[j].Path) })
}

func pathLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		if a[i] == '/' {
			return true
		}
		if b[i] == '/' {
			return false
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

// parallel runs fn for 0..n-1 on up to workers goroutines and returns the first error
// (the others stop taking work).
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	workers = min(workers, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// the parent context ended
		return fmt.Errorf("zookeeper: walk stopped: %w", context.Cause(ctx))
	}
	return first
}
