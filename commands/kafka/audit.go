package kafka

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// AuditOptions are the flags of `dsctl kafka audit`.
type AuditOptions struct {
	Brokers         []string
	Topics          []string
	ExcludeInternal bool
	PolicyFile      string
	FailOn          string
	ProducerConfigs []string
	ConsumerConfigs []string
	Client          string
	Baseline        string
	WriteBaseline   string
	ClientsOnly     bool
	ListRules       bool
	// Now is the clock for ignore expiry (time.Now when nil).
	Now func() time.Time
}

const auditLong = `Audit a cluster's durability, and producer/consumer settings, against rules that
each have a stable ID, a severity, the observed value, the config source that won,
why it matters and the exact fix (a kafka-configs.sh, kafka-topics.sh or
kafka-reassign-partitions.sh command).

Cluster rules (see --list-rules): replication factor below the policy minimum
(default 3; 1 is an error); min.insync.replicas below 2 with replication factor >= 3;
min.insync.replicas >= replication factor (one broker down blocks acks=all writes);
unclean.leader.election.enable=true; offline, under-min-ISR, at-min-ISR and
under-replicated partitions; brokers down or not answering; replicas sharing a rack
(when brokers have two or more racks); durability defaults that differ between
brokers; and a what-if for each broker: the partitions that stop accepting acks=all
writes, or go offline, if it dies. A broker the metadata lists but that does not
answer counts as down (the metadata goes stale when the controller quorum is lost).

Client rules, from Java .properties files (librdkafka keys such as
request.required.acks and message.timeout.ms are understood): acks not all,
enable.idempotence off, low retries, max.in.flight.requests.per.connection above 5
(above 1 without idempotence), short delivery.timeout.ms, consumer
enable.auto.commit=true. Unset keys are judged by the defaults of the Java client
3.0+ (acks=all, idempotence on) or librdkafka 2.x (idempotence off, 1000000 in flight);
the report lists each default it assumed. --client picks the flavour (auto: librdkafka
when the file has a librdkafka-only key).

Requests are O(1) in the number of topics: one Metadata request, one DescribeConfigs
for all topics, one DescribeConfigs per broker (plus ApiVersions per connection);
-o json reports the count under "requests".

--topic takes a regular expression that must match the whole topic name (as
kafka-topics.sh does); repeat it to match any of several. A pattern that matches no
topic is reported, and is not an error.

Exit 5 when a finding (not baselined, not ignored) is at or above --fail-on (or the
policy's fail_on). Without either, the audit reports and exits 0.

Policy file (YAML; every key optional):
  version: 1
  fail_on: error                    # info|warn|error|critical|none
  min_replication_factor: 3
  min_insync_replicas: 2
  producer: {min_retries: 10, min_delivery_timeout_ms: 30000}
  severity:                         # per rule: info|warn|error|critical|off
    partition-same-rack: error
  topics:                           # first matching pattern wins (whole-name regex)
    - pattern: 'tmp\..*'
      min_replication_factor: 1
      severity: {topic-min-isr-low: off}
  ignore:                           # reason and expires (YYYY-MM-DD) are required
    - rule: topic-unclean-election
      topic: audit-log              # whole-name regex; omit for every topic
      reason: legacy consumers need availability first
      expires: 2026-12-31

--write-baseline FILE records the current findings; --baseline FILE then fails only on
findings that are not in it (matched by rule and topic/partition/broker/file).

JSON keys: cluster{bootstrap, brokers, topics_in_cluster, topics_audited, partitions},
summary{critical, error, warn, info, baselined, ignored}, findings[{rule, severity,
topic, partition, broker, file, line, config, observed, source, source_detail, why,
fix, partitions, baselined}], ignored[{...finding, reason, expires, policy_line}],
what_if[{broker, blocks_acks_all, goes_offline}], assumed_defaults[{file, client, key,
value}], requests{total, by_api}, fail_on, failed, notes. Sources: topic_override,
dynamic_broker, dynamic_cluster_default, static_broker, default, metadata, file,
client_default.`

