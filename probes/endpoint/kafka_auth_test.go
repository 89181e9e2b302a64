package endpoint

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dsctl/dsctl/probes/errs"
)

// kfake (in process) stands in for a SASL/TLS Kafka: the harness's real cluster runs
// PLAINTEXT only, and these paths need a broker that checks credentials.

func TestKafkaSASLMechanismsAgainstKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpw"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pw256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pw512"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	d := Dialer{Timeout: 3 * time.Second}
	ctx := context.Background()

	for _, tc := range []struct{ mech, user, pw string }{
		{"PLAIN", "plainuser", "plainpw"}, {"SCRAM-SHA-256", "scram256", "pw256"}, {"SCRAM-SHA-512", "scram512", "pw512"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			t.Setenv("DSCTL_TEST_KAFKA_SASL_PW", tc.pw)
			ep := Kafka{Brokers: brokers, SASL: &SASL{Mechanism: tc.mech, Username: tc.user, Password: Secret{Env: "DSCTL_TEST_KAFKA_SASL_PW"}}}
			c, err := d.ConnectKafka(ctx, ep)
			if err != nil {
				t.Fatalf("%s: %v", tc.mech, err)
			}
			if n := len(c.Brokers()); n != 1 {
				t.Fatalf("brokers = %d", n)
			}
			c.Close()

			t.Setenv("DSCTL_TEST_KAFKA_SASL_PW", "wrong-"+tc.pw)
			_, err = d.ConnectKafka(ctx, ep)
			if err == nil {
				t.Fatal("wrong password accepted")
			}
			if errs.KindOf(err) == errs.KindUnreachable || !strings.Contains(err.Error(), "authentication failed") {
				t.Fatalf("wrong password: want a clear authentication error, got %v", err)
			}
			if strings.Contains(err.Error(), "wrong-"+tc.pw) {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestKafkaTLSWithConfiguredCA(t *testing.T) {
	caFile, serverTLS := writeCA(t, t.TempDir())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	d := Dialer{Timeout: 3 * time.Second}
	c, err := d.ConnectKafka(context.Background(), Kafka{Brokers: cluster.ListenAddrs(), TLS: &TLS{CA: caFile}})
	if err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	c.Close()
	if _, err := d.ConnectKafka(context.Background(), Kafka{Brokers: cluster.ListenAddrs(), TLS: &TLS{Enabled: true}}); err == nil {
		t.Fatal("untrusted TLS broker accepted")
	}
}
