package zk

import (
	"context"
	"errors"
	"sort"
	"strings"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/errs"
)

// CreateAll creates the given persistent nodes with data, pipelined with conc requests
// in flight. Parents must come before their children in paths (or already exist); a
// node that already exists is left as it is.
func (c *Client) CreateAll(ctx context.Context, paths []string, data []byte, conc int) error {
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	// Group by depth so a parent is always created before its children.
	byDepth := map[int][]string{}
	var depths []int
	for _, p := range paths {
		if err := CheckPath(p); err != nil {
			return err
		}
		d := strings.Count(p, "/")
		if _, ok := byDepth[d]; !ok {
			depths = append(depths, d)
		}
		byDepth[d] = append(byDepth[d], p)
	}
	sort.Ints(depths)
	acl := gozk.WorldACL(gozk.PermAll)
	for _, d := range depths {
		level := byDepth[d]
		err := parallel(ctx, len(level), conc, func(ctx context.Context, i int) error {
			_, err := call(ctx, c, "create", level[i], func() (string, error) {
				return c.conn.Create(c.abs(level[i]), data, 0, acl)
			})
			if errors.Is(err, gozk.ErrNodeExists) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteTree deletes root and everything under it, deepest nodes first, pipelined.
// Nodes that disappear meanwhile are fine; it returns the number deleted.
func (c *Client) DeleteTree(ctx context.Context, root string, conc int) (int, error) {
	if root == "/" {
		return 0, errs.Usage("zookeeper: refusing to delete the whole namespace (/)")
	}
	t, err := c.Walk(ctx, root, WalkOptions{MaxDepth: -1, Concurrency: conc})
	if ErrNoNode(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	byDepth := map[int][]string{}
	maxDepth := 0
	for _, n := range t.Nodes {
		byDepth[n.Depth] = append(byDepth[n.Depth], n.Path)
		maxDepth = max(maxDepth, n.Depth)
	}
	deleted := 0
	for d := maxDepth; d >= 0; d-- {
		level := byDepth[d]
		err := parallel(ctx, len(level), conc, func(ctx context.Context, i int) error {
			_, err := call(ctx, c, "delete", level[i], func() (struct{}, error) {
				return struct{}{}, c.conn.Delete(c.abs(level[i]), -1)
			})
			if ErrNoNode(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return deleted, err
		}
		deleted += len(level)
	}
	return deleted, nil
}
