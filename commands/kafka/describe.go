package kafka

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// DescribeOptions are the arguments of `dsctl kafka describe`.
type DescribeOptions struct {
	Brokers []string
	// What is "topic" or "brokers".
	What  string
	Topic string
}

func newDescribeCmd(f *cmdutil.Factory, brokers *[]string) *cobra.Command {
	o := &DescribeOptions{}
	run := func(cmd *cobra.Command) error {
		o.Brokers = *brokers
		p, err := f.Printer(output.Standard)
		if err != nil {
			return err
		}
		return RunDescribe(cmd.Context(), f, p, o)
	}
	topic := &cobra.Command{
		Use:   "topic NAME",
		Short: "A topic's partitions (leader, replicas, ISR, offline) and every config with its source",
		Long: `Show a topic's partitions (leader, replicas, in-sync replicas, offline replicas) and
every config with its value and the source that won: topic override, dynamic
per-broker config, dynamic cluster default, static broker config or built-in default.
Two requests: Metadata for the topic and one DescribeConfigs with synonyms.

JSON keys: name, internal, replication_factor, partitions[{id, leader, replicas, isr,
offline_replicas, error}], configs[{name, value, source, read_only, sensitive,
synonyms[{name, value, source}]}], config_error, brokers.`,
		Example: `  dsctl kafka describe topic payments --sandbox
  dsctl kafka describe topic orders --brokers 127.0.0.1:19092 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errs.Usage("describe topic needs exactly one topic name, got %d arguments", len(args)).
					WithHint("e.g. dsctl kafka describe topic orders")
			}
			return nil
		},
		ValidArgsFunction: cmdutil.FirstArg(f.CompleteTopics(brokers)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.What, o.Topic = "topic", args[0]
			return run(cmd)
		},
	}
	brokersCmd := &cobra.Command{
		Use:   "brokers",
		Short: "Brokers: id, address, rack, controller, reachability and key durability configs",
		Long: `List the brokers in the cluster metadata with their rack, whether the metadata names
them controller (in KRaft mode: the broker that forwards controller requests), whether
they answer, and their durability-related configs with sources. Broker ids that
replicas refer to but the metadata does not list (stopped or fenced brokers) are shown
as missing.

JSON keys: controller_id, brokers[{id, addr, rack, controller, reachable, error,
configs{NAME: {name, value, source, ...}}}], missing.`,
		Example: `  dsctl kafka describe brokers --sandbox
  dsctl kafka describe brokers --brokers 127.0.0.1:19092 -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.What = "brokers"
			return run(cmd)
		},
	}
	cmd := &cobra.Command{
		Use:   "describe",
		Short: "Describe a topic or the brokers",
		Example: `  dsctl kafka describe topic orders --sandbox
  dsctl kafka describe brokers --sandbox`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(topic, brokersCmd)
	return cmd
}

// RunDescribe describes a topic or the brokers.
func RunDescribe(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *DescribeOptions) error {
	if err := checkSandboxBrokers(f, o.Brokers); err != nil {
		return err
	}
	if o.What == "topic" {
		if err := kprobe.ValidateTopicName(o.Topic); err != nil {
			return err
		}
	}
	e, err := f.Endpoints(ctx, config.Overrides{Kafka: o.Brokers})
	if err != nil {
		return err
	}
	if o.What == "brokers" {
		bd, err := kprobe.DescribeBrokers(ctx, f.Dialer(), e.Kafka, nil)
		if err != nil {
			return err
		}
		return p.Print(brokersView{bd})
	}
	td, err := kprobe.DescribeTopic(ctx, f.Dialer(), e.Kafka, o.Topic, nil)
	if err != nil {
		return err
	}
	return p.Print(topicView{td})
}

type topicView struct{ *kprobe.TopicDescription }

