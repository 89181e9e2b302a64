package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/health"
	"github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/zk"
)

// fakeBackend serves canned data for the goldens: the frames must not depend on a
// server. (The end-to-end test under tmux runs against the real ones.)
type fakeBackend struct {
	mu         sync.Mutex
	configured []string
	down       map[string]bool // backend -> fail its calls
	locks      []LockRow
	kafka      *KafkaData
	broke      []string
	lists      int
}

func newFake() *fakeBackend {
	return &fakeBackend{configured: []string{"redis", "zookeeper", "kafka"}, down: map[string]bool{},
		locks: fakeLocks(3), kafka: fakeKafka(12)}
}

func (f *fakeBackend) isDown(b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down[b]
}

func (f *fakeBackend) setDown(b string, down bool) {
	f.mu.Lock()
	f.down[b] = down
	f.mu.Unlock()
}

func (f *fakeBackend) Configured() []string { return f.configured }

func (f *fakeBackend) Health(context.Context) []health.Result {
	out := []health.Result{
		{Backend: "redis", Endpoint: "127.0.0.1:16379", OK: true, LatencyMs: 0.4, Detail: "PONG, redis 7.0.15"},
		{Backend: "zookeeper", Endpoint: "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183", OK: true, LatencyMs: 12.5, Detail: "session 0x1000, 127.0.0.1:12181=follower 127.0.0.1:12182=leader 127.0.0.1:12183=follower"},
		{Backend: "kafka", Endpoint: "127.0.0.1:19092", OK: true, LatencyMs: 8.1, Detail: "3 brokers [1 2 3], controller 1"},
	}
	for i := range out {
		if f.isDown(out[i].Backend) {
			out[i].OK, out[i].Detail, out[i].Error = false, "", out[i].Backend+": cannot reach "+out[i].Endpoint+" within 5s"
		}
	}
	return out
}

func (f *fakeBackend) ZKStatus(context.Context) (*zk.Status, error) {
	if f.isDown("zookeeper") {
		return nil, errors.New("zookeeper: cannot reach 127.0.0.1:12181 within 5s")
	}
	ms := []zk.Member{
		{Addr: "127.0.0.1:12181", State: "up", Mode: "follower", Zxid: 0x200000041, Znodes: 42, Connections: 3, LatencyMs: 1.2},
		{Addr: "127.0.0.1:12182", State: "up", Mode: "leader", Zxid: 0x200000041, Znodes: 42, Connections: 2, LatencyMs: 0.9},
		{Addr: "127.0.0.1:12183", State: "up", Mode: "follower", Zxid: 0x200000041, Znodes: 42, Connections: 1, LatencyMs: 1.0},
	}
	return &zk.Status{Members: ms, Verdict: zk.VerdictHealthy, Ensemble: 3, Quorum: 2, Voting: 3, Leader: "127.0.0.1:12182"}, nil
}

func (f *fakeBackend) ZKList(_ context.Context, path string) (*ZKListing, error) {
	f.mu.Lock()
	f.lists++
	f.mu.Unlock()
	st := zk.Stat{Version: 3, DataLength: 17, NumChildren: 2, Mzxid: 0x200000040, Mtime: fixedNow.Add(-time.Minute)}
	switch path {
	case "/":
		return &ZKListing{Path: "/", Stat: st, Children: []string{"app", "zookeeper"}}, nil
	case "/app":
		return &ZKListing{Path: "/app", Stat: st, Data: []byte("owner=payments"), Children: []string{"config", "leader", "workers"}}, nil
	}
	return &ZKListing{Path: path, Stat: zk.Stat{Version: 7, DataLength: 12}, Data: []byte(`{"limit":10}`)}, nil
}

