package sandboxcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/endpoint"
)

// runSandbox runs `dsctl sandbox` on free ports until it has printed, hands the
// factory to check, then stops it with ctx as ctrl-C would.
func runSandbox(t *testing.T, format output.Format, check func(f *cmdutil.Factory, out string)) {
	t.Helper()
	ios, _, _, _ := cmdutil.Test()
	out, errOut := &lockedBuffer{}, &lockedBuffer{} // Run writes from its goroutine
	ios.Out, ios.ErrOut = out, errOut
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &output.Printer{Format: format, Out: ios.Out}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, f, p, &Options{}) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(errOut.String(), "sandbox running") {
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not start within 20s: %s", errOut.String())
		}
		select {
		case err := <-done:
			t.Fatalf("sandbox ended early: %v\n%s", err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	check(f, out.String())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSandboxPrintsAndServesZooKeeper(t *testing.T) {
	runSandbox(t, output.JSON, func(f *cmdutil.Factory, out string) {
		var info struct {
			ZooKeeper string `json:"zookeeper"`
			ZNodes    []struct {
				Path         string `json:"path"`
				Demonstrates string `json:"demonstrates"`
			} `json:"znodes"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if info.ZooKeeper == "" || len(info.ZNodes) != 4 || info.ZNodes[3].Path != "/dsctl/locks/orders" {
			t.Fatalf("printed %+v", info)
		}
		zs, err := endpoint.Dialer{Timeout: 3 * time.Second}.ConnectZooKeeper(context.Background(), endpoint.ZooKeeper{Servers: []string{info.ZooKeeper}})
		if err != nil {
			t.Fatal(err)
		}
		defer zs.Close()
		go func() {
			for range zs.Events {
			}
		}()
		for _, z := range info.ZNodes {
			if kids, _, err := zs.Conn.Children(z.Path); err != nil || (strings.Contains(z.Demonstrates, "members") && len(kids) == 0) {
				t.Fatalf("%s: %v %v", z.Path, kids, err)
			}
		}
		if _, err := zs.Conn.Create("/from-test", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSandboxEnvLinesIncludeZooKeeper(t *testing.T) {
	runSandbox(t, output.Env, func(_ *cmdutil.Factory, out string) {
		for _, key := range []string{"DSCTL_REDIS=", "DSCTL_KAFKA=", "DSCTL_ZK=127.0.0.1:"} {
			if !strings.Contains(out, key) {
				t.Fatalf("-o env lacks %s:\n%s", key, out)
			}
		}
	})
}

func TestSandboxRefusesABadZKPort(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{})
	err := Run(context.Background(), f, &output.Printer{Format: output.JSON, Out: ios.Out}, &Options{ZKPort: 70000})
	if err == nil || !strings.Contains(err.Error(), "--zk-port 70000 is out of range") {
		t.Fatalf("err = %v", err)
	}
}
