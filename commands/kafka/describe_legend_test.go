package kafka

import (
	"bytes"
	"strings"
	"testing"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// A setting a broker did not report shows as ?, and the table says what ? means.
func TestDescribeBrokersExplainsUnknown(t *testing.T) {
	v := brokersView{&kprobe.BrokersDescription{Brokers: []kprobe.Broker{
		{ID: 1, Addr: "b1:9092", Reachable: true, Configs: map[string]kprobe.ConfigValue{"min.insync.replicas": {Value: "2", Source: kprobe.SourceStaticBroker}}},
		{ID: 2, Addr: "b2:9092", Reachable: false, Error: "connection refused"},
	}}}
	var b bytes.Buffer
	if err := v.Table().Render(&b, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), " ? ") || !strings.Contains(b.String(), "?: not known") {
		t.Fatalf("no legend for ?:\n%s", b.String())
	}
	// No ? shown, no legend.
	all := map[string]kprobe.ConfigValue{}
	for _, c := range brokerColumns {
		all[c.config] = kprobe.ConfigValue{Value: "1", Source: kprobe.SourceDefault}
	}
	v.Brokers = []kprobe.Broker{{ID: 1, Addr: "b1:9092", Reachable: true, Configs: all}}
	b.Reset()
	_ = v.Table().Render(&b, false)
	if strings.Contains(b.String(), "?: not known") {
		t.Fatalf("legend without ?:\n%s", b.String())
	}
}
