package ring

import (
	"slices"

	"github.com/dsctl/dsctl/probes/errs"
)

// layout is a node set and a change to it. Nodes before the change have ids 0..n-1 in
// the order given; added nodes follow. Every structure is built from a layout, so owner
// ids agree between the "before" and "after" sides.
type layout struct {
	before  []member
	removed []member // a subset of before
	added   []member
	plan    slotPlan // slots for modulo and jump, over before and added
}

func newLayout(nodes, add []Node, remove []string) (*layout, error) {
	l := &layout{}
	byName := make(map[string]int32, len(nodes))
	for i, n := range nodes {
		l.before = append(l.before, member{id: int32(i), name: n.Name, weight: n.Weight})
		byName[n.Name] = int32(i)
	}
	gone := map[string]bool{}
	for _, name := range remove {
		id, ok := byName[name]
		if !ok {
			return nil, errs.Usage("ring: --remove %q is not one of the nodes", name).
				WithHint("remove a node given with --node, or node-1..node-N with --nodes N")
		}
		if gone[name] {
			return nil, errs.Usage("ring: --remove %q is given twice", name)
		}
		gone[name] = true
		l.removed = append(l.removed, l.before[id])
	}
	for _, n := range add {
		if err := ValidateNodes([]Node{n}); err != nil {
			return nil, err
		}
		if _, ok := byName[n.Name]; ok {
			return nil, errs.Usage("ring: --add %q is already a node", n.Name).WithHint("give the new node a new name")
		}
		byName[n.Name] = int32(len(l.before) + len(l.added))
		l.added = append(l.added, member{id: byName[n.Name], name: n.Name, weight: n.Weight})
	}
	if len(l.after()) == 0 {
		return nil, errs.Usage("ring: removing every node leaves nothing to place keys on")
	}
	l.plan = newSlotPlan(append(slices.Clone(nodes), add...))
	return l, nil
}

func (l *layout) changed() bool { return len(l.removed)+len(l.added) > 0 }

func (l *layout) idCount() int { return len(l.before) + len(l.added) }

func (l *layout) names() []string {
	names := make([]string, 0, l.idCount())
	for _, m := range l.before {
		names = append(names, m.name)
	}
	for _, m := range l.added {
		names = append(names, m.name)
	}
	return names
}

func (l *layout) isRemoved(id int32) bool {
	for _, r := range l.removed {
		if r.id == id {
			return true
		}
	}
	return false
}

// after is the node set after the change, in id order.
func (l *layout) after() []member {
	var out []member
	for _, m := range l.before {
		if !l.isRemoved(m.id) {
			out = append(out, m)
		}
	}
	return append(out, l.added...)
}

func (l *layout) side(after bool) []member {
	if after {
		return l.after()
	}
	return l.before
}

func membersEqual(ms []member) bool {
	for _, m := range ms {
		if m.weight != ms[0].weight {
			return false
		}
	}
	return true
}

// hashFor is the key hash an algorithm uses: the compat modes use their library's.
func hashFor(a Algo, user *hasher) *hasher {
	switch a {
	case AlgoGroupcache, AlgoStathat:
		return &hashers[hashCRC32]
	case AlgoKetama:
		return &hashers[hashKetama]
	}
	return user
}

// build makes the structure for one side of the layout. For bounded it returns the ring
// (the first choice of every key); the simulation wraps it in a boundedState.
func build(a Algo, c Cluster, vnodes int, l *layout, after bool, h *hasher) (placer, error) {
	ms := l.side(after)
	switch a {
	case AlgoModulo:
		var es []slotEntry
		for _, m := range ms {
			es = append(es, slotEntry{m.id, l.plan.count(m.weight)})
		}
		return &moduloPlacer{slots: slotTable(es)}, nil
	case AlgoJump:
		// Slots keep their numbers: removed nodes become tombstones, added nodes append.
		var es []slotEntry
		for _, m := range l.before {
			id := m.id
			if after && l.isRemoved(id) {
				id = -1
			}
			es = append(es, slotEntry{id, l.plan.count(m.weight)})
		}
		if after {
			for _, m := range l.added {
				es = append(es, slotEntry{m.id, l.plan.count(m.weight)})
			}
		}
		return newJumpPlacer(slotTable(es)), nil
	case AlgoRing, AlgoBounded:
		return buildRing(ms, vnodes, h)
	case AlgoRendezvous:
		return buildRendezvous(ms, h, membersEqual(ms)), nil
	case AlgoMaglev:
		return buildMaglev(ms, c.MaglevM, h, membersEqual(ms)), nil
	case AlgoGroupcache:
		return buildGroupcache(ms, vnodes)
	case AlgoStathat:
		if !after {
			return buildStathat(l.before, nil, nil, vnodes)
		}
		return buildStathat(l.before, l.removed, l.added, vnodes)
	case AlgoKetama:
		return buildKetama(ms)
	}
	_, err := ParseAlgo(string(a))
	return nil, err
}

