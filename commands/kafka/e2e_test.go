package kafka_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// --sandbox (kfake in process): the demo topics give exactly their documented risks.
func TestSandboxAuditFindsTheDemoRisks(t *testing.T) {
	rep, r := auditJSON(t, "--sandbox")
	if r.code != 0 || !strings.Contains(r.errOut, "sandbox:") {
		t.Fatalf("exit %d, stderr %s", r.code, r.errOut)
	}
	want := []string{
		"topic-replication-factor clickstream",
		"topic-min-isr-blocks-writes payments",
		"topic-unclean-election audit-log",
		"topic-min-isr-low inventory",
	}
	if got := findingKeys(rep, "", kprobe.Warn, true); !same(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for _, f := range rep.Findings {
		if f.Rule != kprobe.RuleReplicationFactor && f.Rule != kprobe.RuleBrokerLoss && f.Source != kprobe.SourceTopic {
			t.Errorf("%s %s: source %s, want topic_override", f.Rule, f.Topic, f.Source)
		}
	}
	// What-if: every broker's loss blocks all 3 payments partitions (min ISR 3 of 3),
	// and each clickstream partition (one replica) goes offline with its broker.
	offline := 0
	for _, w := range rep.WhatIf {
		if !slices.Equal(w.BlocksAcksAll, []string{"payments-0", "payments-1", "payments-2"}) {
			t.Fatalf("what-if for broker %d: %+v", w.Broker, w)
		}
		for _, p := range w.GoesOffline {
			if !strings.HasPrefix(p, "clickstream-") {
				t.Fatalf("what-if for broker %d: %+v", w.Broker, w)
			}
			offline++
		}
	}
	if len(rep.WhatIf) != 3 || offline != 3 {
		t.Fatalf("what-if %+v", rep.WhatIf)
	}
	if rep.Summary != (kprobe.Summary{Error: 2, Warn: 2, Info: 3}) {
		t.Fatalf("summary %+v", rep.Summary)
	}

	r = dsctl(t, nil, "kafka", "audit", "--sandbox", "--fail-on", "error")
	if r.code != 5 || !strings.Contains(r.out, "0 critical, 2 error, 2 warn, 3 info in 5 topics (15 partitions) on 3 brokers") {
		t.Fatalf("table: exit %d\n%s", r.code, r.out)
	}
	r = dsctl(t, nil, "kafka", "audit", "--sandbox", "--topic", "orders", "--fail-on", "info")
	if r.code != 0 || !strings.Contains(r.out, "no findings") {
		t.Fatalf("orders is healthy: exit %d\n%s", r.code, r.out)
	}
}

func TestSandboxDescribeAndPartition(t *testing.T) {
	r := dsctl(t, nil, "kafka", "describe", "topic", "payments", "--sandbox", "-o", "json")
	var td kprobe.TopicDescription
	if r.code != 0 || json.Unmarshal([]byte(r.out), &td) != nil {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	found := false
	for _, c := range td.Configs {
		if c.Name == "min.insync.replicas" {
			found = c.Value == "3" && c.Source == kprobe.SourceTopic
		}
	}
	if !found || td.ReplicationFactor != 3 || len(td.Partitions) != 3 {
		t.Fatalf("describe payments: %+v", td)
	}
	r = dsctl(t, nil, "kafka", "describe", "brokers", "--sandbox")
	if r.code != 0 || strings.Count(r.out, "127.0.0.1:") != 3 || !strings.Contains(r.out, "MIN.ISR") {
		t.Fatalf("describe brokers: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "kafka", "partition", "--sandbox", "--topic", "orders", "--key", "21", "--key", "foobar", "-o", "json")
	var pl kprobe.Placement
	if r.code != 0 || json.Unmarshal([]byte(r.out), &pl) != nil || pl.Partitions != 3 || len(pl.Keys) != 2 {
		t.Fatalf("partition --topic orders: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// murmur2("21") = -973932308 -> toPositive 1173551340 % 3 = 0.
	if pl.Keys[0].Partitions["java"] != 1173551340%3 {
		t.Fatalf("21 -> %v", pl.Keys[0].Partitions)
	}
}

func TestPartitionTableAndKeysFile(t *testing.T) {
	r := dsctl(t, nil, "kafka", "partition", "--partitions", "6", "--key", "21", "--key", "abc")
	if r.code != 0 || !strings.Contains(r.out, "KEY") || !strings.Contains(r.out, "LIBRDKAFKA") || !strings.Contains(r.out, "2 keys on 6 partitions") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	var b strings.Builder
	for i := 0; i < 3000; i++ {
		b.WriteString("user-" + time.Duration(i).String() + "\n")
	}
	if err := os.WriteFile(keys, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r = dsctl(t, nil, "kafka", "partition", "--partitions", "4", "--keys-file", keys)
	if r.code != 0 || !strings.Contains(r.out, "skew (max/mean keys per partition") || !strings.Contains(r.out, "3000 keys on 4 partitions") {
		t.Fatalf("keys file: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	// --show sets how many disagreeing keys are listed (it used to be fixed at 10).
	for _, show := range []int{0, 5, 50} {
		r = dsctl(t, nil, "kafka", "partition", "--partitions", "4", "--keys-file", keys, "--show", strconv.Itoa(show))
		if n := strings.Count(r.out, `disagree: "`); r.code != 0 || n != show || !strings.Contains(r.out, "more disagreeing keys (--show N lists more)") {
			t.Fatalf("--show %d: exit %d, %d disagreeing keys listed\n%s%s", show, r.code, n, r.out, r.errOut)
		}
	}
}

func TestKafkaBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badPolicy := write("policy.yaml", "min_replication_factor: 3\nseverity:\n  topic-unclean-election: loud\n")
	badProps := write("producer.properties", "bootstrap.servers=b:9092\nretries=many\n")
	good := write("ok.properties", "acks=all\n")
	cases := []struct {
		name  string
		args  []string
		code  int
		words []string
	}{
		{"policy", []string{"kafka", "audit", "--clients-only", "--producer-config", good, "--policy", badPolicy}, 2, []string{badPolicy + ":3", "loud"}},
		{"properties", []string{"kafka", "audit", "--clients-only", "--producer-config", badProps}, 2, []string{badProps + ":2", "retries=many", "not an integer"}},
		{"missing properties", []string{"kafka", "audit", "--clients-only", "--consumer-config", filepath.Join(dir, "nope")}, 2, []string{"nope"}},
		{"clients-only without files", []string{"kafka", "audit", "--clients-only"}, 2, []string{"--producer-config"}},
		{"bad regex", []string{"kafka", "audit", "--sandbox", "--topic", "a(b"}, 2, []string{"a(b", "not a valid regular expression"}},
		{"bad fail-on", []string{"kafka", "audit", "--sandbox", "--fail-on", "loud"}, 2, []string{"loud"}},
		{"bad client", []string{"kafka", "audit", "--clients-only", "--producer-config", good, "--client", "go"}, 2, []string{"go"}},
		{"partitions 0", []string{"kafka", "partition", "--partitions", "0", "--key", "a"}, 2, []string{"at least 1"}},
		{"partitions negative", []string{"kafka", "partition", "--partitions", "-2", "--key", "a"}, 2, []string{"at least 1"}},
		{"no keys", []string{"kafka", "partition", "--partitions", "3"}, 2, []string{"--key"}},
		{"no count", []string{"kafka", "partition", "--key", "a"}, 2, []string{"--partitions"}},
		{"both counts", []string{"kafka", "partition", "--key", "a", "--partitions", "3", "--topic", "t"}, 2, []string{"not both"}},
		{"missing keys file", []string{"kafka", "partition", "--partitions", "3", "--keys-file", filepath.Join(dir, "nokeys")}, 2, []string{"nokeys"}},
		{"unknown topic", []string{"kafka", "describe", "topic", "nope", "--sandbox"}, 2, []string{`"nope" does not exist`}},
		{"unknown topic for partition", []string{"kafka", "partition", "--topic", "nope", "--key", "a", "--sandbox"}, 2, []string{`"nope" does not exist`}},
		{"describe topic without name", []string{"kafka", "describe", "topic"}, 2, []string{"exactly one topic"}},
		{"bad broker address", []string{"kafka", "audit", "--brokers", "host:port"}, 2, []string{"host:port"}},
		// Topic names are checked as Kafka does, before any broker is contacted
		// (127.0.0.1:1 would refuse the connection with exit 6).
		{"partition topic with a space", []string{"kafka", "partition", "--topic", "bad name", "--key", "a", "--brokers", "127.0.0.1:1"}, 2, []string{`invalid topic name "bad name"`, `character ' '`}},
		{"partition empty topic", []string{"kafka", "partition", "--topic", "", "--key", "a", "--brokers", "127.0.0.1:1"}, 2, []string{"invalid topic name", "empty"}},
		{"describe non-ascii topic", []string{"kafka", "describe", "topic", "ü🔒", "--brokers", "127.0.0.1:1"}, 2, []string{`invalid topic name "ü🔒"`, "'ü'"}},
		{"describe topic with a space", []string{"kafka", "describe", "topic", "bad name", "--brokers", "127.0.0.1:1"}, 2, []string{"invalid topic name"}},
		{"describe empty topic", []string{"kafka", "describe", "topic", "", "--brokers", "127.0.0.1:1"}, 2, []string{"the name is empty"}},
		{"describe dot topic", []string{"kafka", "describe", "topic", "..", "--brokers", "127.0.0.1:1"}, 2, []string{`".." alone is not allowed`}},
		{"describe long topic", []string{"kafka", "describe", "topic", strings.Repeat("a", 250), "--brokers", "127.0.0.1:1"}, 2, []string{"250 characters", "249"}},
		{"audit literal invalid topic", []string{"kafka", "audit", "--topic", "bad name", "--brokers", "127.0.0.1:1"}, 2, []string{`--topic "bad name" can never match`}},
		{"audit empty topic", []string{"kafka", "audit", "--topic", "", "--brokers", "127.0.0.1:1"}, 2, []string{`--topic "" can never match`}},
		{"show negative", []string{"kafka", "partition", "--partitions", "3", "--keys-file", "-", "--show", "-1"}, 2, []string{"--show must be 0 or more"}},
		{"sandbox and brokers: audit", []string{"kafka", "audit", "--sandbox", "--brokers", "127.0.0.1:19092"}, 2, []string{"--sandbox and --brokers are mutually exclusive"}},
		{"sandbox and brokers: describe", []string{"kafka", "describe", "brokers", "--sandbox", "--brokers", "127.0.0.1:19092"}, 2, []string{"--sandbox and --brokers are mutually exclusive"}},
		{"sandbox and brokers: partition", []string{"kafka", "partition", "--topic", "orders", "--key", "a", "--sandbox", "--brokers", "127.0.0.1:19092"}, 2, []string{"--sandbox and --brokers are mutually exclusive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := dsctl(t, nil, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.out, r.errOut)
			}
			for _, w := range c.words {
				if !strings.Contains(r.errOut, w) {
					t.Fatalf("stderr %q does not say %q", r.errOut, w)
				}
			}
		})
	}
}

func TestKafkaTopicRegexMatchingNothingIsNotAnError(t *testing.T) {
	r := dsctl(t, nil, "kafka", "audit", "--sandbox", "--topic", "nothing-.*", "--fail-on", "info")
	if r.code != 0 || !strings.Contains(r.out, `no topic matches --topic "nothing-.*" (the cluster has 5 topics)`) {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "kafka", "audit", "--sandbox", "--topic", "nothing-.*", "-o", "json")
	if r.code != 0 || !strings.Contains(r.errOut, "no topic matches") || !strings.Contains(r.out, `"topics_audited": 0`) {
		t.Fatalf("json: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

// Unreachable brokers: exit 6 within --timeout, naming them.
func TestKafkaUnreachableBrokers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.Addr().String() // accepts, never answers
	go func() {
		var conns []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	defer l.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := dead.Addr().String()
	dead.Close()
	for _, args := range [][]string{
		{"kafka", "audit", "--brokers", refused + "," + silent, "--timeout", "1s"},
		{"kafka", "describe", "brokers", "--brokers", silent, "--timeout", "1s"},
		{"kafka", "partition", "--topic", "t", "--key", "a", "--brokers", refused, "--timeout", "1s"},
	} {
		r := dsctl(t, nil, args...)
		if r.code != 6 || !strings.Contains(r.errOut, "cannot reach") || r.took > 2500*time.Millisecond {
			t.Fatalf("%v: exit %d after %s\nstderr: %s", args, r.code, r.took, r.errOut)
		}
		if !strings.Contains(r.errOut, args[len(args)-3]) {
			t.Fatalf("%v: the message must name the brokers: %s", args, r.errOut)
		}
	}
}

// Authentication failure: kfake with SASL (the harness's cluster is PLAINTEXT only).
func TestKafkaAuthenticationFailure(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "ops", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	text := "current_context: sasl\ncontexts:\n  sasl:\n    kafka:\n      brokers: [" + cluster.ListenAddrs()[0] + "]\n" +
		"      sasl: {mechanism: SCRAM-SHA-256, username: ops, password: {env: DSCTL_TEST_KAFKA_AUDIT_PW}}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DSCTL_TEST_KAFKA_AUDIT_PW", "guess") // secrets are read from the process environment
	r := dsctl(t, nil, "kafka", "audit", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.errOut, "authentication failed") || strings.Contains(r.errOut, "guess") {
		t.Fatalf("wrong password: exit %d\n%s", r.code, r.errOut)
	}
	t.Setenv("DSCTL_TEST_KAFKA_AUDIT_PW", "s3cret")
	r = dsctl(t, nil, "kafka", "audit", "--config", cfg, "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, `"SaslAuthenticate"`) {
		t.Fatalf("right password: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

func TestSandboxPolicyBaselineAndRuleList(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	text := "fail_on: warn\n" +
		"severity:\n  topic-min-isr-low: off\n" +
		"topics:\n  - pattern: click.*\n    min_replication_factor: 1\n" +
		"ignore:\n  - rule: topic-unclean-election\n    topic: audit-log\n    reason: legacy readers\n    expires: 2999-12-31\n"
	if err := os.WriteFile(policy, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Left: payments' min ISR = RF (warn), which fail_on: warn turns into exit 5.
	r := dsctl(t, nil, "kafka", "audit", "--sandbox", "--policy", policy, "-o", "json")
	var rep kprobe.Report
	if r.code != 5 || json.Unmarshal([]byte(r.out), &rep) != nil {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	if got := findingKeys(&rep, "", kprobe.Warn, true); !same(got, []string{"topic-min-isr-blocks-writes payments"}) || rep.Summary.Ignored != 1 || rep.FailOn != "warn" {
		t.Fatalf("findings %v, summary %+v", got, rep.Summary)
	}
	// --fail-on on the command line wins over the policy.
	if r := dsctl(t, nil, "kafka", "audit", "--sandbox", "--policy", policy, "--fail-on", "error"); r.code != 0 {
		t.Fatalf("--fail-on error: exit %d\n%s", r.code, r.out)
	}

	baseline := filepath.Join(dir, "baseline.json")
	if r := dsctl(t, nil, "kafka", "audit", "--sandbox", "--write-baseline", baseline, "--fail-on", "warn"); r.code != 5 {
		t.Fatalf("writing a baseline still reports: exit %d", r.code)
	}
	r = dsctl(t, nil, "kafka", "audit", "--sandbox", "--baseline", baseline, "--fail-on", "info", "-o", "json")
	rep = kprobe.Report{}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &rep) != nil || rep.Summary.Baselined != 7 || rep.Summary.Total() != 0 {
		t.Fatalf("with the baseline: exit %d, summary %+v\n%s", r.code, rep.Summary, r.errOut)
	}

	r = dsctl(t, nil, "kafka", "audit", "--list-rules")
	if r.code != 0 || !strings.Contains(r.out, "partition-under-min-isr") || strings.Count(r.out, "\n") != len(kprobe.Rules)+1 {
		t.Fatalf("--list-rules: exit %d\n%s", r.code, r.out)
	}
}
