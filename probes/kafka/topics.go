package kafka

import (
	"strconv"
	"strings"
)

// TopicSummary is one line of `dsctl kafka topics`: a topic's shape and the state of
// its partitions, from one Metadata response and one DescribeConfigs request.
type TopicSummary struct {
	Name              string `json:"name"`
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	// MinInsyncReplicas is null when the broker did not report it.
	MinInsyncReplicas       *int   `json:"min_insync_replicas"`
	MinInsyncReplicasSource Source `json:"min_insync_replicas_source"`
	// UnderReplicated counts partitions with fewer in-sync replicas than replicas.
	UnderReplicated int `json:"under_replicated"`
	// AtMinISR counts partitions whose in-sync replicas are exactly min.insync.replicas
	// (kafka-topics.sh --at-min-isr-partitions): one more loss stops acks=all writes.
	AtMinISR int `json:"at_min_isr"`
	// UnderMinISR counts partitions with fewer in-sync replicas than min.insync.replicas.
	UnderMinISR int `json:"under_min_isr"`
	// Offline counts partitions with no leader, or a leader that did not answer.
	Offline int    `json:"offline"`
	Error   string `json:"error,omitempty"`
}

// SummarizeTopics turns a snapshot into one summary per topic, in the snapshot's order.
func SummarizeTopics(s *Snapshot) []TopicSummary {
	down := map[int32]bool{}
	for _, b := range s.Brokers {
		if !b.Reachable {
			down[b.ID] = true
		}
	}
	listed := map[int32]bool{}
	for _, b := range s.Brokers {
		listed[b.ID] = true
	}
	out := make([]TopicSummary, 0, len(s.Topics))
	for i := range s.Topics {
		t := &s.Topics[i]
		sum := TopicSummary{Name: t.Name, Internal: t.Internal, Partitions: len(t.Partitions),
			ReplicationFactor: t.ReplicationFactor(), MinInsyncReplicasSource: SourceUnknown, Error: t.Error}
		if t.Error == "" && t.ConfigError != "" {
			sum.Error = "DescribeConfigs: " + t.ConfigError
		}
		minISR, known := 0, false
		if cv, ok := t.Configs["min.insync.replicas"]; ok {
			if v, err := strconv.Atoi(strings.TrimSpace(cv.Value)); err == nil {
				minISR, known = v, true
				sum.MinInsyncReplicas = &v
				sum.MinInsyncReplicasSource = cv.Source
			}
		}
		for _, p := range t.Partitions {
			if len(p.ISR) < len(p.Replicas) {
				sum.UnderReplicated++
			}
			if known && len(p.ISR) == minISR {
				sum.AtMinISR++
			}
			if known && len(p.ISR) < minISR {
				sum.UnderMinISR++
			}
			if p.Leader < 0 || down[p.Leader] || !listed[p.Leader] {
				sum.Offline++
			}
		}
		out = append(out, sum)
	}
	return out
}