func (v topicView) Table() *output.TableData {
	t := &output.TableData{Header: []string{"partition", "leader", "replicas", "isr", "offline"}, RightAlign: map[int]bool{0: true, 1: true}}
	for _, p := range v.Partitions {
		leader := output.C(fmt.Sprint(p.Leader))
		if p.Leader < 0 {
			leader = output.S("none", output.Critical)
		}
		isr := output.C(ints(p.ISR))
		if len(p.ISR) < len(p.Replicas) {
			isr = output.S(ints(p.ISR), output.Warn)
		}
		offline := output.C(ints(p.Offline))
		if len(p.Offline) > 0 {
			offline = output.S(ints(p.Offline), output.Error)
		}
		t.AddCells(output.C(fmt.Sprint(p.ID)), leader, output.C(ints(p.Replicas)), isr, offline)
	}
	cfg := &output.TableData{Header: []string{"config", "value", "source"}}
	for _, c := range v.Configs {
		value := c.Value
		if c.Sensitive {
			value = "(sensitive)"
		}
		cfg.AddRow(c.Name, value, sourceText(c))
	}
	var b strings.Builder
	_ = cfg.Render(&b, false)
	t.Notes = append(t.Notes, output.C(""))
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		t.Notes = append(t.Notes, output.C(line))
	}
	if v.ConfigError != "" {
		t.Notes = append(t.Notes, output.S("configs could not be read: "+v.ConfigError, output.Error))
	}
	kind := ""
	if v.Internal {
		kind = " (internal)"
	}
	t.Notes = append(t.Notes, output.S(fmt.Sprintf("topic %s%s: %s, replication factor %d, %s", v.Name, kind,
		output.Plural(len(v.Partitions), "partition"), v.ReplicationFactor, output.Plural(len(v.Configs), "config")), output.Bold))
	return t
}

// sourceText is the source in words, with the broker-level synonym behind it.
func sourceText(c kprobe.ConfigValue) string {
	s := c.Source.Human()
	if c.Source != kprobe.SourceTopic && c.Source != kprobe.SourceDefault {
		for _, syn := range c.Synonyms {
			if syn.Source == c.Source && syn.Name != c.Name {
				s += " (" + syn.Name + ")"
				break
			}
		}
	}
	return s
}

func ints(v []int32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

type brokersView struct{ *kprobe.BrokersDescription }

var brokerColumns = []struct{ header, config string }{
	{"min.isr", "min.insync.replicas"},
	{"default.rf", "default.replication.factor"},
	{"unclean", "unclean.leader.election.enable"},
	{"auto.create", "auto.create.topics.enable"},
}

func (v brokersView) Table() *output.TableData {
	header := []string{"id", "addr", "rack", "controller", "answers"}
	for _, c := range brokerColumns {
		header = append(header, c.header)
	}
	t := &output.TableData{Header: header, RightAlign: map[int]bool{0: true}}
	unknown := false
	for _, b := range v.Brokers {
		ctrl := ""
		if b.Controller {
			ctrl = "yes"
		}
		answers := output.S("yes", output.OK)
		if !b.Reachable {
			answers = output.S("NO: "+b.Error, output.Error)
		}
		rack := b.Rack
		if rack == "" {
			rack = "-"
		}
		row := []output.Cell{output.C(fmt.Sprint(b.ID)), output.C(b.Addr), output.C(rack), output.C(ctrl), answers}
		for _, c := range brokerColumns {
			cv, ok := b.Configs[c.config]
			if !ok {
				row = append(row, output.S("?", output.Warn))
				unknown = true
				continue
			}
			row = append(row, output.C(cv.Value+" ("+shortSource(cv.Source)+")"))
		}
		t.AddCells(row...)
	}
	if len(v.Missing) > 0 {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("missing: replicas refer to broker(s) %v, which the metadata does not list (stopped or fenced)", v.Missing), output.Error))
	}
	if unknown {
		t.Notes = append(t.Notes, output.S("?: not known: the broker did not report this setting (it did not answer, or refused DescribeConfigs: see ANSWERS; -v shows the requests)", output.Warn))
	}
	t.Notes = append(t.Notes, output.S("sources: static = server.properties, dyn-default = dynamic cluster default, dyn-broker = dynamic per-broker, default = built-in", output.Dim))
	return t
}

func shortSource(s kprobe.Source) string {
	switch s {
	case kprobe.SourceDynamicBroker:
		return "dyn-broker"
	case kprobe.SourceDynamicDefault:
		return "dyn-default"
	case kprobe.SourceStaticBroker:
		return "static"
	case kprobe.SourceDefault:
		return "default"
	}
	return string(s)
}
