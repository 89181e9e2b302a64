package ring

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dsctl/dsctl/probes/errs"
)

// batchKeys is how many keys one Batch holds: big enough that per-batch costs (a lock, a
// clock read, a channel send) vanish, small enough to stay in L2.
const batchKeys = 4096

// Batch is a run of keys stored back to back in one buffer, so a batch costs no
// allocation per key. Seq numbers batches 0, 1, 2, ... in stream order.
type Batch struct {
	Seq  int64
	data []byte
	ends []int
}

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() { b.data, b.ends = b.data[:0], b.ends[:0] }

// Append adds one key (copied).
func (b *Batch) Append(key []byte) {
	b.data = append(b.data, key...)
	b.ends = append(b.ends, len(b.data))
}

// Len is the number of keys in the batch.
func (b *Batch) Len() int { return len(b.ends) }

// Key returns key i; it aliases the batch's buffer and is valid until the next Reset.
func (b *Batch) Key(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]]
}

// KeySource yields keys in batches. Next resets b, fills it with the next batch and
// returns nil, or returns io.EOF when the keys are exhausted. Next must be safe for
// concurrent use: the simulation calls it from one goroutine per core, and batches must
// carry consecutive Seq numbers in stream order (placement under bounded loads follows
// that order).
type KeySource interface {
	Next(b *Batch) error
	// Total is the number of keys the source will yield, or -1 if it is not known
	// in advance (a stream).
	Total() int64
}

// Dist is a generated key distribution: uniform (every key once) or zipf with
// exponent S > 1 (requests for popular keys repeat).
type Dist struct {
	Zipf bool
	S    float64 // zipf exponent, > 1
}

func (d Dist) String() string {
	if !d.Zipf {
		return "uniform"
	}
	return "zipf:" + strconv.FormatFloat(d.S, 'g', -1, 64)
}

// ParseDist reads "uniform" or "zipf:S" (S > 1, e.g. zipf:1.1).
func ParseDist(s string) (Dist, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" || t == "uniform" {
		return Dist{}, nil
	}
	if rest, ok := strings.CutPrefix(t, "zipf:"); ok {
		v, err := strconv.ParseFloat(rest, 64)
		if err == nil && v > 1 && !math.IsInf(v, 0) {
			return Dist{Zipf: true, S: v}, nil
		}
		return Dist{}, errs.Usage("ring: --dist %q: the zipf exponent must be a number above 1", s).
			WithHint("e.g. zipf:1.1 (mild skew) or zipf:2 (a few very hot keys)")
	}
	return Dist{}, errs.Usage("ring: unknown --dist %q", s).WithHint("use uniform or zipf:S, e.g. zipf:1.1")
}

// generated is a KeySource of n synthetic keys. Batch j is computed from (seed, j) alone,
// so workers generate their batches in parallel and the output depends on the seed only.
//
// uniform: key i is "key:" + 16 hex digits of mix64(i + seed*phi) — n distinct keys,
// each once. zipf:S: n requests whose ranks r in [0, n) follow Zipf(S); the key for rank
// r is "key:" + hex(mix64(r ^ mix64(seed))), so which keys are hot changes with the seed.
type generated struct {
	n     int64
	dist  Dist
	seed  uint64
	batch atomic.Int64
}

// NewGeneratedKeys returns n keys (n >= 1) of the given distribution; the same seed gives
// the same keys.
func NewGeneratedKeys(n int64, dist Dist, seed uint64) (KeySource, error) {
	if n < 1 {
		return nil, errs.Usage("ring: --keys must be at least 1, got %d", n)
	}
	if dist.Zipf && !(dist.S > 1) {
		return nil, errs.Usage("ring: the zipf exponent must be above 1, got %v", dist.S)
	}
	return &generated{n: n, dist: dist, seed: seed}, nil
}

func (g *generated) Total() int64 { return g.n }

const phi64 = 0x9e3779b97f4a7c15

func (g *generated) Next(b *Batch) error {
	b.Reset()
	j := g.batch.Add(1) - 1
	first := j * batchKeys
	if first >= g.n {
		return io.EOF
	}
	count := min(int64(batchKeys), g.n-first)
	b.Seq = j
	var buf [20]byte
	copy(buf[:], "key:")
	if !g.dist.Zipf {
		base := g.seed * phi64
		for i := first; i < first+count; i++ {
			putHex16(buf[4:], mix64(uint64(i)+base))
			b.Append(buf[:])
		}
		return nil
	}
	r := rand.New(rand.NewPCG(g.seed, uint64(j)))
	z := rand.NewZipf(r, g.dist.S, 1, uint64(g.n-1))
	salt := mix64(g.seed)
	for range count {
		putHex16(buf[4:], mix64(z.Uint64()^salt))
		b.Append(buf[:])
	}
	return nil
}

func putHex16(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}

// lines is a KeySource that streams one key per line from a reader. Trailing "\r" is
// dropped (CRLF files) and blank lines are skipped. Lines of any length are read.
type lines struct {
	mu   sync.Mutex
	r    *bufio.Reader
	seq  int64
	err  error // sticky: io.EOF or the read error
	long []byte
}

// NewLineKeys streams keys from r, one per line. The caller opens and closes r.
// A read error is reported as bad input (exit 2) naming the stream as "keys file".
func NewLineKeys(r io.Reader) KeySource {
	return &lines{r: bufio.NewReaderSize(r, 1<<20)}
}

func (l *lines) Total() int64 { return -1 }

func (l *lines) Next(b *Batch) error {
	b.Reset()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.err == nil && b.Len() < batchKeys {
		line, err := l.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			l.long = append(l.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = l.r.ReadSlice('\n')
				l.long = append(l.long, line...)
			}
			line = l.long
		}
		if err != nil {
			l.err = err
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > 0 {
			b.Append(line)
		}
	}
	if b.Len() > 0 {
		b.Seq = l.seq
		l.seq++
		return nil
	}
	if l.err == io.EOF {
		return io.EOF
	}
	return errs.Usage("ring: cannot read the keys file: %v", l.err).Wrap(l.err)
}
