package kafka

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// GroupsOptions are the flags of `dsctl kafka groups`.
type GroupsOptions struct {
	Brokers []string
	Groups  []string
	Sample  time.Duration
	// FailOnLag, when >= 0, fails (exit 5) when a group's total lag exceeds it.
	FailOnLag   int64
	FailOnStuck bool
	// Partitions forces one row per partition in the table even for several groups.
	Partitions bool
	// Wait replaces the sample timer (tests).
	Wait func(ctx context.Context, d time.Duration) error
}

const groupsLong = `Consumer groups: state, members, committed offset, end offset (high watermark) and
lag of every partition, total lag per group, and stuck partitions.

Without GROUP, every group the brokers coordinate (one row per group); with one or
more GROUP, one row per partition (--partitions forces those rows for every group).
A partition assigned to a member but without a committed offset shows lag "-" and is
not in the total.

Stuck: dsctl takes two snapshots --sample apart (default 10s) and marks a partition
stuck when its lag grew while the group's committed offset did not move: the group
is stopped, crashed, or blocked on that partition. --sample 0 takes one snapshot
(no stuck detection, fastest).

What the broker cannot show: a committed offset says the client committed it, not
that it processed the messages. A consumer that commits before processing
(enable.auto.commit=true, or a manual commit before the work) loses messages when it
crashes, while its lag looks healthy. Lint the client settings with
  dsctl kafka audit --clients-only --consumer-config consumer.properties

Requests are batched per broker, never one per partition or per group: ListGroups to
every broker (FindCoordinator per named group instead, when there are no more named
groups than brokers), then per coordinator one DescribeGroups and one OffsetFetch for
all its groups, then per partition leader one ListOffsets for all its partitions
(plus one Metadata, and ApiVersions per connection); with --sample the
DescribeGroups, OffsetFetch and ListOffsets round runs twice. -o json counts them
under "requests".

--fail-on-lag N exits 5 when any group's total lag (the sum over its partitions) is
above N; a partition's lag never exceeds its group's total, so this also catches one
partition above N. --fail-on-stuck exits 5 when a partition is stuck. The report is
printed first. A named group that does not exist is exit 2; a broker that fails a
request makes the report incomplete: it is printed, then exit 6.

JSON keys: groups[{group, coordinator, state, protocol_type, protocol, members[{
member_id, group_instance_id, client_id, client_host, assigned{topic: [partitions]}}],
partitions[{topic, partition, committed_offset, end_offset, lag, member_id, client_id,
committed_change, lag_change, stuck, error}], total_lag, max_lag, stuck, error}],
sample_seconds, broker_errors[{broker, request, error}], requests{total, by_api},
fail_on_lag, fail_on_stuck, failed, notes. Offsets and lags are JSON numbers
(exact: Kafka offsets stay far below 2^53); committed_offset, end_offset and lag are
null when unknown, committed_change and lag_change null without a sample.`

