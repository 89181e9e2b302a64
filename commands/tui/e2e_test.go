package tui_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/faultproxy"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/testenv"
	"github.com/dsctl/dsctl/probes/zk"
)

// The end-to-end tests run the real binary in a tmux pane against the real services
// (scripts/services up), send keys, capture the pane and assert what it shows.
// Every wait is bounded.

// needTmux skips without tmux (fails under CI=true: scripts/services up installs it).
func needTmux(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed but CI=true: the TUI end-to-end tests must run (apt-get install tmux)")
		}
		t.Skip("tmux is not installed: apt-get install tmux to run the TUI end-to-end tests")
	}
	return p
}

// buildDsctl builds the binary once per test.
func buildDsctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dsctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/dsctl/dsctl/cmd/dsctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func hexID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pane is one tmux session running a command.
type pane struct {
	t    *testing.T
	tmux string
	name string
}

// startPane runs argv with env in a new detached tmux session of w x h cells. After
// the command ends the pane keeps showing its exit code (EXIT=n) until killed.
func startPane(t *testing.T, env []string, w, h int, argv ...string) *pane {
	t.Helper()
	p := &pane{t: t, tmux: needTmux(t), name: "dsctl-e2e-" + hexID()}
	var sh strings.Builder
	sh.WriteString("#!/bin/sh\nexport TERM=xterm-256color\n")
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&sh, "export %s=%s\n", k, shellQuote(v))
	}
	for _, a := range argv {
		sh.WriteString(shellQuote(a) + " ")
	}
	sh.WriteString("\necho EXIT=$?\nsleep 600\n")
	script := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(script, []byte(sh.String()), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.tmux, "new-session", "-d", "-s", p.name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(p.tmux, "kill-session", "-t", p.name).Run() })
	return p
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (p *pane) capture() string {
	out, err := exec.Command(p.tmux, "capture-pane", "-p", "-t", p.name).Output()
	if err != nil {
		p.t.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

// keys sends tmux key names (Enter, Escape, Tab) or literal text with lit.
func (p *pane) keys(keys ...string) {
	p.t.Helper()
	if out, err := exec.Command(p.tmux, append([]string{"send-keys", "-t", p.name}, keys...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys %v: %v %s", keys, err, out)
	}
	time.Sleep(150 * time.Millisecond) // an ESC followed at once by a key reads as alt+key
}

func (p *pane) text(s string) { p.keys("-l", s) }

// waitFor polls the pane until ok holds, or fails after d with the last screen.
func (p *pane) waitFor(what string, d time.Duration, ok func(screen string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := p.capture()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %s the pane does not show %s:\n%s", d, what, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *pane) waitText(d time.Duration, texts ...string) string {
	p.t.Helper()
	return p.waitFor(fmt.Sprintf("%q", texts), d, func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

// quit presses q and checks the exit code.
func (p *pane) quit() {
	p.t.Helper()
	p.keys("q")
	p.waitText(10*time.Second, "EXIT=0")
}

// TestTUIEndToEnd runs `dsctl tui` against the real Redis, ZooKeeper and Kafka, with
// Redis behind a private fault proxy: every pane shows live data, a lock taken by the
// test shows with its fence, a znode change arrives on the watch stream, and when the
// proxy black-holes Redis the dashboard keeps running, shows the banner, and clears it
// once Redis answers again.
func TestTUIEndToEnd(t *testing.T) {
	needTmux(t)
	redisAddr := strings.Split(testenv.Get(t, testenv.Redis), ",")[0]
	zkServers := testenv.Get(t, testenv.ZK)
	brokers := testenv.Get(t, testenv.Kafka)
	bin := buildDsctl(t)
	ctx := context.Background()

	proxy, err := faultproxy.New(redisAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	// A lock the dashboard must list.
	d := endpoint.Dialer{Timeout: 5 * time.Second}
	locker, err := redislock.New(d, endpoint.Redis{Addrs: []string{redisAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	id := hexID()
	lockName := "tui-e2e/" + id
	lease, err := locker.Acquire(ctx, lockName, lock.AcquireOptions{TTL: 5 * time.Minute, Owner: lock.Owner{Label: "e2e-holder"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locker.Release(context.Background(), lockName, lease.Token) })

	// A znode to browse and watch.
	zc, err := zk.Connect(ctx, d, zk.Options{Endpoint: endpoint.ZooKeeper{Servers: strings.Split(zkServers, ",")}})
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	node := "tui-" + id
	path := "/dsctl-test/" + node
	if err := zc.CreateAll(ctx, []string{"/dsctl-test", path}, []byte("v0"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = zc.DeleteTree(context.Background(), path, 0) })

	env := []string{"DSCTL_REDIS=" + proxy.Addr(), "DSCTL_ZK=" + zkServers, "DSCTL_KAFKA=" + brokers, "DSCTL_CONFIG=/nonexistent/dsctl.yaml"}
	p := startPane(t, env, 120, 40, bin, "tui", "--refresh", "1s", "--timeout", "1s")

	// Overview: every backend connected, counts filled in.
	p.waitText(30*time.Second, "[1 Overview]", "redis", "zookeeper", "kafka", "3 brokers", "ensemble HEALTHY")
	p.waitFor("three connected backends", 30*time.Second, func(s string) bool { return strings.Count(s, "connected") >= 3 })

	// Locks: the test's lock with its holder and fence.
	p.keys("2")
	p.keys("/")
	p.text(id)
	p.keys("Enter")
	s := p.waitText(20*time.Second, lockName, "e2e-holder", lease.Fence.String())
	if !strings.Contains(s, `filter "`+id+`"`) {
		t.Fatalf("the filter is not shown:\n%s", s)
	}
	p.keys("Enter") // inspect
	p.waitText(10*time.Second, "Inspect", "fencing safe", lease.Token)
	p.keys("Escape")
	p.keys("Escape") // clear the filter

	// Kafka: the audit summary and the brokers.
	p.keys("3")
	p.waitText(40*time.Second, "audit:", "3 brokers", "__consumer_offsets")
	p.keys("w")
	p.waitText(10*time.Second, "if this broker were lost")
	p.keys("Escape")

	// ZooKeeper: browse to the test's node, watch it, change it.
	p.keys("4")
	p.waitText(20*time.Second, "ensemble HEALTHY", "tree /", "dsctl-test")
	p.keys("/")
	p.text("dsctl-test")
	p.keys("Enter", "Enter") // keep the filter, open /dsctl-test
	p.waitText(10*time.Second, "tree /dsctl-test")
	p.keys("/")
	p.text(node)
	p.keys("Enter")
	p.waitText(10*time.Second, "▸ "+node)
	p.keys("w")
	p.waitText(20*time.Second, "watch (live): "+path, "armed")
	if _, err := zc.Set(ctx, path, []byte("v1"), -1); err != nil {
		t.Fatal(err)
	}
	p.waitText(20*time.Second, "data v0→v1 "+path)
	p.keys("Escape")

	// Redis goes dark behind the proxy: a banner, the dashboard keeps running.
	p.keys("1")
	proxy.Blackhole(time.Minute)
	s = p.waitText(30*time.Second, "! redis UNREACHABLE")
	if !strings.Contains(s, "UNREACHABLE") || !strings.Contains(s, "kafka") {
		t.Fatalf("unexpected screen while Redis is down:\n%s", s)
	}
	proxy.Heal()
	p.waitFor("the banner to clear", 45*time.Second, func(s string) bool {
		return !strings.Contains(s, "! redis UNREACHABLE") && strings.Count(s, "connected") >= 3
	})
	p.quit()
}

// TestTUISandbox runs `dsctl tui --sandbox`: embedded servers, every backend connected,
// the demo topics audited, the ring pane interactive; q exits 0.
func TestTUISandbox(t *testing.T) {
	needTmux(t)
	bin := buildDsctl(t)
	p := startPane(t, []string{"DSCTL_CONFIG=/nonexistent/dsctl.yaml"}, 100, 30, bin, "tui", "--sandbox", "--refresh", "1s")
	p.waitText(60*time.Second, "dsctl tui · sandbox", "ensemble HEALTHY")
	p.waitFor("three connected backends", 30*time.Second, func(s string) bool { return strings.Count(s, "connected") >= 3 })
	p.keys("3")
	p.waitText(30*time.Second, "audit:", "critical")
	p.keys("5")
	p.waitText(20*time.Second, "algorithm ring")
	p.keys("a")
	p.waitText(20*time.Second, "added node-6: moved")
	p.keys("?")
	p.waitText(5*time.Second, "Keys", "add a node")
	p.keys("Escape")
	p.quit()
}
