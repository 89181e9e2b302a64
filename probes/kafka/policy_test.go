package kafka

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

const fullPolicy = `# team policy
version: 1
fail_on: error
min_replication_factor: 3
min_insync_replicas: 2
producer:
  min_retries: 5
  min_delivery_timeout_ms: 60000
severity:
  partition-same-rack: error
  consumer-auto-commit: off
topics:
  - pattern: 'tmp\..*'
    min_replication_factor: 1
    min_insync_replicas: 1
    severity:
      topic-min-isr-low: off
ignore:
  - rule: topic-unclean-election
    topic: audit-log
    reason: legacy consumers need availability first
    expires: 2026-12-31
`

func TestParsePolicyFull(t *testing.T) {
	p, err := ParsePolicy("policy.yaml", []byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if p.FailOn != Error || p.Thresholds != (Thresholds{3, 2, 5, 60000}) {
		t.Fatalf("fail_on %v thresholds %+v", p.FailOn, p.Thresholds)
	}
	if s, on := p.Severity[RuleSameRack]; s != Error || !on {
		t.Fatalf("severity override %v", p.Severity)
	}
	if s, set := p.Severity[RuleConsumerAutoCommit]; s != 0 || !set {
		t.Fatalf("off override %v", p.Severity)
	}
	if th := p.thresholds("tmp.scratch"); th.MinReplicationFactor != 1 || th.MinInsyncReplicas != 1 || th.MinRetries != 5 {
		t.Fatalf("tmp.* thresholds %+v (producer settings inherit the top level)", th)
	}
	if th := p.thresholds("tmpx"); th.MinReplicationFactor != 3 {
		t.Fatalf("patterns match whole names: tmpx got %+v", th)
	}
	if len(p.Ignores) != 1 || p.Ignores[0].Line != 19 || p.Ignores[0].Reason == "" {
		t.Fatalf("ignores %+v", p.Ignores)
	}
	f := &Finding{Rule: RuleUncleanElection, Topic: "audit-log"}
	if p.ignoreFor(f, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)) == nil {
		t.Fatal("the ignore holds through its expiry day")
	}
	if p.ignoreFor(f, time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)) != nil {
		t.Fatal("the ignore must lapse after its expiry day")
	}
	if p.ignoreFor(&Finding{Rule: RuleUncleanElection, Topic: "audit-log-2"}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) != nil {
		t.Fatal("the ignore's topic pattern matches whole names only")
	}
	if got := len(p.Expired(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC))); got != 1 {
		t.Fatalf("expired = %d", got)
	}
}

func TestParsePolicyErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, text string
		line       int
		words      string
	}{
		{"unknown key", "min_replication_factor: 3\nmin_isr: 2\n", 2, "min_isr"},
		{"bad severity", "severity:\n  topic-min-isr-low: loud\n", 2, "loud"},
		{"unknown rule", "severity:\n  topic-unclean: error\n", 2, "did you mean topic-unclean-election"},
		{"bad fail_on", "fail_on: sometimes\n", 1, "sometimes"},
		{"bad number", "min_replication_factor: 0\n", 1, "at least 1"},
		{"wrong type", "min_replication_factor: three\n", 1, ""},
		{"bad regex", "topics:\n  - pattern: 'a(b'\n", 2, "not a valid regular expression"},
		{"no reason", "ignore:\n  - rule: topic-unclean-election\n    expires: 2026-01-01\n", 2, "needs a reason"},
		{"no expiry", "ignore:\n  - rule: topic-unclean-election\n    reason: ok\n", 2, "expiry date"},
		{"bad date", "ignore:\n  - rule: topic-unclean-election\n    reason: ok\n    expires: next year\n", 4, "not a date"},
		{"unknown ignore rule", "ignore:\n  - rule: nope\n    reason: ok\n    expires: 2026-01-01\n", 2, "unknown rule"},
		{"syntax", "topics:\n  - pattern: [\n", 2, ""},
		{"version", "version: 2\n", 1, "version 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(c.text))
			if errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("err = %v, want a usage error", err)
			}
			msg := err.Error()
			if want := "policy p.yaml:" + strconv.Itoa(c.line) + ":"; !strings.Contains(msg, want) {
				t.Fatalf("%q does not name %q", msg, want)
			}
			if !strings.Contains(msg, c.words) {
				t.Fatalf("%q does not say %q", msg, c.words)
			}
		})
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(fullPolicy))
	f.Add([]byte("ignore:\n  - rule: x\n"))
	f.Add([]byte("topics: [{pattern: '('}]"))
	f.Add([]byte("severity: {a: b}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("fuzz.yaml", data)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "policy fuzz.yaml") {
				t.Fatalf("error %v must be a usage error naming the file", err)
			}
			return
		}
		if p.Thresholds.MinReplicationFactor < 1 || p.Thresholds.MinInsyncReplicas < 1 {
			t.Fatalf("accepted thresholds %+v", p.Thresholds)
		}
		for _, ig := range p.Ignores {
			if ig.Reason == "" || ig.Expires.IsZero() || RuleByID(ig.Rule) == nil {
				t.Fatalf("accepted ignore %+v", ig)
			}
		}
	})
}
