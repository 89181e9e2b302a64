package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/testenv"
)

func TestParseThreshold(t *testing.T) {
	cases := []struct {
		in   string
		want Threshold
		str  string
	}{
		{"", Threshold{}, ""},
		{"none", Threshold{Never: true}, "none"},
		{"NONE", Threshold{Never: true}, "none"},
		{"warn", Threshold{Severity: Warn}, "warn"},
		{" Error ", Threshold{Severity: Error}, "error"},
		{"critical", Threshold{Severity: Critical}, "critical"},
	}
	for _, c := range cases {
		got, err := ParseThreshold(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseThreshold(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	if _, err := ParseThreshold("fatal"); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), `"fatal"`) {
		t.Errorf("ParseThreshold(fatal): %v, want a usage error naming the input", err)
	}
}

func TestSeverityAtLeast(t *testing.T) {
	if !Error.AtLeast(Warn) || !Warn.AtLeast(Warn) || Info.AtLeast(Warn) || Critical.AtLeast(0) {
		t.Fatal("AtLeast disagrees with the severity order")
	}
}

// A clients-only audit needs no cluster: it runs in-process on the testdata files.
func TestRunAuditClientsOnly(t *testing.T) {
	risky := FileInput{Path: filepath.Join("testdata", "producer-risky.properties")}
	base := AuditRequest{ClientsOnly: true, ProducerConfigs: []FileInput{risky}}

	req := base
	req.FailOn = Threshold{Severity: Error}
	rep, err := RunAudit(context.Background(), endpoint.Dialer{}, endpoint.Kafka{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cluster != nil || rep.Requests != nil || rep.Snapshot != nil {
		t.Fatalf("clients-only audit touched the cluster: %+v (snapshot %v)", rep.Report, rep.Snapshot)
	}
	wantFailing := 0
	for _, f := range rep.Findings {
		if f.Severity >= Error {
			wantFailing++
		}
	}
	if wantFailing == 0 || rep.Failing != wantFailing || !rep.Failed || rep.Threshold != Error || rep.FailOn != "error" {
		t.Fatalf("failing %d (threshold %s, failed %v), want %d at or above error in %+v", rep.Failing, rep.Threshold, rep.Failed, wantFailing, rep.Findings)
	}

	// --fail-on none wins over a policy's fail_on.
	req = base
	req.Policy = FileInput{Path: "policy.yaml", Data: []byte("version: 1\nfail_on: info\n")}
	rep, err = RunAudit(context.Background(), endpoint.Dialer{}, endpoint.Kafka{}, req)
	if err != nil || !rep.Failed || rep.Threshold != Info || rep.Failing != len(rep.Findings) {
		t.Fatalf("policy fail_on info: failed %v threshold %s failing %d of %d, %v", rep.Failed, rep.Threshold, rep.Failing, len(rep.Findings), err)
	}
	req.FailOn = Threshold{Never: true}
	rep, err = RunAudit(context.Background(), endpoint.Dialer{}, endpoint.Kafka{}, req)
	if err != nil || rep.Failed || rep.Threshold != 0 || rep.Failing != 0 || rep.FailOn != "" {
		t.Fatalf("--fail-on none: failed %v threshold %s failing %d fail_on %q, %v", rep.Failed, rep.Threshold, rep.Failing, rep.FailOn, err)
	}

	// A baseline written by one run makes the next one pass.
	dir := t.TempDir()
	req = base
	req.FailOn = Threshold{Severity: Warn}
	req.WriteBaseline = filepath.Join(dir, "baseline.json")
	rep, err = RunAudit(context.Background(), endpoint.Dialer{}, endpoint.Kafka{}, req)
	if err != nil || rep.BaselineWritten != len(rep.Findings) || rep.BaselineWritten == 0 {
		t.Fatalf("write baseline: %d written of %d, %v", rep.BaselineWritten, len(rep.Findings), err)
	}
	req.WriteBaseline, req.Baseline = "", FileInput{Path: filepath.Join(dir, "baseline.json")}
	rep, err = RunAudit(context.Background(), endpoint.Dialer{}, endpoint.Kafka{}, req)
	if err != nil || rep.Failed || rep.Failing != 0 || rep.Summary.Baselined != len(rep.Findings) {
		t.Fatalf("with baseline: failed %v failing %d baselined %d of %d, %v", rep.Failed, rep.Failing, rep.Summary.Baselined, len(rep.Findings), err)
	}
}

func TestLoadAuditRejectsBadInputs(t *testing.T) {
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(badPolicy, []byte("version: 1\nfail_on: fatal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  AuditRequest
		want string
	}{
		{"clients-only without files", AuditRequest{ClientsOnly: true}, "--clients-only needs"},
		{"bad policy", AuditRequest{Policy: FileInput{Path: badPolicy}}, "policy.yaml"},
		{"missing baseline", AuditRequest{Baseline: FileInput{Path: filepath.Join(dir, "nope.json")}}, "nope.json"},
		{"bad topic pattern", AuditRequest{Topics: []string{"orders("}}, "orders("},
	}
	for _, c := range cases {
		_, err := LoadAudit(c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// realTopic creates a topic on the harness's Kafka and deletes it at the end.
func realTopic(t *testing.T, brokers []string, rf int16, configs map[string]string) string {
	t.Helper()
	d := endpoint.Dialer{Timeout: 10 * time.Second}
	client, err := d.ConnectKafka(context.Background(), endpoint.Kafka{Brokers: brokers})
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	name := fmt.Sprintf("dsctl-test-run-%s", strconv.FormatInt(time.Now().UnixNano(), 36))
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = &v
	}
	if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: rf, ConfigEntries: entries}, false); err != nil {
		admin.Close()
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := admin.DeleteTopic(name); err != nil {
			t.Logf("cleanup: delete %s: %v", name, err)
		}
		admin.Close()
	})
	return name
}

// RunAudit against the real cluster: one topic with replication factor 1 is an error
// finding, counted as failing at --fail-on error, with the request count reported.
func TestRunAuditRealCluster(t *testing.T) {
	brokers := testenv.List(t, testenv.Kafka)
	name := realTopic(t, brokers, 1, nil)
	req := AuditRequest{Topics: []string{regexpQuote(name)}, FailOn: Threshold{Severity: Error}}
	a, err := LoadAudit(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep *AuditReport
	deadline := time.Now().Add(20 * time.Second)
	for {
		rep, err = a.Run(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: brokers})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Cluster.TopicsAudited == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond) // metadata lags topic creation on some brokers
	}
	if rep.Cluster == nil || rep.Cluster.TopicsAudited != 1 || rep.Requests == nil || rep.Requests.Total == 0 {
		t.Fatalf("cluster %+v requests %+v", rep.Cluster, rep.Requests)
	}
	rf1 := 0
	for _, f := range rep.Findings {
		if f.Topic == name && f.Rule == "topic-replication-factor" && f.Severity == Error {
			rf1++
		}
	}
	if rf1 != 1 {
		t.Fatalf("want one error topic-replication-factor finding for %s, got %+v", name, rep.Findings)
	}
	if rep.Snapshot == nil || len(rep.Snapshot.Topics) != 1 || rep.Snapshot.Topics[0].Name != name || rep.Cluster.Bootstrap != brokers[0] {
		t.Fatalf("snapshot %+v, bootstrap %q: want the topic read and the first broker %q", rep.Snapshot, rep.Cluster.Bootstrap, brokers[0])
	}
	if !rep.Failed || rep.Failing != FailingCount(rep.Findings, Error) || rep.Failing < 1 {
		t.Fatalf("failed %v failing %d (recount %d)", rep.Failed, rep.Failing, FailingCount(rep.Findings, Error))
	}

	// A pattern that matches nothing is a note, not an error.
	rep, err = RunAudit(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: brokers},
		AuditRequest{Topics: []string{name + "-no-such"}})
	if err != nil || rep.NoTopicMatched == "" || rep.Cluster.TopicsAudited != 0 {
		t.Fatalf("no match: note %q audited %d, %v", rep.NoTopicMatched, rep.Cluster.TopicsAudited, err)
	}

	// A request's Bootstrap is what the report and the fix commands name.
	all := strings.Join(brokers, ",")
	rep, err = RunAudit(context.Background(), endpoint.Dialer{Timeout: 10 * time.Second}, endpoint.Kafka{Brokers: brokers},
		AuditRequest{Topics: []string{regexpQuote(name)}, Bootstrap: all})
	if err != nil || rep.Cluster.Bootstrap != all {
		t.Fatalf("bootstrap %q, want %q, %v", rep.Cluster.Bootstrap, all, err)
	}
	named := 0
	for _, f := range rep.Findings {
		if f.Topic == name && f.Rule == "topic-replication-factor" && strings.Contains(f.Fix, "--bootstrap-server "+all+" ") {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("want the replication-factor fix to name --bootstrap-server %s, findings %+v", all, rep.Findings)
	}
}

func regexpQuote(s string) string { return strings.NewReplacer(".", `\.`, "-", `\-`).Replace(s) }
