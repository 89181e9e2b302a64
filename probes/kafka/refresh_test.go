package kafka

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/testenv"
)

// stallServer accepts connections and never answers (a hung broker).
func stallServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// Manual refreshes that come while a run is going are skipped and counted, not queued.
func TestRefreshSkipsOverlappingRuns(t *testing.T) {
	a, err := LoadAudit(AuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := make(chan struct{})
	ch := a.Refresh(ctx, endpoint.Dialer{Timeout: time.Second}, endpoint.Kafka{Brokers: []string{stallServer(t)}}, time.Hour, now)
	for range 3 { // the first run is stalled on the hung broker for a second
		now <- struct{}{}
	}
	u := <-ch
	if u.Err == nil || u.Report != nil || u.Skipped != 3 {
		t.Fatalf("update %+v, want the stalled run's error and 3 skipped refreshes", u)
	}
	cancel()
	for range ch {
	}
}

// Against the real cluster: a refresh picks up a config change made between runs.
func TestRefreshRealCluster(t *testing.T) {
	brokers := testenv.List(t, testenv.Kafka)
	name := realTopic(t, brokers, 3, map[string]string{"min.insync.replicas": "2"})
	a, err := LoadAudit(AuditRequest{Topics: []string{regexpQuote(name)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := make(chan struct{}, 1)
	d := endpoint.Dialer{Timeout: 10 * time.Second}
	ch := a.Refresh(ctx, d, endpoint.Kafka{Brokers: brokers}, MinRefreshInterval, now)

	hasUnclean := func(r *AuditReport) bool {
		for _, f := range r.Findings {
			if f.Topic == name && f.Rule == "topic-unclean-election" {
				return true
			}
		}
		return false
	}
	changed := false
	for i := 0; ; i++ {
		var u AuditUpdate
		select {
		case u = <-ch:
		case <-ctx.Done():
			t.Fatal("no refresh showed the change within 60s")
		}
		if u.Err != nil {
			t.Fatalf("refresh %d: %v", i, u.Err)
		}
		if u.Report.Cluster.TopicsAudited != 1 {
			continue // metadata still lags the topic's creation
		}
		if !changed {
			if hasUnclean(u.Report) {
				t.Fatalf("unclean election finding before the change: %+v", u.Report.Findings)
			}
			setTopicConfig(t, d, brokers, name, "unclean.leader.election.enable", "true")
			changed = true
			select {
			case now <- struct{}{}:
			default:
			}
			continue
		}
		if hasUnclean(u.Report) {
			return
		}
	}
}

func setTopicConfig(t *testing.T, d endpoint.Dialer, brokers []string, topic, key, value string) {
	t.Helper()
	client, err := d.ConnectKafka(context.Background(), endpoint.Kafka{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		key: {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value},
	}, false); err != nil {
		t.Fatal(err)
	}
}
