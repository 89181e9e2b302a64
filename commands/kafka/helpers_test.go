package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/commands"
	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/testenv"
)

type result struct {
	out, errOut string
	err         error
	code        int
	took        time.Duration
}

// dsctl runs the whole command tree in process, as main does, with test streams and
// an environment of only env (plus a scratch HOME).
func dsctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{Version: "test"})
	home := t.TempDir()
	f.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "HOME" || k == "XDG_CONFIG_HOME" {
			return home
		}
		return ""
	}
	start := time.Now()
	err := commands.Execute(context.Background(), f, commands.NewRoot(f), args)
	commands.PrintError(ios.ErrOut, false, err)
	return result{out: out.String(), errOut: errOut.String(), err: err, code: commands.CodeFor(err), took: time.Since(start)}
}

// auditJSON runs an audit with -o json and decodes the report.
func auditJSON(t *testing.T, args ...string) (*kprobe.Report, result) {
	t.Helper()
	r := dsctl(t, nil, append([]string{"kafka", "audit", "-o", "json"}, args...)...)
	if r.code != 0 && r.code != 5 {
		t.Fatalf("audit %v: exit %d\nstderr: %s", args, r.code, r.errOut)
	}
	var rep kprobe.Report
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("audit %v: bad JSON: %v\n%s", args, err, r.out)
	}
	return &rep, r
}

// findingKeys returns "rule topic/pN" for findings at or above min whose topic starts
// with prefix; with withBrokers also "rule /bN" for broker findings and "rule cluster"
// for cluster-wide ones.
func findingKeys(rep *kprobe.Report, prefix string, min kprobe.Severity, withBrokers bool) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Severity < min {
			continue
		}
		switch {
		case f.Topic != "" && strings.HasPrefix(f.Topic, prefix):
			k := f.Rule + " " + strings.TrimPrefix(f.Topic, prefix)
			if f.Partition != nil {
				k += "/p" + strconv.Itoa(int(*f.Partition))
			}
			out = append(out, k)
		case f.Topic == "" && f.Broker != nil && withBrokers:
			out = append(out, fmt.Sprintf("%s /b%d", f.Rule, *f.Broker))
		case f.Topic == "" && f.Broker == nil && f.File == "" && withBrokers:
			out = append(out, f.Rule+" cluster")
		}
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func same(a, b []string) bool {
	return strings.Join(sorted(a), "\n") == strings.Join(sorted(b), "\n")
}

// cluster is the harness's real Kafka, with topics this test creates under a unique
// prefix and deletes at the end.
type cluster struct {
	t       *testing.T
	brokers []string
	admin   sarama.ClusterAdmin
	prefix  string
}

func realCluster(t *testing.T) *cluster {
	t.Helper()
	brokers := testenv.List(t, testenv.Kafka)
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
	c := &cluster{t: t, brokers: brokers, admin: admin, prefix: fmt.Sprintf("dsctl-test-%s-", strconv.FormatInt(time.Now().UnixNano(), 36))}
	t.Cleanup(func() {
		topics, err := admin.ListTopics()
		if err == nil {
			for name := range topics {
				if strings.HasPrefix(name, c.prefix) {
					if err := admin.DeleteTopic(name); err != nil {
						t.Logf("cleanup: delete %s: %v", name, err)
					}
				}
			}
		}
		admin.Close()
	})
	return c
}

func (c *cluster) bootstrap() string { return strings.Join(c.brokers, ",") }

// create makes a topic under the prefix; assignment (partition -> brokers) overrides
// partitions and rf.
func (c *cluster) create(name string, partitions int32, rf int16, configs map[string]string, assignment map[int32][]int32) {
	c.t.Helper()
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = &v
	}
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: entries}
	if assignment != nil {
		detail.NumPartitions, detail.ReplicationFactor, detail.ReplicaAssignment = -1, -1, assignment
	}
	if err := c.admin.CreateTopic(c.prefix+name, detail, false); err != nil {
		c.t.Fatalf("create %s: %v", name, err)
	}
}

// setClusterDefault sets (or with value nil deletes) a dynamic cluster-wide broker
// default, as kafka-configs.sh --entity-type brokers --entity-default does.
func (c *cluster) setClusterDefault(name string, value *string) {
	c.t.Helper()
	op := sarama.IncrementalAlterConfigsOperationSet
	if value == nil {
		op = sarama.IncrementalAlterConfigsOperationDelete
	}
	err := c.admin.IncrementalAlterConfig(sarama.BrokerResource, "", map[string]sarama.IncrementalAlterConfigsEntry{
		name: {Operation: op, Value: value},
	}, false)
	if err != nil {
		c.t.Fatalf("set cluster default %s: %v", name, err)
	}
}

// eventually runs check until it returns "" or the deadline passes, then fails with
// the last complaint.
func eventually(t *testing.T, within time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, within, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
