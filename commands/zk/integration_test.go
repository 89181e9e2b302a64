package zk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/faultproxy"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk/zktest"
)

func TestReadCommands(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		ctx := context.Background()
		root := base(t, c)
		if err := c.CreateAll(ctx, []string{root + "/cfg", root + "/svc", root + "/svc/a", root + "/svc/b", root + "/blob"}, nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, root+"/cfg", []byte(`{"replicas":3}`), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, root+"/blob", []byte{0, 1, 'A'}, -1); err != nil {
			t.Fatal(err)
		}
		zk := []string{"--zk", tg.servers}
		run := func(args ...string) result {
			t.Helper()
			r := dsctl(t, nil, append(append([]string{"zk"}, args...), zk...)...)
			if r.code != 0 {
				t.Fatalf("dsctl zk %v: exit %d: %v\n%s", args, r.code, r.err, r.errOut)
			}
			return r
		}
		if r := run("ls", root); r.out != "blob\ncfg\nsvc\n" {
			t.Errorf("ls: %q", r.out)
		}
		var ls struct {
			Paths []string `json:"paths"`
		}
		r := run("ls", "-R", root, "-o", "json")
		if err := json.Unmarshal([]byte(r.out), &ls); err != nil || strings.Join(ls.Paths, ",") !=
			strings.Join([]string{root, root + "/blob", root + "/cfg", root + "/svc", root + "/svc/a", root + "/svc/b"}, ",") {
			t.Errorf("ls -R: %v %v", ls.Paths, err)
		}
		if r := run("get", root+"/cfg"); r.out != "{\n  \"replicas\": 3\n}\n" {
			t.Errorf("get auto: %q", r.out)
		}
		if r := run("get", root+"/cfg", "--as", "text"); r.out != "{\"replicas\":3}\n" {
			t.Errorf("get text: %q", r.out)
		}
		if r := run("get", root+"/blob"); !strings.HasPrefix(r.out, "00000000  00 01 41") {
			t.Errorf("get binary: %q", r.out)
		}
		var got struct {
			Rendering  string          `json:"rendering"`
			DataBase64 string          `json:"data_base64"`
			Value      json.RawMessage `json:"value"`
			Stat       struct {
				Version int32  `json:"version"`
				Mzxid   string `json:"mzxid"`
			} `json:"stat"`
		}
		r = run("get", root+"/cfg", "-o", "json")
		if err := json.Unmarshal([]byte(r.out), &got); err != nil || got.Rendering != "json" || compact(got.Value) != `{"replicas":3}` ||
			got.Stat.Version != 1 || !strings.HasPrefix(got.Stat.Mzxid, "0x") || got.DataBase64 != "eyJyZXBsaWNhcyI6M30=" {
			t.Errorf("get -o json: %+v %v\n%s", got, err, r.out)
		}
		var st map[string]any
		r = run("stat", root+"/svc", "-o", "json")
		if err := json.Unmarshal([]byte(r.out), &st); err != nil || st["num_children"] != float64(2) || st["cversion"] != float64(2) ||
			st["ephemeral_owner"] != "0x0" || !strings.HasPrefix(st["czxid"].(string), "0x") {
			t.Errorf("stat -o json: %v %v", st, err)
		}
		if r := run("stat", root+"/svc"); !strings.Contains(r.out, "children:         2") || !strings.Contains(r.out, "none (persistent)") {
			t.Errorf("stat table:\n%s", r.out)
		}
		r = run("tree", root)
		for _, want := range []string{"  svc ", "    a ", "6 nodes under " + root} {
			if !strings.Contains(r.out, want) {
				t.Errorf("tree lacks %q:\n%s", want, r.out)
			}
		}
		var tr struct {
			Nodes []struct {
				Path        string `json:"path"`
				NumChildren int    `json:"num_children"`
				Cut         string `json:"cut"`
			} `json:"nodes"`
			Truncated bool  `json:"truncated"`
			Unlisted  int64 `json:"unlisted"`
		}
		r = run("tree", root, "--depth", "1", "-o", "json")
		if err := json.Unmarshal([]byte(r.out), &tr); err != nil || len(tr.Nodes) != 4 || tr.Unlisted != 2 || tr.Nodes[3].Cut != "depth" {
			t.Errorf("tree --depth 1: %+v %v", tr, err)
		}
		r = dsctl(t, nil, "zk", "tree", root, "--max-nodes", "3", "-o", "json", "--zk", tg.servers)
		if err := json.Unmarshal([]byte(r.out), &tr); r.code != 0 || err != nil || !tr.Truncated || len(tr.Nodes) != 1 ||
			!strings.Contains(r.errOut, "stopped at --max-nodes 3") {
			t.Errorf("tree --max-nodes 3: exit %d %+v %v\n%s", r.code, tr, err, r.errOut)
		}
		// chroot: the same subtree seen from inside.
		if r := run("ls", "/svc", "--chroot", root); r.out != "a\nb\n" {
			t.Errorf("ls with --chroot: %q", r.out)
		}
	})
}

