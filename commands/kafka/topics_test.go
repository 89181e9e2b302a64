package kafka_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// kafka topics against the real cluster: shape, min.insync.replicas with its source,
// partition states, filters, and two requests whatever the number of topics.
func TestRealTopicsList(t *testing.T) {
	c := realCluster(t)
	c.create("a-rf2", 3, 2, map[string]string{"min.insync.replicas": "1"}, nil)
	c.create("b-misr3", 2, 3, map[string]string{"min.insync.replicas": "3"}, nil)
	c.create("c-plain", 1, 3, nil, nil)
	pattern := c.prefix + ".*"

	var list struct {
		Topics          []kprobe.TopicSummary `json:"topics"`
		TopicsInCluster int                   `json:"topics_in_cluster"`
		Requests        kprobe.Requests       `json:"requests"`
	}
	eventually(t, 20*time.Second, "topics listed", func() string {
		r := dsctl(t, nil, "kafka", "topics", "--brokers", c.bootstrap(), "--pattern", pattern, "-o", "json")
		list.Topics = nil
		if err := json.Unmarshal([]byte(r.out), &list); err != nil || r.code != 0 || len(list.Topics) != 3 {
			return fmt.Sprintf("exit %d %v\n%s%s", r.code, err, r.out, r.errOut)
		}
		for _, tp := range list.Topics {
			if tp.MinInsyncReplicas == nil {
				return "min.insync.replicas not reported yet"
			}
		}
		return ""
	})
	byName := map[string]kprobe.TopicSummary{}
	for _, tp := range list.Topics {
		byName[strings.TrimPrefix(tp.Name, c.prefix)] = tp
	}
	a, b, p := byName["a-rf2"], byName["b-misr3"], byName["c-plain"]
	if a.Partitions != 3 || a.ReplicationFactor != 2 || *a.MinInsyncReplicas != 1 || a.MinInsyncReplicasSource != kprobe.SourceTopic ||
		a.UnderReplicated != 0 || a.Offline != 0 {
		t.Errorf("a-rf2: %+v", a)
	}
	if b.ReplicationFactor != 3 || *b.MinInsyncReplicas != 3 || b.AtMinISR != 2 || b.MinInsyncReplicasSource != kprobe.SourceTopic {
		t.Errorf("b-misr3: %+v", b)
	}
	if p.MinInsyncReplicasSource == kprobe.SourceTopic || p.AtMinISR != 0 {
		t.Errorf("c-plain: %+v", p)
	}
	if list.Requests.ByAPI["Metadata"] != 1 || list.Requests.ByAPI["DescribeConfigs"] != 1 {
		t.Errorf("requests %+v", list.Requests)
	}
	// --at-min-isr keeps only the topic whose ISR is exactly min.insync.replicas.
	r := dsctl(t, nil, "kafka", "topics", "--brokers", c.bootstrap(), "--pattern", pattern, "--at-min-isr", "-o", "json")
	list.Topics = nil
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list.Topics) != 1 || !strings.HasSuffix(list.Topics[0].Name, "b-misr3") {
		t.Errorf("--at-min-isr: %v\n%s", err, r.out)
	}
	// Table: one row per topic, the source spelled short.
	r = dsctl(t, nil, "kafka", "topics", "--brokers", c.bootstrap(), "--pattern", pattern)
	if r.code != 0 || !strings.Contains(r.out, c.prefix+"a-rf2") || !strings.Contains(r.out, "topic") || !strings.Contains(r.out, fmt.Sprintf("%d requests sent", list.Requests.Total)) {
		t.Errorf("table: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}
