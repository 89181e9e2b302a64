package endpoint

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dsctl/dsctl/probes/errs"
)

// kfake (in process) stands in for TLS and SASL listeners, which the harness's real
// cluster does not have.

func TestKafkaBootstrapCountsRequestsThroughTLS(t *testing.T) {
	caFile, serverTLS := writeCA(t, t.TempDir())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.TLS(serverTLS), kfake.SeedTopics(2, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	counter := &RequestCounter{}
	d := Dialer{Timeout: 3 * time.Second}
	s, err := d.KafkaBootstrap(context.Background(), Kafka{Brokers: cluster.ListenAddrs(), TLS: &TLS{CA: caFile}}, KafkaSessionOptions{Counter: counter})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Metadata.Topics) != 2 || len(s.Metadata.Brokers) != 2 || s.SeedID < 0 {
		t.Fatalf("metadata: %d topics, %d brokers, seed id %d", len(s.Metadata.Topics), len(s.Metadata.Brokers), s.SeedID)
	}
	for _, b := range s.Metadata.Brokers {
		conn, err := s.Broker(b.ID())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.GetMetadata(sarama.NewMetadataRequest(s.Config.Version, []string{"a"})); err != nil {
			t.Fatalf("broker %d over TLS: %v", b.ID(), err)
		}
	}
	// Seed: ApiVersions + Metadata; the seed again (reused): Metadata; the other broker:
	// ApiVersions + Metadata.
	by := counter.ByAPI()
	if by["ApiVersions"] != 2 || by["Metadata"] != 3 || counter.Total() != 5 {
		t.Fatalf("counted %s, want 2 ApiVersions and 3 Metadata", counter)
	}
}

func TestKafkaBootstrapSkipsDeadSeedsAndNamesThemWhenAllFail(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	d := Dialer{Timeout: 2 * time.Second}
	dead := deadAddr(t)
	s, err := d.KafkaBootstrap(context.Background(), Kafka{Brokers: append([]string{dead}, cluster.ListenAddrs()...)}, KafkaSessionOptions{})
	if err != nil {
		t.Fatalf("one dead seed among two: %v", err)
	}
	s.Close()

	_, err = d.KafkaBootstrap(context.Background(), Kafka{Brokers: []string{dead}}, KafkaSessionOptions{})
	if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), dead) {
		t.Fatalf("dead seed: %v", err)
	}
	// A listener that accepts and never answers: unreachable within the timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = (Dialer{Timeout: time.Second}).KafkaBootstrap(context.Background(), Kafka{Brokers: []string{l.Addr().String()}}, KafkaSessionOptions{})
	if errs.KindOf(err) != errs.KindUnreachable || time.Since(start) > 2*time.Second {
		t.Fatalf("silent broker: %v after %s", err, time.Since(start))
	}

	// A silent seed first (a paused broker) must not eat the whole timeout: the next seed
	// starts after a short stagger and answers.
	start = time.Now()
	s, err = (Dialer{Timeout: 4 * time.Second}).KafkaBootstrap(context.Background(),
		Kafka{Brokers: append([]string{l.Addr().String()}, cluster.ListenAddrs()...)}, KafkaSessionOptions{})
	if err != nil {
		t.Fatalf("silent seed then a live one: %v", err)
	}
	s.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("silent first seed cost %s of a 4s timeout; the next seed should start after a short stagger", took)
	}
}

func TestKafkaBootstrapAuthenticationFailure(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "admin", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	t.Setenv("DSCTL_TEST_SESSION_PW", "wrong")
	ep := Kafka{Brokers: cluster.ListenAddrs(), SASL: &SASL{Mechanism: "SCRAM-SHA-512", Username: "admin", Password: Secret{Env: "DSCTL_TEST_SESSION_PW"}}}
	_, err = (Dialer{Timeout: 2 * time.Second}).KafkaBootstrap(context.Background(), ep, KafkaSessionOptions{})
	if err == nil || errs.KindOf(err) == errs.KindUnreachable || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Setenv("DSCTL_TEST_SESSION_PW", "right")
	s, err := (Dialer{Timeout: 2 * time.Second}).KafkaBootstrap(context.Background(), ep, KafkaSessionOptions{Counter: &RequestCounter{}})
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	s.Close()
}

// deadAddr is a loopback address with nothing listening.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
