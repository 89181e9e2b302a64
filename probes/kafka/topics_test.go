package kafka

import "testing"

func TestSummarizeTopics(t *testing.T) {
	snap := &Snapshot{Brokers: append(brokers(1, 2), Broker{ID: 3, Addr: "b3:9092", Reachable: false}), Topics: []Topic{
		topic("orders", "2",
			part(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), // healthy
			part(1, 2, []int32{2, 3, 1}, []int32{2, 1}),    // under-replicated, at min ISR
			part(2, 1, []int32{1, 2, 3}, []int32{1}),       // under min ISR
			part(3, 3, []int32{3, 1, 2}, []int32{3, 1, 2}), // leader down: offline
			part(4, -1, []int32{1, 2, 3}, []int32{})),      // no leader
		{Name: "noconf", Partitions: []Partition{part(0, 1, []int32{1, 2}, []int32{1, 2})}},
	}}
	got := SummarizeTopics(snap)
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	o := got[0]
	if o.Partitions != 5 || o.ReplicationFactor != 3 || o.MinInsyncReplicas == nil || *o.MinInsyncReplicas != 2 ||
		o.MinInsyncReplicasSource != SourceTopic || o.UnderReplicated != 3 || o.AtMinISR != 1 || o.UnderMinISR != 2 || o.Offline != 2 {
		t.Errorf("orders: %+v", o)
	}
	n := got[1]
	if n.MinInsyncReplicas != nil || n.MinInsyncReplicasSource != SourceUnknown || n.ReplicationFactor != 2 || n.AtMinISR != 0 {
		t.Errorf("noconf: %+v", n)
	}
}
