package kafka

import (
	"bytes"
	"strings"
	"testing"

	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

func i64(v int64) *int64 { return &v }

// The tables say what each partition's state means: stuck, no committed offset, an
// error; the group table counts; lags above --fail-on-lag are flagged.
func TestGroupsTables(t *testing.T) {
	rep := &kprobe.GroupsReport{
		SampleSeconds: 10,
		Requests:      &kprobe.Requests{Total: 9},
		Notes:         []string{kprobe.ConsumerLossNote},
		Groups: []kprobe.GroupLag{{
			Group: "billing", Coordinator: 2, State: "Empty", TotalLag: 12, MaxLag: 12, Stuck: 1,
			Members: []kprobe.GroupMember{},
			Partitions: []kprobe.PartitionLag{
				{Topic: "orders", Partition: 0, CommittedOffset: i64(5), EndOffset: i64(17), Lag: i64(12), LagChange: i64(4), CommittedChange: i64(0), Stuck: true},
				{Topic: "orders", Partition: 1, EndOffset: i64(3)},
				{Topic: "orders", Partition: 2, CommittedOffset: i64(1), Error: "leader 3 did not answer ListOffsets: no answer (timeout)"},
			},
		}},
	}
	render := func(v *GroupsView) string {
		var b bytes.Buffer
		if err := v.Table().Render(&b, false); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	parts := render(&GroupsView{GroupsReport: rep, FailOnLag: i64(10), perPartition: true})
	for _, want := range []string{
		"STUCK: lag +4, committed offset did not move",
		"no committed offset",
		"leader 3 did not answer ListOffsets",
		"billing: Empty, 0 members, total lag 12, 1 partition stuck",
		"1 group; sampled over 10.0s; 9 requests sent",
		"--consumer-config",
	} {
		if !strings.Contains(parts, want) {
			t.Errorf("partition table misses %q:\n%s", want, parts)
		}
	}
	groups := render(&GroupsView{GroupsReport: rep})
	lines := strings.Split(groups, "\n")
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "billing Empty 0 1 3 12 12 1 2" {
		t.Errorf("group row: %q\n%s", lines[1], groups)
	}
}
