package kafka

import (
	"bufio"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// Partitioner maps a non-null key to a partition the way one client's default does.
type Partitioner struct {
	// Name is the stable JSON key: java, sarama, librdkafka.
	Name string
	// Describe says which client and algorithm.
	Describe string
	Fn       func(key []byte, n int32) int32
}

// Partitioners are the three defaults dsctl compares, in output order.
var Partitioners = []Partitioner{
	{Name: "java", Describe: "Java client default: toPositive(murmur2(key)) % n", Fn: JavaPartition},
	{Name: "sarama", Describe: "sarama NewHashPartitioner (default): |int32(fnv1a(key)) % n|", Fn: SaramaPartition},
	{Name: "librdkafka", Describe: "librdkafka consistent_random (default): crc32(key) % n", Fn: LibrdkafkaPartition},
}

// Murmur2 is Kafka's org.apache.kafka.common.utils.Utils.murmur2: MurmurHash2, 32-bit,
// seed 0x9747b28c, little-endian 4-byte blocks, as a signed Java int.
func Murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n4 := length / 4
	for i := 0; i < n4; i++ {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := n4 * 4
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// JavaPartition is the Java producer's partition for a non-null key
// (BuiltInPartitioner.partitionForKey): toPositive(murmur2(key)) % n.
func JavaPartition(key []byte, n int32) int32 {
	return (Murmur2(key) & 0x7fffffff) % n
}

// SaramaPartition is sarama's default NewHashPartitioner: FNV-1a 32, read as a signed
// int32, modulo n, then the absolute value (not Java's toPositive).
func SaramaPartition(key []byte, n int32) int32 {
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % n
	if p < 0 {
		p = -p
	}
	return p
}

// LibrdkafkaPartition is librdkafka's default consistent_random for a non-null key:
// the unsigned CRC-32 (IEEE) of the key modulo n.
func LibrdkafkaPartition(key []byte, n int32) int32 {
	return int32(crc32.ChecksumIEEE(key) % uint32(n))
}

// KeyPlacement is where one key goes under each partitioner.
type KeyPlacement struct {
	Key string `json:"key"`
	// Partitions maps partitioner name to partition.
	Partitions map[string]int32 `json:"partitions"`
	Agree      bool             `json:"agree"`
}

// PartitionCount is how many keys one partition gets under each partitioner.
type PartitionCount struct {
	Partition int32            `json:"partition"`
	Keys      map[string]int64 `json:"keys"`
}

// Placement is the result of mapping keys to partitions.
type Placement struct {
	Partitions int32  `json:"partitions"`
	Topic      string `json:"topic,omitempty"`
	KeysTotal  int64  `json:"keys_total"`
	// Keys lists each key (all of them for --key; up to KeepKeys from a keys file).
	Keys []KeyPlacement `json:"keys"`
	// Disagreeing counts keys on which the partitioners do not all agree.
	Disagreeing int64 `json:"disagreeing"`
	// DisagreeingExamples are the first such keys, up to the keep count (keys file only).
	DisagreeingExamples []KeyPlacement `json:"disagreeing_examples,omitempty"`
	// Distribution and Skew are filled for a keys file: keys per partition, and
	// max/mean keys per partition for each partitioner (1.0 is perfectly even).
	Distribution []PartitionCount   `json:"distribution,omitempty"`
	Skew         map[string]float64 `json:"skew,omitempty"`
	Partitioners map[string]string  `json:"partitioners"`
	FromFile     bool               `json:"from_file"`
}

// Place maps each key.
func Place(keys []string, n int32) (*Placement, error) {
	if err := checkPartitions(n); err != nil {
		return nil, err
	}
	p := newPlacement(n)
	for _, k := range keys {
		kp := placeKey(k, n)
		p.add(kp, true)
	}
	return p, nil
}

// DefaultShow is how many keys, and disagreeing keys, a keys-file placement lists
// unless told otherwise.
const DefaultShow = 10

// PlaceReader maps every line of r (one key per line; a trailing \r is dropped, blank
// lines are skipped) and computes the distribution. keep is how many keys, and how
// many disagreeing keys, to list (0: none).
func PlaceReader(r io.Reader, n int32, keep int) (*Placement, error) {
	if err := checkPartitions(n); err != nil {
		return nil, err
	}
	if keep < 0 {
		return nil, errs.Usage("--show must be 0 or more, got %d", keep)
	}
	p := newPlacement(n)
	p.FromFile = true
	counts := make(map[string][]int64, len(Partitioners))
	for _, pt := range Partitioners {
		counts[pt.Name] = make([]int64, n)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		k := strings.TrimSuffix(sc.Text(), "\r")
		if k == "" {
			continue
		}
		kp := placeKey(k, n)
		for name, part := range kp.Partitions {
			counts[name][part]++
		}
		p.add(kp, len(p.Keys) < keep)
		if !kp.Agree && len(p.DisagreeingExamples) < keep {
			p.DisagreeingExamples = append(p.DisagreeingExamples, kp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errs.Usage("keys file: %v", err)
	}
	p.Distribution = make([]PartitionCount, n)
	for i := range p.Distribution {
		pc := PartitionCount{Partition: int32(i), Keys: map[string]int64{}}
		for name := range counts {
			pc.Keys[name] = counts[name][i]
		}
		p.Distribution[i] = pc
	}
	p.Skew = map[string]float64{}
	for name, c := range counts {
		p.Skew[name] = skew(c, p.KeysTotal)
	}
	return p, nil
}

func checkPartitions(n int32) error {
	if n <= 0 {
		return errs.Usage("--partitions must be at least 1, got %d", n)
	}
	return nil
}

func newPlacement(n int32) *Placement {
	p := &Placement{Partitions: n, Keys: []KeyPlacement{}, Partitioners: map[string]string{}}
	for _, pt := range Partitioners {
		p.Partitioners[pt.Name] = pt.Describe
	}
	return p
}

func (p *Placement) add(kp KeyPlacement, keep bool) {
	p.KeysTotal++
	if !kp.Agree {
		p.Disagreeing++
	}
	if keep {
		p.Keys = append(p.Keys, kp)
	}
}

func placeKey(k string, n int32) KeyPlacement {
	kp := KeyPlacement{Key: k, Partitions: make(map[string]int32, len(Partitioners)), Agree: true}
	first := int32(-1)
	for i, pt := range Partitioners {
		part := pt.Fn([]byte(k), n)
		kp.Partitions[pt.Name] = part
		if i == 0 {
			first = part
		} else if part != first {
			kp.Agree = false
		}
	}
	return kp
}

// skew is max/mean keys per partition: 1.0 is perfectly even.
func skew(counts []int64, total int64) float64 {
	if total == 0 || len(counts) == 0 {
		return 0
	}
	var most int64
	for _, c := range counts {
		most = max(most, c)
	}
	mean := float64(total) / float64(len(counts))
	return math.Round(float64(most)/mean*1000) / 1000
}
