package ring

import (
	"cmp"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"

	"github.com/dsctl/dsctl/probes/errs"
)

// member is a node inside a built structure. id is the node's index in the simulation's
// node table (the union of the nodes before and after a change), so owners computed
// before and after a change can be compared directly.
type member struct {
	id     int32
	name   string
	weight float64
}

// placer is a built, read-only placement structure. Methods are safe for concurrent use.
type placer interface {
	// owner returns the owner (member id) of a pre-hashed key.
	owner(h uint64) int32
	// lookup writes the owner of each pre-hashed key: owner in a loop, without an
	// interface call per key.
	lookup(hs []uint64, out []int32)
	// owners appends up to n distinct owners of h to dst, in preference order.
	owners(h uint64, n int, dst []int32) []int32
	// memoryBytes is the size of the lookup structure's arrays, computed from their
	// lengths (node names are not counted: every algorithm needs them).
	memoryBytes() int64
}

// ---------- hash ring ----------

// hashRing is a sorted circle of points with a parallel owner array. index[b] holds the
// first point whose top k bits are >= b, so a lookup reads index[b], index[b+1] and
// binary-searches the ~1-4 points between them instead of the whole circle.
type hashRing struct {
	points []uint64
	nodeOf []int32 // owner of points[i]
	index  []uint32
	shift  uint   // width - k
	width  uint   // bits of the hash: 32 or 64
	strict bool   // successor is the first point > h (stathat), not >= h
	maxVal uint64 // 2^width - 1
}

type ringPoint struct {
	p uint64
	o int32
}

// newHashRing builds the ring from points sorted ascending with no duplicates, and
// nodeOf[i] the owner of points[i]. It keeps both slices.
func newHashRing(points []uint64, nodeOf []int32, width uint, strict bool) *hashRing {
	r := &hashRing{
		points: points,
		nodeOf: nodeOf,
		width:  width,
		strict: strict,
		maxVal: math.MaxUint64 >> (64 - width),
	}
	k := bits.Len(uint(len(points))) - 2 // about 2-4 points per index slot
	k = max(0, min(k, 20))
	r.shift = width - uint(k)
	r.index = make([]uint32, (1<<k)+1)
	i := 0
	for b := range r.index {
		for i < len(r.points) && r.points[i]>>r.shift < uint64(b) {
			i++
		}
		r.index[b] = uint32(i)
	}
	return r
}

// ringFromPoints builds a ring from sorted, duplicate-free points.
func ringFromPoints(pts []ringPoint, width uint, strict bool) *hashRing {
	points := make([]uint64, len(pts))
	nodeOf := make([]int32, len(pts))
	for i, p := range pts {
		points[i], nodeOf[i] = p.p, p.o
	}
	return newHashRing(points, nodeOf, width, strict)
}

