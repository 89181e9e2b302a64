package zkserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/testenv"
)

// BenchmarkOps measures create, get and set throughput through go-zookeeper on the
// embedded server and on the real ensemble in the same run (informational: the
// sandbox should not be the slow part of a test). "serial" waits for each reply;
// "parallel" keeps GOMAXPROCS*8 requests in flight on one session.
//
//	go test -run '^$' -bench Ops -benchtime 3000x ./probes/sandbox/zkserver/
func BenchmarkOps(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		srv, err := Start(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		benchOps(b, srv.Addr())
	})
	b.Run("ensemble", func(b *testing.B) {
		benchOps(b, testenv.List(b, testenv.ZK)[0])
	})
}

func benchOps(b *testing.B, addr string) {
	c, ch, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(silentLogger{}), zk.WithLogInfo(false))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	go func() {
		for range ch {
		}
	}()
	root := fmt.Sprintf("/dsctl-zkbench-%d", time.Now().UnixNano())
	for start := time.Now(); c.State() != zk.StateHasSession; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			b.Fatal("no session")
		}
	}
	if _, err := c.Create(root, nil, 0, openACL); err != nil {
		b.Fatal(err)
	}
	defer deleteTree(c, root)
	if _, err := c.Create(root+"/node", make([]byte, 100), 0, openACL); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	var seq atomic.Int64
	ops := []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			_, err := c.Create(fmt.Sprintf("%s/n%d", root, seq.Add(1)), payload, 0, openACL)
			return err
		}},
		{"get", func() error { _, _, err := c.Get(root + "/node"); return err }},
		{"set", func() error { _, err := c.Set(root+"/node", payload, -1); return err }},
	}
	for _, op := range ops {
		b.Run(op.name+"/serial", func(b *testing.B) {
			for range b.N {
				if err := op.do(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(op.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op.do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
