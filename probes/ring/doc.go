// Package ring is the engine behind `dsctl ring`: it builds consistent-hash placement
// structures (modulo, hash ring, jump, rendezvous, Maglev, bounded loads and three
// library-compatibility modes), runs keys through them and reports how evenly they spread
// and how many keys move when the node set changes.
//
// The package is pure: no flags, no printing, no files opened by name. The command layer
// parses flags into a SimulateSpec, LocateSpec or SweepSpec, hands over a KeySource
// (generated keys, or lines from an io.Reader it opened) and prints the returned values.
// Bad input comes back as errs.Usage errors (exit 2).
//
// # Placement rules, stated once
//
//   - Keys and virtual-node labels are hashed with the chosen hash (xxhash64 by default).
//     crc32 is a 32-bit hash: every structure then works on 0..2^32-1.
//   - ring: node i gets max(1, round(V*w_i)) points; point j of node "a" is
//     hash("a-j"); a key goes to the first point >= its hash, wrapping to the first point.
//     Points are a flat sorted []uint64 with a parallel owner array and a prefix index on
//     the top bits of the hash, so a lookup is one index read plus a search over ~2 points.
//   - modulo and jump place keys in slots. With equal weights a node has one slot; with
//     unequal weights node i has max(1, round(100*w_i/w_max)) consecutive slots.
//   - jump (Lamping & Veach) numbers slots in node order. Adding a node appends its slots.
//     Removing a node leaves its slots in place as tombstones in a remap table
//     (slot -> node, or none); a key that lands on a tombstone is re-hashed and jumped
//     again over the same slot count until it lands on a live slot. So only the removed
//     node's keys move, spread evenly over the survivors; the price is a few extra jumps
//     for those keys.
//   - rendezvous: score(key, node) = -w / ln(u), u = mix(hash(key), hash(node)) in (0,1);
//     the highest score wins (with equal weights: the highest u).
//   - maglev: the lookup table of prime size M is filled by the Maglev permutation
//     (offset, skip from the node's hash); a weighted node takes its turn in proportion
//     to w/w_max. A key goes to table[hash*M >> bits].
//   - bounded (Mirrokni, Thorup, Zadimoghaddam): the ring, but a node may hold at most
//     ceil(f * k * w_i / W) keys when the k-th key arrives, f = balance factor / 100
//     (HAProxy's hash-balance-factor, 125 = 1.25x the average); a full node passes the
//     key clockwise. Placement depends on arrival order, so keys are placed in stream
//     order (deterministic for a seed or a file).
//   - groupcache, stathat, ketama reproduce those libraries' placement exactly; see
//     compat.go.
package ring
