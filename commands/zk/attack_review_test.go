package zk_test

// CLI-level attack on `dsctl zk watch` (see probes/zk/attack_review_test.go for the
// probe-level ones).

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
)

// Finding 1, as the user sees it: `zk watch -r -o jsonl` on a tree where a config
// tool replaces a node (delete + create in one transaction, a common "replace"
// pattern), then sets it: the stream shows the deletion and a children gap of 2, never
// the creation, and nothing for the set; the summary counts the node as unwatched.
func TestAttackCLIReplacedNodeGoesSilent(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		root := base(t, c)
		node := root + "/config"
		if err := c.CreateAll(context.Background(), []string{node}, []byte("v1"), 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- dsctlCtx(ctx, t, nil, out, errOut, "zk", "watch", root, "-r", "--data", "-o", "jsonl", "--zk", tg.servers)
		}()
		waitFor(t, 10*time.Second, "armed", func() bool { return strings.Contains(out.String(), `"type":"armed"`) })
		if _, err := c.Conn().Multi(&gozk.DeleteRequest{Path: node, Version: -1},
			&gozk.CreateRequest{Path: node, Data: []byte("v2"), Acl: gozk.WorldACL(gozk.PermAll)}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the children gap", func() bool { return strings.Contains(out.String(), `"type":"gap"`) })
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Set(context.Background(), node, []byte("v3"), -1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(out.String(), `"data":"v3"`) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("zk watch did not end after ctrl-C")
		}
		types := map[string]int{}
		var watched int
		for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
			var ev struct {
				Type, Path string
				Nodes      int `json:"nodes_watched"`
			}
			_ = json.Unmarshal([]byte(l), &ev)
			if ev.Path == node {
				types[ev.Type]++
			}
			if ev.Type == "summary" {
				watched = ev.Nodes
			}
		}
		if types["deleted"] != 1 || types["created"] != 1 || types["data_changed"] != 1 || watched != 2 {
			t.Fatalf("%s replaced then set: want 1 deleted, 1 created, 1 data_changed and 2 nodes watched; got %v, %d watched:\n%s",
				node, types, watched, r.out)
		}
	})
}
