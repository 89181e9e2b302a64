package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// ConsumerLossNote is what every groups report says about the loss the broker cannot see.
const ConsumerLossNote = "a committed offset says the client committed it, not that it processed the messages: " +
	"a consumer that commits before processing (enable.auto.commit=true, or a manual commit before the work) " +
	"loses messages when it crashes, and the broker cannot see it; lint the client settings with " +
	"dsctl kafka audit --clients-only --consumer-config consumer.properties"

// GroupsOptions choose what `kafka groups` reads.
type GroupsOptions struct {
	// Groups are the group ids to report; none means every group the brokers list.
	Groups []string
	// Sample is the time between the two snapshots that find stuck partitions; 0 takes
	// one snapshot.
	Sample time.Duration
	// Counter counts the requests sent.
	Counter *endpoint.RequestCounter
	// Wait waits for the sample interval (tests may shorten it); nil uses a timer.
	Wait func(ctx context.Context, d time.Duration) error
}

// GroupsReport is the result of `kafka groups`.
type GroupsReport struct {
	Groups []GroupLag `json:"groups"`
	// SampleSeconds is the time between the two snapshots (0: one snapshot, no stuck
	// detection).
	SampleSeconds float64 `json:"sample_seconds"`
	// BrokerErrors lists brokers that did not answer; their groups or partitions are
	// missing or carry an error.
	BrokerErrors []BrokerError `json:"broker_errors"`
	Requests     *Requests     `json:"requests"`
	Notes        []string      `json:"notes"`
}

// BrokerError is a broker that failed a request.
type BrokerError struct {
	Broker  int32  `json:"broker"`
	Request string `json:"request"`
	Error   string `json:"error"`
}

// GroupLag is one consumer group: its state, members and the lag of every partition it
// has a committed offset on or is assigned.
type GroupLag struct {
	Group        string         `json:"group"`
	Coordinator  int32          `json:"coordinator"`
	State        string         `json:"state"`
	ProtocolType string         `json:"protocol_type"`
	Protocol     string         `json:"protocol"`
	Members      []GroupMember  `json:"members"`
	Partitions   []PartitionLag `json:"partitions"`
	// TotalLag sums the lag of the partitions where it is known.
	TotalLag int64 `json:"total_lag"`
	// MaxLag is the largest partition lag.
	MaxLag int64 `json:"max_lag"`
	// Stuck counts the partitions whose lag grew while the committed offset stayed.
	Stuck int    `json:"stuck"`
	Error string `json:"error,omitempty"`
}

