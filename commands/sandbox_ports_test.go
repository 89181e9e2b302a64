package commands

import (
	"strings"
	"testing"
)

// Each port flag of `dsctl sandbox` has its own range and is named when refused:
// Redis and ZooKeeper may use 65535; Kafka takes three consecutive ports.
func TestSandboxPortRangesPerFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis-port", "65536"}, "--redis-port 65536 is out of range (0 for any free port, else 1-65535)"},
		{[]string{"--zk-port", "-1"}, "--zk-port -1 is out of range (0 for any free port, else 1-65535)"},
		{[]string{"--kafka-port", "65534"}, "--kafka-port 65534 is out of range (0 for any free port, else 1-65533; the three brokers take it and the next two)"},
	} {
		r := dsctlIn(t, "", append([]string{"sandbox"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("sandbox %v: exit %d, %v; want exit 2 and %q", c.args, r.code, r.err, c.want)
		}
	}
}