func newGroupsCmd(f *cmdutil.Factory, brokers *[]string) *cobra.Command {
	o := &GroupsOptions{}
	cmd := &cobra.Command{
		Use:   "groups [GROUP...]",
		Short: "Consumer groups: state, members, committed offsets, lag per partition and total, stuck partitions",
		Long:  groupsLong,
		Example: `  dsctl kafka groups --brokers 127.0.0.1:19092
  dsctl kafka groups orders-consumer --sample 30s
  dsctl kafka groups --sample 0 --fail-on-lag 10000 -o json
  dsctl kafka groups billing --fail-on-stuck`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Brokers, o.Groups = *brokers, args
			if !cmd.Flags().Changed("fail-on-lag") {
				o.FailOnLag = -1
			} else if o.FailOnLag < 0 {
				return errs.Usage("--fail-on-lag %d is negative", o.FailOnLag).WithHint("give the largest total lag a group may have, e.g. --fail-on-lag 10000")
			}
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunGroups(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.Sample, "sample", 10*time.Second, "time between the two snapshots that find stuck partitions (0: one snapshot)")
	fl.Int64Var(&o.FailOnLag, "fail-on-lag", 0, "exit 5 when a group's total lag is above N")
	fl.BoolVar(&o.FailOnStuck, "fail-on-stuck", false, "exit 5 when a partition is stuck (needs --sample above 0)")
	fl.BoolVar(&o.Partitions, "partitions", false, "one table row per partition even without a GROUP argument")
	return cmd
}

// GroupsView is what `kafka groups` prints.
type GroupsView struct {
	*kprobe.GroupsReport
	FailOnLag    *int64 `json:"fail_on_lag"`
	FailOnStuck  bool   `json:"fail_on_stuck"`
	Failed       bool   `json:"failed"`
	perPartition bool
}

// RunGroups reads the groups, prints them, and fails (exit 5) per --fail-on-lag and
// --fail-on-stuck.
func RunGroups(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *GroupsOptions) error {
	if err := checkSandboxBrokers(f, o.Brokers); err != nil {
		return err
	}
	if o.Sample < 0 {
		return errs.Usage("--sample %s is negative", o.Sample).WithHint("use e.g. --sample 10s, or --sample 0 for one snapshot")
	}
	if o.FailOnStuck && o.Sample == 0 {
		return errs.Usage("--fail-on-stuck needs two snapshots, but --sample is 0").WithHint("use e.g. --sample 10s")
	}
	e, err := f.Endpoints(ctx, config.Overrides{Kafka: o.Brokers})
	if err != nil {
		return err
	}
	if o.Sample > 0 {
		f.IO.Infof("kafka: sampling consumer groups for %s to find stuck partitions (--sample 0 for one snapshot)", o.Sample)
	}
	counter := &endpoint.RequestCounter{}
	rep, err := kprobe.Groups(ctx, f.Dialer(), e.Kafka, kprobe.GroupsOptions{Groups: o.Groups, Sample: o.Sample, Counter: counter, Wait: o.Wait})
	if err != nil {
		return err
	}
	rep.Requests = requests(counter)
	if len(rep.Groups) == 0 {
		msg := "no consumer group: a group appears once a consumer joins it or commits an offset"
		if f.Global.Sandbox {
			msg += "; --sandbox starts a cluster with topics but no group, discarded on exit: run dsctl sandbox, point a consumer with a group id at its brokers, then dsctl kafka groups --brokers ADDRS"
		}
		rep.Notes = append([]string{msg}, rep.Notes...)
	}
	v := &GroupsView{GroupsReport: rep, FailOnStuck: o.FailOnStuck, perPartition: o.Partitions || len(o.Groups) > 0}
	var over []string
	stuck := 0
	if o.FailOnLag >= 0 {
		v.FailOnLag = &o.FailOnLag
		for _, g := range rep.Groups {
			if g.TotalLag > o.FailOnLag {
				over = append(over, fmt.Sprintf("%s (%d)", g.Group, g.TotalLag))
			}
		}
	}
	if o.FailOnStuck {
		for _, g := range rep.Groups {
			stuck += g.Stuck
		}
	}
	v.Failed = len(over) > 0 || stuck > 0
	if err := p.Print(v); err != nil {
		return err
	}
	switch {
	case len(rep.BrokerErrors) > 0:
		be := rep.BrokerErrors[0]
		return errs.New(errs.KindUnreachable, "kafka groups: the report is incomplete: broker %d failed %s: %s", be.Broker, be.Request, be.Error).
			WithHint("the groups or partitions it serves are missing or marked; check the broker, or rerun")
	case len(over) > 0:
		return errs.New(errs.KindAuditFailed, "kafka groups: total lag above --fail-on-lag %d: %s", o.FailOnLag, strings.Join(over, ", "))
	case stuck > 0:
		return errs.New(errs.KindAuditFailed, "kafka groups: %s stuck (lag grew while the committed offset did not move over %s)", output.Plural(stuck, "partition"), o.Sample)
	}
	return nil
}

// Table shows one row per group, or one per partition for named groups.
func (v *GroupsView) Table() *output.TableData {
	var t *output.TableData
	if v.perPartition {
		t = v.partitionTable()
	} else {
		t = v.groupTable()
	}
	for _, be := range v.BrokerErrors {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("broker %d: %s: %s (its groups or partitions are missing or marked)", be.Broker, be.Request, be.Error), output.Error))
	}
	sample := "one snapshot (no stuck detection)"
	if v.SampleSeconds > 0 {
		sample = fmt.Sprintf("sampled over %.1fs", v.SampleSeconds)
	}
	t.Notes = append(t.Notes, output.S(fmt.Sprintf("%s; %s; %s sent", output.Plural(len(v.Groups), "group"), sample, output.Plural(v.Requests.Total, "request")), output.Dim))
	for _, n := range v.Notes {
		t.Notes = append(t.Notes, output.S("note: "+n, output.Dim))
	}
	return t
}

func (v *GroupsView) lagCell(lag int64) output.Cell {
	switch {
	case v.FailOnLag != nil && lag > *v.FailOnLag:
		return output.S(strconv.FormatInt(lag, 10), output.Error)
	case lag == 0:
		return output.S("0", output.Dim)
	}
	return output.C(strconv.FormatInt(lag, 10))
}

