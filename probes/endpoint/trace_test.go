package endpoint

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dialer.Trace is the one tracing hook: set, it gets every dial and attempt of every
// backend; unset, nothing is traced (there is no second hook in the context).
func TestTraceIsTheDialersHook(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	traced := Dialer{Timeout: 500 * time.Millisecond, Trace: func(s string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, s)
	}}
	ctx := context.Background()
	run := func(d Dialer) {
		if c, err := d.ConnectKafka(ctx, Kafka{Brokers: []string{"127.0.0.1:1"}}); err == nil {
			c.Close()
			t.Fatal("connected to 127.0.0.1:1")
		}
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		defer c.Close()
		if err := d.PingRedis(ctx, "127.0.0.1:1", c); err == nil {
			t.Fatal("PING answered at 127.0.0.1:1")
		}
		if _, err := d.ConnectZooKeeper(ctx, ZooKeeper{Servers: []string{"127.0.0.1:1"}}); err == nil {
			t.Fatal("ZooKeeper session at 127.0.0.1:1")
		}
	}
	run(traced)
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	for _, want := range []string{"kafka: bootstrap from 127.0.0.1:1", "kafka: dial 127.0.0.1:1", "redis: PING 127.0.0.1:1",
		"zookeeper: connecting to 127.0.0.1:1", "zookeeper: dial 127.0.0.1:1"} {
		if !strings.Contains(all, want) {
			t.Errorf("trace lacks %q:\n%s", want, all)
		}
	}
	mu.Lock()
	lines = nil
	mu.Unlock()
	quiet := traced
	quiet.Trace = nil
	run(quiet)
	if len(lines) != 0 {
		t.Fatalf("a dialer without Trace traced: %q", lines)
	}
}