func TestBadInputExitCodes(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		root := base(t, c)
		t.Setenv("DSCTL_TEST_OWNER_PW", "pw1")
		if _, err := c.Conn().Create(root+"/locked", []byte("secret"), 0, gozk.DigestACL(gozk.PermAll, "owner", "pw1")); err != nil {
			t.Fatal(err)
		}
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte("pw1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		redis := ""
		if addrs := os.Getenv(testenv.Redis); addrs != "" {
			redis = strings.Split(addrs, ",")[0]
		} else {
			redis = zktest.Start(t, zktest.Member{Raw: "-ERR unknown command 'srvr'\r\n"})
		}
		for _, tc := range []struct {
			name string
			env  map[string]string
			args []string
			code int
			want string
		}{
			{"relative path", nil, []string{"get", "app/config"}, 2, `invalid path "app/config": must start with /`},
			{"trailing slash", nil, []string{"stat", root + "/"}, 2, "must not end with /"},
			{"missing node", nil, []string{"get", root + "/nope"}, 2, root + "/nope: no such node"},
			{"missing node in tree", nil, []string{"tree", root + "/nope"}, 2, "no such node"},
			{"no auth", nil, []string{"get", root + "/locked"}, 1, "not authorized by the node's ACL"},
			{"digest auth from env", map[string]string{"DSCTL_ZK_DIGEST_USER": "owner"}, []string{"get", root + "/locked"}, 2, "needs a password"},
			{"not JSON", nil, []string{"get", root, "--as", "json"}, 2, "not JSON"},
			{"bad rendering", nil, []string{"get", root, "--as", "yaml"}, 2, "--as auto|text|hex|json"},
			{"two paths", nil, []string{"stat", "/a", "/b"}, 2, "zk stat takes one path"},
			{"two paths to ls", nil, []string{"ls", "/a", "/b"}, 2, "zk ls takes one path"},
			{"two paths to tree", nil, []string{"tree", "/a", "/b"}, 2, "zk tree takes one path"},
			{"get without path", nil, []string{"get"}, 2, "zk get needs a path"},
			{"stat without path", nil, []string{"stat"}, 2, "zk stat needs a path"},
			{"watch without path", nil, []string{"watch"}, 2, "at least one path"},
			{"depth without recursive", nil, []string{"watch", "/", "--depth", "2"}, 2, "--depth needs --recursive"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := dsctl(t, tc.env, append(append([]string{"zk"}, tc.args...), "--zk", tg.servers)...)
				if r.code != tc.code || !strings.Contains(r.errOut, tc.want) {
					t.Fatalf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.errOut, tc.want)
				}
			})
		}
		t.Run("digest auth from a file", func(t *testing.T) {
			r := dsctl(t, nil, "zk", "get", root+"/locked", "--digest-user", "owner", "--digest-password-file", pwFile, "--zk", tg.servers)
			if r.code != 0 || r.out != "secret\n" {
				t.Fatalf("exit %d, out %q: %v", r.code, r.out, r.err)
			}
		})
		t.Run("digest auth from the environment", func(t *testing.T) {
			t.Setenv("DSCTL_ZK_DIGEST_PASSWORD", "pw1")
			r := dsctl(t, map[string]string{"DSCTL_ZK_DIGEST_USER": "owner"}, "zk", "get", root+"/locked", "--zk", tg.servers, "-v")
			if r.code != 0 || r.out != "secret\n" || strings.Contains(r.errOut, "pw1") || !strings.Contains(r.errOut, `digest auth as "owner"`) {
				t.Fatalf("exit %d, out %q, stderr %q: %v", r.code, r.out, r.errOut, r.err)
			}
		})
		t.Run("not ZooKeeper", func(t *testing.T) {
			r := dsctl(t, nil, "zk", "ls", "/", "--zk", redis, "--timeout", "2s")
			if r.code != 6 || !strings.Contains(r.errOut, "is not a ZooKeeper server") || r.took > 5*time.Second {
				t.Fatalf("exit %d in %s, stderr %q", r.code, r.took, r.errOut)
			}
			r = dsctl(t, nil, "zk", "status", "--zk", redis, "--timeout", "2s")
			if r.code != 6 || !strings.Contains(r.errOut, "no member is a ZooKeeper server") {
				t.Fatalf("status: exit %d, stderr %q", r.code, r.errOut)
			}
		})
		t.Run("unreachable", func(t *testing.T) {
			r := dsctl(t, nil, "zk", "ls", "/", "--zk", zktest.ClosedPort(t), "--timeout", "2s")
			if r.code != 6 || !strings.Contains(r.errOut, "cannot reach") {
				t.Fatalf("exit %d, stderr %q", r.code, r.errOut)
			}
		})
	})
}

