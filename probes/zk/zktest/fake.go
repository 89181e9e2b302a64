// Package zktest has test doubles for states a real ensemble cannot be pushed into
// without disturbing others: a member that answers the four-letter words with canned
// replies (leader, follower, not serving, words not whitelisted, or not ZooKeeper),
// and a TCP proxy that cuts one client off (a blip, or past its session timeout).
package zktest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Member says how a fake member answers.
type Member struct {
	// Mode is leader, follower, observer or standalone.
	Mode string
	// NotServing answers like a member without quorum.
	NotServing bool
	// NotWhitelisted refuses every four-letter word; SrvrOnly refuses all but srvr
	// (Debian's default whitelist).
	NotWhitelisted, SrvrOnly bool
	// Raw, when set, is the whole reply to anything (e.g. a Redis error line), and the
	// connection then stays open like a line-based server's.
	Raw string
	// Zxid is the last zxid reported.
	Zxid int64
	// SyncedFollowers and QuorumSize are reported by a leader.
	SyncedFollowers, QuorumSize int
	// Outstanding is the outstanding request count.
	Outstanding int
}

// Start serves m on a private loopback port until the test ends and returns its address.
func Start(t testing.TB, m Member) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(c)
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a loopback address nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (m Member) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	word := make([]byte, 4)
	if _, err := io.ReadFull(c, word); err != nil {
		return
	}
	if m.Raw != "" {
		_, _ = io.WriteString(c, m.Raw)
		_, _ = io.Copy(io.Discard, c) // keep the connection open like Redis does
		return
	}
	w := string(word)
	switch {
	case m.NotWhitelisted || (m.SrvrOnly && w != "srvr"):
		fmt.Fprintf(c, "%s is not executed because it is not in the whitelist.\n", w)
	case m.NotServing:
		io.WriteString(c, "This ZooKeeper instance is not currently serving requests\n")
	case w == "srvr":
		fmt.Fprintf(c, "Zookeeper version: 3.8.0-fake, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.5/7\nReceived: 10\nSent: 10\nConnections: 2\nOutstanding: %d\nZxid: 0x%x\nMode: %s\nNode count: 42\n",
			m.Outstanding, m.Zxid, m.Mode)
	case w == "mntr":
		var b strings.Builder
		fmt.Fprintf(&b, "zk_version\t3.8.0-fake, built on 2024-12-29 17:54 UTC\nzk_server_state\t%s\nzk_avg_latency\t0.5\nzk_min_latency\t0\nzk_max_latency\t7\n", m.Mode)
		fmt.Fprintf(&b, "zk_outstanding_requests\t%d\nzk_znode_count\t42\nzk_watch_count\t3\nzk_ephemerals_count\t1\nzk_num_alive_connections\t2\nzk_approximate_data_size\t1000\n", m.Outstanding)
		if m.Mode == "leader" {
			fmt.Fprintf(&b, "zk_learners\t%d\nzk_synced_followers\t%d\nzk_pending_syncs\t0\nzk_quorum_size\t%d\n", m.SyncedFollowers, m.SyncedFollowers, m.QuorumSize)
		}
		io.WriteString(c, b.String())
	case w == "ruok":
		io.WriteString(c, "imok")
	}
}
