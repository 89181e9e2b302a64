// Package kafka wires `dsctl kafka`: audit, partition and describe. The work is done
// by probes/kafka; this package turns flags into options and results into output.
package kafka

import (
	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// NewCmd builds `dsctl kafka`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	var brokers []string
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Audit Kafka durability and client settings; map keys to partitions; describe topics",
		Long: `Kafka commands, against a real cluster (brokers from --brokers, DSCTL_KAFKA or the
context's kafka.brokers; TLS and SASL PLAIN/SCRAM from the context) or --sandbox.

  audit      find every setting and state that can lose acknowledged messages or
             block writes, explain it, and print the fix; fail CI with --fail-on
  partition  which partition each key goes to under the Java client, sarama and
             librdkafka defaults, and where they disagree
  describe   a topic's partitions and configs (with their sources), or the brokers
  topics     every topic: partitions, replication factor, min.insync.replicas and its
             source, under-replicated / at-min-ISR / offline partition counts
  groups     consumer groups: state, members, committed offsets, lag per partition
             and total, stuck partitions; fail CI with --fail-on-lag`,
		Example: `  dsctl kafka audit --sandbox
  dsctl kafka audit --brokers kafka-1:9092 --fail-on error --producer-config producer.properties
  dsctl kafka partition --partitions 12 --key user-42 --key user-43
  dsctl kafka describe topic orders --sandbox
  dsctl kafka topics --under-replicated --offline`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap brokers host:port,... (overrides DSCTL_KAFKA and the context)")
	cmd.AddCommand(newAuditCmd(f, &brokers), newPartitionCmd(f, &brokers), newDescribeCmd(f, &brokers), newTopicsCmd(f, &brokers))
	cmd.AddCommand(newGroupsCmd(f, &brokers))
	return cmd
}

// checkSandboxBrokers refuses --brokers together with --sandbox (the sandbox would
// silently replace the brokers the user named) before any input is read; it is the
// rule Factory.Endpoints applies, config.SandboxConflict.
func checkSandboxBrokers(f *cmdutil.Factory, brokers []string) error {
	if !f.Global.Sandbox {
		return nil
	}
	return config.SandboxConflict(config.Overrides{Kafka: brokers}, nil)
}

// requests converts a counter for output.
func requests(c *endpoint.RequestCounter) *kprobe.Requests {
	return &kprobe.Requests{Total: c.Total(), ByAPI: c.ByAPI()}
}

func sevStyle(s kprobe.Severity) output.Style {
	switch s {
	case kprobe.Critical:
		return output.Critical
	case kprobe.Error:
		return output.Error
	case kprobe.Warn:
		return output.Warn
	}
	return output.Info
}
