package kafka

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Rule is one audit rule: a stable ID, its default severity and why it matters.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Scope    string   `json:"scope"`
	Title    string   `json:"title"`
	Why      string   `json:"why"`
}

// Rule IDs. They are stable: policies, ignores and baselines refer to them.
const (
	RuleReplicationFactor   = "topic-replication-factor"
	RuleMinISRLow           = "topic-min-isr-low"
	RuleMinISRBlocksWrites  = "topic-min-isr-blocks-writes"
	RuleUncleanElection     = "topic-unclean-election"
	RuleTopicConfigs        = "topic-configs-unreadable"
	RulePartitionOffline    = "partition-offline"
	RuleUnderMinISR         = "partition-under-min-isr"
	RuleAtMinISR            = "partition-at-min-isr"
	RuleUnderReplicated     = "partition-under-replicated"
	RuleSameRack            = "partition-same-rack"
	RuleBrokerOffline       = "broker-offline"
	RuleBrokerMismatch      = "broker-config-mismatch"
	RuleBrokerLoss          = "broker-loss-blocks-writes"
	RuleProducerAcks        = "producer-acks"
	RuleProducerIdempotence = "producer-idempotence"
	RuleProducerRetries     = "producer-retries"
	RuleProducerInFlight    = "producer-max-in-flight"
	RuleProducerDelivery    = "producer-delivery-timeout"
	RuleConsumerAutoCommit  = "consumer-auto-commit"
)

// Rules is the catalogue, in report order.
var Rules = []Rule{
	{RuleReplicationFactor, Warn, "topic", "replication factor below the policy minimum (1 is an error)",
		"every copy fewer is one broker failure closer to losing acknowledged messages; with one copy, any broker loss loses them"},
	{RuleMinISRLow, Warn, "topic", "min.insync.replicas below the policy minimum (with replication factor 2 and min.insync.replicas 1, the leader alone acknowledges acks=all writes while its follower lags)",
		"acks=all writes are acknowledged once min.insync.replicas replicas have them; with 1, a write only the leader holds is lost if that leader dies"},
	{RuleMinISRBlocksWrites, Warn, "topic", "min.insync.replicas >= replication factor",
		"one broker down (a crash or a rolling restart) leaves fewer in-sync replicas than required, and every acks=all write fails with NOT_ENOUGH_REPLICAS"},
	{RuleUncleanElection, Error, "topic", "unclean.leader.election.enable=true",
		"a replica that fell out of sync may become leader and silently truncate messages that were acknowledged"},
	{RuleTopicConfigs, Warn, "topic", "topic configs could not be read",
		"without min.insync.replicas and unclean.leader.election.enable the topic's durability cannot be judged"},
	{RulePartitionOffline, Critical, "partition", "offline partition (no leader that answers)",
		"producers and consumers of this partition fail until a replica that was in sync comes back"},
	{RuleUnderMinISR, Critical, "partition", "under-min-ISR partition",
		"fewer in-sync replicas than min.insync.replicas: acks=all writes are failing now"},
	{RuleAtMinISR, Error, "partition", "at-min-ISR partition",
		"the in-sync replicas are exactly min.insync.replicas: one more broker failure stops acks=all writes"},
	{RuleUnderReplicated, Warn, "partition", "under-replicated partition",
		"a replica is out of sync, so the partition has fewer copies of recent messages than its replication factor promises"},
	{RuleSameRack, Warn, "partition", "replicas of one partition share a rack",
		"losing that rack (power, switch, zone) takes every copy in it at once"},
	{RuleBrokerOffline, Error, "broker", "broker down, fenced, or not answering",
		"every replica on it is offline: its partitions run with fewer copies, or stop"},
	{RuleBrokerMismatch, Warn, "broker", "durability defaults differ between brokers",
		"a partition leader applies its own broker's defaults, so a topic's effective setting changes when leadership moves"},
	{RuleBrokerLoss, Info, "broker", "what-if: partitions that stop accepting acks=all writes if this broker dies",
		"these partitions have no spare in-sync replica: restarting this broker, even for a rolling upgrade, stops acks=all producers or takes the partition offline"},
	{RuleProducerAcks, Error, "producer", "producer acks is not all",
		"with acks=1 the leader acknowledges before any follower has the message, and a leader failure loses it; acks=0 does not even wait for the leader"},
	{RuleProducerIdempotence, Warn, "producer", "producer idempotence is off",
		"a retried batch can be written twice, and with more than one request in flight, out of order"},
	{RuleProducerRetries, Warn, "producer", "producer retries too low",
		"a leader election or a broker restart makes sends fail for a moment; without enough retries those messages are dropped"},
	{RuleProducerInFlight, Warn, "producer", "max.in.flight.requests.per.connection too high",
		"without idempotence, more than 1 request in flight lets a retried batch land after a later one (reordering); with idempotence, more than 5 is refused or reorders"},
	{RuleProducerDelivery, Warn, "producer", "delivery.timeout.ms too short",
		"a send that cannot complete within the timeout fails; shorter than a leader failover, it fails sends a retry would have saved"},
	{RuleConsumerAutoCommit, Warn, "consumer", "consumer auto-commits offsets",
		"offsets are committed on a timer, possibly before the records are processed; a crash then skips those records for good"},
}