func (f *fakeBackend) ZKWatch(ctx context.Context, paths []string) (<-chan zk.Event, error) {
	ch := make(chan zk.Event, 16)
	t := fixedNow
	p := paths[0]
	evs := []zk.Event{
		{Type: zk.EventArmed, Time: t, Nodes: len(paths)},
		{Type: zk.EventDataChanged, Time: t.Add(time.Second), Path: p, OldVersion: 3, Version: 4, Data: []byte(`{"limit":11}`)},
		{Type: zk.EventGap, Time: t.Add(2 * time.Second), Path: p, Change: zk.EventDataChanged, Missed: 2},
		{Type: zk.EventDataChanged, Time: t.Add(3 * time.Second), Path: p, OldVersion: 6, Version: 7, Data: []byte(`{"limit":14}`)},
		{Type: zk.EventChildrenChanged, Time: t.Add(4 * time.Second), Path: p, Added: []string{"w-3"}, Removed: []string{"w-1"}},
	}
	for _, e := range evs {
		ch <- e
	}
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

func (f *fakeBackend) Kafka(context.Context) (*KafkaData, error) {
	if f.isDown("kafka") {
		return nil, errors.New("kafka: cannot reach 127.0.0.1:19092 within 5s (is the broker up?)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kafka, nil
}

func (f *fakeBackend) Locks(context.Context) ([]LockRow, error) {
	if f.isDown("redis") {
		return nil, &BackendError{Backend: "redis", Err: errors.New("redis: cannot reach 127.0.0.1:16379 within 5s (is the server up?)")}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LockRow(nil), f.locks...), nil
}

func (f *fakeBackend) InspectLock(_ context.Context, backend, name string) (*lock.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.locks {
		if r.Backend == backend && r.Info.Name == name {
			in := r.Info
			in.Notes = []string{"inspected"}
			return &in, nil
		}
	}
	return nil, fmt.Errorf("no lock %s", name)
}

func (f *fakeBackend) BreakLock(_ context.Context, backend, name string) (*lock.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.locks {
		if r.Backend == backend && r.Info.Name == name {
			f.locks = append(f.locks[:i], f.locks[i+1:]...)
			f.broke = append(f.broke, name)
			in := r.Info
			return &in, nil
		}
	}
	return &lock.Info{Name: name}, nil
}

const fakeRedis = "redis 127.0.0.1:16379"

func fakeLocks(n int) []LockRow {
	rows := make([]LockRow, n)
	for i := range rows {
		name := fmt.Sprintf("jobs/nightly-%04d", i)
		h := &lock.Holder{Token: fmt.Sprintf("tok%08d", i), Fence: lock.FencingToken(100 + i),
			Owner: &lock.Owner{Host: "worker-" + fmt.Sprint(i%7), PID: 4000 + i, User: "app", Command: "backup.sh"}, AcquiredAt: fixedNow.Add(-time.Minute)}
		h.SetTTLLeft(time.Duration(10+i%50) * time.Second)
		rows[i] = LockRow{Backend: fakeRedis, FetchedAt: fixedNow, Info: lock.Info{Name: name, Key: "dsctl:lock:" + name, Held: true,
			Format: lock.FormatDsctl, FormatDetail: lock.FormatDsctl.Describe(),
			Backend: lock.Backend{Kind: "redis", Mode: lock.ModeSingle, Endpoints: []string{"127.0.0.1:16379"}, FencingSafe: true}, Holder: h, Waiters: i % 3, LastFence: h.Fence, FencingSafe: true}}
	}
	return rows
}

func fakeKafka(topics int) *KafkaData {
	snap := &kafka.Snapshot{Bootstrap: []string{"127.0.0.1:19092"}, ControllerID: 1}
	for id := int32(1); id <= 3; id++ {
		snap.Brokers = append(snap.Brokers, kafka.Broker{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d9092", id), Reachable: true, Controller: id == 1})
	}
	for i := 0; i < topics; i++ {
		t := kafka.Topic{Name: fmt.Sprintf("orders.v%d", i), Configs: map[string]kafka.ConfigValue{"min.insync.replicas": {Value: "2"}}}
		rf := 3
		if i%4 == 1 {
			rf = 1
		}
		for p := int32(0); p < 3; p++ {
			part := kafka.Partition{ID: p, Leader: 1 + (p+int32(i))%3}
			for r := 0; r < rf; r++ {
				part.Replicas = append(part.Replicas, 1+(p+int32(i)+int32(r))%3)
			}
			part.ISR = append([]int32(nil), part.Replicas...)
			if i%5 == 2 && rf > 1 {
				part.ISR = part.ISR[:rf-1]
			}
			t.Partitions = append(t.Partitions, part)
		}
		snap.Topics = append(snap.Topics, t)
	}
	snap.TopicsInCluster = len(snap.Topics)
	rep, _ := kafka.Audit(kafka.AuditInput{Snapshot: snap, Bootstrap: "127.0.0.1:19092", Now: fixedNow})
	lag := int64(1200)
	groups := &kafka.GroupsReport{Groups: []kafka.GroupLag{
		{Group: "billing", State: "Stable", Members: make([]kafka.GroupMember, 2), TotalLag: 1234, MaxLag: 900,
			Partitions: []kafka.PartitionLag{{Topic: "orders.v0", Partition: 0, Lag: &lag}}},
		{Group: "audit-sink", State: "Empty", TotalLag: 0},
	}}
	return &KafkaData{Snapshot: snap, Report: rep, Topics: kafka.SummarizeTopics(snap), Groups: groups}
}
