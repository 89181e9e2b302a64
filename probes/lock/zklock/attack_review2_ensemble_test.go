//go:build unix

package zklock_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/zklock"
)

// privateEnsemble is a 3-node real ZooKeeper ensemble (the Debian package's jar) on
// free loopback ports, private to one test (its JVMs may be stopped freely).
type privateEnsemble struct {
	client []string
	procs  []*exec.Cmd
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ps []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ps
}

func startPrivateEnsemble(t *testing.T, tickMs int) *privateEnsemble {
	t.Helper()
	const jar = "/usr/share/java/zookeeper.jar"
	if _, err := os.Stat(jar); err != nil {
		t.Skip("no ZooKeeper jar at " + jar)
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java")
	}
	ports := freePorts(t, 9)
	e := &privateEnsemble{}
	cp := jar + ":/etc/zookeeper/conf"
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		cp += ":/usr/share/java/slf4j-simple.jar"
	}
	for n := 1; n <= 3; n++ {
		d := filepath.Join(t.TempDir(), fmt.Sprint(n))
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(d, "data", "myid"), []byte(fmt.Sprint(n)), 0o644)
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "tickTime=%d\ninitLimit=20\nsyncLimit=10\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
			tickMs, filepath.Join(d, "data"), ports[n-1])
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&cfg, "server.%d=127.0.0.1:%d:%d\n", i, ports[2+i], ports[5+i])
		}
		_ = os.WriteFile(filepath.Join(d, "zoo.cfg"), []byte(cfg.String()), 0o644)
		logf, _ := os.Create(filepath.Join(d, "zk.log"))
		cmd := exec.Command("java", "-Xmx96m", "-Xms32m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
			"-cp", cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(d, "zoo.cfg"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		e.procs = append(e.procs, cmd)
		e.client = append(e.client, fmt.Sprintf("127.0.0.1:%d", ports[n-1]))
	}
	t.Cleanup(func() {
		for _, c := range e.procs {
			_ = c.Process.Signal(syscall.SIGCONT)
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
	})
	deadline := time.Now().Add(120 * time.Second)
	for {
		modes := e.modes()
		ok := 0
		for _, m := range modes {
			if m == "leader" || m == "follower" {
				ok++
			}
		}
		if ok == 3 {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("private ensemble not up after 120s: modes %v", modes)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// modes asks each server for its Mode (srvr).
func (e *privateEnsemble) modes() []string {
	out := make([]string, len(e.client))
	for i, a := range e.client {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write([]byte("srvr"))
		b, _ := io.ReadAll(c)
		_ = c.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if m, ok := strings.CutPrefix(line, "Mode: "); ok {
				out[i] = strings.TrimSpace(m)
			}
		}
	}
	return out
}

// Claim 3 (the local deadline is conservative: sent + min(TTL, session timeout - one
// tick) - drift, "from the send of the confirming write"): ZooKeeper's leader does not
// touch a session when it processes a write that a follower forwarded
// (LeaderZooKeeperServer.submitLearnerRequest goes straight to PrepRequestProcessor).
// It learns of the session's activity only from the follower's answer to its next
// ping (every tickTime/2). So the leader's expiry clock for the session may have been
// started long before the confirming write was sent: at the client's previous
// activity (its pings come every timeout/3).
//
// Interleaving: H connects to follower F only (session created at t0), takes the lock,
// is idle, and at t0+3s renews (the confirming write: its local deadline becomes
// t0+3s+9.4s). Right after the renewal's answer, F stops (SIGSTOP: a partition of F and
// H from the rest): F never reports the renewal's touch. The leader expires H's session
// at about t0+10.5s and deletes H's node; W, queued through another server, takes the
// lock, about 2s before H's lease's local end: two holders.
func TestReview2AttackForwardedWriteDoesNotTouchTheLeaderSession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private 3-node ZooKeeper ensemble")
	}
	e := startPrivateEnsemble(t, 500)
	modes := e.modes()
	f, w := -1, -1
	for i, m := range modes {
		if m == "follower" && f < 0 {
			f = i
		} else if w < 0 {
			w = i
		}
	}
	if f < 0 || w < 0 {
		t.Fatalf("modes %v", modes)
	}
	ctx := context.Background()
	name := locktest.Name(t, "r2fwd")
	hl, err := zklock.New(ctx, endpoint.Dialer{Timeout: 3 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: []string{e.client[f]}, SessionTimeout: endpoint.Duration(10 * time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	t0 := time.Now()
	wl, err := zklock.New(ctx, endpoint.Dialer{Timeout: 3 * time.Second},
		zklock.Options{Endpoint: endpoint.ZooKeeper{Servers: []string{e.client[w]}, SessionTimeout: endpoint.Duration(10 * time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Close()
	opt := lock.AcquireOptions{TTL: time.Minute, Wait: lock.NoWait, Owner: owner}
	le, err := hl.Acquire(ctx, name, opt)
	if err != nil {
		t.Fatal(err)
	}
	type grant struct {
		at  time.Time
		le  *lock.Lease
		err error
	}
	got := make(chan grant, 1)
	go func() {
		o := opt
		o.Wait = lock.WaitFor(40 * time.Second)
		l, err := wl.Acquire(ctx, name, o)
		got <- grant{time.Now(), l, err}
	}()
	time.Sleep(time.Until(t0.Add(3 * time.Second)))
	le, err = hl.Renew(ctx, name, le.Token, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.procs[f].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	defer func() { _ = e.procs[f].Process.Signal(syscall.SIGCONT) }()
	t.Logf("H renewed at t0+%s (session %s), local end at t0+%s; follower %s stopped at t0+%s",
		le.AcquiredAt.Sub(t0).Round(time.Millisecond), hl.SessionTimeout(), le.ExpiresAt.Sub(t0).Round(time.Millisecond),
		e.client[f], stoppedAt.Sub(t0).Round(time.Millisecond))
	g := <-got
	if g.err != nil {
		t.Fatalf("W did not get the lock: %v", g.err)
	}
	defer func() { _ = wl.Release(context.Background(), name, g.le.Token) }()
	t.Logf("W granted at t0+%s (fence %d; H's fence %d)", g.at.Sub(t0).Round(time.Millisecond), g.le.Fence, le.Fence)
	if g.at.Before(le.ExpiresAt) {
		t.Fatalf("two holders: W was granted %q at t0+%s while H's lease (renewed at t0+%s through follower %s) stands locally until t0+%s: "+
			"%s of overlap; the leader expired H's session from its last ping-reported touch, not from the renewal",
			name, g.at.Sub(t0).Round(time.Millisecond), le.AcquiredAt.Sub(t0).Round(time.Millisecond), e.client[f],
			le.ExpiresAt.Sub(t0).Round(time.Millisecond), le.ExpiresAt.Sub(g.at).Round(time.Millisecond))
	}
}