// RuleByID returns the rule, or nil.
func RuleByID(id string) *Rule {
	for i := range Rules {
		if Rules[i].ID == id {
			return &Rules[i]
		}
	}
	return nil
}

// Finding is one problem found.
type Finding struct {
	Rule      string   `json:"rule"`
	Severity  Severity `json:"severity"`
	Topic     string   `json:"topic,omitempty"`
	Partition *int32   `json:"partition,omitempty"`
	Broker    *int32   `json:"broker,omitempty"`
	File      string   `json:"file,omitempty"`
	Line      int      `json:"line,omitempty"`
	Config    string   `json:"config,omitempty"`
	Observed  string   `json:"observed"`
	Source    Source   `json:"source,omitempty"`
	// SourceDetail says the source in words, e.g. "dynamic cluster default".
	SourceDetail string   `json:"source_detail,omitempty"`
	Why          string   `json:"why"`
	Fix          string   `json:"fix"`
	Partitions   []string `json:"partitions,omitempty"`
	// Baselined is true when the finding is in the --baseline file (it does not fail).
	Baselined bool `json:"baselined,omitempty"`
}

// Scope is what the finding is about, for grouping: a topic, "broker N" or a file.
func (f *Finding) Scope() string {
	switch {
	case f.Topic != "":
		return f.Topic
	case f.Broker != nil:
		return fmt.Sprintf("broker %d", *f.Broker)
	case f.File != "":
		return f.File
	}
	return "cluster"
}

// Key identifies a finding across runs (for baselines): rule and where, not values.
func (f *Finding) Key() string {
	parts := []string{f.Rule, f.Topic}
	if f.Partition != nil {
		parts = append(parts, "p"+strconv.Itoa(int(*f.Partition)))
	}
	if f.Broker != nil {
		parts = append(parts, "b"+strconv.Itoa(int(*f.Broker)))
	}
	if f.File != "" {
		parts = append(parts, "f"+f.File)
	}
	return strings.Join(parts, "|")
}

// WhatIf lists, for one broker, the partitions that a loss of it would hurt.
type WhatIf struct {
	Broker int32 `json:"broker"`
	// BlocksAcksAll are partitions that would stop accepting acks=all writes.
	BlocksAcksAll []string `json:"blocks_acks_all"`
	// GoesOffline are partitions that would have no in-sync replica left.
	GoesOffline []string `json:"goes_offline"`
}

func ptr[T any](v T) *T { return &v }

func newFinding(id string, sev Severity) Finding {
	r := RuleByID(id)
	f := Finding{Rule: id, Severity: r.Severity, Why: r.Why}
	if sev != 0 {
		f.Severity = sev
	}
	return f
}

// clusterEval holds what the topic and partition rules need.
type clusterEval struct {
	snap      *Snapshot
	policy    *Policy
	bootstrap string
	down      map[int32]string // broker id -> why it counts as down
	live      []int32          // brokers that answer, sorted
	racks     map[int32]string
	rackCount int
}

