package kafka

import (
	"sort"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/errs"
)

func evalFile(t *testing.T, path string, role Role, flavor Flavor) ([]Finding, []AssumedDefault, ClientConfig) {
	t.Helper()
	p, err := LoadProperties(path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClientConfig(p, role, flavor)
	fs, assumed, err := EvaluateClient(c, DefaultPolicy().Thresholds)
	if err != nil {
		t.Fatal(err)
	}
	return fs, assumed, c
}

// rules returns "rule:severity" for each finding, sorted.
func rules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+":"+f.Severity.String())
	}
	sort.Strings(out)
	return out
}

func TestClientRulesOnSampleFiles(t *testing.T) {
	cases := []struct {
		file    string
		role    Role
		flavor  Flavor
		want    []string
		judged  Flavor
		assumed []string // keys judged by their default
	}{
		// Java 3.0+ defaults are safe for a producer: nothing to report.
		{"producer-defaults.properties", Producer, FlavorAuto, nil, FlavorJava,
			[]string{"acks", "delivery.timeout.ms", "enable.idempotence", "max.in.flight.requests.per.connection", "retries"}},
		{"producer-risky.properties", Producer, FlavorAuto, []string{
			"producer-acks:error", "producer-delivery-timeout:warn", "producer-idempotence:warn", "producer-retries:error",
		}, FlavorJava, []string{"enable.idempotence"}},
		// acks=1 silently turns the default idempotence off (Java 3.2+), and then the
		// default 5 in flight can reorder retried batches.
		{"producer-acks1.properties", Producer, FlavorAuto, []string{
			"producer-acks:error", "producer-idempotence:warn", "producer-max-in-flight:warn",
		}, FlavorJava, []string{"delivery.timeout.ms", "enable.idempotence", "max.in.flight.requests.per.connection", "retries"}},
		// librdkafka: idempotence off and 1000000 in flight by default.
		{"producer-librdkafka.properties", Producer, FlavorAuto, []string{
			"producer-idempotence:warn", "producer-max-in-flight:warn",
		}, FlavorLibrdkafka, []string{"acks", "delivery.timeout.ms", "enable.idempotence", "max.in.flight.requests.per.connection", "retries"}},
		// The same file judged as Java: safe.
		{"producer-librdkafka.properties", Producer, FlavorJava, nil, FlavorJava, nil},
		{"consumer-defaults.properties", Consumer, FlavorAuto, []string{"consumer-auto-commit:warn"}, FlavorJava, []string{"enable.auto.commit"}},
		{"consumer-manual.properties", Consumer, FlavorAuto, nil, FlavorJava, []string{}},
		// librdkafka auto-commit of offsets the application stored after processing: safe.
		{"consumer-librdkafka-store.properties", Consumer, FlavorAuto, nil, FlavorLibrdkafka, []string{"enable.auto.commit"}},
	}
	for _, c := range cases {
		t.Run(c.file+"/"+string(c.flavor), func(t *testing.T) {
			fs, assumed, cc := evalFile(t, "testdata/"+c.file, c.role, c.flavor)
			if got := rules(fs); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("findings %v, want %v", got, c.want)
			}
			if cc.Flavor != c.judged {
				t.Fatalf("judged as %s (%s), want %s", cc.Flavor, cc.FlavorReason, c.judged)
			}
			if c.assumed != nil {
				var keys []string
				for _, a := range assumed {
					keys = append(keys, a.Key)
				}
				sort.Strings(keys)
				if strings.Join(keys, ",") != strings.Join(c.assumed, ",") {
					t.Fatalf("assumed defaults for %v, want %v", keys, c.assumed)
				}
			}
			for _, f := range fs {
				if f.File != "testdata/"+c.file || f.Why == "" || f.Fix == "" {
					t.Fatalf("finding without file, why or fix: %+v", f)
				}
				if f.Source == SourceFile && f.Line == 0 {
					t.Fatalf("a value from the file must carry its line: %+v", f)
				}
				if f.Source == SourceClientDefault && !strings.Contains(f.Observed, "unset (default") {
					t.Fatalf("a default must say so: %+v", f)
				}
			}
		})
	}
}

func TestClientRiskyFileLinesAndValues(t *testing.T) {
	fs, _, _ := evalFile(t, "testdata/producer-risky.properties", Producer, FlavorAuto)
	byRule := map[string]Finding{}
	for _, f := range fs {
		byRule[f.Rule] = f
	}
	if f := byRule[RuleProducerAcks]; f.Line != 3 || f.Observed != "acks=1" || f.Source != SourceFile {
		t.Fatalf("acks finding %+v", f)
	}
	if f := byRule[RuleProducerRetries]; f.Line != 4 || !strings.Contains(f.Observed, "retries=0") {
		t.Fatalf("retries finding %+v", f)
	}
	if f := byRule[RuleProducerDelivery]; f.Line != 6 || !strings.Contains(f.Observed, "delivery.timeout.ms=5000") {
		t.Fatalf("delivery finding %+v", f)
	}
	// retries=0 means no retry can reorder: no in-flight finding.
	if _, ok := byRule[RuleProducerInFlight]; ok {
		t.Fatalf("in-flight finding with retries=0: %+v", byRule[RuleProducerInFlight])
	}
}

func TestClientExplicitIdempotenceWithTooManyInFlightIsAnError(t *testing.T) {
	p, _ := ParseProperties("p.properties", []byte("enable.idempotence=true\nmax.in.flight.requests.per.connection=6\n"))
	fs, _, err := EvaluateClient(NewClientConfig(p, Producer, FlavorJava), DefaultPolicy().Thresholds)
	if err != nil {
		t.Fatal(err)
	}
	if got := rules(fs); strings.Join(got, ",") != "producer-max-in-flight:error" {
		t.Fatalf("findings %v", got)
	}
}

func TestClientBadValuesAreUsageErrorsWithLine(t *testing.T) {
	p, err := LoadProperties("testdata/producer-bad-acks.properties")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = EvaluateClient(NewClientConfig(p, Producer, FlavorAuto), DefaultPolicy().Thresholds)
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "producer-bad-acks.properties:3: acks=most") {
		t.Fatalf("err = %v", err)
	}
	for _, text := range []string{"retries=lots\n", "enable.idempotence=yes\n", "max.in.flight.requests.per.connection=0\n", "delivery.timeout.ms=-1\n"} {
		p, _ := ParseProperties("p.properties", []byte(text))
		_, _, err := EvaluateClient(NewClientConfig(p, Producer, FlavorJava), DefaultPolicy().Thresholds)
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "p.properties:1:") {
			t.Fatalf("%q: err = %v", text, err)
		}
	}
}

func TestLibrdkafkaAliasesAreRead(t *testing.T) {
	p, _ := ParseProperties("r.properties", []byte("request.required.acks=1\nmessage.send.max.retries=3\nmessage.timeout.ms=1000\nenable.idempotence=true\nmax.in.flight=5\n"))
	fs, _, err := EvaluateClient(NewClientConfig(p, Producer, FlavorAuto), DefaultPolicy().Thresholds)
	if err != nil {
		t.Fatal(err)
	}
	got := rules(fs)
	want := []string{"producer-acks:error", "producer-delivery-timeout:warn", "producer-retries:warn"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("findings %v, want %v", got, want)
	}
	for _, f := range fs {
		if f.Rule == RuleProducerAcks && (f.Config != "request.required.acks" || f.Line != 1) {
			t.Fatalf("acks finding should name the librdkafka key and line: %+v", f)
		}
	}
}
