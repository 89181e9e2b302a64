package ring

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/commands/output"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// Without --maglev-m the table is sized from the node count, and the output says so.
func TestSimulateSizesMaglevFromNodes(t *testing.T) {
	e := newEnv()
	o := simOpts(func(o *SimulateOptions) { o.Nodes, o.Keys, o.Algos = 1000, 2000, "maglev" })
	if err := RunSimulate(context.Background(), e.f, e.printer(t, output.JSON), o); err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		MaglevM     int  `json:"maglev_m"`
		MaglevMAuto bool `json:"maglev_m_auto"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &rs); err != nil || len(rs) != 1 || rs[0].MaglevM != 100003 || !rs[0].MaglevMAuto {
		t.Fatalf("%v %+v\n%s", err, rs, e.out)
	}
	e = newEnv()
	if err := RunSimulate(context.Background(), e.f, e.printer(t, output.Table), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "M=100003 (auto)") || !strings.Contains(e.out.String(), "chosen from the node count") {
		t.Fatalf("table does not say how M was chosen:\n%s", e.out)
	}
}

func TestDefaultAlgosLeaveOutRendezvousBeyondBudget(t *testing.T) {
	all := []hashring.Algo{hashring.AlgoModulo, hashring.AlgoRendezvous, hashring.AlgoMaglev}
	if got, why := leaveOutSlowRendezvous(all, 100, 1_000_000); len(got) != 3 || why != "" {
		t.Errorf("small run: %v %q", got, why)
	}
	got, why := leaveOutSlowRendezvous(all, 100_000, 1_000_000)
	if len(got) != 2 || got[1] != hashring.AlgoMaglev || !strings.Contains(why, "--algo rendezvous") || !strings.Contains(why, "100,000 nodes") {
		t.Errorf("large run: %v %q", got, why)
	}
	if len(all) != 3 {
		t.Error("the caller's list was changed")
	}
}
