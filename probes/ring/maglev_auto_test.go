package ring

import (
	"math/big"
	"testing"
)

func TestAutoMaglevM(t *testing.T) {
	cases := []struct{ nodes, want int }{
		{1, DefaultMaglevM}, {10, DefaultMaglevM}, {655, DefaultMaglevM}, // 100x below the old default: keep it
		{1000, 100003}, {2000, 200003}, {100000, 10000019}, {1000000, MaxAutoMaglevM},
	}
	for _, c := range cases {
		got := AutoMaglevM(c.nodes)
		if got != c.want {
			t.Errorf("AutoMaglevM(%d) = %d, want %d", c.nodes, got, c.want)
		}
		if !big.NewInt(int64(got)).ProbablyPrime(20) {
			t.Errorf("AutoMaglevM(%d) = %d is not prime", c.nodes, got)
		}
	}
}

// More nodes than the old fixed table (65537) no longer fail when M is not given.
func TestClusterSizesMaglevFromNodes(t *testing.T) {
	nodes, err := GenerateNodes(70000)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Cluster{Nodes: nodes, Vnodes: 1}.validate([]Algo{AlgoMaglev})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaglevM != 7000003 || !c.maglevAuto {
		t.Fatalf("M = %d (auto %v), want 7000003", c.MaglevM, c.maglevAuto)
	}
	// A given M is kept, and still checked.
	if _, err := (Cluster{Nodes: nodes, Vnodes: 1, MaglevM: 65537}).validate([]Algo{AlgoMaglev}); err == nil {
		t.Fatal("--maglev-m 65537 accepted for 70000 nodes")
	}
}