// TestWatchStreamAccountsForEveryChange runs `zk watch -o jsonl` while a writer makes
// 2,000 changes at full speed into 20 nodes, then ends it and checks, per node, that
// data_changed lines + the missed counts of gap lines == changes written, and that the
// summary line agrees.
func TestWatchStreamAccountsForEveryChange(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		root := base(t, c)
		const nodes, perNode = 20, 100
		var paths []string
		for i := 0; i < nodes; i++ {
			paths = append(paths, fmt.Sprintf("%s/n%02d", root, i))
		}
		if err := c.CreateAll(context.Background(), paths, nil, 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- dsctlCtx(ctx, t, nil, out, errOut, "zk", "watch", root, "--recursive", "--data", "-o", "jsonl", "--zk", tg.servers)
		}()
		waitFor(t, 10*time.Second, "armed", func() bool { return strings.Contains(out.String(), `"type":"armed"`) })
		var wg sync.WaitGroup
		for _, p := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= perNode; i++ {
					if _, err := c.Set(context.Background(), p, []byte(fmt.Sprint(i)), -1); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		waitFor(t, 30*time.Second, "every change accounted for", func() bool {
			acc := accountLines(t, out.String())
			for _, p := range paths {
				if acc[p] < perNode {
					return false
				}
			}
			return true
		})
		cancel() // ctrl-C
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("zk watch did not end after ctrl-C")
		}
		if r.code != 0 {
			t.Fatalf("watch ended with exit %d: %v", r.code, r.err)
		}
		acc := accountLines(t, r.out)
		for _, p := range paths {
			if acc[p] != perNode {
				t.Errorf("%s: %d changes accounted, %d written", p, acc[p], perNode)
			}
		}
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		var sum struct {
			Type   string `json:"type"`
			Events int64  `json:"events"`
			Missed int64  `json:"missed"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" || sum.Events != int64(len(lines)-1) {
			t.Fatalf("last line is not a summary of %d events: %s (%v)", len(lines)-1, lines[len(lines)-1], err)
		}
		// The last value of each node is the one written last.
		last := map[string]string{}
		for _, l := range lines {
			var ev struct{ Type, Path, Data string }
			_ = json.Unmarshal([]byte(l), &ev)
			if ev.Type == "data_changed" {
				last[ev.Path] = ev.Data
			}
		}
		for _, p := range paths {
			if last[p] != fmt.Sprint(perNode) {
				t.Errorf("%s: last value shown %q, want %d", p, last[p], perNode)
			}
		}
	})
}

// accountLines sums per path: 1 per data_changed line, missed per data gap line.
func accountLines(t *testing.T, out string) map[string]int64 {
	acc := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Type, Path, Change string
			Missed             int64
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // a line still being written
		}
		switch {
		case ev.Type == "data_changed":
			acc[ev.Path]++
		case ev.Type == "gap" && ev.Change == "data_changed":
			acc[ev.Path] += ev.Missed
		}
	}
	return acc
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWatchTableOnTTYStyle(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		root := base(t, c)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- dsctlCtx(ctx, t, nil, out, errOut, "zk", "watch", root, "--zk", tg.servers)
		}()
		waitFor(t, 10*time.Second, "armed", func() bool { return strings.Contains(out.String(), "armed") })
		if _, err := c.Create(context.Background(), root+"/child", nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "children_changed", func() bool { return strings.Contains(out.String(), "children_changed") })
		cancel()
		r := <-done
		if r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		for _, want := range []string{"TIME", "EVENT", "children_changed  " + root + "  +child (cversion 0 -> 1)", "summary: 2 events"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("table lacks %q:\n%s", want, r.out)
			}
		}
	})
}

func TestStatusCommand(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		r := dsctl(t, nil, "zk", "status", "--zk", tg.servers, "-o", "json")
		var st struct {
			Verdict string `json:"verdict"`
			Leader  string `json:"leader"`
			Members []struct {
				State string `json:"state"`
				Mode  string `json:"mode"`
				Zxid  string `json:"zxid"`
				Epoch *int64 `json:"epoch"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(r.out), &st); err != nil || r.code != 0 {
			t.Fatalf("exit %d: %v %v\n%s", r.code, r.err, err, r.out)
		}
		n := len(strings.Split(tg.servers, ","))
		if st.Verdict != "healthy" || len(st.Members) != n || (n > 1 && st.Leader == "") {
			t.Fatalf("status: %+v", st)
		}
		for _, m := range st.Members {
			// A standalone server (the embedded one, like ZooKeeperServerMain) never
			// starts an epoch: its zxids are 0x0, 0x1, ... in epoch 0. An ensemble's
			// leader election starts epoch 1 or later.
			minEpoch, modeOK := int64(1), m.Mode == "leader" || m.Mode == "follower"
			if tg.embedded != nil {
				minEpoch, modeOK = 0, m.Mode == "standalone"
			}
			if m.State != "up" || !modeOK || !strings.HasPrefix(m.Zxid, "0x") || m.Epoch == nil || *m.Epoch < minEpoch {
				t.Errorf("member: %+v (epoch %v)", m, m.Epoch)
			}
		}
	})
	// Verdicts and exit codes on private fake members (nothing shared is stopped).
	leader := zktest.Start(t, zktest.Member{Mode: "leader", SyncedFollowers: 2, QuorumSize: 3, Zxid: 0x100000001})
	f1 := zktest.Start(t, zktest.Member{Mode: "follower", Zxid: 0x100000001})
	down1, down2 := zktest.ClosedPort(t), zktest.ClosedPort(t)
	for _, tc := range []struct {
		name    string
		members []string
		code    int
		want    string
	}{
		{"member down", []string{f1, leader, down1}, 5, "verdict: degraded: 2 of 3 members serving, quorum 2"},
		{"quorum lost", []string{down2, leader, down1}, 6, "verdict: quorum_lost: 1 of 3 members serving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dsctl(t, nil, "zk", "status", "--zk", strings.Join(tc.members, ","), "--timeout", "2s")
			if r.code != tc.code || !strings.Contains(r.out, tc.want) || !strings.Contains(r.out, "connection refused") {
				t.Fatalf("exit %d (want %d)\n%s\n%s", r.code, tc.code, r.out, r.errOut)
			}
		})
	}
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "bad JSON: " + err.Error()
	}
	return b.String()
}

