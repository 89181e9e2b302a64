package ring

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/spaolacci/murmur3"
)

// hasher is one key hash. bits is the width of its output (32 or 64): structures that
// place points on a circle use 0..2^bits-1.
type hasher struct {
	id   int
	name string
	bits uint
	sum  func([]byte) uint64
}

const (
	hashXX = iota
	hashMurmur3
	hashFNV1a
	hashCRC32
	hashMD5
	hashKetama // libketama's: md5, first 4 bytes little-endian (32 bits)
	numHashers
)

var hashers = [numHashers]hasher{
	hashXX:      {hashXX, "xxhash64", 64, xxhash.Sum64},
	hashMurmur3: {hashMurmur3, "murmur3", 64, murmur3.Sum64},
	hashFNV1a:   {hashFNV1a, "fnv1a-64", 64, fnv1a64},
	hashCRC32:   {hashCRC32, "crc32", 32, crc32IEEE},
	hashMD5:     {hashMD5, "md5", 64, md5Low64},
	hashKetama:  {hashKetama, "md5", 32, ketamaHash},
}

// HashNames lists the hashes a user can pick, default first.
func HashNames() []string { return []string{"xxhash64", "murmur3", "fnv1a-64", "crc32", "md5"} }

func lookupHash(name string) (*hasher, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "xxhash64", "xxhash":
		return &hashers[hashXX], nil
	case "murmur3":
		return &hashers[hashMurmur3], nil
	case "fnv1a-64", "fnv1a", "fnv":
		return &hashers[hashFNV1a], nil
	case "crc32":
		return &hashers[hashCRC32], nil
	case "md5":
		return &hashers[hashMD5], nil
	}
	return nil, errs.Usage("ring: unknown hash %q", name).WithHint("use one of %s", strings.Join(HashNames(), ", "))
}

// hashKey is h.sum(b) with direct calls for the common hashes, for single-key lookups
// where an indirect call is a noticeable share of the cost.
func (h *hasher) hashKey(b []byte) uint64 {
	switch h.id {
	case hashXX:
		return xxhash.Sum64(b)
	case hashCRC32:
		return uint64(crc32.ChecksumIEEE(b))
	}
	return h.sum(b)
}

// fnv1a64 is FNV-1a, 64-bit (the definition: xor the byte, multiply by the prime); written
// out because hash/fnv's streaming interface allocates per key.
func fnv1a64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func crc32IEEE(b []byte) uint64 { return uint64(crc32.ChecksumIEEE(b)) }

func md5Low64(b []byte) uint64 {
	d := md5.Sum(b)
	return binary.LittleEndian.Uint64(d[:8])
}

func ketamaHash(b []byte) uint64 {
	d := md5.Sum(b)
	return uint64(binary.LittleEndian.Uint32(d[:4]))
}

// bytesOf views s as bytes without copying; the hashes only read it.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// mix64 is a bijective 64-bit finalizer (splitmix64's); it spreads a hash or a counter
// over all 64 bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// scaleTo maps a bits-wide hash uniformly onto [0, n) by multiply-shift (Lemire), which
// costs a multiply where h % n costs a division.
func scaleTo(h uint64, n uint64, width uint) uint64 {
	if width == 64 {
		hi, _ := bits.Mul64(h, n)
		return hi
	}
	return (h * n) >> width
}
