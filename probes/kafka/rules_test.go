package kafka

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Synthetic snapshots: for states a 3-node KRaft cluster on loopback cannot be put
// into quickly (racks, brokers that disagree, stale metadata), the rules are pure
// functions of the snapshot, so they are tested on hand-built ones.

func cv(name, value string, src Source) ConfigValue {
	return ConfigValue{Name: name, Value: value, Source: src}
}

func topic(name string, minISR string, parts ...Partition) Topic {
	return Topic{Name: name, Partitions: parts, Configs: map[string]ConfigValue{
		"min.insync.replicas":            cv("min.insync.replicas", minISR, SourceTopic),
		"unclean.leader.election.enable": cv("unclean.leader.election.enable", "false", SourceDefault),
	}}
}

func part(id, leader int32, replicas, isr []int32) Partition {
	return Partition{ID: id, Leader: leader, Replicas: replicas, ISR: isr}
}

func brokers(ids ...int32) []Broker {
	var out []Broker
	for _, id := range ids {
		out = append(out, Broker{ID: id, Addr: "b:9092", Reachable: true})
	}
	return out
}

// keys returns "rule topic[/pN][/bN]" for findings at or above min.
func keys(fs []Finding, min Severity) []string {
	var out []string
	for _, f := range fs {
		if f.Severity < min {
			continue
		}
		k := f.Rule + " " + f.Topic
		if f.Partition != nil {
			k += "/p" + itoa32(*f.Partition)
		}
		if f.Broker != nil {
			k += "/b" + itoa32(*f.Broker)
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func itoa32(v int32) string { return strconv.Itoa(int(v)) }

func eq(t *testing.T, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("findings:\n  got  %v\n  want %v", got, want)
	}
}

func TestPartitionStatesWithABrokerDown(t *testing.T) {
	// Broker 3 is gone from the metadata; ISRs have shrunk.
	snap := &Snapshot{Brokers: brokers(1, 2), Topics: []Topic{
		topic("misr2", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2})),
		topic("misr3", "3", part(0, 1, []int32{1, 2, 3}, []int32{1, 2})),
		topic("misr1", "1", part(0, 1, []int32{1, 2, 3}, []int32{1, 2})),
		topic("rf1", "1", part(0, -1, []int32{3}, []int32{3})),
		topic("ok", "2", part(0, 1, []int32{1, 2}, []int32{1, 2})),
	}}
	fs, whatIf := EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Warn), []string{
		"broker-offline /b3",
		"partition-at-min-isr misr2/p0",
		"partition-under-min-isr misr3/p0",
		"partition-under-replicated misr1/p0",
		"partition-offline rf1/p0",
		"topic-min-isr-blocks-writes misr3",
		"topic-min-isr-low misr1",
		"topic-replication-factor rf1",
		"topic-replication-factor ok",
		"topic-min-isr-blocks-writes ok",
	})
	// What-if: losing 1 or 2 blocks misr2 (at min) and ok (ISR 2 = min 2); nothing
	// is counted for misr3 (already blocked) or rf1 (already offline).
	for _, w := range whatIf {
		if !slices.Equal(w.BlocksAcksAll, []string{"misr2-0", "ok-0"}) || len(w.GoesOffline) != 0 {
			t.Fatalf("what-if for broker %d: %+v", w.Broker, w)
		}
	}
	if len(whatIf) != 2 {
		t.Fatalf("what-if for %d brokers, want the 2 that answer", len(whatIf))
	}
}

func TestStaleMetadataUnreachableLeaderIsOffline(t *testing.T) {
	// The controller quorum is lost: the metadata still lists broker 2 as leader and in
	// the ISR, but broker 2 does not answer.
	snap := &Snapshot{Brokers: brokers(1, 2, 3), Topics: []Topic{
		topic("on23", "1", part(0, 2, []int32{2, 3}, []int32{2})),
		topic("led1", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2})),
	}}
	snap.Brokers[1].Reachable, snap.Brokers[1].Error = false, "dial tcp: connection refused"
	fs, _ := EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Critical), []string{"partition-offline on23/p0", "partition-under-min-isr led1/p0"})
	for _, f := range fs {
		if f.Rule == RulePartitionOffline && !strings.Contains(f.Observed, "leader 2 does not answer") {
			t.Fatalf("offline finding should say the leader does not answer: %q", f.Observed)
		}
		if f.Rule == RuleUnderMinISR && !strings.Contains(f.Observed, "metadata still lists ISR [1 2]") {
			t.Fatalf("the stale ISR should be shown: %q", f.Observed)
		}
	}
}

