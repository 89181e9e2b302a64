package zk_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/testenv"
)

// BenchmarkWatchEventToOutput measures, against the real ensemble, the time from a
// writer starting a set to `dsctl zk watch -o jsonl` writing the data_changed line
// (the set's own quorum write included). The baseline is go-zookeeper alone, measured
// in the same iterations (so the machine's load hits both alike): the time from the
// same set to a one-shot watch channel firing on another session, the floor any
// watcher built on the library can reach (it does not re-read, so it cannot say the
// new version, nor print anything).
//
//	go test -run XXX -bench WatchEventToOutput -benchtime 3000x ./commands/zk/
func BenchmarkWatchEventToOutput(b *testing.B) {
	servers := testenv.Get(b, testenv.ZK)
	tg := target{name: "ensemble", servers: servers}
	c := client(b, tg)
	root := base(b, c)
	node := root + "/latency"
	if _, err := c.Create(context.Background(), node, nil, 0, nil); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &stampWriter{lines: make(chan stamped, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		dsctlCtx(ctx, b, nil, out, &syncBuffer{}, "zk", "watch", node, "-o", "jsonl", "--zk", servers)
	}()
	waitArmed(b, out)
	conn := client(b, tg).Conn()
	lat := make([]time.Duration, 0, b.N)
	floor := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _, ch, err := conn.GetW(node)
		if err != nil {
			b.Fatal(err)
		}
		fired := make(chan time.Time, 1)
		go func() { <-ch; fired <- time.Now() }()
		t0 := time.Now()
		st, err := c.Set(context.Background(), node, []byte("x"), -1)
		if err != nil {
			b.Fatal(err)
		}
		for {
			s := <-out.lines
			if s.typ == "data_changed" && s.version >= st.Version {
				lat = append(lat, s.at.Sub(t0))
				break
			}
		}
		floor = append(floor, (<-fired).Sub(t0))
	}
	b.StopTimer()
	cancel()
	<-done
	report(b, "", lat)
	report(b, "gozk-", floor)
}

func report(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) != b.N {
		b.Fatalf("%d latencies for %d sets", len(lat), b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, prefix+"max-ms")
}

type stamped struct {
	typ     string
	version int32
	at      time.Time
}

// stampWriter timestamps each jsonl line as the command writes it.
type stampWriter struct{ lines chan stamped }

func (w *stampWriter) Write(p []byte) (int, error) {
	at := time.Now()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var ev struct {
			Type    string `json:"type"`
			Version int32  `json:"version"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil {
			w.lines <- stamped{ev.Type, ev.Version, at}
		}
	}
	return len(p), nil
}

func waitArmed(b *testing.B, w *stampWriter) {
	select {
	case s := <-w.lines:
		if s.typ != "armed" {
			b.Fatalf("first line is %s, want armed", s.typ)
		}
	case <-time.After(10 * time.Second):
		b.Fatal("watch not armed within 10s")
	}
}
