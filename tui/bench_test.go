package tui

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// The frame budget is 16 ms with 2,000 topics and 1,000 locks. Each benchmark renders
// one frame of a pane at 120x40 from prepared state (no I/O: the views are pure).
// The small sizes are the baseline in the same run: a frame should cost about the
// same with 100x the rows, since only the visible rows are drawn.
//
//	go test ./tui -run '^$' -bench View -benchmem

func benchModel(topics, locks int, pane string, filter string) *Model {
	m := New(Config{Now: func() time.Time { return fixedNow }, StartPane: pane, Backend: &fakeBackend{configured: []string{"redis", "zookeeper", "kafka"}}})
	m.width, m.height = 120, 40
	m.kafka.setData(fakeKafka(topics), fixedNow)
	m.locks.setRows(fakeLocks(locks), fixedNow)
	if filter != "" {
		m.filter.set(filter)
		m.filterChanged()
	}
	return m
}

func BenchmarkViewKafkaTopics(b *testing.B) {
	for _, n := range []int{20, 2000} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			m := benchModel(n, 10, PaneKafka, "")
			b.ReportAllocs()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}

func BenchmarkViewKafkaFindings(b *testing.B) {
	m := benchModel(2000, 10, PaneKafka, "")
	m.kafka.mode = kvFindings
	m.kafka.sel[kvFindings] = 1000
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

// The filter is applied when it changes (not per frame); this measures that step.
func BenchmarkKafkaFilter2000(b *testing.B) {
	m := benchModel(2000, 10, PaneKafka, "")
	b.ReportAllocs()
	for b.Loop() {
		m.kafka.setFilter("v19")
	}
}

func BenchmarkViewLocks(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("locks=%d", n), func(b *testing.B) {
			m := benchModel(20, n, PaneLocks, "")
			m.locks.sel = n / 2
			b.ReportAllocs()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}

// setRows diffs the new list against the last for hand-overs: once per refresh.
func BenchmarkLocksSetRows1000(b *testing.B) {
	m := benchModel(20, 1000, PaneLocks, "")
	rows := fakeLocks(1000)
	b.ReportAllocs()
	for b.Loop() {
		m.locks.setRows(rows, fixedNow)
	}
}

func BenchmarkViewOverview(b *testing.B) {
	m := benchModel(2000, 1000, PaneOverview, "")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkModelMemory reports the heap a model holds with 2,000 topics (6,000
// partitions) and 1,000 locks loaded, the size the frame budget is stated for.
func BenchmarkModelMemory(b *testing.B) {
	var keep *Model
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		keep = benchModel(2000, 1000, PaneKafka, "")
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-bytes")
	runtime.KeepAlive(keep)
}
