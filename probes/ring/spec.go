package ring

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
)

// Algo names a placement algorithm.
type Algo string

// The placement algorithms. The last three reproduce a library's placement exactly.
const (
	AlgoModulo     Algo = "modulo"
	AlgoRing       Algo = "ring"
	AlgoJump       Algo = "jump"
	AlgoRendezvous Algo = "rendezvous"
	AlgoMaglev     Algo = "maglev"
	AlgoBounded    Algo = "bounded"
	AlgoGroupcache Algo = "groupcache" // github.com/golang/groupcache/consistenthash
	AlgoStathat    Algo = "stathat"    // github.com/stathat/consistent
	AlgoKetama     Algo = "ketama"     // libketama (last.fm)
)

// Defaults the command layer can show in its help.
const (
	DefaultVnodes        = 100
	DefaultHash          = "xxhash64"
	DefaultMaglevM       = 65537
	DefaultBalanceFactor = 125
	DefaultTarget        = 1.1
	maxMaglevM           = 1 << 26 // 64 Mi entries, 256 MiB of table: far beyond any use
	maxRingPoints        = 50_000_000
	maxNodes             = 1_000_000
	maxNodeNameLen       = 256
)

// DefaultSweepVnodes is the V list `ring sweep` tries when none is given.
var defaultSweepVnodes = [...]int{10, 20, 50, 100, 200, 500, 1000}

// DefaultSweepVnodes returns a fresh copy of the default sweep V list.
func DefaultSweepVnodes() []int { return append([]int(nil), defaultSweepVnodes[:]...) }

var nativeAlgos = [...]Algo{AlgoModulo, AlgoRing, AlgoJump, AlgoRendezvous, AlgoMaglev, AlgoBounded}
var compatAlgos = [...]Algo{AlgoGroupcache, AlgoStathat, AlgoKetama}

// AllAlgos returns the six native algorithms, the set `--algo all` stands for.
func AllAlgos() []Algo { return append([]Algo(nil), nativeAlgos[:]...) }

// CompatModes returns the library-compatibility modes (`--compat`).
func CompatModes() []Algo { return append([]Algo(nil), compatAlgos[:]...) }

func (a Algo) known() bool {
	for _, k := range nativeAlgos {
		if a == k {
			return true
		}
	}
	return a.isCompat()
}

func (a Algo) isCompat() bool {
	for _, k := range compatAlgos {
		if a == k {
			return true
		}
	}
	return false
}

// usesVnodes reports whether V changes the algorithm's placement.
func (a Algo) usesVnodes() bool {
	return a == AlgoRing || a == AlgoBounded || a == AlgoGroupcache || a == AlgoStathat
}

// ParseAlgo checks one algorithm or compat-mode name.
func ParseAlgo(s string) (Algo, error) {
	a := Algo(strings.ToLower(strings.TrimSpace(s)))
	if !a.known() {
		return "", errs.Usage("ring: unknown algorithm %q", s).
			WithHint("use one of modulo, ring, jump, rendezvous, maglev, bounded, all; or a compat mode: groupcache, stathat, ketama")
	}
	return a, nil
}

// ParseAlgos parses a comma-separated list such as "ring,jump" or "all". Duplicates are
// dropped, order is kept.
func ParseAlgos(list string) ([]Algo, error) {
	var out []Algo
	seen := map[Algo]bool{}
	add := func(a Algo) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, f := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(f), "all") {
			for _, a := range nativeAlgos {
				add(a)
			}
			continue
		}
		a, err := ParseAlgo(f)
		if err != nil {
			return nil, err
		}
		add(a)
	}
	return out, nil
}

// Node is one cache or storage node: a unique name and a relative weight (1 by default).
type Node struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// String renders the node as NAME or NAME=WEIGHT, the form ParseNode reads.
func (n Node) String() string {
	if n.Weight == 1 {
		return n.Name
	}
	return n.Name + "=" + strconv.FormatFloat(n.Weight, 'g', -1, 64)
}

// ParseNode reads NAME[=WEIGHT]. The name is everything before the first '='; it must be
// non-empty, valid UTF-8, at most 256 bytes, without spaces or control characters. The
// weight is a finite number > 0 (default 1).
func ParseNode(s string) (Node, error) {
	name, weight, hasWeight := strings.Cut(s, "=")
	if err := checkNodeName(name, s); err != nil {
		return Node{}, err
	}
	n := Node{Name: name, Weight: 1}
	if hasWeight {
		w, err := strconv.ParseFloat(weight, 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return Node{}, errs.Usage("ring: node %q: weight %q is not a number", s, weight).
				WithHint("write NAME=WEIGHT, e.g. cache-1=2")
		}
		if w <= 0 {
			return Node{}, errs.Usage("ring: node %q: weight must be > 0", s).
				WithHint("drop the node instead of giving it weight 0")
		}
		n.Weight = w
	}
	return n, nil
}

func checkNodeName(name, spec string) error {
	if name == "" {
		return errs.Usage("ring: node %q has an empty name", spec).WithHint("write NAME or NAME=WEIGHT")
	}
	if len(name) > maxNodeNameLen {
		return errs.Usage("ring: node name %q... is longer than %d bytes", name[:32], maxNodeNameLen)
	}
	if !utf8.ValidString(name) {
		return errs.Usage("ring: node name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return errs.Usage("ring: node name %q contains a space or control character", name)
		}
	}
	return nil
}

