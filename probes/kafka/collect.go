package kafka

import (
	"context"
	"errors"
	"net"
	"regexp"
	"sort"
	"strconv"
	"sync"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// InternalTopics are Kafka's internal topics (org.apache.kafka.common.internals.Topic),
// used when the metadata does not flag them.
var InternalTopics = map[string]bool{"__consumer_offsets": true, "__transaction_state": true, "__share_group_state": true}

// AuditTopicConfigs are the topic configs the audit reads.
var AuditTopicConfigs = []string{"min.insync.replicas", "unclean.leader.election.enable"}

// BrokerKeyConfigs are the broker configs the audit and `describe brokers` read.
var BrokerKeyConfigs = []string{
	"min.insync.replicas", "default.replication.factor", "unclean.leader.election.enable",
	"auto.create.topics.enable", "offsets.topic.replication.factor",
	"transaction.state.log.replication.factor", "transaction.state.log.min.isr", "broker.rack",
}

// CollectOptions choose what to read.
type CollectOptions struct {
	// Topics are full-match patterns (like kafka-topics.sh --topic); none means all.
	Topics []*regexp.Regexp
	// ExcludeInternal drops internal topics.
	ExcludeInternal bool
	// MetadataTopics limits the Metadata request to these names (nil: every topic).
	MetadataTopics []string
	// TopicConfigs limits the topic configs read; nil reads every config.
	TopicConfigs []string
	// BrokerConfigs limits the broker configs read; nil reads every config, and an
	// empty non-nil slice skips the per-broker requests.
	BrokerConfigs []string
	// SkipTopicConfigs sends no topic DescribeConfigs request.
	SkipTopicConfigs bool
	// Counter counts the requests sent.
	Counter *endpoint.RequestCounter
}

// MatchTopic reports whether name matches any of the full-match patterns (all when none).
func MatchTopic(patterns []*regexp.Regexp, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, re := range patterns {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// CompileTopicPatterns compiles --topic regexes as full matches. A pattern that is a
// plain literal must be a valid topic name: otherwise it could never match.
func CompileTopicPatterns(exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for _, e := range exprs {
		if name, ok := literalPattern(e); ok {
			if reason := topicNameProblem(name); reason != "" {
				return nil, errs.Usage("--topic %q can never match: it is not a valid topic name: %s", e, reason).
					WithHint("topic names are 1-%d characters of a-z, A-Z, 0-9, '.', '_' and '-'; --topic takes a regular expression", MaxTopicNameLength)
			}
		}
		re, err := regexp.Compile("^(?:" + e + ")$")
		if err != nil {
			return nil, errs.Usage("--topic %q is not a valid regular expression: %v", e, err).
				WithHint("the pattern must match the whole topic name, e.g. 'orders.*'")
		}
		out = append(out, re)
	}
	return out, nil
}

// Collect reads the cluster with a constant number of requests, whatever the number
// of topics: one Metadata request, one DescribeConfigs for every selected topic (to
// the broker that answered the Metadata request), and one DescribeConfigs per broker
// for its own configs, which doubles as a check that each listed broker answers.
func Collect(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, o CollectOptions) (*Snapshot, error) {
	sess, err := d.KafkaBootstrap(ctx, ep, endpoint.KafkaSessionOptions{Counter: o.Counter, Topics: o.MetadataTopics})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, sess.Close) // ctrl-C breaks any request in flight
	defer func() {
		stop()
		sess.Close()
	}()

	snap := snapshotFromMetadata(sess, o)
	var wg sync.WaitGroup
	var topicErr error
	if len(snap.Topics) > 0 && !o.SkipTopicConfigs {
		wg.Go(func() { topicErr = describeTopicConfigs(sess, snap, o.TopicConfigs) })
	}
	if o.BrokerConfigs == nil || len(o.BrokerConfigs) > 0 {
		for i := range snap.Brokers {
			wg.Go(func() { describeBrokerConfigs(sess, &snap.Brokers[i], o.BrokerConfigs) })
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		if ctx.Err() == context.Canceled {
			return nil, errs.New(errs.KindInterrupted, "kafka: interrupted")
		}
		return nil, errs.Unreachable("kafka", sess.Name, d.Limit(), "", ctx.Err())
	}
	if topicErr != nil {
		return nil, sess.Error(sess.Seed.Addr(), topicErr)
	}
	return snap, nil
}

func snapshotFromMetadata(sess *endpoint.KafkaSession, o CollectOptions) *Snapshot {
	md := sess.Metadata
	snap := &Snapshot{ControllerID: md.ControllerID, AnsweredBy: sess.SeedID, TopicsInCluster: len(md.Topics)}
	for _, b := range md.Brokers {
		snap.Brokers = append(snap.Brokers, Broker{
			ID: b.ID(), Addr: b.Addr(), Rack: b.Rack(), Controller: b.ID() == md.ControllerID, Reachable: true,
		})
	}
	sort.Slice(snap.Brokers, func(i, j int) bool { return snap.Brokers[i].ID < snap.Brokers[j].ID })
	for _, tm := range md.Topics {
		internal := tm.IsInternal || InternalTopics[tm.Name]
		if o.ExcludeInternal && internal {
			continue
		}
		if !MatchTopic(o.Topics, tm.Name) {
			continue
		}
		if tm.Err == sarama.ErrUnknownTopicOrPartition {
			continue
		}
		t := Topic{Name: tm.Name, Internal: internal}
		if tm.Err != sarama.ErrNoError {
			t.Error, t.ErrorCode = tm.Err.Error(), tm.Err
		}
		for _, pm := range tm.Partitions {
			p := Partition{ID: pm.ID, Leader: pm.Leader, Replicas: ids(pm.Replicas), ISR: ids(pm.Isr), Offline: ids(pm.OfflineReplicas)}
			if pm.Err != sarama.ErrNoError {
				p.Error = pm.Err.Error()
			}
			t.Partitions = append(t.Partitions, p)
		}
		sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].ID < t.Partitions[j].ID })
		snap.Topics = append(snap.Topics, t)
	}
	sort.Slice(snap.Topics, func(i, j int) bool { return snap.Topics[i].Name < snap.Topics[j].Name })
	return snap
}

