package zk_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	zk "github.com/dsctl/dsctl/probes/zk"
	"github.com/dsctl/dsctl/probes/zk/zktest"
)

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true}, {"/a", true}, {"/a/b-c_d.e", true}, {"/zookeeper/config", true}, {"/ünïcode", true},
		{"", false}, {"a", false}, {"/a/", false}, {"//a", false}, {"/a//b", false}, {"/a/.", false},
		{"/a/../b", false}, {"/a\x00b", false}, {"/a\x1fb", false}, {"/a\u0085", false},
	} {
		err := zk.ValidatePath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if err != nil {
			if e := zk.CheckPath(tc.path); errs.KindOf(e) != errs.KindUsage || !strings.Contains(e.Error(), "invalid path") {
				t.Errorf("CheckPath(%q) = %v", tc.path, e)
			}
		}
	}
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "//", "/a/../b", "a", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if zk.ValidatePath(p) == nil {
			if p[0] != '/' || (p != "/" && strings.HasSuffix(p, "/")) || strings.Contains(p, "//") {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		data     string
		as       zk.Rendering
		want     string
		used     zk.Rendering
		usageErr bool
	}{
		{`{"a":1,"b":[1,2]}`, zk.RenderAuto, "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}", zk.RenderJSON, false},
		{"plain text\n", zk.RenderAuto, "plain text\n", zk.RenderText, false},
		{"{not json", zk.RenderAuto, "{not json", zk.RenderText, false},
		{"\x00\x01AB", zk.RenderAuto, "00000000  00 01 41 42" + strings.Repeat("   ", 12) + "   |..AB|", zk.RenderHex, false},
		{"", zk.RenderAuto, "", zk.RenderText, false},
		{"\xff\xfe", zk.RenderText, "", zk.RenderText, true},
		{"text", zk.RenderJSON, "", zk.RenderJSON, true},
		{"42", zk.RenderJSON, "42", zk.RenderJSON, false},
	} {
		got, used, err := zk.Render([]byte(tc.data), tc.as)
		if tc.usageErr {
			if errs.KindOf(err) != errs.KindUsage {
				t.Errorf("Render(%q, %s): want usage error, got %v", tc.data, tc.as, err)
			}
			continue
		}
		if err != nil || got != tc.want || used != tc.used {
			t.Errorf("Render(%q, %s) = %q, %s, %v; want %q, %s", tc.data, tc.as, got, used, err, tc.want, tc.used)
		}
	}
	dump := zk.HexDump([]byte("0123456789abcdefXYZ"))
	want := "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n" +
		"00000010  58 59 5a" + strings.Repeat("   ", 13) + "   |XYZ|"
	if dump != want {
		t.Errorf("HexDump:\n%s\nwant\n%s", dump, want)
	}
	if _, err := zk.ParseRendering("yaml"); errs.KindOf(err) != errs.KindUsage {
		t.Errorf("ParseRendering(yaml) = %v", err)
	}
}

func FuzzRender(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, used, err := zk.Render(data, zk.RenderAuto)
		if err != nil {
			t.Fatalf("auto rendering failed: %v", err)
		}
		if used == zk.RenderHex && strings.Count(out, "\n")+1 != (len(data)+15)/16 && len(data) > 0 {
			t.Fatalf("hex dump of %d bytes has %d lines", len(data), strings.Count(out, "\n")+1)
		}
	})
}

// TestJudge checks the verdict logic on fake members (the states a shared ensemble
// cannot be pushed into without disturbing other tests).
func TestJudge(t *testing.T) {
	leader := zktest.Member{Mode: "leader", Zxid: 0x300000007, SyncedFollowers: 2, QuorumSize: 3}
	follower := zktest.Member{Mode: "follower", Zxid: 0x300000007}
	for _, tc := range []struct {
		name     string
		members  []string // "leader", "follower", "down", "notserving", "redis", "nowl", "lagging-leader"
		verdict  string
		kind     errs.Kind
		problems []string
	}{
		{"healthy", []string{"follower", "leader", "follower"}, zk.VerdictHealthy, -1, nil},
		{"one member down", []string{"follower", "leader", "down"}, zk.VerdictDegraded, errs.KindAuditFailed, []string{"is down"}},
		{"two down: quorum lost", []string{"down", "leader", "down"}, zk.VerdictQuorumLost, errs.KindUnreachable, []string{"is down"}},
		{"no quorum: members not serving", []string{"notserving", "notserving", "down"}, zk.VerdictQuorumLost, errs.KindUnreachable, []string{"no member is leader"}},
		{"a member is Redis", []string{"follower", "leader", "redis"}, zk.VerdictDegraded, errs.KindAuditFailed, []string{"looks like Redis"}},
		{"every member is Redis", []string{"redis"}, zk.VerdictDown, errs.KindUnreachable, []string{"not a ZooKeeper server"}},
		{"all down", []string{"down", "down", "down"}, zk.VerdictDown, errs.KindUnreachable, nil},
		{"leader lags", []string{"follower", "lagging-leader", "follower"}, zk.VerdictDegraded, errs.KindAuditFailed, []string{"1 synced followers, 2 followers answer"}},
		{"standalone", []string{"standalone"}, zk.VerdictHealthy, -1, nil},
		{"srvr only (Debian's default whitelist)", []string{"srvronly-follower", "srvronly-leader", "srvronly-follower"}, zk.VerdictHealthy, -1, nil},
		{"4lw refused, no admin", []string{"nowl", "leader", "follower"}, zk.VerdictDegraded, errs.KindAuditFailed, []string{"not in 4lw.commands.whitelist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var servers []string
			for _, m := range tc.members {
				switch m {
				case "leader":
					servers = append(servers, zktest.Start(t, leader))
				case "lagging-leader":
					l := leader
					l.SyncedFollowers = 1
					servers = append(servers, zktest.Start(t, l))
				case "follower":
					servers = append(servers, zktest.Start(t, follower))
				case "srvronly-leader":
					servers = append(servers, zktest.Start(t, zktest.Member{Mode: "leader", SrvrOnly: true}))
				case "srvronly-follower":
					servers = append(servers, zktest.Start(t, zktest.Member{Mode: "follower", SrvrOnly: true}))
				case "standalone":
					servers = append(servers, zktest.Start(t, zktest.Member{Mode: "standalone"}))
				case "down":
					servers = append(servers, zktest.ClosedPort(t))
				case "notserving":
					servers = append(servers, zktest.Start(t, zktest.Member{NotServing: true}))
				case "nowl":
					servers = append(servers, zktest.Start(t, zktest.Member{NotWhitelisted: true}))
				case "redis":
					servers = append(servers, zktest.Start(t, zktest.Member{Raw: "-ERR unknown command 'srvr', with args beginning with: \r\n"}))
				}
			}
			start := time.Now()
			st := zk.EnsembleStatus(context.Background(), zk.StatusOptions{Servers: servers, Timeout: 2 * time.Second})
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Errorf("status took %s with a 2s timeout", d)
			}
			if st.Verdict != tc.verdict {
				t.Fatalf("verdict %s, want %s; problems %q", st.Verdict, tc.verdict, st.Problems)
			}
			err := st.Err()
			if tc.kind == -1 {
				if err != nil {
					t.Fatalf("healthy ensemble returned %v", err)
				}
			} else if errs.KindOf(err) != tc.kind {
				t.Fatalf("error kind %v, want %v: %v", errs.KindOf(err), tc.kind, err)
			}
			all := strings.Join(st.Problems, "\n")
			if err != nil {
				all += "\n" + err.Error()
			}
			for _, p := range tc.problems {
				if !strings.Contains(all, p) {
					t.Errorf("problems lack %q:\n%s", p, all)
				}
			}
		})
	}
}

