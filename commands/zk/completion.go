package zk

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// completePath completes a znode path from the children of the typed path's parent
// (one getChildren on the ensemble the command would use, with its --chroot and
// digest auth): "/ser" offers /services, "/services/" its children. When the word is
// exactly one node, its children are offered too, so TAB walks down the tree. No
// space is added: a path usually goes on with "/".
func completePath(f *cmdutil.Factory, conn *ConnOptions) cobra.CompletionFunc {
	return f.Dynamic(func(ctx context.Context, toComplete string) ([]string, error) {
		if toComplete != "" && !strings.HasPrefix(toComplete, "/") {
			return nil, nil // paths are absolute
		}
		o := *conn
		o.Servers = cmdutil.Unique(o.Servers)
		ep, err := Endpoint(ctx, f, &o)
		if err != nil {
			return nil, err
		}
		c, err := zkprobe.Connect(ctx, f.CompletionDialer(), zkprobe.Options{Endpoint: ep, Chroot: conn.Chroot})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		parent, base := "/", strings.TrimPrefix(toComplete, "/")
		if i := strings.LastIndex(toComplete, "/"); i > 0 {
			parent, base = toComplete[:i], toComplete[i+1:]
		}
		kids, _, err := c.Children(ctx, parent)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, k := range kids {
			if strings.HasPrefix(k, base) {
				out = append(out, zkprobe.Join(parent, k))
			}
		}
		if len(out) == 1 && out[0] == toComplete {
			if grand, _, err := c.Children(ctx, toComplete); err == nil {
				for _, k := range grand {
					out = append(out, zkprobe.Join(toComplete, k))
				}
			}
		}
		return out, nil
	}, cobra.ShellCompDirectiveNoSpace)
}

// renderings are the --as values of get and watch.
var renderings = cmdutil.Fixed("auto\tguess from the bytes", "text", "hex", "json")
