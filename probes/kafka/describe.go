package kafka

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// TopicDescription is `describe topic`: partitions and every config with its source.
type TopicDescription struct {
	Name              string        `json:"name"`
	Internal          bool          `json:"internal"`
	ReplicationFactor int           `json:"replication_factor"`
	Partitions        []Partition   `json:"partitions"`
	Configs           []ConfigValue `json:"configs"`
	ConfigError       string        `json:"config_error,omitempty"`
	// Brokers lists the brokers, so a reader can tell which replicas are offline.
	Brokers []Broker `json:"brokers"`
}

// DescribeTopic reads one topic: a Metadata request for it and one DescribeConfigs.
func DescribeTopic(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, name string, counter *endpoint.RequestCounter) (*TopicDescription, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	snap, err := Collect(ctx, d, ep, CollectOptions{
		MetadataTopics: []string{name}, BrokerConfigs: []string{}, Counter: counter,
		Topics: []*regexp.Regexp{exactly(name)},
	})
	if err != nil {
		return nil, err
	}
	if len(snap.Topics) == 0 {
		return nil, errs.Usage("kafka: topic %q does not exist on %s", name, joinAddrs(endpoint.KafkaBrokers(ep))).
			WithHint("check the name; kafka-topics.sh --bootstrap-server HOST:PORT --list lists the topics")
	}
	t := snap.Topics[0]
	if err := topicMetadataError(t, ep); err != nil {
		return nil, err
	}
	td := &TopicDescription{Name: t.Name, Internal: t.Internal, ReplicationFactor: t.ReplicationFactor(), Partitions: t.Partitions,
		ConfigError: t.ConfigError, Brokers: snap.Brokers, Configs: []ConfigValue{}}
	for _, cv := range t.Configs {
		td.Configs = append(td.Configs, cv)
	}
	sort.Slice(td.Configs, func(i, j int) bool { return td.Configs[i].Name < td.Configs[j].Name })
	return td, nil
}

// BrokersDescription is `describe brokers`.
type BrokersDescription struct {
	ControllerID int32    `json:"controller_id"`
	Brokers      []Broker `json:"brokers"`
	// Missing are broker ids that replicas refer to but the metadata does not list.
	Missing []int32 `json:"missing"`
}

// DescribeBrokers reads the brokers and their key configs (one request per broker).
func DescribeBrokers(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, counter *endpoint.RequestCounter) (*BrokersDescription, error) {
	snap, err := Collect(ctx, d, ep, CollectOptions{BrokerConfigs: BrokerKeyConfigs, SkipTopicConfigs: true, Counter: counter})
	if err != nil {
		return nil, err
	}
	out := &BrokersDescription{ControllerID: snap.ControllerID, Brokers: snap.Brokers, Missing: []int32{}}
	listed := map[int32]bool{}
	for _, b := range snap.Brokers {
		listed[b.ID] = true
	}
	missing := map[int32]bool{}
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if !listed[r] {
					missing[r] = true
				}
			}
		}
	}
	for id := range missing {
		out.Missing = append(out.Missing, id)
	}
	sort.Slice(out.Missing, func(i, j int) bool { return out.Missing[i] < out.Missing[j] })
	return out, nil
}

// TopicPartitionCount reads a topic's partition count (one Metadata request).
func TopicPartitionCount(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, topic string) (int32, error) {
	if err := ValidateTopicName(topic); err != nil {
		return 0, err
	}
	snap, err := Collect(ctx, d, ep, CollectOptions{MetadataTopics: []string{topic}, BrokerConfigs: []string{},
		Topics: []*regexp.Regexp{exactly(topic)}, SkipTopicConfigs: true})
	if err != nil {
		return 0, err
	}
	if len(snap.Topics) == 0 {
		return 0, errs.Usage("kafka: topic %q does not exist on %s", topic, joinAddrs(endpoint.KafkaBrokers(ep))).
			WithHint("check the name, or give --partitions N")
	}
	t := snap.Topics[0]
	if err := topicMetadataError(t, ep); err != nil {
		return 0, err
	}
	if len(t.Partitions) == 0 {
		return 0, errs.New(errs.KindRuntime, "kafka: topic %q has no partitions in the metadata from %s", topic, joinAddrs(endpoint.KafkaBrokers(ep))).
			WithHint("retry in a moment, or give --partitions N")
	}
	return int32(len(t.Partitions)), nil
}

// topicMetadataError turns a topic-level error in the Metadata response into an error:
// an invalid name is the user's input (exit 2), anything else a failure (exit 1).
func topicMetadataError(t Topic, ep endpoint.Kafka) error {
	if t.Error == "" {
		return nil
	}
	where := joinAddrs(endpoint.KafkaBrokers(ep))
	switch t.ErrorCode {
	case sarama.ErrInvalidTopic:
		return errs.Usage("kafka: the broker rejected topic name %q: %s", t.Name, t.Error).
			WithHint("topic names are 1-%d characters of a-z, A-Z, 0-9, '.', '_' and '-'", MaxTopicNameLength)
	case sarama.ErrTopicAuthorizationFailed:
		return errs.New(errs.KindRuntime, "kafka: not authorized to describe topic %q on %s: %s", t.Name, where, t.Error).
			WithHint("check the context's SASL user and its ACLs")
	}
	return errs.New(errs.KindRuntime, "kafka: metadata for topic %q from %s carries an error: %s", t.Name, where, t.Error).
		WithHint("retry in a moment; if it persists, check the brokers' logs")
}

func exactly(name string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(name) + "$")
}

func joinAddrs(a []string) string { return strings.Join(a, ",") }