// find returns the index of the point that owns h.
func (r *hashRing) find(h uint64) int {
	if r.strict {
		if h >= r.maxVal {
			return 0
		}
		h++
	}
	b := h >> r.shift
	lo, hi := r.index[b], r.index[b+1]
	for lo < hi {
		m := (lo + hi) >> 1
		if r.points[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if int(lo) == len(r.points) {
		return 0
	}
	return int(lo)
}

func (r *hashRing) owner(h uint64) int32 { return r.nodeOf[r.find(h)] }

func (r *hashRing) lookup(hs []uint64, out []int32) {
	out = out[:len(hs)]
	for i, h := range hs {
		out[i] = r.nodeOf[r.find(h)]
	}
}

func (r *hashRing) owners(h uint64, n int, dst []int32) []int32 {
	start := r.find(h)
	base := len(dst)
	for k := 0; k < len(r.points) && len(dst)-base < n; k++ {
		i := start + k
		if i >= len(r.points) {
			i -= len(r.points)
		}
		if o := r.nodeOf[i]; !slices.Contains(dst[base:], o) {
			dst = append(dst, o)
		}
	}
	return dst
}

func (r *hashRing) memoryBytes() int64 {
	return int64(len(r.points))*8 + int64(len(r.nodeOf))*4 + int64(len(r.index))*4
}

// vnodeCount is how many points a node of weight w gets: weights scale V.
func vnodeCount(vnodes int, w float64) int {
	return max(1, int(math.Round(float64(vnodes)*w)))
}

func checkRingSize(members []member, vnodes int) error {
	total := 0.0
	for _, m := range members {
		total += float64(vnodeCount(vnodes, m.weight))
	}
	if total > maxRingPoints {
		return errs.Usage("ring: %d nodes x %d virtual nodes x their weights is %.0f points, more than %d",
			len(members), vnodes, total, maxRingPoints).
			WithHint("use smaller relative weights (1, 1.5, 2) or fewer --vnodes")
	}
	return nil
}

// buildRing places max(1, round(V*w)) points per node at hash("NAME-j"). It fills the
// final point and owner arrays directly and sorts them in place (with one scratch copy),
// so a 1000 x 1000 ring peaks at about twice its final size while building.
func buildRing(members []member, vnodes int, h *hasher) (*hashRing, error) {
	if err := checkRingSize(members, vnodes); err != nil {
		return nil, err
	}
	total := 0
	for _, m := range members {
		total += vnodeCount(vnodes, m.weight)
	}
	points := make([]uint64, 0, total)
	nodeOf := make([]int32, 0, total)
	var label []byte
	for _, m := range members {
		for j := range vnodeCount(vnodes, m.weight) {
			label = append(label[:0], m.name...)
			label = append(label, '-')
			label = strconv.AppendInt(label, int64(j), 10)
			points = append(points, h.sum(label))
			nodeOf = append(nodeOf, m.id)
		}
	}
	sortPoints(points, nodeOf)
	// Equal points (rare with 64 bits, common enough with crc32): the lower node id
	// keeps the point, so before and after a change agree. Members come in id order and
	// the sort is stable, so that is the first of each run.
	n := 0
	for i := range points {
		if i > 0 && points[i] == points[n-1] {
			continue
		}
		points[n], nodeOf[n] = points[i], nodeOf[i]
		n++
	}
	return newHashRing(points[:n], nodeOf[:n], h.bits, false), nil
}

// sortPoints sorts points ascending, carrying nodeOf along: a stable LSD radix sort, one
// byte per pass, skipping passes where every point has the same byte (the top four for
// 32-bit hashes).
func sortPoints(points []uint64, nodeOf []int32) {
	if len(points) < 2 {
		return
	}
	var counts [8][256]int
	for _, p := range points {
		for d := range 8 {
			counts[d][byte(p>>(8*d))]++
		}
	}
	srcP, srcO := points, nodeOf
	dstP, dstO := make([]uint64, len(points)), make([]int32, len(points))
	for d := range 8 {
		c := &counts[d]
		if c[byte(srcP[0]>>(8*d))] == len(srcP) {
			continue // all points share this byte
		}
		sum := 0
		for i := range c {
			c[i], sum = sum, sum+c[i]
		}
		for i, p := range srcP {
			b := byte(p >> (8 * d))
			dstP[c[b]], dstO[c[b]] = p, srcO[i]
			c[b]++
		}
		srcP, dstP, srcO, dstO = dstP, srcP, dstO, srcO
	}
	if &srcP[0] != &points[0] {
		copy(points, srcP)
		copy(nodeOf, srcO)
	}
}

// ---------- modulo ----------

// moduloPlacer is hash % S over S slots (one per node with equal weights).
type moduloPlacer struct {
	slots []int32
}

func (m *moduloPlacer) owner(h uint64) int32 { return m.slots[h%uint64(len(m.slots))] }

func (m *moduloPlacer) lookup(hs []uint64, out []int32) {
	out = out[:len(hs)]
	n := uint64(len(m.slots))
	for i, h := range hs {
		out[i] = m.slots[h%n]
	}
}

func (m *moduloPlacer) owners(h uint64, n int, dst []int32) []int32 {
	return walkSlots(m.slots, int(h%uint64(len(m.slots))), n, dst)
}

func (m *moduloPlacer) memoryBytes() int64 { return int64(len(m.slots)) * 4 }

// walkSlots collects distinct live owners starting at slot start, wrapping.
func walkSlots(slots []int32, start, n int, dst []int32) []int32 {
	base := len(dst)
	for k := 0; k < len(slots) && len(dst)-base < n; k++ {
		i := start + k
		if i >= len(slots) {
			i -= len(slots)
		}
		if o := slots[i]; o >= 0 && !slices.Contains(dst[base:], o) {
			dst = append(dst, o)
		}
	}
	return dst
}

// slotPlan decides how many slots each node gets in modulo and jump: one each when all
// weights are equal, else max(1, round(100*w/wmax)). The plan is computed once over
// every node that appears before or after a change so both sides use the same scale.
type slotPlan struct {
	equal bool
	wmax  float64
}

func newSlotPlan(nodes []Node) slotPlan {
	p := slotPlan{equal: allWeightsEqual(nodes)}
	for _, n := range nodes {
		p.wmax = max(p.wmax, n.Weight)
	}
	return p
}

func (p slotPlan) count(w float64) int {
	if p.equal {
		return 1
	}
	return max(1, int(math.Round(100*w/p.wmax)))
}

// slotEntry is a run of slots in a slot table: a node, or a tombstone (id -1).
type slotEntry struct {
	id    int32
	count int
}

func slotTable(entries []slotEntry) []int32 {
	var t []int32
	for _, e := range entries {
		for range e.count {
			t = append(t, e.id)
		}
	}
	return t
}

// ---------- jump ----------

// JumpHash is Lamping & Veach's jump consistent hash: it maps key to a bucket in
// [0, buckets) so that growing buckets from n to n+1 moves only 1/(n+1) of the keys
// (-1 when buckets < 1).
//
// It computes exactly what the paper's loop computes, arranged for a shorter
// loop-carried chain: c = b+1 stays a float64 (whole numbers below 2^53, so nothing is
// rounded), and the exit test compares the product before truncating it, which is the
// same test because trunc(x) < n iff x < n for x >= 0 and whole n.
func JumpHash(key uint64, buckets int32) int32 {
	if buckets <= 0 {
		return -1 // no bucket, as the paper's loop returns
	}
	n := float64(buckets)
	c := 1.0 // b + 1, b the last bucket jumped to
	for {
		key = key*2862933555777941757 + 1
		x := c * (float64(int64(1)<<31) / float64((key>>33)+1))
		if x >= n {
			return int32(c - 1)
		}
		c = math.Trunc(x) + 1
	}
}

// jumpPlacer is jump hash over a slot table: the remap table from jump buckets to nodes.
// A removed node's slots stay as tombstones (-1) so bucket numbers never shift; a key
// that lands on one is re-hashed with mix64(h + attempt*phi) and jumped again.
type jumpPlacer struct {
	slots []int32
	live  int
}

func newJumpPlacer(slots []int32) *jumpPlacer {
	live := 0
	for _, s := range slots {
		if s >= 0 {
			live++
		}
	}
	return &jumpPlacer{slots: slots, live: live}
}

func (j *jumpPlacer) owner(h uint64) int32 {
	n := int32(len(j.slots))
	o := j.slots[JumpHash(h, n)]
	for attempt := uint64(1); o < 0; attempt++ {
		o = j.slots[JumpHash(mix64(h+attempt*phi64), n)]
	}
	return o
}

func (j *jumpPlacer) lookup(hs []uint64, out []int32) {
	out = out[:len(hs)]
	for i, h := range hs {
		out[i] = j.owner(h)
	}
}

// owners: the first is owner(h); further replicas come from jumps of re-hashed keys,
// skipping tombstones and owners already chosen; after 64 tries per wanted replica it
// falls back to walking the slot table.
func (j *jumpPlacer) owners(h uint64, n int, dst []int32) []int32 {
	base := len(dst)
	dst = append(dst, j.owner(h))
	nslots := int32(len(j.slots))
	for attempt := uint64(1); len(dst)-base < n && attempt < uint64(64*n); attempt++ {
		o := j.slots[JumpHash(mix64(h^(attempt*phi64)), nslots)]
		if o >= 0 && !slices.Contains(dst[base:], o) {
			dst = append(dst, o)
		}
	}
	if len(dst)-base < n {
		// Walk from the first owner's slot for the rest.
		need := n - (len(dst) - base)
		more := walkSlots(j.slots, int(JumpHash(h, nslots)), len(j.slots), nil)
		for _, o := range more {
			if need > 0 && !slices.Contains(dst[base:], o) {
				dst = append(dst, o)
				need--
			}
		}
	}
	return dst
}

func (j *jumpPlacer) memoryBytes() int64 { return int64(len(j.slots)) * 4 }

// ---------- rendezvous ----------

// rendezvousPlacer is weighted highest-random-weight hashing: every node scores every
// key and the best score wins. O(nodes) per key, no state to rebuild on a change.
type rendezvousPlacer struct {
	ids    []int32
	seeds  []uint64
	weight []float64 // nil when all weights are equal
}

func buildRendezvous(members []member, h *hasher, equal bool) *rendezvousPlacer {
	r := &rendezvousPlacer{}
	for _, m := range members {
		r.ids = append(r.ids, m.id)
		r.seeds = append(r.seeds, mix64(h.sum(bytesOf(m.name))^phi64))
		if !equal {
			r.weight = append(r.weight, m.weight)
		}
	}
	return r
}

// score is -w/ln(u) with u in (0,1) from the 53 top bits of the mixed hash; for equal
// weights the raw mixed hash orders the same way, so the log is skipped.
func (r *rendezvousPlacer) best(h uint64) int32 {
	km := mix64(h)
	bi := 0
	if r.weight == nil {
		var bs uint64
		for i, s := range r.seeds {
			if x := mix64(km + s); x > bs || i == 0 {
				bs, bi = x, i
			}
		}
		return r.ids[bi]
	}
	bs := math.Inf(-1)
	for i, s := range r.seeds {
		if sc := weightedScore(mix64(km+s), r.weight[i]); sc > bs {
			bs, bi = sc, i
		}
	}
	return r.ids[bi]
}

func weightedScore(x uint64, w float64) float64 {
	u := (float64(x>>11) + 0.5) / (1 << 53)
	return -w / math.Log(u)
}

func (r *rendezvousPlacer) owner(h uint64) int32 { return r.best(h) }

func (r *rendezvousPlacer) lookup(hs []uint64, out []int32) {
	out = out[:len(hs)]
	for i, h := range hs {
		out[i] = r.best(h)
	}
}

func (r *rendezvousPlacer) owners(h uint64, n int, dst []int32) []int32 {
	km := mix64(h)
	type scored struct {
		id int32
		s  float64
		x  uint64
	}
	all := make([]scored, len(r.seeds))
	for i, s := range r.seeds {
		x := mix64(km + s)
		all[i] = scored{id: r.ids[i], x: x}
		if r.weight != nil {
			all[i].s = weightedScore(x, r.weight[i])
		}
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		if r.weight != nil {
			return cmp.Compare(b.s, a.s)
		}
		return cmp.Compare(b.x, a.x)
	})
	for i := 0; i < n && i < len(all); i++ {
		dst = append(dst, all[i].id)
	}
	return dst
}

func (r *rendezvousPlacer) memoryBytes() int64 {
	return int64(len(r.ids))*4 + int64(len(r.seeds))*8 + int64(len(r.weight))*8
}

// ---------- maglev ----------

// maglevPlacer is the Maglev lookup table (Eisenbud et al., NSDI 2016).
type maglevPlacer struct {
	table []int32
	m     uint64
	width uint
}

func checkMaglevM(m, nodes int) error {
	if m < 2 || m > maxMaglevM || !big.NewInt(int64(m)).ProbablyPrime(0) {
		return errs.Usage("ring: --maglev-m %d is not a prime between 2 and %d", m, maxMaglevM).
			WithHint("use a prime such as 65537 (default), 655373 or 5000011")
	}
	if m < nodes {
		return errs.Usage("ring: --maglev-m %d is smaller than the %d nodes", m, nodes).
			WithHint("Maglev needs M much larger than the node count, e.g. 100x")
	}
	return nil
}

// buildMaglev fills the table: each node walks its permutation
// (offset + j*skip) mod M and claims the next free entry on its turn. offset and skip
// come from the node name's hash. With unequal weights a node takes a turn each time
// its credit (w/wmax per round) reaches 1, so it fills entries in proportion to weight.
func buildMaglev(members []member, m int, h *hasher, equal bool) *maglevPlacer {
	M := uint64(m)
	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	n := len(members)
	cur := make([]uint64, n)
	skip := make([]uint64, n)
	credit := make([]float64, n)
	wmax := 0.0
	for _, mb := range members {
		wmax = max(wmax, mb.weight)
	}
	for i, mb := range members {
		nh := h.sum(bytesOf(mb.name))
		cur[i] = mix64(nh) % M
		skip[i] = mix64(nh^phi64)%(M-1) + 1
	}
	filled := uint64(0)
	for filled < M {
		for i := range members {
			if !equal {
				credit[i] += members[i].weight / wmax
				if credit[i] < 1 {
					continue
				}
				credit[i]--
			}
			c := cur[i]
			for table[c] >= 0 {
				c += skip[i]
				if c >= M {
					c -= M
				}
			}
			table[c] = members[i].id
			c += skip[i]
			if c >= M {
				c -= M
			}
			cur[i] = c
			filled++
			if filled == M {
				break
			}
		}
	}
	return &maglevPlacer{table: table, m: M, width: h.bits}
}

func (g *maglevPlacer) owner(h uint64) int32 { return g.table[scaleTo(h, g.m, g.width)] }

func (g *maglevPlacer) lookup(hs []uint64, out []int32) {
	out = out[:len(hs)]
	for i, h := range hs {
		out[i] = g.table[scaleTo(h, g.m, g.width)]
	}
}

func (g *maglevPlacer) owners(h uint64, n int, dst []int32) []int32 {
	return walkSlots(g.table, int(scaleTo(h, g.m, g.width)), n, dst)
}

func (g *maglevPlacer) memoryBytes() int64 { return int64(len(g.table)) * 4 }

// ---------- bounded loads ----------

// boundedState places keys one at a time on a ring, skipping nodes at capacity. It is
// stateful and not safe for concurrent use; the simulation feeds it in stream order.
type boundedState struct {
	ring   *hashRing
	loads  []int64   // by member id
	weight []float64 // by member id; nil when all weights are equal
	totalW float64
	n      int64
	factor int64 // percent
	placed int64
}

func newBoundedState(r *hashRing, members []member, idCount int, factor int, equal bool) *boundedState {
	b := &boundedState{ring: r, loads: make([]int64, idCount), n: int64(len(members)), factor: int64(factor)}
	if !equal {
		b.weight = make([]float64, idCount)
		for _, m := range members {
			b.weight[m.id] = m.weight
			b.totalW += m.weight
		}
	}
	return b
}

// place puts the next key (hash h) on the first node clockwise whose load is below its
// capacity ceil(factor/100 * k * w/W), k counting this key. The capacities add up to
// more than k-1 keys already placed, so some node always has room.
func (b *boundedState) place(h uint64) int32 {
	b.placed++
	i := b.ring.find(h)
	np := len(b.ring.points)
	if b.weight == nil {
		den := 100 * b.n
		capacity := (b.factor*b.placed + den - 1) / den
		for {
			o := b.ring.nodeOf[i]
			if b.loads[o] < capacity {
				b.loads[o]++
				return o
			}
			if i++; i == np {
				i = 0
			}
		}
	}
	scale := float64(b.factor) * float64(b.placed) / (100 * b.totalW)
	for {
		o := b.ring.nodeOf[i]
		if float64(b.loads[o]) < math.Ceil(scale*b.weight[o]) {
			b.loads[o]++
			return o
		}
		if i++; i == np {
			i = 0
		}
	}
}

func (b *boundedState) memoryBytes() int64 {
	return b.ring.memoryBytes() + int64(len(b.loads))*8 + int64(len(b.weight))*8
}