// EvaluateCluster applies the cluster rules to a snapshot.
func EvaluateCluster(snap *Snapshot, p *Policy, bootstrap string) ([]Finding, []WhatIf) {
	e := &clusterEval{snap: snap, policy: p, bootstrap: bootstrap, down: map[int32]string{}, racks: map[int32]string{}}
	listed := map[int32]bool{}
	distinct := map[string]bool{}
	for _, b := range snap.Brokers {
		listed[b.ID] = true
		if !b.Reachable {
			e.down[b.ID] = "listed in the metadata but does not answer (" + b.Error + ")"
		} else {
			e.live = append(e.live, b.ID)
		}
		if b.Rack != "" {
			e.racks[b.ID] = b.Rack
			distinct[b.Rack] = true
		}
	}
	if len(e.racks) == len(snap.Brokers) {
		e.rackCount = len(distinct)
	}
	hosted := map[int32][]string{}
	for _, t := range snap.Topics {
		for _, pt := range t.Partitions {
			for _, r := range pt.Replicas {
				if !listed[r] {
					e.down[r] = "not in the cluster metadata (stopped, fenced or removed)"
				}
				hosted[r] = append(hosted[r], partName(t.Name, pt.ID))
			}
		}
	}
	var out []Finding
	out = append(out, e.brokerFindings(hosted)...)
	for i := range snap.Topics {
		out = append(out, e.topicFindings(&snap.Topics[i])...)
	}
	whatIf := e.whatIf()
	for _, w := range whatIf {
		n := len(w.BlocksAcksAll) + len(w.GoesOffline)
		if n == 0 {
			continue
		}
		f := newFinding(RuleBrokerLoss, 0)
		f.Broker = ptr(w.Broker)
		f.Source = SourceMetadata
		f.Observed = whatIfText(w)
		f.Partitions = append(append([]string{}, w.GoesOffline...), w.BlocksAcksAll...)
		f.Fix = "give these topics a spare in-sync replica: replication factor >= min.insync.replicas + 1 (see the topic findings)"
		out = append(out, f)
	}
	return out, whatIf
}

func whatIfText(w WhatIf) string {
	var parts []string
	if n := len(w.BlocksAcksAll); n > 0 {
		parts = append(parts, fmt.Sprintf("losing broker %d blocks acks=all writes to %s (%s)", w.Broker, plural(n, "partition"), sample(w.BlocksAcksAll)))
	}
	if n := len(w.GoesOffline); n > 0 {
		lead := fmt.Sprintf("losing broker %d", w.Broker)
		if len(parts) > 0 {
			lead = "and"
		}
		parts = append(parts, fmt.Sprintf("%s takes %s offline (%s)", lead, plural(n, "partition"), sample(w.GoesOffline)))
	}
	return strings.Join(parts, " ")
}

func sample(list []string) string {
	const show = 4
	if len(list) <= show {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:show], ", ") + fmt.Sprintf(", +%d more", len(list)-show)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (e *clusterEval) brokerFindings(hosted map[int32][]string) []Finding {
	var out []Finding
	ids := make([]int32, 0, len(e.down))
	for id := range e.down {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		f := newFinding(RuleBrokerOffline, 0)
		f.Broker = ptr(id)
		f.Source = SourceMetadata
		f.Observed = fmt.Sprintf("broker %d is %s; it holds %s", id, e.down[id], plural(len(hosted[id]), "replica"))
		f.Partitions = hosted[id]
		if b := e.snap.Broker(id); b != nil {
			f.Fix = fmt.Sprintf("check that broker %d (%s) is up and reachable from here; its log says why it stopped", id, b.Addr)
		} else {
			f.Fix = fmt.Sprintf("start broker %d (or, if it is gone for good, move its replicas: kafka-reassign-partitions.sh --bootstrap-server %s --generate --broker-list <the remaining brokers> --topics-to-move-json-file topics.json)", id, e.bootstrap)
		}
		out = append(out, f)
	}
	for _, name := range []string{"min.insync.replicas", "unclean.leader.election.enable", "default.replication.factor"} {
		values := map[string][]int32{}
		for _, b := range e.snap.Brokers {
			if cv, ok := b.Configs[name]; ok {
				values[cv.Value] = append(values[cv.Value], b.ID)
			}
		}
		if len(values) < 2 {
			continue
		}
		var parts []string
		for v, brokers := range values {
			parts = append(parts, fmt.Sprintf("%s on brokers %v", v, brokers))
		}
		sort.Strings(parts)
		f := newFinding(RuleBrokerMismatch, 0)
		f.Config = name
		f.Observed = name + " = " + strings.Join(parts, "; ")
		f.Source = SourceStaticBroker
		f.SourceDetail = "broker configs (static or dynamic per-broker)"
		f.Fix = fmt.Sprintf("set one value for all brokers: kafka-configs.sh --bootstrap-server %s --alter --entity-type brokers --entity-default --add-config %s=<value>, and remove per-broker overrides (--entity-name <id> --delete-config %s) or align server.properties", e.bootstrap, name, name)
		out = append(out, f)
	}
	return out
}

