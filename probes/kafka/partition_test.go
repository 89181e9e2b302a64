package kafka

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/errs"
)

// Kafka's own UtilsTest.testMurmur2 vectors.
func TestMurmur2MatchesKafkaUtilsTest(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for key, want := range cases {
		if got := Murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestJavaPartitionIsToPositiveModN(t *testing.T) {
	// murmur2("21") = -973932308; toPositive = -973932308 & 0x7fffffff = 1173551340.
	if got := JavaPartition([]byte("21"), 7); got != 1173551340%7 {
		t.Fatalf("JavaPartition(21, 7) = %d, want %d", got, 1173551340%7)
	}
}

// sarama's own partitioners are the reference for its default and for the
// librdkafka-compatible CRC32 one.
func TestSaramaAndLibrdkafkaMatchSaramaPartitioners(t *testing.T) {
	fnvRef := sarama.NewHashPartitioner("t")
	crcRef := sarama.NewConsistentCRCHashPartitioner("t")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		key := make([]byte, r.IntN(40))
		for j := range key {
			key[j] = byte(r.IntN(256))
		}
		n := int32(1 + r.IntN(200))
		msg := &sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}
		want, _ := fnvRef.Partition(msg, n)
		if got := SaramaPartition(key, n); got != want {
			t.Fatalf("SaramaPartition(%x, %d) = %d, sarama says %d", key, n, got, want)
		}
		want, _ = crcRef.Partition(msg, n)
		if got := LibrdkafkaPartition(key, n); got != want {
			t.Fatalf("LibrdkafkaPartition(%x, %d) = %d, sarama's CRC partitioner says %d", key, n, got, want)
		}
	}
}

func TestPlaceFlagsDisagreement(t *testing.T) {
	p, err := Place([]string{"21", "foobar", "abc", "user-1"}, 6)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeysTotal != 4 || len(p.Keys) != 4 {
		t.Fatalf("placement %+v", p)
	}
	disagree := 0
	for _, k := range p.Keys {
		j, s, l := k.Partitions["java"], k.Partitions["sarama"], k.Partitions["librdkafka"]
		if j != JavaPartition([]byte(k.Key), 6) || s != SaramaPartition([]byte(k.Key), 6) || l != LibrdkafkaPartition([]byte(k.Key), 6) {
			t.Fatalf("key %q: %v", k.Key, k.Partitions)
		}
		if k.Agree != (j == s && s == l) {
			t.Fatalf("key %q: agree=%v with %v", k.Key, k.Agree, k.Partitions)
		}
		if !k.Agree {
			disagree++
		}
	}
	if int64(disagree) != p.Disagreeing || disagree == 0 {
		t.Fatalf("disagreeing = %d, counted %d (want > 0 for these keys)", p.Disagreeing, disagree)
	}
	// One partition: every partitioner agrees.
	p, _ = Place([]string{"a", "b"}, 1)
	if p.Disagreeing != 0 {
		t.Fatalf("with 1 partition nothing can disagree: %+v", p)
	}
}

func TestPlaceReaderDistributionAndSkew(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 12000; i++ {
		fmt.Fprintf(&b, "user-%d\r\n", i)
		if i%1000 == 0 {
			b.WriteString("\n") // blank lines are skipped
		}
	}
	p, err := PlaceReader(strings.NewReader(b.String()), 12, 5)
	if err != nil {
		t.Fatal(err)
	}
	if p.KeysTotal != 12000 || len(p.Keys) != 5 || len(p.Distribution) != 12 {
		t.Fatalf("total %d, listed %d, distribution %d", p.KeysTotal, len(p.Keys), len(p.Distribution))
	}
	for _, pt := range Partitioners {
		var sum int64
		for _, d := range p.Distribution {
			sum += d.Keys[pt.Name]
		}
		if sum != 12000 {
			t.Fatalf("%s: distribution sums to %d", pt.Name, sum)
		}
		if s := p.Skew[pt.Name]; s < 1 || s > 1.2 {
			t.Fatalf("%s: skew %.3f for 12000 keys on 12 partitions, want close to 1", pt.Name, s)
		}
	}
	if p.Keys[0].Key != "user-0" {
		t.Fatalf("the \\r must be dropped: %q", p.Keys[0].Key)
	}
	if p.Disagreeing == 0 || len(p.DisagreeingExamples) != 5 {
		t.Fatalf("disagreeing %d, examples %d, want 5 (the keep count)", p.Disagreeing, len(p.DisagreeingExamples))
	}
}

// The keep count (--show) bounds both the keys listed and the disagreeing examples.
func TestPlaceReaderKeepsShowCount(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "user-%d\n", i)
	}
	for _, keep := range []int{0, 5, 50} {
		p, err := PlaceReader(strings.NewReader(b.String()), 12, keep)
		if err != nil {
			t.Fatal(err)
		}
		if p.Disagreeing < 50 {
			t.Fatalf("need at least 50 disagreeing keys for this test, got %d", p.Disagreeing)
		}
		if len(p.Keys) != keep || len(p.DisagreeingExamples) != keep {
			t.Fatalf("keep %d: listed %d keys and %d disagreeing examples", keep, len(p.Keys), len(p.DisagreeingExamples))
		}
	}
	if _, err := PlaceReader(strings.NewReader(b.String()), 12, -1); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("keep -1: %v, want a usage error", err)
	}
}

func TestPartitionsMustBePositive(t *testing.T) {
	for _, n := range []int32{0, -3} {
		if _, err := Place([]string{"a"}, n); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("Place with %d partitions: %v, want a usage error", n, err)
		}
		if _, err := PlaceReader(strings.NewReader("a\n"), n, 1); errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("PlaceReader with %d partitions: %v, want a usage error", n, err)
		}
	}
}

func BenchmarkJavaPartition(b *testing.B) {
	key := []byte("user-1234567")
	for b.Loop() {
		JavaPartition(key, 12)
	}
}
