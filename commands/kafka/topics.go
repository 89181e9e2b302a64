package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// TopicsOptions are the flags of `dsctl kafka topics`.
type TopicsOptions struct {
	Brokers         []string
	Patterns        []string
	ExcludeInternal bool
	UnderReplicated bool
	AtMinISR        bool
	Offline         bool
}

func newTopicsCmd(f *cmdutil.Factory, brokers *[]string) *cobra.Command {
	o := &TopicsOptions{}
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List topics: partitions, replication factor, min.insync.replicas and its source, partition states",
		Long: `List the topics with their partition count, replication factor, min.insync.replicas
and the layer it comes from, and how many partitions are under-replicated (fewer
in-sync replicas than replicas), at min ISR (in-sync replicas exactly
min.insync.replicas: one more loss stops acks=all writes), under min ISR (acks=all
writes failing now) and offline (no leader, or a leader that does not answer).
Two requests whatever the number of topics: one Metadata, one DescribeConfigs.

--under-replicated, --at-min-isr and --offline keep the topics that have such
partitions (any of them, when several are given); --pattern keeps the topics whose
whole name matches the regular expression (repeatable).

JSON keys: topics [{name, internal, partitions, replication_factor,
min_insync_replicas (null when not reported), min_insync_replicas_source,
under_replicated, at_min_isr, under_min_isr, offline, error}], topics_in_cluster,
requests {total, by_api}.`,
		Example: `  dsctl kafka topics --sandbox
  dsctl kafka topics --brokers 127.0.0.1:19092 --under-replicated --offline
  dsctl kafka topics --pattern 'orders.*' --exclude-internal -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Brokers = *brokers
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunTopics(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Patterns, "pattern", nil, "list topics whose whole name matches this regular expression (repeatable)")
	fl.BoolVar(&o.ExcludeInternal, "exclude-internal", false, "skip internal topics (__consumer_offsets, ...)")
	fl.BoolVar(&o.UnderReplicated, "under-replicated", false, "only topics with under-replicated partitions")
	fl.BoolVar(&o.AtMinISR, "at-min-isr", false, "only topics with partitions at (or under) min.insync.replicas")
	fl.BoolVar(&o.Offline, "offline", false, "only topics with offline partitions")
	cmdutil.RegisterFlag(cmd, "pattern", f.CompleteTopics(brokers))
	return cmd
}

// TopicsList is what `kafka topics` prints.
type TopicsList struct {
	Topics          []kprobe.TopicSummary `json:"topics"`
	TopicsInCluster int                   `json:"topics_in_cluster"`
	Requests        *kprobe.Requests      `json:"requests"`
	filtered        bool
}

// RunTopics reads the cluster once and lists the topics.
func RunTopics(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *TopicsOptions) error {
	if err := checkSandboxBrokers(f, o.Brokers); err != nil {
		return err
	}
	patterns, err := kprobe.CompileTopicPatterns(o.Patterns)
	if err != nil {
		return err
	}
	e, err := f.Endpoints(ctx, config.Overrides{Kafka: o.Brokers})
	if err != nil {
		return err
	}
	counter := &endpoint.RequestCounter{}
	snap, err := kprobe.Collect(ctx, f.Dialer(), e.Kafka, kprobe.CollectOptions{
		Topics: patterns, ExcludeInternal: o.ExcludeInternal,
		TopicConfigs: []string{"min.insync.replicas"}, BrokerConfigs: []string{}, Counter: counter,
	})
	if err != nil {
		return err
	}
	all := kprobe.SummarizeTopics(snap)
	list := TopicsList{Topics: make([]kprobe.TopicSummary, 0, len(all)), TopicsInCluster: snap.TopicsInCluster,
		filtered: o.UnderReplicated || o.AtMinISR || o.Offline || len(o.Patterns) > 0 || o.ExcludeInternal}
	for _, t := range all {
		if keepTopic(t, o) {
			list.Topics = append(list.Topics, t)
		}
	}
	list.Requests = requests(counter)
	return p.Print(list)
}

// keepTopic applies the state filters: with none, every topic; with several, a topic
// with partitions in any of the states.
func keepTopic(t kprobe.TopicSummary, o *TopicsOptions) bool {
	if !o.UnderReplicated && !o.AtMinISR && !o.Offline {
		return true
	}
	return o.UnderReplicated && t.UnderReplicated > 0 ||
		o.AtMinISR && (t.AtMinISR > 0 || t.UnderMinISR > 0) ||
		o.Offline && t.Offline > 0
}

// Table lists the topics, one row each, counts styled by how bad they are.
func (l TopicsList) Table() *output.TableData {
	t := &output.TableData{
		Header:     []string{"topic", "partitions", "rf", "min.isr", "source", "under-replicated", "at-min-isr", "under-min-isr", "offline"},
		RightAlign: map[int]bool{1: true, 2: true, 3: true, 5: true, 6: true, 7: true, 8: true},
	}
	count := func(n int, st output.Style) output.Cell {
		if n == 0 {
			return output.S("0", output.Dim)
		}
		return output.S(strconv.Itoa(n), st)
	}
	for _, tp := range l.Topics {
		misr, src := "?", "-"
		if tp.MinInsyncReplicas != nil {
			misr, src = strconv.Itoa(*tp.MinInsyncReplicas), shortSourceOrTopic(tp.MinInsyncReplicasSource)
		}
		t.AddCells(output.C(tp.Name), output.C(strconv.Itoa(tp.Partitions)), output.C(strconv.Itoa(tp.ReplicationFactor)),
			output.C(misr), output.C(src), count(tp.UnderReplicated, output.Warn), count(tp.AtMinISR, output.Warn),
			count(tp.UnderMinISR, output.Critical), count(tp.Offline, output.Critical))
		if tp.Error != "" {
			t.Notes = append(t.Notes, output.S(tp.Name+": "+tp.Error, output.Error))
		}
	}
	summary := fmt.Sprintf("%s of %d in the cluster; %s", output.Plural(len(l.Topics), "topic"), l.TopicsInCluster, output.Plural(int(l.Requests.Total), "request")+" sent")
	if len(l.Topics) == 0 && l.filtered {
		summary = "no topic matches; " + summary
	}
	t.Notes = append(t.Notes, output.S(summary, output.Dim))
	t.Notes = append(t.Notes, output.S("source: topic = topic override, dyn-default = dynamic cluster default, dyn-broker = dynamic per-broker, static = server.properties, default = built-in; ? = not reported", output.Dim))
	return t
}

func shortSourceOrTopic(s kprobe.Source) string {
	if s == kprobe.SourceTopic {
		return "topic"
	}
	return shortSource(s)
}
