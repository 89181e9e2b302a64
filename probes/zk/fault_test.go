package zk

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/testenv"
)

// TestFaultWatchLeaderKilled kills the ensemble's leader while a writer changes 20
// nodes and a recursive watch runs: the stream must continue after the election, and
// for every node the changes shown + counted in gaps (+ resync) == its final version.
func TestFaultWatchLeaderKilled(t *testing.T) {
	testenv.Faults(t)
	servers := ensemble(t)
	st := EnsembleStatus(context.Background(), StatusOptions{Servers: servers, Timeout: 3 * time.Second})
	if st.Verdict != VerdictHealthy {
		t.Fatalf("ensemble not healthy before the test: %s %v", st.Verdict, st.Problems)
	}
	leaderN := 0
	for i, m := range st.Members {
		if m.Mode == "leader" {
			leaderN = i + 1
		}
	}
	c := connect(t, endpoint.ZooKeeper{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := base(t, c)
	var paths []string
	for i := 0; i < 20; i++ {
		paths = append(paths, fmt.Sprintf("%s/n%02d", root, i))
	}
	if err := c.CreateAll(ctx, paths, nil, 0); err != nil {
		t.Fatal(err)
	}
	wc := connect(t, endpoint.ZooKeeper{})
	w, err := wc.Watch(ctx, WatchOptions{Paths: []string{root}, Recursive: true, Depth: -1})
	if err != nil {
		t.Fatal(err)
	}
	col := collect(w)
	writer := connect(t, endpoint.ZooKeeper{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := writer.Set(ctx, p, []byte("x"), -1); err != nil {
					failed.Add(1) // outcome unknown during the election: the final version decides
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	killedAt := time.Now()
	testenv.Service(t, "kill", "zookeeper", strconv.Itoa(leaderN))
	defer testenv.Service(t, "start", "zookeeper", strconv.Itoa(leaderN))
	t.Logf("killed zookeeper %d (leader)", leaderN)
	time.Sleep(4 * time.Second)
	stop.Store(true)
	wg.Wait()
	final := map[string]int64{}
	for _, p := range paths {
		// The election may still run (and the writer reconnect): ask until it answers.
		deadline := time.Now().Add(30 * time.Second)
		s, err := writer.Stat(ctx, p)
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			s, err = writer.Stat(ctx, p)
		}
		if err != nil {
			t.Fatal(err)
		}
		final[p] = int64(s.Version)
	}
	evs := col.waitFor(t, 60*time.Second, "every version accounted for", func(evs []Event) bool {
		acc := accounted(evs)
		for _, p := range paths {
			if acc[p] < final[p] {
				return false
			}
		}
		return true
	})
	acc := accounted(evs)
	after := 0
	for _, ev := range evs {
		if ev.Time.After(killedAt.Add(500*time.Millisecond)) && (ev.Type == EventDataChanged || ev.Type == EventGap) {
			after++
		}
	}
	for _, p := range paths {
		if acc[p] != final[p] {
			t.Errorf("%s: accounted %d, final version %d", p, acc[p], final[p])
		}
	}
	if after == 0 {
		t.Error("no change events after the leader was killed: the stream did not continue")
	}
	s := w.Summary()
	t.Logf("writes that failed during the election: %d; summary: %d events, %d gaps (%d missed), %d disconnects, %d reconnects, %d expirations",
		failed.Load(), s.Events, s.Gaps, s.Missed, s.Disconnects, s.Reconnects, s.Expirations)
	if s.Disconnects == 0 || s.Reconnects+s.Resyncs == 0 {
		t.Errorf("the leader's death should show as a disconnect and a reconnect (or resync): %+v", s)
	}
	var types []string
	for _, ev := range evs {
		if ev.Type != EventDataChanged && ev.Type != EventGap {
			types = append(types, string(ev.Type))
		}
	}
	t.Logf("session events: %s", strings.Join(types, " "))
}
