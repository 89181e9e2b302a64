package endpoint_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// silentListener accepts connections and never writes a byte: a stalled server.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// refusedAddr is a loopback port nobody listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStalledMySQLIsUnreachable(t *testing.T) {
	addr := silentListener(t)
	d := endpoint.Dialer{Timeout: 300 * time.Millisecond}
	ep := endpoint.SQL{}.WithDSNValue("root@tcp(" + addr + ")/db")
	for i := range 5 { // the failure used to depend on which timer fired first
		start := time.Now()
		db, _, err := d.ConnectSQL(context.Background(), ep)
		if err == nil {
			db.Close()
			t.Fatal("connected to a silent listener")
		}
		if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), "cannot reach "+addr+"/db within 300ms") {
			t.Fatalf("attempt %d: %v (kind %v), want unreachable within 300ms", i, err, errs.KindOf(err))
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("took %s with a 300ms timeout", took)
		}
	}
}

// TestStalledMySQLLogsNothing runs the connect in a child process and checks its stderr:
// go-sql-driver's default logger writes to the process's stderr directly.
func TestStalledMySQLLogsNothing(t *testing.T) {
	if addr := os.Getenv("DSCTL_TEST_STALLED_MYSQL"); addr != "" {
		d := endpoint.Dialer{Timeout: 200 * time.Millisecond}
		for range 3 {
			if db, _, err := d.ConnectSQL(context.Background(), endpoint.SQL{}.WithDSNValue("root@tcp("+addr+")/db")); err == nil {
				db.Close()
			}
		}
		return
	}
	addr := silentListener(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestStalledMySQLLogsNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DSCTL_TEST_STALLED_MYSQL="+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "[mysql]") {
		t.Fatalf("the MySQL driver logged on stderr:\n%s", stderr.String())
	}
}

func TestZooKeeperRefusedFailsAtOnce(t *testing.T) {
	addr := refusedAddr(t)
	d := endpoint.Dialer{Timeout: 3 * time.Second}
	start := time.Now()
	_, err := d.ConnectZooKeeper(context.Background(), endpoint.ZooKeeper{Servers: []string{addr}})
	took := time.Since(start)
	if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want unreachable naming the refusal", err)
	}
	if took > time.Second {
		t.Fatalf("a refused port took %s to fail", took)
	}
}

func TestZooKeeperSilentRespectsTimeout(t *testing.T) {
	addr := silentListener(t)
	d := endpoint.Dialer{Timeout: 500 * time.Millisecond}
	start := time.Now()
	_, err := d.ConnectZooKeeper(context.Background(), endpoint.ZooKeeper{Servers: []string{addr}})
	took := time.Since(start)
	if errs.KindOf(err) != errs.KindUnreachable || !strings.Contains(err.Error(), "within 500ms") {
		t.Fatalf("err = %v, want unreachable within 500ms", err)
	}
	if took > 800*time.Millisecond {
		t.Fatalf("took %s with a 500ms timeout", took)
	}
}