func ids(in []int32) []int32 {
	out := append([]int32{}, in...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// describeTopicConfigs sends one DescribeConfigs request for all the snapshot's topics
// to the broker that answered the Metadata request.
func describeTopicConfigs(sess *endpoint.KafkaSession, snap *Snapshot, names []string) error {
	req := &sarama.DescribeConfigsRequest{Version: requestVersion(describeConfigsVersions, sess.Config.Version), IncludeSynonyms: true}
	for _, t := range snap.Topics {
		req.Resources = append(req.Resources, &sarama.ConfigResource{Type: sarama.TopicResource, Name: t.Name, ConfigNames: names})
	}
	resp, err := sess.Seed.DescribeConfigs(req)
	if err != nil {
		return err
	}
	byName := make(map[string]*sarama.ResourceResponse, len(resp.Resources))
	for _, r := range resp.Resources {
		byName[r.Name] = r
	}
	for i := range snap.Topics {
		t := &snap.Topics[i]
		r, ok := byName[t.Name]
		switch {
		case !ok:
			t.ConfigError = "not in the DescribeConfigs response"
		case r.ErrorCode != 0:
			t.ConfigError = describeError(r)
		default:
			t.Configs = configMap(r.Configs)
		}
	}
	return nil
}

// describeBrokerConfigs asks a broker for its own configs. A broker that does not
// answer is marked unreachable.
func describeBrokerConfigs(sess *endpoint.KafkaSession, b *Broker, names []string) {
	conn, err := sess.Broker(b.ID)
	if err == nil {
		var resp *sarama.DescribeConfigsResponse
		req := &sarama.DescribeConfigsRequest{Version: requestVersion(describeConfigsVersions, sess.Config.Version), IncludeSynonyms: true,
			Resources: []*sarama.ConfigResource{{Type: sarama.BrokerResource, Name: strconv.Itoa(int(b.ID)), ConfigNames: names}}}
		if resp, err = conn.DescribeConfigs(req); err == nil {
			for _, r := range resp.Resources {
				if r.ErrorCode != 0 {
					b.Error = describeError(r)
					continue
				}
				b.Configs = configMap(r.Configs)
			}
			return
		}
	}
	b.Reachable = false
	b.Error = describeCause(err)
}

// describeCause says why a broker did not answer, in a few words.
func describeCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && !op.Timeout() && op.Err != nil {
		inner := op.Err
		for errors.Unwrap(inner) != nil {
			inner = errors.Unwrap(inner)
		}
		return op.Op + ": " + inner.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer (timeout)"
	}
	return err.Error()
}

func describeError(r *sarama.ResourceResponse) string {
	msg := sarama.KError(r.ErrorCode).Error()
	if r.ErrorMsg != "" {
		msg += ": " + r.ErrorMsg
	}
	return msg
}

func configMap(entries []*sarama.ConfigEntry) map[string]ConfigValue {
	out := make(map[string]ConfigValue, len(entries))
	for _, e := range entries {
		cv := ConfigValue{Name: e.Name, Value: e.Value, Source: sourceOf(e.Source), ReadOnly: e.ReadOnly, Sensitive: e.Sensitive}
		if e.Sensitive {
			cv.Value = ""
		}
		for _, s := range e.Synonyms {
			syn := Synonym{Name: s.ConfigName, Value: s.ConfigValue, Source: sourceOf(s.Source)}
			if e.Sensitive {
				syn.Value = ""
			}
			cv.Synonyms = append(cv.Synonyms, syn)
		}
		out[e.Name] = cv
	}
	return out
}

func sourceOf(s sarama.ConfigSource) Source {
	switch s {
	case sarama.SourceTopic:
		return SourceTopic
	case sarama.SourceDynamicBroker:
		return SourceDynamicBroker
	case sarama.SourceDynamicDefaultBroker:
		return SourceDynamicDefault
	case sarama.SourceStaticBroker:
		return SourceStaticBroker
	case sarama.SourceDefault:
		return SourceDefault
	}
	return SourceUnknown
}