// ParseNodes parses each NAME[=WEIGHT] and checks the set (see ValidateNodes).
func ParseNodes(specs []string) ([]Node, error) {
	nodes := make([]Node, 0, len(specs))
	for _, s := range specs {
		n, err := ParseNode(s)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, ValidateNodes(nodes)
}

// GenerateNodes returns n nodes named node-1 .. node-n with weight 1 (`--nodes N`).
func GenerateNodes(n int) ([]Node, error) {
	if n < 1 {
		return nil, errs.Usage("ring: --nodes must be at least 1, got %d", n)
	}
	if n > maxNodes {
		return nil, errs.Usage("ring: --nodes %d is more than %d", n, maxNodes)
	}
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{Name: "node-" + strconv.Itoa(i+1), Weight: 1}
	}
	return nodes, nil
}

// ValidateNodes checks a node set: at least one node, unique valid names, weights > 0.
func ValidateNodes(nodes []Node) error {
	if len(nodes) == 0 {
		return errs.Usage("ring: no nodes").WithHint("give --nodes N or one --node NAME[=WEIGHT] per node")
	}
	if len(nodes) > maxNodes {
		return errs.Usage("ring: %d nodes is more than %d", len(nodes), maxNodes)
	}
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if err := checkNodeName(n.Name, n.Name); err != nil {
			return err
		}
		if !(n.Weight > 0) || math.IsInf(n.Weight, 0) {
			return errs.Usage("ring: node %q: weight must be a finite number > 0, got %v", n.Name, n.Weight)
		}
		if seen[n.Name] {
			return errs.Usage("ring: node %q is given twice", n.Name).WithHint("node names must be unique")
		}
		seen[n.Name] = true
	}
	return nil
}

// Cluster is the node set and the knobs shared by simulate, locate and sweep.
type Cluster struct {
	Nodes         []Node
	Vnodes        int    // virtual nodes per unit of weight (ring, bounded, groupcache, stathat); >= 1
	Hash          string // "" means DefaultHash; ignored by the compat modes, which use their library's hash
	MaglevM       int    // Maglev table size, prime; 0 means AutoMaglevM of the node count
	BalanceFactor int    // bounded: percent of the average a node may hold, > 100; 0 means DefaultBalanceFactor

	maglevAuto bool // MaglevM was 0 and validate sized it
}

func (c Cluster) validate(algos []Algo) (Cluster, error) {
	if err := ValidateNodes(c.Nodes); err != nil {
		return c, err
	}
	if c.Vnodes < 1 {
		return c, errs.Usage("ring: --vnodes must be at least 1, got %d", c.Vnodes)
	}
	if c.Hash == "" {
		c.Hash = DefaultHash
	}
	if _, err := lookupHash(c.Hash); err != nil {
		return c, err
	}
	if c.MaglevM == 0 {
		c.MaglevM = AutoMaglevM(len(c.Nodes))
		c.maglevAuto = true
	}
	if c.BalanceFactor == 0 {
		c.BalanceFactor = DefaultBalanceFactor
	}
	if len(algos) == 0 {
		return c, errs.Usage("ring: no algorithm given").WithHint("use --algo ring, a list like ring,jump, or all")
	}
	for _, a := range algos {
		if !a.known() {
			_, err := ParseAlgo(string(a))
			return c, err
		}
		switch a {
		case AlgoMaglev:
			if err := checkMaglevM(c.MaglevM, len(c.Nodes)); err != nil {
				return c, err
			}
		case AlgoBounded:
			if c.BalanceFactor <= 100 {
				return c, errs.Usage("ring: --balance-factor must be above 100 (percent of the average load), got %d", c.BalanceFactor).
					WithHint("125 lets a node hold 1.25x the average")
			}
		}
	}
	return c, nil
}

func allWeightsEqual(nodes []Node) bool {
	for _, n := range nodes {
		if n.Weight != nodes[0].Weight {
			return false
		}
	}
	return true
}

// Automatic Maglev table sizes: the paper's advice is M well above the node count
// (100x keeps each node's share within about 1% of the ideal).
const (
	// MaglevFactor is how many table entries per node the automatic size aims for.
	MaglevFactor = 100
	// MaxAutoMaglevM caps the automatic size (40 MiB of table, 100x for 100,000 nodes);
	// --maglev-m goes further.
	MaxAutoMaglevM = 10_000_019
)

// AutoMaglevM is the Maglev table size used when none is given: the smallest prime
// above MaglevFactor x nodes, at least DefaultMaglevM and at most MaxAutoMaglevM.
func AutoMaglevM(nodes int) int {
	want := max(MaglevFactor*nodes, DefaultMaglevM-1)
	if want >= MaxAutoMaglevM {
		return MaxAutoMaglevM
	}
	return nextPrime(want)
}

// nextPrime is the smallest prime above n.
func nextPrime(n int) int {
	for p := n + 1; ; p++ {
		if big.NewInt(int64(p)).ProbablyPrime(0) {
			return p
		}
	}
}
