package snowflake

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"testing"
	"time"

	bw "github.com/bwmarrin/snowflake"
	sonyv1 "github.com/sony/sonyflake"
	sonyv2 "github.com/sony/sonyflake/v2"
)

// Reproduce: go test ./probes/snowflake -run '^$' -bench . -benchtime 2s
//
// BenchmarkDecodeStream measures the bulk path end to end on one core: read lines from
// a reader, parse, decode, append CSV/JSONL, write. BenchmarkLineCount is the yardstick
// in the same run: only splitting the same input into lines (what `wc -l` does).

const benchLines = 1 << 20

func benchInput(b *testing.B) []byte {
	b.Helper()
	g, err := NewGenerator(GeneratorConfig{Layout: mustPreset(b, "twitter"), Nodes: map[string]int64{"datacenter": 3, "worker": 17},
		Clock: &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), step: 250 * time.Microsecond}})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for i := 0; i < benchLines; i++ {
		id, err := g.Next()
		if err != nil {
			b.Fatal(err)
		}
		buf.WriteString(strconv.FormatUint(id, 10))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func BenchmarkDecodeStream(b *testing.B) {
	in := benchInput(b)
	d := NewDecoder(mustPreset(b, "twitter"), time.Now())
	for _, f := range []struct {
		name string
		f    Format
	}{{"csv", CSV}, {"jsonl", JSONL}} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			w := &countingWriter{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st, err := DecodeStream(bytes.NewReader(in), w, d, f.f, nil)
				if err != nil || st.Good != benchLines {
					b.Fatalf("%+v %v", st, err)
				}
			}
			b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "ids/s")
		})
	}
}

func BenchmarkLineCount(b *testing.B) {
	in := benchInput(b)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br := bufio.NewReaderSize(bytes.NewReader(in), maxLine)
		n := 0
		for {
			_, err := br.ReadSlice('\n')
			if err == io.EOF {
				break
			}
			n++
		}
		if n != benchLines {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkDecodeInto(b *testing.B) {
	d := NewDecoder(mustPreset(b, "twitter"), time.Now())
	var v Decoded
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.DecodeInto(1790000000000000000+uint64(i), &v)
		buf = d.AppendCSV(buf[:0], &v)
	}
}

// BenchmarkGenerate runs dsctl's generator and the reference libraries in one run.
// ids/s is the measured rate; ceiling% is that rate against the layout's ceiling for
// one node (twitter and bwmarrin: 4,096,000/s; sonyflake: 25,600/s). Each sub-benchmark
// checks that every ID is above the one before (so none repeats).
func BenchmarkGenerate(b *testing.B) {
	run := func(b *testing.B, ceiling float64, next func() uint64) {
		b.ReportAllocs()
		prev := next()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			id := next()
			if id <= prev {
				b.Fatalf("id %d not above %d", id, prev)
			}
			prev = id
		}
		rate := float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "ids/s")
		b.ReportMetric(100*rate/ceiling, "ceiling%")
	}
	dsctl := func(layout string, nodes map[string]int64) func() uint64 {
		g, err := NewGenerator(GeneratorConfig{Layout: mustPreset(b, layout), Nodes: nodes})
		if err != nil {
			b.Fatal(err)
		}
		return func() uint64 {
			id, err := g.Next()
			if err != nil {
				b.Fatal(err)
			}
			return id
		}
	}
	b.Run("dsctl-twitter", func(b *testing.B) {
		run(b, 4_096_000, dsctl("twitter", map[string]int64{"datacenter": 1, "worker": 1}))
	})
	b.Run("bwmarrin", func(b *testing.B) {
		node, err := bw.NewNode(1)
		if err != nil {
			b.Fatal(err)
		}
		run(b, 4_096_000, func() uint64 { return uint64(node.Generate().Int64()) })
	})
	b.Run("dsctl-sonyflake", func(b *testing.B) {
		run(b, 25_600, dsctl("sonyflake", map[string]int64{"machine": 1}))
	})
	b.Run("sonyflake-v1", func(b *testing.B) {
		sf, err := sonyv1.New(sonyv1.Settings{MachineID: func() (uint16, error) { return 1, nil }})
		if err != nil {
			b.Fatal(err)
		}
		run(b, 25_600, func() uint64 {
			id, err := sf.NextID()
			if err != nil {
				b.Fatal(err)
			}
			return id
		})
	})
	b.Run("sonyflake-v2", func(b *testing.B) {
		sf, err := sonyv2.New(sonyv2.Settings{MachineID: func() (int, error) { return 1, nil }})
		if err != nil {
			b.Fatal(err)
		}
		run(b, 25_600, func() uint64 {
			id, err := sf.NextID()
			if err != nil {
				b.Fatal(err)
			}
			return uint64(id)
		})
	})
}
