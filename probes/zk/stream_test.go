package zk

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// A pane's stream: armed, a data change with both versions, then, with nobody
// reading, the session still closes when the context ends.
func TestWatchStreamRealEnsemble(t *testing.T) {
	c := connect(t, endpoint.ZooKeeper{})
	root := base(t, c)
	node := root + "/config"
	if err := c.CreateAll(context.Background(), []string{node}, []byte("v0"), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := WatchStream(ctx, dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: ensemble(t)}}, WatchOptions{Paths: []string{node}, Data: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-s.Events(); ev.Type != EventArmed || ev.Nodes != 1 {
		t.Fatalf("first event %+v, want armed on 1 node", ev)
	}
	if _, err := c.Set(context.Background(), node, []byte("v1"), -1); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-s.Events():
		if ev.Type != EventDataChanged || ev.Path != node || string(ev.Data) != "v1" || ev.Version != ev.OldVersion+1 {
			t.Fatalf("event %+v, want data_changed to v1", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no data_changed within 10s")
	}
	// Many changes nobody reads, then the pane goes away.
	for i := range 200 {
		if _, err := c.Set(context.Background(), node, []byte{byte(i)}, -1); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	select {
	case <-s.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("stream did not close its session within 15s of the context's end")
	}
	for range s.Events() { // closed
	}
	if s.Summary().Events < 2 {
		t.Fatalf("summary %+v", s.Summary())
	}
}