// Table is one built placement structure: it answers which node owns a key. It is
// read-only and safe for concurrent use.
type Table struct {
	algo  Algo
	hash  *hasher
	p     placer
	ring  *hashRing // p itself when it is a ring: a direct call on the hot path
	names []string
}

// NewTable builds the structure of one algorithm over c.Nodes. For bounded it is the
// underlying ring: a key's first choice before any load is counted.
func NewTable(c Cluster, algo Algo) (*Table, error) {
	c, err := c.validate([]Algo{algo})
	if err != nil {
		return nil, err
	}
	l, err := newLayout(c.Nodes, nil, nil)
	if err != nil {
		return nil, err
	}
	user, _ := lookupHash(c.Hash)
	h := hashFor(algo, user)
	p, err := build(algo, c, c.Vnodes, l, false, h)
	if err != nil {
		return nil, err
	}
	t := &Table{algo: algo, hash: h, p: p, names: l.names()}
	t.ring, _ = p.(*hashRing)
	return t, nil
}

// Algo is the table's algorithm.
func (t *Table) Algo() Algo { return t.algo }

// Hash is the name of the key hash the table uses.
func (t *Table) Hash() string { return t.hash.name }

// Owner returns the node that owns key.
func (t *Table) Owner(key string) string {
	h := t.hash.hashKey(bytesOf(key))
	if t.ring != nil {
		return t.names[t.ring.nodeOf[t.ring.find(h)]]
	}
	return t.names[t.p.owner(h)]
}

// Owners returns up to n distinct nodes for key in preference order (replicas): the
// owner first, then where the algorithm sends the key next (clockwise on a ring, the
// next table entries for maglev and modulo, the next best scores for rendezvous).
func (t *Table) Owners(key string, n int) []string {
	ids := t.p.owners(t.hash.sum(bytesOf(key)), n, nil)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.names[id]
	}
	return out
}

// MemoryBytes is the size of the table's lookup arrays, computed from their lengths.
func (t *Table) MemoryBytes() int64 { return t.p.memoryBytes() }

// LocateSpec asks where keys go.
type LocateSpec struct {
	Cluster
	Algos    []Algo
	Replicas int // owners per key; 0 means 1
}

// Placement is where one key goes under one algorithm.
type Placement struct {
	Key    string   `json:"key"`
	Algo   Algo     `json:"algo"`
	Hash   string   `json:"hash"`
	Owners []string `json:"owners"`
	Note   string   `json:"note,omitempty"`
}

const boundedLocateNote = "first choice with no load counted; a full node passes the key clockwise"

// Locate returns the owners of each key under each algorithm, key by key.
func Locate(spec LocateSpec, keys []string) ([]Placement, error) {
	if len(keys) == 0 {
		return nil, errs.Usage("ring: no key to locate").WithHint("give one or more KEY arguments")
	}
	if _, err := spec.Cluster.validate(spec.Algos); err != nil {
		return nil, err
	}
	r := spec.Replicas
	if r == 0 {
		r = 1
	}
	if r < 0 || r > len(spec.Nodes) {
		return nil, errs.Usage("ring: --replicas %d must be between 1 and the %d nodes", spec.Replicas, len(spec.Nodes))
	}
	tables := make([]*Table, 0, len(spec.Algos))
	for _, a := range dedupAlgos(spec.Algos) {
		t, err := NewTable(spec.Cluster, a)
		if err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	out := make([]Placement, 0, len(keys)*len(tables))
	for _, k := range keys {
		for _, t := range tables {
			p := Placement{Key: k, Algo: t.algo, Hash: t.Hash(), Owners: t.Owners(k, r)}
			if t.algo == AlgoBounded {
				p.Note = boundedLocateNote
			}
			out = append(out, p)
		}
	}
	return out, nil
}
