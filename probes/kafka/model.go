// Package kafka is dsctl's Kafka engine: it reads a cluster's state (one Metadata
// request, batched DescribeConfigs), judges it and producer/consumer settings against
// durability rules and a policy, maps keys to partitions the way the Java client,
// sarama and librdkafka do, and describes topics and brokers. No cobra, no printing.
package kafka

import (
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/dsctl/dsctl/probes/errs"
)

// Severity orders findings. The zero value is invalid.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota + 1
	Warn
	Error
	Critical
)

// SeverityNames are the accepted spellings, lowest first.
var SeverityNames = []string{"info", "warn", "error", "critical"}

func (s Severity) String() string {
	if s >= Info && s <= Critical {
		return SeverityNames[s-1]
	}
	return "unknown"
}

// MarshalText writes the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads info, warn (or warning), error or critical.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "info":
		return Info, nil
	case "warn", "warning":
		return Warn, nil
	case "error":
		return Error, nil
	case "critical":
		return Critical, nil
	}
	return 0, errs.Usage("unknown severity %q", s).WithHint("use info, warn, error or critical")
}

// Source says which configuration layer supplied a value (from DescribeConfigs).
type Source string

// Sources. Topic-level ones come from DescribeConfigs synonyms; "metadata" is the
// replica placement itself; the last two are for client properties files.
const (
	SourceTopic          Source = "topic_override"
	SourceDynamicBroker  Source = "dynamic_broker"
	SourceDynamicDefault Source = "dynamic_cluster_default"
	SourceStaticBroker   Source = "static_broker"
	SourceDefault        Source = "default"
	SourceMetadata       Source = "metadata"
	SourceFile           Source = "file"
	SourceClientDefault  Source = "client_default"
	SourceUnknown        Source = "unknown"
)

// Human describes the source in words.
func (s Source) Human() string {
	switch s {
	case SourceTopic:
		return "topic override"
	case SourceDynamicBroker:
		return "dynamic per-broker config"
	case SourceDynamicDefault:
		return "dynamic cluster default"
	case SourceStaticBroker:
		return "static broker config (server.properties)"
	case SourceDefault:
		return "built-in default"
	case SourceMetadata:
		return "cluster metadata"
	case SourceFile:
		return "properties file"
	case SourceClientDefault:
		return "client default"
	}
	return "unknown source"
}

// ConfigValue is one config entry as the broker reported it.
type ConfigValue struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Source    Source `json:"source"`
	ReadOnly  bool   `json:"read_only"`
	Sensitive bool   `json:"sensitive"`
	// Synonyms lists the layers that also set this config, the winner first.
	Synonyms []Synonym `json:"synonyms,omitempty"`
}

// Synonym is one layer's value for a config (a broker config can stand behind a
// topic config under another name, e.g. log.retention.ms for retention.ms).
type Synonym struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source Source `json:"source"`
}

// Broker is one broker in the metadata.
type Broker struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"`
	Rack string `json:"rack,omitempty"`
	// Controller is true for the broker the Metadata response names as controller.
	// In KRaft mode that is an alive broker that forwards controller requests, not
	// necessarily the active KRaft controller.
	Controller bool `json:"controller"`
	// Reachable is false when the broker is listed but did not answer dsctl.
	Reachable bool `json:"reachable"`
	// Error says why an unreachable broker did not answer.
	Error string `json:"error,omitempty"`
	// Configs are the durability-related broker configs (keyed by name).
	Configs map[string]ConfigValue `json:"configs,omitempty"`
}

// Partition is one partition's replica state.
type Partition struct {
	ID       int32   `json:"id"`
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Offline  []int32 `json:"offline_replicas"`
	// Error is the metadata error for the partition (e.g. LEADER_NOT_AVAILABLE).
	Error string `json:"error,omitempty"`
}

// Topic is one topic's metadata and configs.
type Topic struct {
	Name       string                 `json:"name"`
	Internal   bool                   `json:"internal"`
	Partitions []Partition            `json:"partitions"`
	Configs    map[string]ConfigValue `json:"configs,omitempty"`
	// ConfigError is set when DescribeConfigs failed for this topic.
	ConfigError string `json:"config_error,omitempty"`
	// Error is the topic-level metadata error (e.g. INVALID_TOPIC_EXCEPTION,
	// TOPIC_AUTHORIZATION_FAILED); ErrorCode is the same for callers.
	Error     string        `json:"error,omitempty"`
	ErrorCode sarama.KError `json:"-"`
}

// ReplicationFactor is the smallest replica count over the topic's partitions.
func (t *Topic) ReplicationFactor() int {
	rf := 0
	for i, p := range t.Partitions {
		if i == 0 || len(p.Replicas) < rf {
			rf = len(p.Replicas)
		}
	}
	return rf
}

// Snapshot is what one audit read from the cluster.
type Snapshot struct {
	Bootstrap    []string `json:"bootstrap"`
	ControllerID int32    `json:"controller_id"`
	Brokers      []Broker `json:"brokers"`
	Topics       []Topic  `json:"topics"`
	// TopicsInCluster counts all topics, before --topic / --exclude-internal filters.
	TopicsInCluster int `json:"topics_in_cluster"`
	// AnsweredBy is the broker that served Metadata and the topic DescribeConfigs.
	AnsweredBy int32 `json:"answered_by"`
}

// Broker returns the broker with the id, or nil.
func (s *Snapshot) Broker(id int32) *Broker {
	for i := range s.Brokers {
		if s.Brokers[i].ID == id {
			return &s.Brokers[i]
		}
	}
	return nil
}

func partName(topic string, p int32) string { return fmt.Sprintf("%s-%d", topic, p) }
