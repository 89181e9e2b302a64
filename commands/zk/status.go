package zk

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// StatusOptions are the arguments of `dsctl zk status`.
type StatusOptions struct {
	AdminPort  int
	AdminAddrs []string
}

// StatusResult is what status prints.
type StatusResult struct {
	*zkprobe.Status
	Members []memberRecord `json:"members"`
}

type memberRecord struct {
	zkprobe.Member
	// Set for every member that answered: a fresh standalone server's zxid is 0x0,
	// epoch 0 (standalone servers never start an epoch), which must still show.
	Zxid    string `json:"zxid,omitempty"`
	Epoch   *int64 `json:"epoch,omitempty"`
	Counter *int64 `json:"counter,omitempty"`
}

// Table is one row per member, then the verdict.
func (r StatusResult) Table() *output.TableData {
	t := &output.TableData{
		Header:     []string{"member", "state", "mode", "zxid", "epoch", "latency min/avg/max", "outstanding", "conns", "znodes", "watches"},
		RightAlign: map[int]bool{4: true, 6: true, 7: true, 8: true, 9: true},
	}
	for _, m := range r.Members {
		state := output.S(m.State, output.OK)
		if m.State != zkprobe.StateUp {
			state = output.S(strings.ReplaceAll(m.State, "_", " "), output.Error)
		}
		if m.State != zkprobe.StateUp {
			t.AddCells(output.C(m.Addr), state, output.C("-"), output.C("-"), output.C("-"), output.C("-"), output.C("-"), output.C("-"), output.C("-"), output.C("-"))
			continue
		}
		mode := output.C(m.Mode)
		if m.Mode == "leader" {
			mode = output.S(m.Mode, output.Bold)
		}
		outstanding := output.C(fmt.Sprint(m.Outstanding))
		if m.Outstanding > 10 {
			outstanding = output.S(fmt.Sprint(m.Outstanding), output.Warn)
		}
		src := ""
		if m.Source == "admin" {
			src = " (admin)"
		}
		t.AddCells(output.C(m.Addr+src), state, mode, output.C(m.Zxid), output.C(fmt.Sprint(deref(m.Epoch))),
			output.C(fmt.Sprintf("%g/%g/%g ms", m.LatencyMinMs, m.LatencyAvgMs, m.LatencyMaxMs)), outstanding,
			output.C(fmt.Sprint(m.Connections)), output.C(fmt.Sprint(m.Znodes)), output.C(fmt.Sprint(m.Watches)))
	}
	for _, m := range r.Members {
		if m.State != zkprobe.StateUp && m.Error != "" {
			t.Notes = append(t.Notes, output.S(m.Addr+": "+m.Error, output.Error))
		}
	}
	verdict := fmt.Sprintf("verdict: %s: %d of %d members serving, quorum %d", r.Verdict, r.Ensemble-r.Down, r.Ensemble, r.Quorum)
	if r.Leader != "" {
		verdict += ", leader " + r.Leader
	}
	style := output.OK
	switch r.Verdict {
	case zkprobe.VerdictDegraded:
		style = output.Warn
	case zkprobe.VerdictQuorumLost, zkprobe.VerdictDown:
		style = output.Critical
	}
	t.Notes = append(t.Notes, output.S(verdict, style))
	for _, p := range r.Problems {
		if !strings.Contains(p, " is down") && !strings.Contains(p, " is not ") && !strings.Contains(p, " is no access") {
			t.Notes = append(t.Notes, output.S("  "+p, output.Warn))
		}
	}
	return t
}

