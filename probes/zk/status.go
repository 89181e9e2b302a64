package zk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// Member states.
const (
	StateUp           = "up"
	StateDown         = "down"
	StateNotServing   = "not_serving"
	StateNotZooKeeper = "not_zookeeper"
	StateNoAccess     = "no_access" // 4lw not whitelisted and no AdminServer answered
)

// Verdicts.
const (
	VerdictHealthy    = "healthy"
	VerdictDegraded   = "degraded"
	VerdictQuorumLost = "quorum_lost"
	VerdictDown       = "down"
)

// Member is one server's state, from srvr and mntr (or the AdminServer).
type Member struct {
	Addr   string `json:"addr"`
	State  string `json:"state"`
	Mode   string `json:"mode,omitempty"`
	Source string `json:"source,omitempty"` // 4lw or admin
	// Version is the server's version string.
	Version         string  `json:"version,omitempty"`
	Zxid            int64   `json:"-"`
	LatencyMinMs    float64 `json:"latency_min_ms"`
	LatencyAvgMs    float64 `json:"latency_avg_ms"`
	LatencyMaxMs    float64 `json:"latency_max_ms"`
	Outstanding     int64   `json:"outstanding_requests"`
	Connections     int64   `json:"connections"`
	Znodes          int64   `json:"znode_count"`
	Watches         int64   `json:"watch_count"`
	Ephemerals      int64   `json:"ephemerals_count"`
	DataSize        int64   `json:"approximate_data_size"`
	Followers       int64   `json:"followers,omitempty"`        // leader only: learners
	SyncedFollowers int64   `json:"synced_followers,omitempty"` // leader only
	PendingSyncs    int64   `json:"pending_syncs,omitempty"`    // leader only
	QuorumSize      int64   `json:"quorum_size,omitempty"`      // leader only: voting members configured
	LatencyMs       float64 `json:"response_ms"`                // how long the member took to answer
	// Monitor reports that mntr (or the AdminServer's monitor) answered, so the
	// leader-only counts are known.
	Monitor bool   `json:"-"`
	Error   string `json:"error,omitempty"`
}

// Epoch is the leader epoch of the member's last zxid.
func (m Member) Epoch() int64 { return m.Zxid >> 32 }

// Counter is the transaction counter within the epoch.
func (m Member) Counter() int64 { return m.Zxid & 0xffffffff }

