package zk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk/zktest"
)

// ensemble returns the real 3-node ensemble's client addresses (skips without it).
func ensemble(t testing.TB) []string {
	t.Helper()
	return testenv.List(t, testenv.ZK)
}

func dialer() endpoint.Dialer { return endpoint.Dialer{Timeout: 5 * time.Second} }

// connect opens a session on servers (default: the ensemble) and closes it at cleanup.
func connect(t testing.TB, ep endpoint.ZooKeeper) *Client {
	t.Helper()
	if len(ep.Servers) == 0 {
		ep.Servers = ensemble(t)
	}
	c, err := Connect(context.Background(), dialer(), Options{Endpoint: ep})
	if err != nil {
		t.Fatalf("connect %v: %v", ep.Servers, err)
	}
	t.Cleanup(c.Close)
	return c
}

// base creates a unique node /dsctl-test/<test>-<hex> and deletes its tree at cleanup
// (on a fresh session to c's servers: c may have been cut off by then).
func base(t testing.TB, c *Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + "-" + hex.EncodeToString(b)
	root := "/dsctl-test/" + name
	if err := c.CreateAll(context.Background(), []string{"/dsctl-test", root}, nil, 0); err != nil {
		t.Fatalf("create %s: %v", root, err)
	}
	t.Cleanup(func() {
		cl, err := Connect(context.Background(), dialer(), Options{Endpoint: endpoint.ZooKeeper{Servers: strings.Split(c.Servers(), ",")}})
		if err != nil {
			t.Logf("cleanup of %s: %v", root, err)
			return
		}
		defer cl.Close()
		if _, err := cl.DeleteTree(context.Background(), root, 0); err != nil {
			t.Logf("cleanup of %s: %v", root, err)
		}
	})
	return root
}

func startProxy(t testing.TB, target string) *zktest.Proxy { return zktest.StartProxy(t, target) }

// collector gathers a watcher's events.
type collector struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func collect(w *Watcher) *collector {
	c := &collector{notify: make(chan struct{}, 1)}
	go func() {
		for ev := range w.Events() {
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// waitFor waits (bounded) until cond holds over the events so far.
func (c *collector) waitFor(t testing.TB, limit time.Duration, what string, cond func([]Event) bool) []Event {
	t.Helper()
	deadline := time.After(limit)
	for {
		evs := c.snapshot()
		if cond(evs) {
			return evs
		}
		select {
		case <-c.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			var brief []string
			for _, ev := range tail(evs, 8) {
				brief = append(brief, fmt.Sprintf("%s %s v%d %s", ev.Type, ev.Path, ev.Version, ev.Message))
			}
			t.Fatalf("timed out after %s waiting for %s; %d events, last: %s", limit, what, len(evs), strings.Join(brief, "; "))
		}
	}
}

func tail(evs []Event, n int) []Event {
	if len(evs) <= n {
		return evs
	}
	return evs[len(evs)-n:]
}

// accounted sums, per path, the data changes events show: data_changed counts one,
// a data gap counts its Missed, a resync the version difference.
func accounted(evs []Event) map[string]int64 {
	out := map[string]int64{}
	for _, ev := range evs {
		switch {
		case ev.Type == EventDataChanged:
			out[ev.Path]++
		case ev.Type == EventGap && ev.Change == EventDataChanged:
			out[ev.Path] += ev.Missed
		case ev.Type == EventResync && ev.Change == EventDataChanged:
			out[ev.Path] += int64(ev.Version - ev.OldVersion)
		}
	}
	return out
}