func newStatusCmd(f *cmdutil.Factory, conn *ConnOptions) *cobra.Command {
	o := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Each member's mode, zxid, latency and load, and the ensemble verdict",
		Long: `Ask every member at once, within one --timeout, with the srvr and mntr four-letter
words: mode (leader, follower, observer, standalone), last zxid with its epoch,
latency min/avg/max, outstanding requests, connections, znode and watch counts (and
the leader's synced followers). Where the four-letter words are not in the server's
4lw.commands.whitelist, the AdminServer's HTTP commands (monitor, server_stats) are
used instead: --admin-port N for every member's host, or --admin host:port,... in
--zk order.

Verdict: healthy (every member serving, one leader); degraded (a member is down, not
serving, not ZooKeeper, or the leader has fewer synced followers than followers up,
but a quorum serves); quorum_lost (fewer than a majority of the members given serve,
or no leader); down (no member answers). List every member with --zk: the quorum is
a majority of the members given.

Exit codes: 0 healthy, 5 degraded, 6 quorum lost or down, 2 when no member is
ZooKeeper. The table is printed in every case.

JSON keys: verdict, ensemble_size, quorum, voting_up, members_down, leader, problems,
members[{addr, state (up|down|not_serving|not_zookeeper|no_access), mode, source
(4lw|admin), version, zxid (hex), epoch, counter, latency_min_ms, latency_avg_ms,
latency_max_ms, outstanding_requests, connections, znode_count, watch_count,
ephemerals_count, approximate_data_size, followers, synced_followers, pending_syncs,
quorum_size, response_ms, error}].`,
		Example: `  dsctl zk status --zk zk1:2181,zk2:2181,zk3:2181
  dsctl zk status --admin-port 8080 -o json | jq .verdict
  dsctl zk status --timeout 2s || page-oncall "zookeeper $?"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunStatus(cmd.Context(), f, conn, pr, o)
		},
	}
	cmd.Flags().IntVar(&o.AdminPort, "admin-port", 0, "AdminServer port on each member's host, used when 4lw are not whitelisted (0: none)")
	cmd.Flags().StringSliceVar(&o.AdminAddrs, "admin", nil, "AdminServer host:port of each member, in --zk order")
	return cmd
}

// RunStatus asks the members, prints the table, and returns the verdict's exit error.
func RunStatus(ctx context.Context, f *cmdutil.Factory, conn *ConnOptions, p *output.Printer, o *StatusOptions) error {
	ep, err := Endpoint(ctx, f, conn)
	if err != nil {
		return err
	}
	if o.AdminPort < 0 || o.AdminPort > 65535 {
		return errs.Usage("--admin-port must be a port number, got %d", o.AdminPort)
	}
	if len(o.AdminAddrs) > len(ep.Servers) {
		return errs.Usage("--admin lists %d addresses for %d members", len(o.AdminAddrs), len(ep.Servers)).
			WithHint("give one AdminServer address per --zk member, in the same order")
	}
	servers := make([]string, len(ep.Servers))
	for i, s := range ep.Servers {
		servers[i] = withPort(strings.TrimSpace(s))
		host, port, err := net.SplitHostPort(servers[i])
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n <= 0 || n > 65535 {
			return errs.Usage("zookeeper: bad server %q", s).WithHint("use host:port, e.g. 127.0.0.1:2181")
		}
	}
	st := zkprobe.EnsembleStatus(ctx, zkprobe.StatusOptions{Servers: servers, Timeout: f.Timeout(),
		AdminAddrs: o.AdminAddrs, AdminPort: o.AdminPort})
	for _, m := range st.Members {
		f.IO.Debugf("zookeeper: %s answered %s (%s) in %.1fms", m.Addr, m.State, m.Source, m.LatencyMs)
	}
	r := StatusResult{Status: st}
	for _, m := range st.Members {
		rec := memberRecord{Member: m}
		if m.State == zkprobe.StateUp {
			epoch, counter := m.Epoch(), m.Counter()
			rec.Zxid, rec.Epoch, rec.Counter = zkprobe.Hex(m.Zxid), &epoch, &counter
		}
		r.Members = append(r.Members, rec)
	}
	if err := p.Print(r); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errs.New(errs.KindInterrupted, "zk status: interrupted")
	}
	return st.Err()
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func withPort(s string) string {
	if strings.LastIndex(s, ":") > strings.LastIndex(s, "]") {
		return s
	}
	return s + ":2181"
}