func newAuditCmd(f *cmdutil.Factory, brokers *[]string) *cobra.Command {
	o := &AuditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find Kafka settings and states that lose acknowledged messages or block writes",
		Long:  auditLong,
		Example: `  dsctl kafka audit --sandbox
  dsctl kafka audit --brokers 127.0.0.1:19092 --exclude-internal --fail-on error
  dsctl kafka audit --topic 'orders.*' --policy kafka-policy.yaml -o json
  dsctl kafka audit --clients-only --producer-config producer.properties --consumer-config consumer.properties
  dsctl kafka audit --write-baseline baseline.json && dsctl kafka audit --baseline baseline.json --fail-on warn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Brokers = *brokers
			if o.ListRules {
				p, err := f.Printer(output.Standard)
				if err != nil {
					return err
				}
				return p.Print(rulesView(kprobe.Rules))
			}
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunAudit(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Topics, "topic", nil, "audit topics whose whole name matches this regular expression (repeatable)")
	fl.BoolVar(&o.ExcludeInternal, "exclude-internal", false, "skip internal topics (__consumer_offsets, __transaction_state, ...)")
	fl.StringVar(&o.PolicyFile, "policy", "", "policy file (YAML; - for stdin): thresholds, per-topic overrides, severities, ignores")
	fl.StringVar(&o.FailOn, "fail-on", "", "exit 5 when a finding is at or above this severity: info|warn|error|critical (none: never)")
	fl.StringArrayVar(&o.ProducerConfigs, "producer-config", nil, "producer .properties file to audit (repeatable; - for stdin)")
	fl.StringArrayVar(&o.ConsumerConfigs, "consumer-config", nil, "consumer .properties file to audit (repeatable; - for stdin)")
	fl.StringVar(&o.Client, "client", "auto", "client flavour whose keys and defaults apply: auto|java|librdkafka")
	fl.StringVar(&o.Baseline, "baseline", "", "fail only on findings not in this baseline file (- for stdin)")
	fl.StringVar(&o.WriteBaseline, "write-baseline", "", "write the findings to this baseline file")
	fl.BoolVar(&o.ClientsOnly, "clients-only", false, "audit only the properties files; do not contact the cluster")
	fl.BoolVar(&o.ListRules, "list-rules", false, "list the rules (ID, default severity, why) and exit")
	cmdutil.RegisterFlag(cmd, "topic", f.CompleteTopics(brokers))
	cmdutil.RegisterFlag(cmd, "fail-on", cmdutil.Fixed("info", "warn", "error", "critical", "none\tnever fail"))
	cmdutil.RegisterFlag(cmd, "client", cmdutil.Fixed(string(kprobe.FlavorAuto), string(kprobe.FlavorJava), string(kprobe.FlavorLibrdkafka)))
	return cmd
}

// RunAudit reads the inputs, audits (kprobe.LoadAudit + Run: the same calls as the
// TUI's Kafka pane), prints, and returns an AuditFailed error when a finding is at or
// above the fail-on severity.
func RunAudit(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *AuditOptions) error {
	if err := checkSandboxBrokers(f, o.Brokers); err != nil {
		return err
	}
	req, err := auditRequest(f, o)
	if err != nil {
		return err
	}
	audit, err := kprobe.LoadAudit(req)
	if err != nil {
		return err
	}
	var ep endpoint.Kafka
	if !o.ClientsOnly {
		e, err := f.Endpoints(ctx, config.Overrides{Kafka: o.Brokers})
		if err != nil {
			return err
		}
		ep = e.Kafka
		f.IO.Infof("kafka: reading %s ...", strings.Join(endpoint.KafkaBrokers(ep), ","))
	}
	rep, err := audit.Run(ctx, f.Dialer(), ep)
	if err != nil {
		return err
	}
	if rep.NoTopicMatched != "" && p.Format != output.Table {
		f.IO.Warnf("%s", rep.NoTopicMatched)
	}
	if o.WriteBaseline != "" {
		f.IO.Infof("kafka: wrote %d findings to baseline %s", rep.BaselineWritten, o.WriteBaseline)
	}
	if err := p.Print(&auditView{rep.Report}); err != nil {
		return err
	}
	if rep.Failed {
		return errs.New(errs.KindAuditFailed, "kafka audit: %s at or above %s", output.Plural(rep.Failing, "finding"), rep.FailOn)
	}
	return nil
}

// auditRequest turns the flags into a request, reading "-" (stdin) inputs here.
func auditRequest(f *cmdutil.Factory, o *AuditOptions) (kprobe.AuditRequest, error) {
	req := kprobe.AuditRequest{Topics: o.Topics, ExcludeInternal: o.ExcludeInternal, WriteBaseline: o.WriteBaseline,
		ClientsOnly: o.ClientsOnly, Now: o.Now}
	var err error
	if req.FailOn, err = kprobe.ParseThreshold(o.FailOn); err != nil {
		return req, errs.Usage("--fail-on: unknown severity %q", o.FailOn).WithHint("use info, warn, error, critical or none")
	}
	stdin := &cmdutil.Inputs{IO: f.IO}
	input := func(flag, path string) (kprobe.FileInput, error) {
		if path != "-" {
			return kprobe.FileInput{Path: path}, nil
		}
		data, name, err := stdin.Read(flag, "-")
		return kprobe.FileInput{Path: name, Data: data}, err
	}
	if req.Policy, err = input("--policy", o.PolicyFile); err != nil {
		return req, err
	}
	if req.Client, err = kprobe.ParseFlavor(o.Client); err != nil {
		return req, err
	}
	for _, path := range o.ProducerConfigs {
		in, err := input("--producer-config", path)
		if err != nil {
			return req, err
		}
		req.ProducerConfigs = append(req.ProducerConfigs, in)
	}
	for _, path := range o.ConsumerConfigs {
		in, err := input("--consumer-config", path)
		if err != nil {
			return req, err
		}
		req.ConsumerConfigs = append(req.ConsumerConfigs, in)
	}
	if req.Baseline, err = input("--baseline", o.Baseline); err != nil {
		return req, err
	}
	return req, nil
}

// auditView renders a report: JSON/YAML as the report itself, and a table grouped
// by topic (brokers first, files last) with the why and the fix under each finding.
type auditView struct {
	*kprobe.Report
}

func (v *auditView) Table() *output.TableData {
	t := &output.TableData{Header: []string{"scope", "severity", "rule", "at", "detail"}}
	prevScope, prevRule, prevFix := "", "", ""
	for _, fd := range v.Findings {
		shownScope := fd.Scope()
		if shownScope == prevScope {
			shownScope = ""
		}
		at := ""
		switch {
		case fd.Partition != nil:
			at = fmt.Sprintf("p%d", *fd.Partition)
		case fd.File != "" && fd.Line > 0:
			at = fmt.Sprintf("line %d", fd.Line)
		}
		sev := fd.Severity.String()
		if fd.Baselined {
			sev += " (baseline)"
		}
		t.AddCells(output.S(shownScope, output.Bold), output.S(sev, sevStyle(fd.Severity)), output.C(fd.Rule), output.C(at), output.C(fd.Observed))
		sameGroup := fd.Scope() == prevScope && fd.Rule == prevRule
		if fd.Source != "" && fd.Source != kprobe.SourceMetadata && !sameGroup {
			t.AddCells(blank(4, output.S("source: "+fd.SourceDetail, output.Dim))...)
		}
		if !sameGroup {
			t.AddCells(blank(4, output.S("why: "+fd.Why, output.Dim))...)
		}
		if !sameGroup || fd.Fix != prevFix {
			t.AddCells(blank(4, output.S("fix: "+fd.Fix, output.Dim))...)
		}
		prevScope, prevRule, prevFix = fd.Scope(), fd.Rule, fd.Fix
	}
	if len(v.Findings) == 0 {
		t.AddCells(output.S("-", output.OK), output.S("ok", output.OK), output.C("no findings"), output.C(""), output.C(""))
	}
	for _, ig := range v.Ignored {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("ignored: %s %s (%s) until %s: %s", ig.Rule, ig.Scope(), ig.Observed, ig.Expires, ig.Reason), output.Dim))
	}
	assumed := map[string][]string{}
	var files []string
	for _, a := range v.AssumedDefaults {
		key := a.File + " (" + a.Client + ")"
		if _, ok := assumed[key]; !ok {
			files = append(files, key)
		}
		assumed[key] = append(assumed[key], a.Key+"="+a.Value)
	}
	for _, k := range files {
		t.Notes = append(t.Notes, output.S("assumed defaults for "+k+": "+strings.Join(assumed[k], ", "), output.Dim))
	}
	for _, n := range v.Notes {
		t.Notes = append(t.Notes, output.S(n, output.Warn))
	}
	t.Notes = append(t.Notes, output.S(v.summaryLine(), summaryStyle(v.Report)))
	return t
}

func blank(n int, last output.Cell) []output.Cell {
	cells := make([]output.Cell, n+1)
	for i := range n {
		cells[i] = output.C("")
	}
	cells[n] = last
	return cells
}

func summaryStyle(r *kprobe.Report) output.Style {
	switch {
	case r.Failed:
		return output.Error
	case r.Summary.Total() == 0:
		return output.OK
	}
	return output.Bold
}

func (v *auditView) summaryLine() string {
	s := v.Summary
	line := fmt.Sprintf("%d critical, %d error, %d warn, %d info", s.Critical, s.Error, s.Warn, s.Info)
	if s.Baselined > 0 {
		line += fmt.Sprintf(", %d baselined", s.Baselined)
	}
	if s.Ignored > 0 {
		line += fmt.Sprintf(", %d ignored", s.Ignored)
	}
	if c := v.Cluster; c != nil {
		line += fmt.Sprintf(" in %s (%s) on %s", output.Plural(c.TopicsAudited, "topic"), output.Plural(c.Partitions, "partition"),
			output.Plural(len(c.Brokers), "broker"))
	}
	if v.Requests != nil {
		line += fmt.Sprintf("; %s sent", output.Plural(v.Requests.Total, "request"))
	}
	if v.FailOn != "" {
		verdict := "pass"
		if v.Failed {
			verdict = "FAIL"
		}
		line += fmt.Sprintf("; --fail-on %s: %s", v.FailOn, verdict)
	}
	return line
}

// rulesView is --list-rules.
type rulesView []kprobe.Rule

func (rs rulesView) Table() *output.TableData {
	t := &output.TableData{Header: []string{"rule", "severity", "scope", "checks"}}
	for _, r := range rs {
		t.AddCells(output.C(r.ID), output.S(r.Severity.String(), sevStyle(r.Severity)), output.C(r.Scope), output.C(r.Title))
	}
	return t
}