// topicThresholds returns the policy's thresholds for a topic (overrides applied).
func (e *clusterEval) topicFindings(t *Topic) []Finding {
	var out []Finding
	th := e.policy.thresholds(t.Name)
	rf := t.ReplicationFactor()
	if len(t.Partitions) == 0 {
		return nil
	}
	topicCmd := func(config, value string) string {
		return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s=%s",
			e.bootstrap, t.Name, config, value)
	}
	if rf < th.MinReplicationFactor {
		sev := Warn
		if rf == 1 {
			sev = Error
		}
		f := newFinding(RuleReplicationFactor, sev)
		f.Topic, f.Config, f.Source = t.Name, "replication.factor", SourceMetadata
		f.Observed = fmt.Sprintf("replication factor %d (policy minimum %d)", rf, th.MinReplicationFactor)
		f.SourceDetail = "replica assignment (set when the topic was created)"
		f.Fix = e.increaseRFFix(t, th.MinReplicationFactor)
		out = append(out, f)
	}
	minISR, misrOK := intConfig(t, "min.insync.replicas")
	if t.ConfigError != "" {
		f := newFinding(RuleTopicConfigs, 0)
		f.Topic, f.Observed = t.Name, "DescribeConfigs failed: "+t.ConfigError
		f.Fix = "grant DescribeConfigs on the topic to dsctl's principal, then run the audit again"
		out = append(out, f)
	}
	if misrOK {
		cv := t.Configs["min.insync.replicas"]
		if minISR < th.MinInsyncReplicas && rf > th.MinInsyncReplicas {
			f := newFinding(RuleMinISRLow, 0)
			f.Topic, f.Config = t.Name, "min.insync.replicas"
			f.Observed = fmt.Sprintf("min.insync.replicas=%d with replication factor %d (policy minimum %d)", minISR, rf, th.MinInsyncReplicas)
			f.setSource(cv, e.snap.AnsweredBy)
			f.Fix = topicCmd("min.insync.replicas", strconv.Itoa(th.MinInsyncReplicas))
			out = append(out, f)
		} else if minISR < th.MinInsyncReplicas && minISR < rf && rf > 1 {
			// Too few replicas to raise min.insync.replicas without giving up availability
			// (RF 2, min.insync.replicas 1): report the durability gap with the trade-off.
			f := newFinding(RuleMinISRLow, Warn)
			f.Topic, f.Config = t.Name, "min.insync.replicas"
			f.Observed = fmt.Sprintf("min.insync.replicas=%d with replication factor %d (policy minimum %d): acks=all writes are acknowledged by the leader alone "+
				"whenever its follower lags or is down, and are lost if that leader then fails; min.insync.replicas=%d instead would stop acks=all writes "+
				"whenever any replica is down (durability traded for availability either way)", minISR, rf, th.MinInsyncReplicas, rf)
			f.setSource(cv, e.snap.AnsweredBy)
			f.Fix = fmt.Sprintf("add a replica: raise the replication factor to %d (see %s), then %s",
				th.MinInsyncReplicas+1, RuleReplicationFactor, topicCmd("min.insync.replicas", strconv.Itoa(th.MinInsyncReplicas)))
			out = append(out, f)
		}
		if minISR >= rf && rf > 1 {
			sev := Severity(0)
			observed := fmt.Sprintf("min.insync.replicas=%d with replication factor %d: no broker may be down", minISR, rf)
			if minISR > rf {
				sev = Error
				observed = fmt.Sprintf("min.insync.replicas=%d above replication factor %d: no acks=all write can ever succeed", minISR, rf)
			}
			f := newFinding(RuleMinISRBlocksWrites, sev)
			f.Topic, f.Config, f.Observed = t.Name, "min.insync.replicas", observed
			f.setSource(cv, e.snap.AnsweredBy)
			if rf >= 3 {
				f.Fix = topicCmd("min.insync.replicas", strconv.Itoa(rf-1))
			} else {
				f.Fix = fmt.Sprintf("raise the replication factor to %d (see %s), keeping min.insync.replicas=%d; or accept less durability: %s",
					minISR+1, RuleReplicationFactor, minISR, topicCmd("min.insync.replicas", strconv.Itoa(rf-1)))
			}
			out = append(out, f)
		}
	}
	if cv, ok := t.Configs["unclean.leader.election.enable"]; ok && strings.EqualFold(cv.Value, "true") {
		f := newFinding(RuleUncleanElection, 0)
		f.Topic, f.Config, f.Observed = t.Name, "unclean.leader.election.enable", "unclean.leader.election.enable=true"
		f.setSource(cv, e.snap.AnsweredBy)
		f.Fix = e.uncleanFix(t, cv)
		out = append(out, f)
	}
	for _, pt := range t.Partitions {
		out = append(out, e.partitionFindings(t, pt, minISR, misrOK)...)
	}
	return out
}