// GroupMember is one member of a group and the partitions assigned to it.
type GroupMember struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"group_instance_id"`
	ClientID   string  `json:"client_id"`
	ClientHost string  `json:"client_host"`
	// Assigned maps topic -> partitions (consumer protocol groups only).
	Assigned map[string][]int32 `json:"assigned"`
}

// PartitionLag is one partition of a group. Offsets are JSON numbers (Kafka offsets
// stay far below 2^53).
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CommittedOffset is null when the group has no committed offset there.
	CommittedOffset *int64 `json:"committed_offset"`
	// EndOffset is the log end offset (high watermark), null when its leader did not answer.
	EndOffset *int64 `json:"end_offset"`
	// Lag is end_offset - committed_offset, null when either is unknown.
	Lag *int64 `json:"lag"`
	// MemberID owns the partition now ("" when none).
	MemberID string `json:"member_id"`
	ClientID string `json:"client_id"`
	// CommittedChange and LagChange are the moves over the sample (null without one).
	CommittedChange *int64 `json:"committed_change"`
	LagChange       *int64 `json:"lag_change"`
	Stuck           bool   `json:"stuck"`
	Error           string `json:"error,omitempty"`
}

// Groups reads the consumer groups with requests batched per broker: ListGroups on
// every broker (or FindCoordinator per named group), then per coordinator one
// DescribeGroups and one OffsetFetch for all its groups, then per partition leader one
// ListOffsets for all the partitions it leads. With a sample, the describe, fetch and
// list-offsets round runs again after it and partitions whose lag grew while the
// committed offset stayed are marked stuck.
func Groups(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, o GroupsOptions) (*GroupsReport, error) {
	for _, g := range o.Groups {
		if g == "" {
			return nil, errs.Usage("kafka groups: an empty group id").WithHint("name a group, or none to list every group")
		}
	}
	if o.Sample < 0 {
		return nil, errs.Usage("kafka groups: --sample %s is negative", o.Sample).WithHint("use e.g. --sample 10s, or --sample 0 for one snapshot")
	}
	sess, err := d.KafkaBootstrap(ctx, ep, endpoint.KafkaSessionOptions{Counter: o.Counter})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, sess.Close) // ctrl-C breaks any request in flight
	defer func() {
		stop()
		sess.Close()
	}()
	g := &groupReader{sess: sess, rep: &GroupsReport{Groups: []GroupLag{}, BrokerErrors: []BrokerError{}, Notes: []string{ConsumerLossNote}}}

	coord, err := g.coordinators(o.Groups)
	if err == nil {
		var first *groupRound
		first, err = g.round(coord)
		if err == nil && len(o.Groups) > 0 && ctx.Err() == nil {
			err = missingGroups(first.groups, sess.Name) // before waiting for the sample
		}
		if err == nil && o.Sample > 0 {
			wait := o.Wait
			if wait == nil {
				wait = sleepCtx
			}
			start := time.Now()
			if err = wait(ctx, o.Sample); err == nil {
				var second *groupRound
				if second, err = g.round(coord); err == nil {
					g.rep.SampleSeconds = time.Since(start).Seconds()
					second.compare(first)
					first = second
				}
			}
		}
		if err == nil {
			g.rep.Groups = first.groups
		}
	}
	if ctx.Err() != nil {
		if ctx.Err() == context.Canceled {
			return nil, errs.New(errs.KindInterrupted, "kafka: interrupted")
		}
		return nil, errs.Unreachable("kafka", sess.Name, d.Limit(), "", ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(g.rep.BrokerErrors, func(i, j int) bool {
		a, b := g.rep.BrokerErrors[i], g.rep.BrokerErrors[j]
		return a.Broker < b.Broker || a.Broker == b.Broker && a.Request < b.Request
	})
	return g.rep, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// missingGroups refuses named groups the cluster does not know: state Dead and no
// committed offset (what a coordinator answers for an unknown group id).
func missingGroups(groups []GroupLag, bootstrap string) error {
	var missing []string
	for _, gl := range groups {
		if gl.Error == "" && (gl.State == "Dead" || gl.State == "") && len(gl.Partitions) == 0 && len(gl.Members) == 0 {
			missing = append(missing, gl.Group)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return errs.Usage("kafka groups: no consumer group %s on %s", quoteJoin(missing), bootstrap).
		WithHint("dsctl kafka groups (no argument) lists every group; a group exists once a consumer joined it or committed an offset")
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

type groupReader struct {
	sess *endpoint.KafkaSession
	mu   sync.Mutex
	rep  *GroupsReport
}

func (g *groupReader) brokerError(id int32, req string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rep.BrokerErrors = append(g.rep.BrokerErrors, BrokerError{Broker: id, Request: req, Error: describeCause(err)})
}

// notListed is the pseudo coordinator of named groups that no broker lists.
const notListed = int32(-2)

// coordinators maps each coordinator broker to its groups (in name order). Without
// named groups: ListGroups on every broker (a broker lists the groups it
// coordinates). With a few named groups: FindCoordinator for each; with more named
// groups than brokers, ListGroups is fewer requests, and FindCoordinator is used only
// for named groups missing from the lists when a broker failed ListGroups. A named
// group whose coordinator cannot be found maps to -1 (its reason is a broker error).
func (g *groupReader) coordinators(named []string) (map[int32][]string, error) {
	var unique []string
	seen := map[string]bool{}
	for _, n := range named {
		if !seen[n] {
			seen[n] = true
			unique = append(unique, n)
		}
	}
	var out map[int32][]string
	switch {
	case len(unique) == 0:
		out, _ = g.listAll()
	case len(unique) <= len(g.sess.Metadata.Brokers):
		out = g.findEach(unique)
	default:
		listed, complete := g.listAll()
		where := map[string]int32{}
		for id, names := range listed {
			for _, n := range names {
				where[n] = id
			}
		}
		out = map[int32][]string{}
		var toFind []string
		for _, n := range unique {
			id, ok := where[n]
			switch {
			case ok:
				out[id] = append(out[id], n)
			case complete:
				out[notListed] = append(out[notListed], n)
			default:
				toFind = append(toFind, n)
			}
		}
		for id, names := range g.findEach(toFind) {
			out[id] = append(out[id], names...)
		}
	}
	for id := range out {
		sort.Strings(out[id])
	}
	return out, nil
}

// listAll sends ListGroups to every broker; complete is false when one failed.
func (g *groupReader) listAll() (out map[int32][]string, complete bool) {
	out = map[int32][]string{}
	complete = true
	var mu sync.Mutex
	var wg sync.WaitGroup
	v := g.sess.Config.Version
	for _, b := range g.sess.Metadata.Brokers {
		id := b.ID()
		wg.Go(func() {
			conn, err := g.sess.Broker(id)
			var resp *sarama.ListGroupsResponse
			if err == nil {
				resp, err = conn.ListGroups(&sarama.ListGroupsRequest{Version: requestVersion(listGroupsVersions, v)})
			}
			if err == nil && resp.Err != sarama.ErrNoError {
				err = resp.Err
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				complete = false
				g.brokerError(id, "ListGroups", err)
				return
			}
			for name := range resp.Groups {
				out[id] = append(out[id], name)
			}
		})
	}
	wg.Wait()
	return out, complete
}

// findEach sends FindCoordinator for each group to the bootstrap broker.
func (g *groupReader) findEach(names []string) map[int32][]string {
	out := map[int32][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	v := g.sess.Config.Version
	for _, name := range names {
		wg.Go(func() {
			id := int32(-1)
			var resp *sarama.FindCoordinatorResponse
			var err error
			// A cluster that never had a group creates __consumer_offsets on the
			// first FindCoordinator and answers "not available" meanwhile.
			for attempt := 0; attempt < 4; attempt++ {
				if attempt > 0 {
					time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
				}
				resp, err = g.sess.Seed.FindCoordinator(&sarama.FindCoordinatorRequest{
					Version: requestVersion(findCoordinatorVersions, v), CoordinatorKey: name, CoordinatorType: sarama.CoordinatorGroup})
				if err == nil && resp.Err != sarama.ErrNoError {
					err = resp.Err
				}
				if !errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable) {
					break
				}
			}
			if err == nil && resp.Coordinator != nil {
				id = resp.Coordinator.ID()
			}
			if err != nil {
				g.brokerError(g.sess.SeedID, "FindCoordinator", fmt.Errorf("group %q: %w", name, err))
			}
			mu.Lock()
			out[id] = append(out[id], name)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// groupRound is one snapshot of every group.
type groupRound struct {
	groups []GroupLag
}

// round describes the groups and fetches their offsets (per coordinator), then the
// end offsets of their partitions (per leader).
func (g *groupReader) round(coord map[int32][]string) (*groupRound, error) {
	v := g.sess.Config.Version
	var mu sync.Mutex
	all := []GroupLag{}
	var wg sync.WaitGroup
	for id, names := range coord {
		wg.Go(func() {
			groups := g.readCoordinator(id, names, v)
			mu.Lock()
			all = append(all, groups...)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i].Group < all[j].Group })
	g.endOffsets(all, v)
	for i := range all {
		all[i].summarize()
	}
	return &groupRound{groups: all}, nil
}

// readCoordinator sends one DescribeGroups and one OffsetFetch (one per group before
// OffsetFetch v8, Kafka 3.0) to a coordinator for all its groups.
func (g *groupReader) readCoordinator(id int32, names []string, v sarama.KafkaVersion) []GroupLag {
	out := make([]GroupLag, len(names))
	byName := make(map[string]*GroupLag, len(names))
	for i, n := range names {
		out[i] = GroupLag{Group: n, Coordinator: id, Members: []GroupMember{}, Partitions: []PartitionLag{}}
		byName[n] = &out[i]
	}
	fail := func(msg string) []GroupLag {
		for i := range out {
			if out[i].Error == "" {
				out[i].Error = msg
			}
		}
		return out
	}
	if id == notListed { // no broker lists it: it does not exist
		for i := range out {
			out[i].Coordinator, out[i].State = -1, "Dead"
		}
		return out
	}
	if id < 0 {
		return fail("no coordinator found")
	}
	conn, err := g.sess.Broker(id)
	if err != nil {
		g.brokerError(id, "DescribeGroups", err)
		return fail(fmt.Sprintf("coordinator %d did not answer: %s", id, describeCause(err)))
	}
	desc, err := conn.DescribeGroups(&sarama.DescribeGroupsRequest{Version: requestVersion(describeGroupsVersions, v), Groups: names})
	if err != nil {
		g.brokerError(id, "DescribeGroups", err)
		return fail(fmt.Sprintf("coordinator %d did not answer DescribeGroups: %s", id, describeCause(err)))
	}
	for _, d := range desc.Groups {
		gl := byName[d.GroupId]
		if gl == nil {
			continue
		}
		switch d.Err {
		case sarama.ErrNoError:
		case sarama.ErrGroupIDNotFound: // newer brokers (and kfake) for an unknown group
			d.State = "Dead"
		default:
			gl.Error = "DescribeGroups: " + d.Err.Error()
		}
		gl.State, gl.ProtocolType, gl.Protocol = d.State, d.ProtocolType, d.Protocol
		for _, m := range d.Members {
			gl.Members = append(gl.Members, member(m, d.ProtocolType))
		}
		sort.Slice(gl.Members, func(i, j int) bool { return gl.Members[i].MemberID < gl.Members[j].MemberID })
	}

	fetched, err := g.fetchOffsets(conn, names, v)
	if err != nil {
		g.brokerError(id, "OffsetFetch", err)
		return fail(fmt.Sprintf("coordinator %d did not answer OffsetFetch: %s", id, describeCause(err)))
	}
	for _, fg := range fetched {
		gl := byName[fg.GroupId]
		if gl == nil {
			continue
		}
		if fg.Err != sarama.ErrNoError && fg.Err != sarama.ErrGroupIDNotFound && gl.Error == "" {
			gl.Error = "OffsetFetch: " + fg.Err.Error()
		}
		gl.addPartitions(fg.Blocks)
	}
	return out
}

// fetchOffsets asks for every committed offset of the groups: one request with all
// groups (v8+), or one per group on older protocol versions.
func (g *groupReader) fetchOffsets(conn *sarama.Broker, names []string, v sarama.KafkaVersion) ([]sarama.OffsetFetchResponseGroup, error) {
	if v.IsAtLeast(sarama.V3_0_0_0) {
		req := &sarama.OffsetFetchRequest{Version: 8}
		for _, n := range names {
			req.Groups = append(req.Groups, sarama.OffsetFetchRequestGroup{GroupId: n})
		}
		resp, err := conn.FetchOffset(req)
		if err != nil {
			return nil, err
		}
		return resp.Groups, nil
	}
	out := make([]sarama.OffsetFetchResponseGroup, 0, len(names))
	for _, n := range names {
		resp, err := conn.FetchOffset(sarama.NewOffsetFetchRequest(v, n, nil))
		if err != nil {
			return nil, err
		}
		out = append(out, sarama.OffsetFetchResponseGroup{GroupId: n, Blocks: resp.Blocks, Err: resp.Err})
	}
	return out, nil
}

func member(m *sarama.GroupMemberDescription, protocolType string) GroupMember {
	gm := GroupMember{MemberID: m.MemberId, InstanceID: m.GroupInstanceId, ClientID: m.ClientId, ClientHost: strings.TrimPrefix(m.ClientHost, "/"),
		Assigned: map[string][]int32{}}
	if protocolType == "consumer" {
		if a, err := m.GetMemberAssignment(); err == nil && a != nil {
			for t, ps := range a.Topics {
				sorted := append([]int32{}, ps...)
				sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
				gm.Assigned[t] = sorted
			}
		}
	}
	return gm
}

// addPartitions records the committed offsets, then the assigned partitions that have
// none, each with the member that owns it.
func (gl *GroupLag) addPartitions(blocks map[string]map[int32]*sarama.OffsetFetchResponseBlock) {
	owner := map[string]map[int32]*GroupMember{}
	for i := range gl.Members {
		m := &gl.Members[i]
		for t, ps := range m.Assigned {
			if owner[t] == nil {
				owner[t] = map[int32]*GroupMember{}
			}
			for _, p := range ps {
				owner[t][p] = m
			}
		}
	}
	have := map[string]map[int32]bool{}
	add := func(t string, p int32) *PartitionLag {
		if have[t] == nil {
			have[t] = map[int32]bool{}
		}
		have[t][p] = true
		pl := PartitionLag{Topic: t, Partition: p}
		if m := owner[t][p]; m != nil {
			pl.MemberID, pl.ClientID = m.MemberID, m.ClientID
		}
		gl.Partitions = append(gl.Partitions, pl)
		return &gl.Partitions[len(gl.Partitions)-1]
	}
	for t, ps := range blocks {
		for p, b := range ps {
			if b == nil {
				continue
			}
			if b.Err != sarama.ErrNoError {
				add(t, p).Error = "OffsetFetch: " + b.Err.Error()
				continue
			}
			if b.Offset < 0 { // -1: no committed offset
				continue
			}
			off := b.Offset
			add(t, p).CommittedOffset = &off
		}
	}
	for t, ps := range owner {
		for p := range ps {
			if !have[t][p] {
				add(t, p)
			}
		}
	}
	sort.Slice(gl.Partitions, func(i, j int) bool {
		a, b := gl.Partitions[i], gl.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
}

// endOffsets sends one ListOffsets (latest, read_uncommitted: the high watermark, as
// kafka-consumer-groups.sh) to each leader for every partition it leads, and fills in
// end offsets and lag.
func (g *groupReader) endOffsets(groups []GroupLag, v sarama.KafkaVersion) {
	type tp struct {
		topic string
		part  int32
	}
	leaders := map[tp]int32{}
	for _, tm := range g.sess.Metadata.Topics {
		for _, pm := range tm.Partitions {
			leaders[tp{tm.Name, pm.ID}] = pm.Leader
		}
	}
	byLeader := map[int32]map[tp]bool{}
	for i := range groups {
		for j := range groups[i].Partitions {
			pl := &groups[i].Partitions[j]
			k := tp{pl.Topic, pl.Partition}
			leader, ok := leaders[k]
			switch {
			case !ok:
				setErr(pl, "not in the cluster metadata (topic deleted, or created after dsctl started)")
				continue
			case leader < 0:
				setErr(pl, "offline: no leader")
				continue
			}
			if byLeader[leader] == nil {
				byLeader[leader] = map[tp]bool{}
			}
			byLeader[leader][k] = true
		}
	}
	ends := map[tp]int64{}
	failed := map[tp]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for leader, parts := range byLeader {
		wg.Go(func() {
			req := sarama.NewOffsetRequest(v)
			for k := range parts {
				req.AddBlock(k.topic, k.part, sarama.OffsetNewest, 1)
			}
			conn, err := g.sess.Broker(leader)
			var resp *sarama.OffsetResponse
			if err == nil {
				resp, err = conn.GetAvailableOffsets(req)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				g.brokerError(leader, "ListOffsets", err)
				for k := range parts {
					failed[k] = fmt.Sprintf("leader %d did not answer ListOffsets: %s", leader, describeCause(err))
				}
				return
			}
			for k := range parts {
				b := resp.GetBlock(k.topic, k.part)
				switch {
				case b == nil:
					failed[k] = fmt.Sprintf("leader %d: not in the ListOffsets response", leader)
				case b.Err != sarama.ErrNoError:
					failed[k] = fmt.Sprintf("leader %d: ListOffsets: %s", leader, b.Err.Error())
				case req.Version == 0 && len(b.Offsets) > 0:
					ends[k] = b.Offsets[0]
				default:
					ends[k] = b.Offset
				}
			}
		})
	}
	wg.Wait()
	for i := range groups {
		for j := range groups[i].Partitions {
			pl := &groups[i].Partitions[j]
			k := tp{pl.Topic, pl.Partition}
			if msg, bad := failed[k]; bad {
				setErr(pl, msg)
				continue
			}
			end, ok := ends[k]
			if !ok {
				continue
			}
			pl.EndOffset = &end
			if pl.CommittedOffset != nil {
				lag := max(end-*pl.CommittedOffset, 0)
				pl.Lag = &lag
			}
		}
	}
}

func setErr(pl *PartitionLag, msg string) {
	if pl.Error == "" {
		pl.Error = msg
	}
}

func (gl *GroupLag) summarize() {
	gl.TotalLag, gl.MaxLag, gl.Stuck = 0, 0, 0
	for _, p := range gl.Partitions {
		if p.Lag != nil {
			gl.TotalLag += *p.Lag
			gl.MaxLag = max(gl.MaxLag, *p.Lag)
		}
		if p.Stuck {
			gl.Stuck++
		}
	}
}

// compare fills in the moves since the earlier round and marks stuck partitions: the
// lag grew while the committed offset did not move.
func (r *groupRound) compare(earlier *groupRound) {
	type key struct {
		group, topic string
		part         int32
	}
	before := map[key]PartitionLag{}
	for _, gl := range earlier.groups {
		for _, p := range gl.Partitions {
			before[key{gl.Group, p.Topic, p.Partition}] = p
		}
	}
	for i := range r.groups {
		gl := &r.groups[i]
		for j := range gl.Partitions {
			p := &gl.Partitions[j]
			b, ok := before[key{gl.Group, p.Topic, p.Partition}]
			if !ok {
				continue
			}
			if p.CommittedOffset != nil && b.CommittedOffset != nil {
				d := *p.CommittedOffset - *b.CommittedOffset
				p.CommittedChange = &d
			}
			if p.Lag != nil && b.Lag != nil {
				d := *p.Lag - *b.Lag
				p.LagChange = &d
			}
			p.Stuck = p.CommittedChange != nil && *p.CommittedChange == 0 && p.LagChange != nil && *p.LagChange > 0
		}
		gl.summarize()
	}
}