// Status is the ensemble's state and verdict.
type Status struct {
	Members  []Member `json:"members"`
	Verdict  string   `json:"verdict"`
	Ensemble int      `json:"ensemble_size"`
	Quorum   int      `json:"quorum"`
	// Voting counts members up as leader or follower (or standalone).
	Voting   int      `json:"voting_up"`
	Down     int      `json:"members_down"`
	Leader   string   `json:"leader,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// StatusOptions say which members to ask and how.
type StatusOptions struct {
	Servers []string
	Timeout time.Duration
	// AdminAddrs are the members' AdminServer host:port, in Servers order, used when
	// four-letter words are not whitelisted. Empty entries use the member's host with
	// AdminPort; AdminPort 0 disables the fallback.
	AdminAddrs []string
	AdminPort  int
	// HTTP is the AdminServer client (default: one with Timeout).
	HTTP *http.Client
}

// EnsembleStatus asks every member at once (srvr and mntr, or the AdminServer), all
// within one Timeout, and judges the ensemble.
func EnsembleStatus(ctx context.Context, opt StatusOptions) *Status {
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: opt.Timeout}
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	members := make([]Member, len(opt.Servers))
	var wg sync.WaitGroup
	for i, addr := range opt.Servers {
		admin := ""
		if i < len(opt.AdminAddrs) {
			admin = opt.AdminAddrs[i]
		}
		if admin == "" && opt.AdminPort > 0 {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				admin = net.JoinHostPort(host, strconv.Itoa(opt.AdminPort))
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			members[i] = askMember(ctx, addr, admin, opt)
		}()
	}
	wg.Wait()
	return Judge(members)
}

func askMember(ctx context.Context, addr, admin string, opt StatusOptions) Member {
	start := time.Now()
	m := Member{Addr: addr}
	defer func() { m.LatencyMs = float64(time.Since(start).Microseconds()) / 1000 }()
	var srvr, mntr string
	var srvrErr, mntrErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srvr, srvrErr = FourLetterWord(ctx, addr, "srvr", opt.Timeout) }()
	go func() { defer wg.Done(); mntr, mntrErr = FourLetterWord(ctx, addr, "mntr", opt.Timeout) }()
	wg.Wait()
	err := srvrErr
	if err == nil && !errors.Is(mntrErr, ErrNotWhitelisted) {
		err = mntrErr
	}
	var nz *NotZooKeeperError
	switch {
	case err == nil:
		m.State, m.Source = StateUp, "4lw"
		parseSrvr(&m, srvr)
		if mntrErr == nil {
			parseMntr(&m, mntr)
		} else {
			m.Source = "4lw (srvr only: mntr is not whitelisted, no watch count)"
		}
	case errors.Is(err, ErrNotServing):
		m.State, m.Error = StateNotServing, "answers but is not serving requests (no quorum, or joining)"
	case errors.Is(err, ErrNotWhitelisted):
		if admin == "" {
			m.State = StateNoAccess
			m.Error = "srvr/mntr are not in 4lw.commands.whitelist and no AdminServer address is set (use --admin-port or --admin)"
			return m
		}
		if aerr := askAdmin(ctx, &m, admin, opt.HTTP); aerr != nil {
			m.State, m.Error = StateNoAccess, fmt.Sprintf("4lw not whitelisted, and the AdminServer at %s: %v", admin, aerr)
			return m
		}
	case errors.As(err, &nz):
		m.State, m.Error = StateNotZooKeeper, strings.TrimPrefix(nz.Error(), addr+" is ")
	default:
		m.State, m.Error = StateDown, describeNetErr(err, opt.Timeout)
	}
	m.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
	return m
}

func describeNetErr(err error, timeout time.Duration) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		msg := op.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return op.Op + ": " + msg
	}
	return err.Error()
}

// parseSrvr reads the srvr reply: version, latency, connections, outstanding, zxid,
// mode, node count.
func parseSrvr(m *Member, text string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Zookeeper version":
			m.Version = strings.SplitN(v, ",", 2)[0]
		case "Latency min/avg/max":
			parts := strings.Split(v, "/")
			if len(parts) == 3 {
				m.LatencyMinMs, _ = strconv.ParseFloat(parts[0], 64)
				m.LatencyAvgMs, _ = strconv.ParseFloat(parts[1], 64)
				m.LatencyMaxMs, _ = strconv.ParseFloat(parts[2], 64)
			}
		case "Connections":
			m.Connections, _ = strconv.ParseInt(v, 10, 64)
		case "Outstanding":
			m.Outstanding, _ = strconv.ParseInt(v, 10, 64)
		case "Zxid":
			m.Zxid, _ = strconv.ParseInt(strings.TrimPrefix(v, "0x"), 16, 64)
		case "Mode":
			m.Mode = v
		case "Node count":
			m.Znodes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
}

// parseMntr reads the mntr reply (tab-separated zk_* keys).
func parseMntr(m *Member, text string) {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "\t"); ok {
			kv[strings.TrimPrefix(k, "zk_")] = strings.TrimSpace(v)
		}
	}
	applyMonitor(m, kv)
}

// applyMonitor fills a member from mntr keys (without the zk_ prefix), which are also
// the AdminServer monitor command's JSON keys.
func applyMonitor(m *Member, kv map[string]string) {
	m.Monitor = true
	num := func(k string, dst *int64) {
		if v, ok := kv[k]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				*dst = int64(f)
			}
		}
	}
	flt := func(k string, dst *float64) {
		if v, ok := kv[k]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				*dst = f
			}
		}
	}
	if v := kv["server_state"]; v != "" {
		m.Mode = v
	}
	if v := kv["version"]; v != "" && m.Version == "" {
		m.Version = strings.SplitN(v, ",", 2)[0]
	}
	flt("min_latency", &m.LatencyMinMs)
	flt("avg_latency", &m.LatencyAvgMs)
	flt("max_latency", &m.LatencyMaxMs)
	num("outstanding_requests", &m.Outstanding)
	num("num_alive_connections", &m.Connections)
	num("znode_count", &m.Znodes)
	num("watch_count", &m.Watches)
	num("ephemerals_count", &m.Ephemerals)
	num("approximate_data_size", &m.DataSize)
	num("learners", &m.Followers)
	if m.Followers == 0 {
		num("followers", &m.Followers)
	}
	num("synced_followers", &m.SyncedFollowers)
	num("pending_syncs", &m.PendingSyncs)
	num("quorum_size", &m.QuorumSize)
}

// askAdmin reads the AdminServer's monitor and server_stats commands.
func askAdmin(ctx context.Context, m *Member, admin string, client *http.Client) error {
	base := admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var mon map[string]any
	if err := getJSON(ctx, client, base+"/commands/monitor", &mon); err != nil {
		return err
	}
	if e, ok := mon["error"].(string); ok && e != "" {
		if strings.Contains(e, "not currently serving") {
			m.State, m.Source = StateNotServing, "admin"
			m.Error = "answers but is not serving requests (no quorum, or joining)"
			return nil
		}
		return errors.New(e)
	}
	kv := map[string]string{}
	for k, v := range mon {
		switch x := v.(type) {
		case string:
			kv[k] = x
		case float64:
			kv[k] = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	m.State, m.Source = StateUp, "admin"
	applyMonitor(m, kv)
	var ss struct {
		ServerStats struct {
			LastProcessedZxid int64 `json:"last_processed_zxid"`
		} `json:"server_stats"`
	}
	if err := getJSON(ctx, client, base+"/commands/server_stats", &ss); err == nil {
		m.Zxid = ss.ServerStats.LastProcessedZxid
	}
	return nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && len(body) == 0 {
		return fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: not an AdminServer answer (HTTP %s)", url, resp.Status)
	}
	return nil
}

// Judge computes the verdict from the members' states. With one member, the verdict
// is healthy when it serves (standalone or not) and down otherwise. With several, a
// quorum is a majority of the members given; the ensemble has lost quorum when fewer
// voting members serve or no leader answers, and is degraded when any member is not
// up and serving (or the leader reports fewer synced followers than followers up).
func Judge(members []Member) *Status {
	s := &Status{Members: members, Ensemble: len(members), Quorum: len(members)/2 + 1}
	leaders := 0
	followersUp := 0
	var leader *Member
	for i := range members {
		m := &members[i]
		if m.State != StateUp {
			s.Down++
			p := fmt.Sprintf("%s is %s", m.Addr, strings.ReplaceAll(m.State, "_", " "))
			switch {
			case m.State == StateNotZooKeeper:
				p = m.Addr + " is " + m.Error
			case m.Error != "":
				p += ": " + m.Error
			}
			s.Problems = append(s.Problems, p)
			continue
		}
		switch m.Mode {
		case "leader":
			leaders++
			s.Voting++
			leader = m
		case "follower":
			followersUp++
			s.Voting++
		case "standalone":
			s.Voting++
		case "observer":
		default:
			s.Problems = append(s.Problems, fmt.Sprintf("%s reports mode %q", m.Addr, m.Mode))
		}
		if m.Mode == "standalone" && len(members) > 1 {
			s.Problems = append(s.Problems, fmt.Sprintf("%s runs standalone, not as part of an ensemble", m.Addr))
		}
	}
	if leader != nil {
		s.Leader = leader.Addr
		if leader.Monitor && leader.SyncedFollowers < int64(followersUp) {
			s.Problems = append(s.Problems, fmt.Sprintf("leader %s has %d synced followers, %d followers answer", leader.Addr, leader.SyncedFollowers, followersUp))
		}
		if leader.QuorumSize > 0 && int(leader.QuorumSize) != len(members) {
			s.Problems = append(s.Problems, fmt.Sprintf("the ensemble has %d voting members, %d were given: list them all with --zk", leader.QuorumSize, len(members)))
		}
	}
	if leaders > 1 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d members claim to be leader", leaders))
	}
	sort.Strings(s.Problems)
	switch {
	case len(members) == 1 && s.Down == 0:
		s.Verdict = VerdictHealthy
		if len(s.Problems) > 0 {
			s.Verdict = VerdictDegraded
		}
	case len(members) == 1:
		s.Verdict = VerdictDown
	case answering(members) == 0:
		s.Verdict = VerdictDown
	case s.Voting < s.Quorum || leaders == 0:
		s.Verdict = VerdictQuorumLost
		if leaders == 0 {
			s.Problems = append(s.Problems, "no member is leader")
		}
	case len(s.Problems) > 0:
		s.Verdict = VerdictDegraded
	default:
		s.Verdict = VerdictHealthy
	}
	return s
}

// answering counts members that answered as ZooKeeper (serving or not).
func answering(members []Member) int {
	n := 0
	for _, m := range members {
		if m.State == StateUp || m.State == StateNotServing {
			n++
		}
	}
	return n
}

// Err is the error that sets the exit code for a verdict: nil when healthy, exit 5
// (errs.KindAuditFailed) when degraded, exit 6 (errs.KindUnreachable) when quorum is
// lost or every member is down.
func (s *Status) Err() error {
	switch s.Verdict {
	case VerdictHealthy:
		return nil
	case VerdictDegraded:
		return errs.New(errs.KindAuditFailed, "zookeeper: ensemble degraded: %d of %d members serving, quorum %d holds", s.Ensemble-s.Down, s.Ensemble, s.Quorum).
			WithHint("%s", strings.Join(s.Problems, "; "))
	case VerdictQuorumLost:
		return errs.New(errs.KindUnreachable, "zookeeper: ensemble has lost quorum: %d of %d voting members serving, %d needed", s.Voting, s.Ensemble, s.Quorum).
			WithHint("%s", strings.Join(s.Problems, "; "))
	}
	notZK := 0
	for _, m := range s.Members {
		if m.State == StateNotZooKeeper {
			notZK++
		}
	}
	if notZK == len(s.Members) {
		return errs.New(errs.KindUnreachable, "zookeeper: no member is a ZooKeeper server").
			WithHint("%s; point --zk (or DSCTL_ZK, or the context's zookeeper.servers) at the ensemble's client ports", strings.Join(s.Problems, "; "))
	}
	return errs.New(errs.KindUnreachable, "zookeeper: no member answers (%d of %d down)", s.Down, s.Ensemble).
		WithHint("%s", strings.Join(s.Problems, "; "))
}