func (f *Finding) setSource(cv ConfigValue, answeredBy int32) {
	f.Source = cv.Source
	f.SourceDetail = cv.Source.Human()
	switch cv.Source {
	case SourceDynamicBroker:
		f.SourceDetail = fmt.Sprintf("dynamic per-broker config (broker %d)", answeredBy)
	case SourceStaticBroker:
		f.SourceDetail = fmt.Sprintf("static broker config (server.properties of broker %d)", answeredBy)
	}
	if cv.Source != SourceTopic {
		for _, s := range cv.Synonyms {
			if s.Source == cv.Source && s.Name != cv.Name {
				f.SourceDetail += " " + s.Name + "=" + s.Value
				break
			}
		}
	}
}

func (e *clusterEval) uncleanFix(t *Topic, cv ConfigValue) string {
	const key = "unclean.leader.election.enable"
	switch cv.Source {
	case SourceDynamicDefault:
		return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type brokers --entity-default --delete-config %s (the cluster default; or only this topic: --entity-type topics --entity-name %s --add-config %s=false)",
			e.bootstrap, key, t.Name, key)
	case SourceDynamicBroker:
		return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type brokers --entity-name %d --delete-config %s (or only this topic: --entity-type topics --entity-name %s --add-config %s=false)",
			e.bootstrap, e.snap.AnsweredBy, key, t.Name, key)
	case SourceStaticBroker:
		return fmt.Sprintf("set %s=false in server.properties and restart the brokers, or override now: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s=false",
			key, e.bootstrap, t.Name, key)
	}
	return fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s=false", e.bootstrap, t.Name, key)
}

// increaseRFFix writes a reassignment that adds replicas, spreading them over the
// brokers that answer.
func (e *clusterEval) increaseRFFix(t *Topic, want int) string {
	if len(e.live) < want {
		return fmt.Sprintf("the cluster has %s that answer, fewer than %d: add brokers, then reassign %s with kafka-reassign-partitions.sh",
			plural(len(e.live), "broker"), want, t.Name)
	}
	var parts []string
	for _, pt := range t.Partitions {
		reps := slices.Clone(pt.Replicas)
		for i := 0; len(reps) < want && i < len(e.live); i++ {
			b := e.live[(int(pt.ID)+i)%len(e.live)]
			if !slices.Contains(reps, b) {
				reps = append(reps, b)
			}
		}
		strs := make([]string, len(reps))
		for i, r := range reps {
			strs[i] = strconv.Itoa(int(r))
		}
		parts = append(parts, fmt.Sprintf(`{"topic":"%s","partition":%d,"replicas":[%s]}`, t.Name, pt.ID, strings.Join(strs, ",")))
	}
	file := t.Name + "-rf.json"
	return fmt.Sprintf(`echo '{"version":1,"partitions":[%s]}' > %s && kafka-reassign-partitions.sh --bootstrap-server %s --reassignment-json-file %s --execute`,
		strings.Join(parts, ","), shellWord(file), e.bootstrap, shellWord(file))
}

func shellWord(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func intConfig(t *Topic, name string) (int, bool) {
	cv, ok := t.Configs[name]
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(cv.Value))
	return v, err == nil
}

// effectiveISR is the ISR without brokers that are down (the metadata can be stale
// when the controller quorum is lost).
func (e *clusterEval) effectiveISR(pt Partition) []int32 {
	var out []int32
	for _, r := range pt.ISR {
		if _, down := e.down[r]; !down {
			out = append(out, r)
		}
	}
	return out
}

func (e *clusterEval) online(pt Partition) bool {
	if pt.Leader < 0 {
		return false
	}
	_, down := e.down[pt.Leader]
	return !down
}

