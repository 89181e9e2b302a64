package snowflake

import (
	"testing"
	"time"

	bw "github.com/bwmarrin/snowflake"
	sonyv1 "github.com/sony/sonyflake"
	sonyv2 "github.com/sony/sonyflake/v2"
)

// IDs minted by the reference libraries decode to the fields those libraries report.

func TestCrossCheckBwmarrin(t *testing.T) {
	d := NewDecoder(mustPreset(t, "bwmarrin"), time.Now())
	for _, nodeID := range []int64{0, 1, 513, 1023} {
		node, err := bw.NewNode(nodeID)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5000; i++ {
			id := node.Generate()
			v := d.Decode(uint64(id.Int64()))
			n, _ := d.Field(&v, "node")
			s, _ := d.Field(&v, "step")
			if v.UnixMs != id.Time() || int64(n) != id.Node() || int64(s) != id.Step() {
				t.Fatalf("%d: dsctl time %d node %d step %d; bwmarrin time %d node %d step %d",
					id, v.UnixMs, n, s, id.Time(), id.Node(), id.Step())
			}
			if v.Warnings&^WarnUnsafeInJS != 0 {
				t.Fatalf("%d: warnings %v", id, v.Warnings.Codes())
			}
		}
	}
}

func TestCrossCheckSonyflakeV1(t *testing.T) {
	l := mustPreset(t, "sonyflake")
	d := NewDecoder(l, time.Now())
	for _, machine := range []uint16{0, 1, 0x1234, 0xffff} {
		sf, err := sonyv1.New(sonyv1.Settings{MachineID: func() (uint16, error) { return machine, nil }})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 600; i++ { // > 256: crosses sequence rollovers
			id, err := sf.NextID()
			if err != nil {
				t.Fatal(err)
			}
			parts := sonyv1.Decompose(id)
			v := d.Decode(id)
			m, _ := d.Field(&v, "machine")
			s, _ := d.Field(&v, "sequence")
			wantMs := l.EpochMs() + sonyv1.ElapsedTime(id).Milliseconds()
			if m != parts["machine-id"] || s != parts["sequence"] || v.Values[0] != parts["time"] || v.UnixMs != wantMs {
				t.Fatalf("%d: dsctl machine %d seq %d ticks %d ms %d; sonyflake %v ms %d", id, m, s, v.Values[0], v.UnixMs, parts, wantMs)
			}
		}
	}
}

func TestCrossCheckSonyflakeV2(t *testing.T) {
	d := NewDecoder(mustPreset(t, "sonyflake-v2"), time.Now())
	for _, machine := range []int{0, 42, 0xfffe} {
		sf, err := sonyv2.New(sonyv2.Settings{MachineID: func() (int, error) { return machine, nil }})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 600; i++ {
			id, err := sf.NextID()
			if err != nil {
				t.Fatal(err)
			}
			v := d.Decode(uint64(id))
			m, _ := d.Field(&v, "machine")
			s, _ := d.Field(&v, "sequence")
			if int(m) != sonyv2.MachineID(id) || int(s) != sonyv2.SequenceNumber(id) ||
				int64(v.Values[0]) != sonyv2.Time(id) || v.UnixMs != sf.ToTime(id).UnixMilli() {
				t.Fatalf("%d: dsctl machine %d seq %d ms %d; sonyflake/v2 machine %d seq %d ms %d", id, m, s, v.UnixMs,
					sonyv2.MachineID(id), sonyv2.SequenceNumber(id), sf.ToTime(id).UnixMilli())
			}
		}
	}
}

// And the other way: IDs dsctl generates read back through the libraries' decoders.
func TestCrossCheckLibrariesReadOurIDs(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), step: 37 * time.Microsecond}
	g, err := NewGenerator(GeneratorConfig{Layout: mustPreset(t, "bwmarrin"), Nodes: map[string]int64{"node": 777}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		before := clk.t
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		f := bw.ParseInt64(int64(id))
		if f.Node() != 777 || f.Time() < before.UnixMilli() || f.Time() > clk.t.UnixMilli() {
			t.Fatalf("bwmarrin reads node %d time %d from %d", f.Node(), f.Time(), id)
		}
	}
	g, err = NewGenerator(GeneratorConfig{Layout: mustPreset(t, "sonyflake"), Nodes: map[string]int64{"machine": 4242}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i++ {
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if sonyv1.MachineID(id) != 4242 {
			t.Fatalf("sonyflake reads machine %d from %d", sonyv1.MachineID(id), id)
		}
	}
}