// TestWatchSessionExpiryStream cuts `zk watch -o jsonl` off from the ensemble (a
// private proxy) past its session timeout while changes are made, and checks the
// stream: disconnected, session_expired, one resync line per changed node with
// exactly the changes made meanwhile, armed again, and a summary that counts it.
func TestWatchSessionExpiryStream(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		root := base(t, c)
		ctx := context.Background()
		if err := c.CreateAll(ctx, []string{root + "/a", root + "/b"}, nil, 0); err != nil {
			t.Fatal(err)
		}
		px := zktest.StartProxy(t, strings.Split(tg.servers, ",")[0])
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- dsctlCtx(wctx, t, nil, out, errOut, "zk", "watch", root, "-r", "-o", "jsonl", "--zk", px.Addr(), "--session-timeout", "2s")
		}()
		waitFor(t, 10*time.Second, "armed", func() bool { return strings.Contains(out.String(), `"type":"armed"`) })
		px.Pause()
		waitFor(t, 10*time.Second, "disconnected", func() bool { return strings.Contains(out.String(), `"type":"disconnected"`) })
		for i := 0; i < 2; i++ {
			if _, err := c.Set(ctx, root+"/a", []byte("v"), -1); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Delete(ctx, root+"/b", -1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(ctx, root+"/c", nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second) // past the 2s session timeout
		px.Resume()
		waitFor(t, 30*time.Second, "re-armed after the resync", func() bool { return strings.Contains(out.String(), `"source":"resync","session_id"`) })
		cancel()
		r := <-done
		if r.code != 0 {
			t.Fatalf("exit %d: %v", r.code, r.err)
		}
		var resync []string
		var types []string
		for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
			var ev struct {
				Type, Path, Change string
				Missed             int64
				Added, Removed     []string
				Expirations        int `json:"session_expirations"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			types = append(types, ev.Type)
			if ev.Type == "resync" {
				resync = append(resync, fmt.Sprintf("%s %s %d +%v -%v", strings.TrimPrefix(ev.Path, root), ev.Change, ev.Missed, ev.Added, ev.Removed))
			}
			if ev.Type == "summary" && ev.Expirations != 1 {
				t.Errorf("summary counts %d expirations: %s", ev.Expirations, line)
			}
		}
		want := []string{" children_changed 2 +[c] -[b]", "/a data_changed 2 +[] -[]", "/b deleted 1 +[] -[]", "/c created 1 +[] -[]"}
		if strings.Join(resync, "; ") != strings.Join(want, "; ") {
			t.Errorf("resync lines:\n got %q\nwant %q", resync, want)
		}
		if got := strings.Join(types, " "); !strings.Contains(got, "armed disconnected session_expired resync") || !strings.HasSuffix(got, "armed summary") {
			t.Errorf("stream: %s", got)
		}
	})
}

// ctrl-C while the re-read after a change waits on a server that answers slowly (here
// 2 s each way through a proxy) ends the watch within a moment, with the summary, not
// when the read finally comes back (nor after 2/3 of the session timeout when it never
// does): go-zookeeper cannot cancel a request, so the command closes the client.
func TestWatchStopsWhileAReadIsStuck(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		c := client(t, tg)
		ctx := context.Background()
		root := base(t, c)
		node := root + "/slow"
		if _, err := c.Create(ctx, node, nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		px, err := faultproxy.New(strings.Split(tg.servers, ",")[0])
		if err != nil {
			t.Fatal(err)
		}
		defer px.Close()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan result, 1)
		go func() {
			done <- dsctlCtx(wctx, t, nil, out, errOut, "zk", "watch", node, "-o", "jsonl", "--zk", px.Addr(), "--session-timeout", "30s")
		}()
		waitFor(t, 10*time.Second, "armed", func() bool { return strings.Contains(out.String(), `"type":"armed"`) })
		px.SetLatency(2*time.Second, 0)
		if _, err := c.Set(ctx, node, []byte("v"), -1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // the notification came at ~2 s; the re-read's reply comes at ~6 s
		stopped := time.Now()
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("zk watch still running 10 s after ctrl-C")
		}
		if took := time.Since(stopped); took > 1500*time.Millisecond {
			t.Fatalf("zk watch took %s to stop after ctrl-C", took)
		}
		if r.code != 0 || !strings.Contains(r.out, `"type":"summary"`) {
			t.Fatalf("exit %d, output %q %q", r.code, r.out, r.errOut)
		}
	})
}

// The root was never written by a transaction (czxid and mzxid 0, time 0): its times
// read "never", not 1970; a real node's read as dates.
func TestStatTimesOfServerMadeNodes(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		r := dsctl(t, nil, "zk", "stat", "/", "--zk", tg.servers)
		if r.code != 0 || strings.Count(r.out, "never (made by the server at start)") != 2 || strings.Contains(r.out, "1970") {
			t.Fatalf("zk stat /: exit %d\n%s%s", r.code, r.out, r.errOut)
		}
		c := client(t, tg)
		root := base(t, c)
		r = dsctl(t, nil, "zk", "stat", root, "--zk", tg.servers)
		if r.code != 0 || strings.Contains(r.out, "never") || !strings.Contains(r.out, time.Now().Format("2006-01-02")) {
			t.Fatalf("zk stat %s: exit %d\n%s%s", root, r.code, r.out, r.errOut)
		}
	})
}