func TestRackRuleNeedsTwoRacks(t *testing.T) {
	snap := &Snapshot{Brokers: brokers(1, 2, 3, 4), Topics: []Topic{
		topic("t", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), part(1, 3, []int32{3, 4, 1}, []int32{3, 4, 1})),
	}}
	for i, r := range []string{"a", "a", "b", "b"} {
		snap.Brokers[i].Rack = r
	}
	fs, _ := EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Warn), nil) // both partitions span racks a and b
	snap.Topics[0].Partitions[0] = part(0, 1, []int32{1, 2}, []int32{1, 2})
	snap.Topics[0].Partitions[1] = part(1, 3, []int32{3, 4}, []int32{3, 4})
	fs, _ = EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Warn), []string{"partition-same-rack t/p0", "partition-same-rack t/p1",
		"topic-replication-factor t", "topic-min-isr-blocks-writes t"})
	// One rack for everyone (like kfake's "krack"): no rack finding is possible.
	for i := range snap.Brokers {
		snap.Brokers[i].Rack = "krack"
	}
	fs, _ = EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	if slices.Contains(keys(fs, Info), "partition-same-rack t/p0") {
		t.Fatal("a single-rack cluster cannot do better: no rack finding")
	}
}

func TestBrokerConfigMismatch(t *testing.T) {
	snap := &Snapshot{Brokers: brokers(1, 2, 3)}
	for i, v := range []string{"2", "2", "1"} {
		snap.Brokers[i].Configs = map[string]ConfigValue{"min.insync.replicas": cv("min.insync.replicas", v, SourceStaticBroker)}
	}
	fs, _ := EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Warn), []string{"broker-config-mismatch "})
	if !strings.Contains(fs[0].Observed, "1 on brokers [3]; 2 on brokers [1 2]") {
		t.Fatalf("observed %q", fs[0].Observed)
	}
}

func TestConfigSourceAndFixFollowTheWinningLayer(t *testing.T) {
	tp := topic("t", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}))
	tp.Configs["unclean.leader.election.enable"] = ConfigValue{Name: "unclean.leader.election.enable", Value: "true", Source: SourceDynamicDefault,
		Synonyms: []Synonym{{Name: "unclean.leader.election.enable", Value: "true", Source: SourceDynamicDefault}}}
	fs, _ := EvaluateCluster(&Snapshot{Brokers: brokers(1, 2, 3), Topics: []Topic{tp}}, DefaultPolicy(), "b:9092")
	eq(t, keys(fs, Warn), []string{"topic-unclean-election t"})
	f := fs[0]
	if f.Source != SourceDynamicDefault || f.SourceDetail != "dynamic cluster default" || !strings.Contains(f.Fix, "--entity-type brokers --entity-default --delete-config unclean.leader.election.enable") {
		t.Fatalf("finding %+v", f)
	}
}