func (e *clusterEval) partitionFindings(t *Topic, pt Partition, minISR int, misrOK bool) []Finding {
	var out []Finding
	isr := e.effectiveISR(pt)
	var downReps []int32
	for _, r := range pt.Replicas {
		if _, down := e.down[r]; down {
			downReps = append(downReps, r)
		}
	}
	state := fmt.Sprintf("replicas %v, ISR %v", pt.Replicas, isr)
	if len(isr) != len(pt.ISR) {
		state += fmt.Sprintf(" (metadata still lists ISR %v)", pt.ISR)
	}
	if len(downReps) > 0 {
		state += fmt.Sprintf(", down %v", downReps)
	}
	if misrOK {
		state += fmt.Sprintf(", min.insync.replicas %d", minISR)
	}
	mk := func(id string) Finding {
		f := newFinding(id, 0)
		f.Topic, f.Partition, f.Source, f.Observed = t.Name, ptr(pt.ID), SourceMetadata, state
		return f
	}
	describe := fmt.Sprintf("kafka-topics.sh --bootstrap-server %s --describe --under-replicated-partitions --topic %s", e.bootstrap, t.Name)
	bringBack := "bring the missing replicas back in sync"
	if len(downReps) > 0 {
		bringBack = fmt.Sprintf("start broker(s) %v", downReps)
	} else if missing := diff(pt.Replicas, isr); len(missing) > 0 {
		bringBack = fmt.Sprintf("find why broker(s) %v fall behind (disk, network, load)", missing)
	}
	switch {
	case !e.online(pt):
		f := mk(RulePartitionOffline)
		if pt.Leader >= 0 {
			f.Observed = fmt.Sprintf("leader %d does not answer; %s", pt.Leader, state)
		} else {
			f.Observed = "no leader; " + state
		}
		f.Fix = fmt.Sprintf("%s; only if they are lost for good: kafka-leader-election.sh --bootstrap-server %s --election-type unclean --topic %s --partition %d (loses what only the old leader had)",
			bringBack, e.bootstrap, t.Name, pt.ID)
		out = append(out, f)
	case misrOK && len(isr) < minISR:
		f := mk(RuleUnderMinISR)
		f.Fix = bringBack + "; meanwhile: " + describe
		out = append(out, f)
	case len(isr) < len(pt.Replicas) && misrOK && len(isr) == minISR:
		f := mk(RuleAtMinISR)
		f.Fix = bringBack + "; meanwhile: " + describe
		out = append(out, f)
	case len(isr) < len(pt.Replicas):
		f := mk(RuleUnderReplicated)
		f.Fix = bringBack + "; check with: " + describe
		out = append(out, f)
	}
	if e.rackCount >= 2 {
		seen := map[string]bool{}
		var racks []string
		for _, r := range pt.Replicas {
			rack := e.racks[r]
			racks = append(racks, rack)
			if rack != "" {
				seen[rack] = true
			}
		}
		if want := min(len(pt.Replicas), e.rackCount); len(seen) < want {
			f := mk(RuleSameRack)
			f.Observed = fmt.Sprintf("replicas %v in racks %v (%d racks in the cluster)", pt.Replicas, racks, e.rackCount)
			f.Fix = fmt.Sprintf("move replicas so each is in a different rack: kafka-reassign-partitions.sh --bootstrap-server %s --generate --topics-to-move-json-file topics.json --broker-list <all brokers> (rack-aware), then --execute the proposal",
				e.bootstrap)
			out = append(out, f)
		}
	}
	return out
}

func diff(a, b []int32) []int32 {
	var out []int32
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// whatIf computes, for each broker that answers, the partitions that would stop
// accepting acks=all writes (or go offline) if it died. Partitions already offline or
// under min ISR are not counted: they are blocked already.
func (e *clusterEval) whatIf() []WhatIf {
	out := make([]WhatIf, 0, len(e.live))
	for _, b := range e.live {
		w := WhatIf{Broker: b, BlocksAcksAll: []string{}, GoesOffline: []string{}}
		for i := range e.snap.Topics {
			t := &e.snap.Topics[i]
			minISR, ok := intConfig(t, "min.insync.replicas")
			if !ok {
				minISR = 1
			}
			for _, pt := range t.Partitions {
				isr := e.effectiveISR(pt)
				if !e.online(pt) || len(isr) < minISR || !slices.Contains(isr, b) {
					continue
				}
				switch left := len(isr) - 1; {
				case left == 0:
					w.GoesOffline = append(w.GoesOffline, partName(t.Name, pt.ID))
				case left < minISR:
					w.BlocksAcksAll = append(w.BlocksAcksAll, partName(t.Name, pt.ID))
				}
			}
		}
		out = append(out, w)
	}
	return out
}