func TestStatusParsesMembers(t *testing.T) {
	addr := zktest.Start(t, zktest.Member{Mode: "leader", Zxid: 0x500000123, SyncedFollowers: 2, QuorumSize: 3, Outstanding: 17})
	st := zk.EnsembleStatus(context.Background(), zk.StatusOptions{Servers: []string{addr}, Timeout: 2 * time.Second})
	m := st.Members[0]
	if m.State != zk.StateUp || m.Mode != "leader" || m.Zxid != 0x500000123 || m.Epoch() != 5 || m.Counter() != 0x123 ||
		m.Outstanding != 17 || m.Connections != 2 || m.Znodes != 42 || m.Watches != 3 || m.LatencyMaxMs != 7 ||
		m.LatencyAvgMs != 0.5 || m.SyncedFollowers != 2 || m.QuorumSize != 3 || m.Version != "3.8.0-fake" || m.Source != "4lw" {
		t.Fatalf("member: %+v", m)
	}
}

// TestStatusAdminServerFallback: four-letter words refused, the AdminServer answers.
func TestStatusSrvrOnly(t *testing.T) {
	addr := zktest.Start(t, zktest.Member{Mode: "follower", Zxid: 0x200000001, SrvrOnly: true})
	st := zk.EnsembleStatus(context.Background(), zk.StatusOptions{Servers: []string{addr}, Timeout: 2 * time.Second})
	m := st.Members[0]
	if m.State != zk.StateUp || m.Mode != "follower" || m.Zxid != 0x200000001 || m.Znodes != 42 || !strings.Contains(m.Source, "srvr only") {
		t.Fatalf("srvr-only member: %+v", m)
	}
}

func TestStatusAdminServerFallback(t *testing.T) {
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/commands/monitor":
			_ = json.NewEncoder(w).Encode(map[string]any{"command": "monitor", "error": nil, "server_state": "follower",
				"avg_latency": 1.5, "max_latency": 9, "min_latency": 0, "outstanding_requests": 4, "znode_count": 99,
				"watch_count": 12, "num_alive_connections": 5, "version": "3.9.1-abc, built on x"})
		case "/commands/server_stats":
			_ = json.NewEncoder(w).Encode(map[string]any{"command": "server_stats", "error": nil,
				"server_stats": map[string]any{"last_processed_zxid": 0x200000010, "server_state": "follower"}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer admin.Close()
	member := zktest.Start(t, zktest.Member{NotWhitelisted: true})
	st := zk.EnsembleStatus(context.Background(), zk.StatusOptions{Servers: []string{member}, Timeout: 2 * time.Second,
		AdminAddrs: []string{strings.TrimPrefix(admin.URL, "http://")}})
	m := st.Members[0]
	if m.State != zk.StateUp || m.Source != "admin" || m.Mode != "follower" || m.Zxid != 0x200000010 || m.Outstanding != 4 ||
		m.Znodes != 99 || m.Watches != 12 || m.Connections != 5 || m.LatencyAvgMs != 1.5 || m.Version != "3.9.1-abc" {
		t.Fatalf("member from the AdminServer: %+v", m)
	}
}

func TestFourLetterWordNotZooKeeper(t *testing.T) {
	redis := zktest.Start(t, zktest.Member{Raw: "-ERR unknown command 'srvr'\r\n"})
	start := time.Now()
	_, err := zk.FourLetterWord(context.Background(), redis, "srvr", 3*time.Second)
	var nz *zk.NotZooKeeperError
	if !errors.As(err, &nz) || !strings.Contains(err.Error(), "looks like Redis") {
		t.Fatalf("want NotZooKeeperError naming Redis, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s: a reply that is not ZooKeeper's must end the read at once", d)
	}
}
