package zkserver

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Version is what srvr, stat and mntr report: the ZooKeeper release whose behaviour
// this server follows, marked as dsctl's embedded server.
const Version = "3.8.0-dsctl-embedded, built on dsctl"

// fourLetter answers a four-letter word in the format of a standalone ZooKeeper 3.8
// with every word whitelisted.
func (s *Server) fourLetter(cmd string, nc net.Conn) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd {
	case "ruok":
		return "imok"
	case "isro":
		return "rw"
	case "srvr":
		return s.srvrLocked("")
	case "stat":
		return s.srvrLocked(s.consLocked(nc))
	case "cons":
		return s.consLocked(nc) + "\n"
	case "mntr":
		return s.mntrLocked()
	case "conf":
		return fmt.Sprintf("clientPort=%s\nsecureClientPort=-1\ndataDir=(in memory)\ntickTime=%d\nmaxClientCnxns=0\nminSessionTimeout=%d\nmaxSessionTimeout=%d\nserverId=0\n",
			portOf(s.Addr()), s.opt.TickTime.Milliseconds(), s.opt.MinSessionTimeout.Milliseconds(), s.opt.MaxSessionTimeout.Milliseconds())
	case "wchs":
		conns, paths, total := s.watchCountsLocked()
		return fmt.Sprintf("%d connections watching %d paths\nTotal watches:%d\n", conns, paths, total)
	case "envi":
		host, _ := os.Hostname()
		return fmt.Sprintf("Environment:\nzookeeper.version=%s\nhost.name=%s\ngo.version=%s\nos.name=%s\nos.arch=%s\n",
			Version, host, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "dump":
		var b strings.Builder
		b.WriteString("SessionTracker dump:\n")
		fmt.Fprintf(&b, "Global Sessions(%d):\n", len(s.sessions))
		ids := s.sessionIDsLocked()
		for _, id := range ids {
			fmt.Fprintf(&b, "0x%x\t%dms\n", id, s.sessions[id].timeout.Milliseconds())
		}
		b.WriteString("ephemeral nodes dump:\n")
		withEph := 0
		for _, id := range ids {
			if len(s.sessions[id].ephemerals) > 0 {
				withEph++
			}
		}
		fmt.Fprintf(&b, "Sessions with Ephemerals (%d):\n", withEph)
		for _, id := range ids {
			ss := s.sessions[id]
			if len(ss.ephemerals) == 0 {
				continue
			}
			fmt.Fprintf(&b, "0x%x:\n", id)
			paths := make([]string, 0, len(ss.ephemerals))
			for p := range ss.ephemerals {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				fmt.Fprintf(&b, "\t%s\n", p)
			}
		}
		return b.String()
	}
	return ""
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func (s *Server) sessionIDsLocked() []int64 {
	ids := make([]int64, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// nodeCount is what ZooKeeper reports as its node count: its DataTree keeps the root
// under both "" and "/", so the count is one more than the nodes.
func (s *Server) nodeCountLocked() int { return len(s.nodes) + 1 }

func (s *Server) latencyLocked() (int64, string, int64) {
	avg := 0.0
	if s.lat.count > 0 {
		avg = float64(s.lat.sum) / float64(s.lat.count)
	}
	return s.lat.min, fmt.Sprintf("%.1f", avg), s.lat.max
}

func (s *Server) srvrLocked(clients string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Zookeeper version: %s\n", Version)
	if clients != "" {
		b.WriteString("Clients:\n" + clients + "\n")
	}
	lmin, lavg, lmax := s.latencyLocked()
	fmt.Fprintf(&b, "Latency min/avg/max: %d/%s/%d\n", lmin, lavg, lmax)
	fmt.Fprintf(&b, "Received: %d\n", s.received.Load())
	fmt.Fprintf(&b, "Sent: %d\n", s.sent.Load())
	fmt.Fprintf(&b, "Connections: %d\n", len(s.conns)+1)
	b.WriteString("Outstanding: 0\n")
	fmt.Fprintf(&b, "Zxid: 0x%x\n", s.zxid)
	b.WriteString("Mode: standalone\n")
	fmt.Fprintf(&b, "Node count: %d\n", s.nodeCountLocked())
	return b.String()
}

// consLocked lists the connections, the asking one included, as ZooKeeper does.
func (s *Server) consLocked(self net.Conn) string {
	var lines []string
	for c := range s.conns {
		sid := int64(0)
		if c.sess != nil {
			sid = c.sess.id
		}
		lines = append(lines, fmt.Sprintf(" /%s[1](queued=0,recved=%d,sent=%d,sid=0x%x)", c.nc.RemoteAddr(), c.received.Load(), c.sent.Load(), sid))
	}
	sort.Strings(lines)
	lines = append(lines, fmt.Sprintf(" /%s[0](queued=0,recved=1,sent=0)", self.RemoteAddr()))
	return strings.Join(lines, "\n") + "\n"
}

func (s *Server) mntrLocked() string {
	ephemerals, dataSize := 0, 0
	for _, ss := range s.sessions {
		ephemerals += len(ss.ephemerals)
	}
	for p, n := range s.nodes {
		dataSize += len(p) + len(n.data)
	}
	_, _, watches := s.watchCountsLocked()
	lmin, lavg, lmax := s.latencyLocked()
	openFDs := 0
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		openFDs = len(entries)
	}
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	kv := [][2]any{
		{"zk_version", Version},
		{"zk_server_state", "standalone"},
		{"zk_ephemerals_count", ephemerals},
		{"zk_num_alive_connections", len(s.conns) + 1},
		{"zk_avg_latency", lavg},
		{"zk_outstanding_requests", 0},
		{"zk_znode_count", s.nodeCountLocked()},
		{"zk_global_sessions", len(s.sessions)},
		{"zk_non_mtls_remote_conn_count", 0},
		{"zk_last_client_response_size", -1},
		{"zk_packets_sent", s.sent.Load()},
		{"zk_packets_received", s.received.Load()},
		{"zk_max_client_response_size", -1},
		{"zk_connection_drop_probability", "0.0"},
		{"zk_watch_count", watches},
		{"zk_auth_failed_count", 0},
		{"zk_min_latency", lmin},
		{"zk_max_file_descriptor_count", rl.Cur},
		{"zk_approximate_data_size", dataSize},
		{"zk_open_file_descriptor_count", openFDs},
		{"zk_local_sessions", 0},
		{"zk_uptime", time.Since(s.started).Milliseconds()},
		{"zk_max_latency", lmax},
		{"zk_outstanding_tls_handshake", 0},
		{"zk_min_client_response_size", -1},
		{"zk_non_mtls_local_conn_count", 0},
		{"zk_proposal_count", 0},
	}
	var b strings.Builder
	for _, e := range kv {
		fmt.Fprintf(&b, "%s\t%v\n", e[0], e[1])
	}
	return b.String()
}
