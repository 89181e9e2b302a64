package zktest

import (
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
)

func TestRunGivesBothTargets(t *testing.T) {
	var names []string
	Run(t, zkserver.Options{}, func(t *testing.T, tg Target) {
		names = append(names, tg.Name)
		if (tg.Name == "embedded") != (tg.Embedded != nil) || len(tg.Servers) == 0 {
			t.Fatalf("target %+v", tg)
		}
		c, ch, err := zk.Connect(tg.Servers, 4*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			for range ch {
			}
		}()
		kids, _, err := c.Children("/zookeeper")
		if err != nil || strings.Join(kids, ",") == "" {
			t.Fatalf("/zookeeper children %v %v", kids, err)
		}
	})
	if len(names) == 0 || names[0] != "embedded" {
		t.Fatalf("targets run: %v", names)
	}
}