func TestAuditAppliesPolicyIgnoresBaselineAndFailOn(t *testing.T) {
	snap := &Snapshot{Brokers: brokers(1, 2, 3), Topics: []Topic{
		topic("audit-log", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3})),
		topic("tmp.x", "1", part(0, 1, []int32{1}, []int32{1})),
		topic("rf2", "1", part(0, 1, []int32{1, 2}, []int32{1, 2})),
	}}
	snap.Topics[0].Configs["unclean.leader.election.enable"] = cv("unclean.leader.election.enable", "true", SourceTopic)
	pol, err := ParsePolicy("p.yaml", []byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r, err := Audit(AuditInput{Snapshot: snap, Bootstrap: "b:9092", Policy: pol, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// tmp.x has RF 1 but its pattern allows 1; rf2 is below 3 (warn), and its
	// min.insync.replicas 1 leaves acks=all to the leader alone (warn); audit-log's
	// unclean election is ignored until 2026-12-31.
	eq(t, keys(r.Findings, Warn), []string{"topic-min-isr-low rf2", "topic-replication-factor rf2"})
	if len(r.Ignored) != 1 || r.Ignored[0].Rule != RuleUncleanElection || r.Ignored[0].Expires != "2026-12-31" || r.Summary.Ignored != 1 {
		t.Fatalf("ignored %+v", r.Ignored)
	}
	if r.Failed || r.FailOn != "error" {
		t.Fatalf("fail_on error with only a warn: failed=%v fail_on=%q", r.Failed, r.FailOn)
	}
	// After expiry the unclean finding is back and fails the audit.
	r, _ = Audit(AuditInput{Snapshot: snap, Bootstrap: "b:9092", Policy: pol, Now: now.AddDate(1, 0, 0)})
	if !r.Failed || r.Summary.Error != 1 || len(r.Notes) != 1 {
		t.Fatalf("after expiry: failed=%v summary=%+v notes=%v", r.Failed, r.Summary, r.Notes)
	}
	// A baseline of that run accepts everything in it; a new finding still fails.
	base := NewBaseline(r.Findings, now)
	data, _ := json.Marshal(base)
	parsed, err := ParseBaseline("b.json", data)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = Audit(AuditInput{Snapshot: snap, Bootstrap: "b:9092", Policy: pol, Now: now.AddDate(1, 0, 0), Baseline: parsed, FailOn: Warn})
	if r.Failed || r.Summary.Baselined != len(base.Findings) || r.Summary.Total() != 0 {
		t.Fatalf("with baseline: failed=%v summary=%+v", r.Failed, r.Summary)
	}
	snap.Topics = append(snap.Topics, topic("new", "1", part(0, 1, []int32{1}, []int32{1})))
	r, _ = Audit(AuditInput{Snapshot: snap, Bootstrap: "b:9092", Policy: pol, Now: now.AddDate(1, 0, 0), Baseline: parsed, FailOn: Warn})
	if !r.Failed || r.Summary.Error != 1 {
		t.Fatalf("a new RF-1 topic must fail despite the baseline: %+v", r.Summary)
	}
	// Severity "off" drops a rule; a per-pattern override changes it.
	pol.Severity[RuleReplicationFactor] = 0
	r, _ = Audit(AuditInput{Snapshot: snap, Bootstrap: "b:9092", Policy: pol, Now: now})
	for _, f := range r.Findings {
		if f.Rule == RuleReplicationFactor {
			t.Fatalf("rule switched off but reported: %+v", f)
		}
	}
}

func TestParseBaselineErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"{\n  \"version\": 1,\n  \"findings\": [\n    {\"rule\": 3}\n  ]\n}", "b.json:4:"},
		{"{\"version\": 1, \"findings\": [{\"rule\": \"nope\"}]}", "unknown rule"},
		{"{\"version\": 7}", "unsupported version 7"},
		{"not json", "b.json:1:"},
	} {
		_, err := ParseBaseline("b.json", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: err = %v, want %q", c.text, err, c.want)
		}
	}
}

// Replication factor 2 with min.insync.replicas 1: acks=all writes rest on the leader
// alone while the follower lags; reported (warn) with the availability trade-off.
func TestMinISROneWithTwoReplicasWarnsWithTradeOff(t *testing.T) {
	snap := &Snapshot{Brokers: brokers(1, 2, 3), Topics: []Topic{
		topic("orders", "1", part(0, 1, []int32{1, 2}, []int32{1, 2})),
		topic("fine", "2", part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3})),
	}}
	fs, _ := EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	var got *Finding
	for i := range fs {
		if fs[i].Rule == RuleMinISRLow && fs[i].Topic == "orders" {
			got = &fs[i]
		}
		if fs[i].Topic == "fine" {
			t.Errorf("finding on a healthy topic: %+v", fs[i])
		}
	}
	if got == nil {
		t.Fatalf("no %s finding for RF 2 / min.insync.replicas 1: %v", RuleMinISRLow, keys(fs, Info))
	}
	if got.Severity != Warn || !strings.Contains(got.Observed, "leader alone") || !strings.Contains(got.Observed, "availability") ||
		!strings.Contains(got.Fix, "replication factor to 3") || !strings.Contains(got.Fix, "min.insync.replicas=2") {
		t.Fatalf("finding %+v", got)
	}
	// min.insync.replicas 1 with a single replica is the replication-factor rule's business.
	snap.Topics = []Topic{topic("solo", "1", part(0, 1, []int32{1}, []int32{1}))}
	fs, _ = EvaluateCluster(snap, DefaultPolicy(), "b:9092")
	for _, f := range fs {
		if f.Rule == RuleMinISRLow {
			t.Errorf("RF 1: %+v", f)
		}
	}
}
