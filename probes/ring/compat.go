package ring

import (
	"crypto/md5"
	"encoding/binary"
	"hash/crc32"
	"math"
	"slices"
	"strconv"

	"github.com/dsctl/dsctl/probes/errs"
)

// Library-compatibility modes. Each reproduces where a library puts every key, read
// from the library's code:
//
// groupcache (github.com/golang/groupcache/consistenthash, Map with `replicas` = V):
// node n gets points crc32(strconv.Itoa(i) + n) for i < V; a key goes to the first
// point >= crc32(key), wrapping. Points are ints in a sorted slice, owners in a map, so
// when two points collide the node added last owns both (nodes are added in the order
// given). Adding a node = Add(node) on the existing map; there is no Remove, so a
// removal is a new Map built from the remaining nodes.
//
// stathat (github.com/stathat/consistent v1.0.0, NumberOfReplicas = V): the same points
// (crc32 of strconv.Itoa(i) + n, last writer wins), but a key goes to the first point
// strictly greater than its hash. Remove(n) deletes the circle entries at n's point
// hashes even when a later node had taken that point, which we reproduce: the state
// after a change is Add(every node), Remove(removed...), Add(added...).
//
// ketama (libketama, ketama.c ketama_create_continuum / ketama_get_server): node n with
// weight w (libketama reads an integer "memory" size) gets
// floorf(float(w)/float(W) * 40.0 * float(N)) md5 digests of "n-k", each giving 4
// points (bytes 0-3, 4-7, 8-11, 12-15 read little-endian); 160 points per node when
// weights are equal. A key's hash is the first 4 bytes of md5(key), little-endian; it
// goes to the first point >= hash, wrapping. libketama sorts with qsort, which leaves
// the order of equal points unspecified; we keep the earlier node (vanishingly rare: two
// of a few thousand 32-bit points). V does not apply. A change rebuilds the continuum
// from the new server list, as libketama does when its server file changes.

// buildCircle32 turns a point -> owner map into a ring on 32 bits.
func buildCircle32(circle map[uint32]int32, strict bool) *hashRing {
	pts := make([]ringPoint, 0, len(circle))
	for p, o := range circle {
		pts = append(pts, ringPoint{uint64(p), o})
	}
	slices.SortFunc(pts, func(a, b ringPoint) int {
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		}
		return 0
	})
	return ringFromPoints(pts, 32, strict)
}

func compatReplicaPoints(name string, replicas int, fn func(uint32)) {
	var label []byte
	for i := range replicas {
		label = strconv.AppendInt(label[:0], int64(i), 10)
		label = append(label, name...)
		fn(crc32.ChecksumIEEE(label))
	}
}

func requireUnitWeights(algo Algo, members []member) error {
	for _, m := range members {
		if m.weight != 1 {
			return errs.Usage("ring: %s has no node weights, but node %q has weight %v", algo, m.name, m.weight).
				WithHint("drop the =WEIGHT from --node for --compat %s", algo)
		}
	}
	return nil
}

// buildGroupcache: Map.Add(nodes...) in order.
func buildGroupcache(members []member, replicas int) (*hashRing, error) {
	if err := requireUnitWeights(AlgoGroupcache, members); err != nil {
		return nil, err
	}
	if err := checkRingSize(members, replicas); err != nil {
		return nil, err
	}
	circle := make(map[uint32]int32, len(members)*replicas)
	for _, m := range members {
		compatReplicaPoints(m.name, replicas, func(p uint32) { circle[p] = m.id })
	}
	return buildCircle32(circle, false), nil
}

// buildStathat: Add(each of before), Remove(each of removed), Add(each of added).
func buildStathat(before, removed, added []member, replicas int) (*hashRing, error) {
	all := append(append(append([]member(nil), before...), removed...), added...)
	if err := requireUnitWeights(AlgoStathat, all); err != nil {
		return nil, err
	}
	if err := checkRingSize(all, replicas); err != nil {
		return nil, err
	}
	circle := make(map[uint32]int32, len(all)*replicas)
	for _, m := range before {
		compatReplicaPoints(m.name, replicas, func(p uint32) { circle[p] = m.id })
	}
	for _, m := range removed {
		compatReplicaPoints(m.name, replicas, func(p uint32) { delete(circle, p) })
	}
	for _, m := range added {
		compatReplicaPoints(m.name, replicas, func(p uint32) { circle[p] = m.id })
	}
	return buildCircle32(circle, true), nil
}

// ketamaPointsPerDigest is 4: each md5 digest yields 4 points.
const ketamaPointsPerDigest = 4

// ketamaDigests is libketama's floorf(pct * 40.0 * (float)numservers), with C's
// promotions: pct is a float quotient, the product is computed in double and rounded to
// float when passed to floorf.
func ketamaDigests(weight, total uint64, nodes int) int {
	pct := float32(weight) / float32(total)
	return int(math.Floor(float64(float32(float64(pct) * 40.0 * float64(float32(nodes))))))
}

func buildKetama(members []member) (*hashRing, error) {
	var total uint64
	for _, m := range members {
		if m.weight != math.Trunc(m.weight) || m.weight > 1<<40 {
			return nil, errs.Usage("ring: ketama weights are whole numbers (libketama's memory size), but node %q has weight %v", m.name, m.weight).
				WithHint("write --node %s=%d", m.name, int64(math.Max(1, math.Round(m.weight))))
		}
		total += uint64(m.weight)
	}
	var pts []ringPoint
	var label []byte
	for _, m := range members {
		for k := range ketamaDigests(uint64(m.weight), total, len(members)) {
			label = append(label[:0], m.name...)
			label = append(label, '-')
			label = strconv.AppendInt(label, int64(k), 10)
			d := md5.Sum(label)
			for h := range ketamaPointsPerDigest {
				pts = append(pts, ringPoint{uint64(binary.LittleEndian.Uint32(d[4*h:])), m.id})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b ringPoint) int {
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		}
		return 0
	})
	pts = slices.CompactFunc(pts, func(a, b ringPoint) bool { return a.p == b.p })
	if len(pts) == 0 {
		return nil, errs.Usage("ring: ketama gives no node any point (weights too uneven)").
			WithHint("libketama gives a node floor(w/W*40*N) digests; raise the small weights")
	}
	return ringFromPoints(pts, 32, false), nil
}