func stateCell(state string) output.Cell {
	switch state {
	case "Stable":
		return output.S(state, output.OK)
	case "Empty", "Dead":
		return output.S(state, output.Warn)
	case "PreparingRebalance", "CompletingRebalance":
		return output.S(state, output.Info)
	case "":
		return output.S("?", output.Dim)
	}
	return output.C(state)
}

func (v *GroupsView) groupTable() *output.TableData {
	t := &output.TableData{
		Header:     []string{"group", "state", "members", "topics", "partitions", "total lag", "max lag", "stuck", "coordinator"},
		RightAlign: map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true},
	}
	for _, g := range v.Groups {
		topics := map[string]bool{}
		for _, p := range g.Partitions {
			topics[p.Topic] = true
		}
		stuck := output.S("0", output.Dim)
		if g.Stuck > 0 {
			stuck = output.S(strconv.Itoa(g.Stuck), output.Critical)
		} else if v.SampleSeconds == 0 {
			stuck = output.S("-", output.Dim)
		}
		t.AddCells(output.C(g.Group), stateCell(g.State), output.C(strconv.Itoa(len(g.Members))), output.C(strconv.Itoa(len(topics))),
			output.C(strconv.Itoa(len(g.Partitions))), v.lagCell(g.TotalLag), output.C(strconv.FormatInt(g.MaxLag, 10)), stuck, output.C(coordinatorText(g.Coordinator)))
		if g.Error != "" {
			t.Notes = append(t.Notes, output.S(g.Group+": "+g.Error, output.Error))
		}
	}
	return t
}

func coordinatorText(id int32) string {
	if id < 0 {
		return "?"
	}
	return strconv.Itoa(int(id))
}

func (v *GroupsView) partitionTable() *output.TableData {
	t := &output.TableData{
		Header:     []string{"group", "state", "topic", "partition", "committed", "end", "lag", "lag change", "member", "note"},
		RightAlign: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true},
	}
	num := func(n *int64) output.Cell {
		if n == nil {
			return output.S("-", output.Dim)
		}
		return output.C(strconv.FormatInt(*n, 10))
	}
	for _, g := range v.Groups {
		if len(g.Partitions) == 0 {
			t.AddCells(output.C(g.Group), stateCell(g.State), output.S("(no committed offsets, no assignment)", output.Dim),
				output.C(""), output.C(""), output.C(""), output.C(""), output.C(""), output.C(""), output.C(""))
		}
		for _, p := range g.Partitions {
			lag := output.S("-", output.Dim)
			if p.Lag != nil {
				lag = v.lagCell(*p.Lag)
			}
			change := output.S("-", output.Dim)
			if p.LagChange != nil {
				s := strconv.FormatInt(*p.LagChange, 10)
				if *p.LagChange > 0 {
					s = "+" + s
				}
				change = output.C(s)
			}
			note := output.C("")
			switch {
			case p.Error != "":
				note = output.S(p.Error, output.Error)
			case p.Stuck:
				note = output.S(fmt.Sprintf("STUCK: lag +%d, committed offset did not move", *p.LagChange), output.Critical)
			case p.CommittedOffset == nil:
				note = output.S("no committed offset", output.Dim)
			}
			owner := p.ClientID
			if owner == "" && p.MemberID != "" {
				owner = p.MemberID
			}
			if owner == "" {
				owner = "-"
			}
			t.AddCells(output.C(g.Group), stateCell(g.State), output.C(p.Topic), output.C(strconv.Itoa(int(p.Partition))),
				num(p.CommittedOffset), num(p.EndOffset), lag, change, output.C(owner), note)
		}
		summary := fmt.Sprintf("%s: %s, %s, total lag %d", g.Group, orUnknown(g.State), output.Plural(len(g.Members), "member"), g.TotalLag)
		if g.Stuck > 0 {
			summary += fmt.Sprintf(", %s stuck", output.Plural(g.Stuck, "partition"))
		}
		if hosts := memberHosts(g.Members); hosts != "" {
			summary += "; members: " + hosts
		}
		t.Notes = append(t.Notes, output.S(summary, output.Bold))
		if g.Error != "" {
			t.Notes = append(t.Notes, output.S(g.Group+": "+g.Error, output.Error))
		}
	}
	return t
}

func orUnknown(s string) string {
	if s == "" {
		return "state unknown"
	}
	return s
}

// memberHosts lists "client_id@host" for each member, sorted and counted when repeated.
func memberHosts(ms []kprobe.GroupMember) string {
	count := map[string]int{}
	for _, m := range ms {
		count[m.ClientID+"@"+m.ClientHost]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if count[k] > 1 {
			keys[i] = fmt.Sprintf("%s x%d", k, count[k])
		}
	}
	return strings.Join(keys, ", ")
}
