package zklock

// Recognition of the other Apache Curator lock recipes by inspect (and only by
// inspect: dsctl's own queue, in locker.go, is the mutex queue):
//
//   - InterProcessReadWriteLock: under the lock node, protected ephemeral-sequential
//     nodes _c_<uuid>-__WRIT__<seq> (writers) and _c_<uuid>-__READ__<seq> (readers),
//     ordered by sequence. A writer holds when it is first; readers hold together when
//     no writer is before them.
//   - InterProcessSemaphoreV2: the lock node has two children, leases/ and locks/.
//     Every lease is a protected ephemeral-sequential node leases/_c_<uuid>-lease-<seq>
//     (all of them hold); a process waiting for a lease first takes the internal mutex
//     locks/_c_<uuid>-lock-<seq>, so the queue of waiters is that mutex's queue. The
//     lease limit is not stored in ZooKeeper: each client passes it.
//   - kazoo's ReadLock: <uuid hex>__rlock__<seq> (its WriteLock's nodes are its Lock's,
//     <uuid hex>__lock__<seq>, recognised in locker.go). Readers hold together when no
//     writer is before them.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/lock"
)

// Curator recipes inspect recognises besides the mutex.
const (
	// FormatCuratorRW is Curator's InterProcessReadWriteLock (_c_<uuid>-__WRIT__<seq>,
	// _c_<uuid>-__READ__<seq>).
	FormatCuratorRW lock.Format = "curator-rwlock"
	// FormatCuratorSemaphore is Curator's InterProcessSemaphoreV2 (leases/ and locks/).
	FormatCuratorSemaphore lock.Format = "curator-semaphore"
	// FormatKazooRead is a reader of kazoo's ReadLock (<uuid hex>__rlock__<seq>).
	FormatKazooRead lock.Format = "kazoo-read"
)

const (
	curatorWrite = "__WRIT__"
	curatorRead  = "__READ__"
	curatorLease = "lease-"
	kazooRead    = "__rlock__"
)

// parseKazooRead recognises a kazoo ReadLock node, <32 hex>__rlock__<10 digits>.
func parseKazooRead(child string) (member, bool) {
	if len(child) != 32+len(kazooRead)+10 || child[32:32+len(kazooRead)] != kazooRead || !isHex(child[:32]) {
		return member{}, false
	}
	var seq int64
	for _, r := range child[32+len(kazooRead):] {
		if r < '0' || r > '9' {
			return member{}, false
		}
		seq = seq*10 + int64(r-'0')
	}
	return member{name: child, token: child[:32], seq: seq, format: FormatKazooRead}, true
}

// parseProtected splits a protected sequential node _c_<36-char uuid>-<kind><10 digits>.
func parseProtected(child, kind string) (member, bool) {
	const seqLen = 10
	if !strings.HasPrefix(child, "_c_") || len(child) != 3+36+1+len(kind)+seqLen {
		return member{}, false
	}
	id, rest := child[3:39], child[39:]
	if strings.Count(id, "-") != 4 || rest[0] != '-' || rest[1:1+len(kind)] != kind {
		return member{}, false
	}
	var seq int64
	for _, r := range rest[1+len(kind):] {
		if r < '0' || r > '9' {
			return member{}, false
		}
		seq = seq*10 + int64(r-'0')
	}
	return member{name: child, token: id, seq: seq}, true
}

// foreignMembers moves Curator read-write lock nodes and kazoo ReadLock nodes from
// others into the queue, in sequence order with the rest.
func foreignMembers(ms []member, others []string) ([]member, []string) {
	rest := others[:0:0]
	moved := false
	for _, c := range others {
		m, ok := parseForeignMember(c)
		if !ok {
			rest = append(rest, c)
			continue
		}
		ms = append(ms, m)
		moved = true
	}
	if moved {
		sortMembers(ms)
	}
	return ms, rest
}

func parseForeignMember(c string) (member, bool) {
	if m, ok := parseProtected(c, curatorWrite); ok {
		m.format = FormatCuratorRW
		return m, true
	}
	if m, ok := parseProtected(c, curatorRead); ok {
		m.format = FormatCuratorRW
		return m, true
	}
	return parseKazooRead(c)
}

// isReader reports whether a queue node is a reader (Curator's __READ__, kazoo's
// __rlock__); readers before the first writer all hold.
func isReader(m member) bool {
	return m.format == FormatKazooRead || m.format == FormatCuratorRW && strings.Contains(m.name, curatorRead)
}

// foreignNotes says who holds a read-write lock: the first writer, or every reader
// before the first writer.
func foreignNotes(ms []member) []string {
	if len(ms) == 0 {
		return nil
	}
	lib := "Curator"
	if ms[0].format == FormatKazooRead {
		lib = "kazoo"
	}
	switch {
	case ms[0].format == FormatCuratorRW && !isReader(ms[0]):
		note := fmt.Sprintf("Curator read-write lock: the write lock is held by %s", ms[0].name)
		if len(ms) > 1 {
			var waiting []string
			for i, m := range ms[1:] {
				if i == 20 {
					waiting = append(waiting, fmt.Sprintf("... and %d more", len(ms)-1-i))
					break
				}
				waiting = append(waiting, m.name)
			}
			note += fmt.Sprintf("; waiting: %s", strings.Join(waiting, ", "))
		}
		return []string{note}
	case !isReader(ms[0]):
		return nil
	}
	var readers []string
	for _, m := range ms {
		if !isReader(m) {
			break
		}
		readers = append(readers, m.name)
	}
	return []string{fmt.Sprintf("%s read-write lock: the read lock is held by %d reader(s): %s", lib, len(readers), strings.Join(readers, ", "))}
}

// foreignOwner reads what another library writes as a lock node's data: Curator, the
// client's IP address unless the application set its own data; kazoo, the identifier
// the application passed. Nil for empty or binary data.
func foreignOwner(f lock.Format, raw []byte) *lock.Owner {
	text := strings.TrimSpace(string(raw))
	if text == "" || len(text) > 256 || !utf8.ValidString(text) || strings.IndexFunc(text, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil
	}
	switch f {
	case FormatCurator, FormatCuratorRW, FormatCuratorSemaphore:
		if net.ParseIP(text) != nil {
			return &lock.Owner{Host: text, Tool: "Apache Curator"}
		}
		return &lock.Owner{Label: text, Tool: "Apache Curator"}
	case FormatKazoo, FormatKazooRead:
		return &lock.Owner{Label: text, Tool: "kazoo"}
	}
	return nil
}

func describeForeign(f lock.Format) (string, bool) {
	switch f {
	case FormatCuratorRW:
		return "Apache Curator InterProcessReadWriteLock (_c_<uuid>-__WRIT__<seq> / __READ__<seq>, ephemeral-sequential)", true
	case FormatCuratorSemaphore:
		return "Apache Curator InterProcessSemaphoreV2 (leases/_c_<uuid>-lease-<seq>; waiters queue on locks/)", true
	case FormatKazooRead:
		return "kazoo ReadLock (<uuid>__rlock__<seq>, ephemeral-sequential; its WriteLock uses kazoo Lock nodes)", true
	}
	return "", false
}

// isSemaphore reports whether a lock node's children are Curator's semaphore layout.
func isSemaphore(others []string) bool {
	if len(others) == 0 || len(others) > 2 {
		return false
	}
	for _, c := range others {
		if c != "leases" && c != "locks" {
			return false
		}
	}
	return true
}

// isForeignNode reports whether child (one of children) makes its parent a lock for
// List: a read-write lock node (Curator's or kazoo's reader), or the leases/ and locks/
// of a Curator semaphore (List then does not descend into them).
func isForeignNode(child string, children []string) bool {
	if _, ok := parseForeignMember(child); ok {
		return true
	}
	return (child == "leases" || child == "locks") && isSemaphore(children)
}

// inspectForeign inspects a lock node that has no queue of its own: a Curator
// semaphore (ok false for anything else).
func (l *Locker) inspectForeign(ctx context.Context, dir string, others []string, info *lock.Info) (*lock.Info, bool, error) {
	if !isSemaphore(others) {
		return nil, false, nil
	}
	leasesDir, locksDir := dir+"/leases", dir+"/locks"
	children, err := call(ctx, l, "list", leasesDir, func() ([]string, error) {
		c, _, err := l.conn.Children(leasesDir)
		return c, err
	}, nil)
	if err != nil && !errors.Is(err, gozk.ErrNoNode) {
		return nil, true, err
	}
	var leases []member
	for _, c := range children {
		if m, ok := parseProtected(c, curatorLease); ok {
			m.format = FormatCuratorSemaphore
			leases = append(leases, m)
		}
	}
	sortMembers(leases)
	waiters, _, err := l.queue(ctx, locksDir)
	if err != nil {
		return nil, true, err
	}
	info.Format, info.FormatDetail = FormatCuratorSemaphore, "Apache Curator InterProcessSemaphoreV2 (leases/_c_<uuid>-lease-<seq>; waiters queue on locks/)"
	info.Waiters = len(waiters)
	info.Notes = nil
	// The first waiter holds the semaphore's internal lock: it creates its lease node,
	// then waits until there are no more lease nodes than the limit. That lease node
	// (its session's newest) is pending, not held.
	var waiterNotes []string
	var waiterEntries []QueueEntry
	pendingSession := ""
	for i, m := range waiters {
		if i == 20 {
			waiterNotes = append(waiterNotes, fmt.Sprintf("... and %d more waiters", len(waiters)-i))
			break
		}
		w, err := l.entry(ctx, locksDir, m)
		if err != nil {
			continue // it left meanwhile
		}
		waiterEntries = append(waiterEntries, w.QueueEntry)
		what := "waiting for its turn"
		if i == 0 {
			pendingSession = w.Session
			what = "holds the semaphore's internal lock, waiting for a free lease"
		}
		waiterNotes = append(waiterNotes, fmt.Sprintf("waiter %d: locks/%s (%s), session %s, waiting %s, %s", i+1, m.name, w.Format, w.Session, w.Age, what))
	}
	var entries []*entry
	pending := -1
	for _, m := range leases {
		e, err := l.entry(ctx, leasesDir, m)
		if errors.Is(err, gozk.ErrNoNode) {
			continue // returned meanwhile
		}
		if err != nil {
			return nil, true, err
		}
		if pendingSession != "" && e.Session == pendingSession {
			pending = len(entries) // the newest of that session (leases are in order)
		}
		entries = append(entries, e)
	}
	var lines []string
	for i, e := range entries {
		if i == pending {
			lines = append(lines, fmt.Sprintf("pending lease %s, session %s, created %s ago by waiter 1 (granted once no more leases than the limit exist)", e.Node, e.Session, e.Age))
			continue
		}
		if !info.Held {
			h, err := l.holderInfo(ctx, leasesDir, member{name: e.Node[len(leasesDir)+1:], token: e.Token, seq: e.Seq, format: e.Format})
			if err != nil && !errors.Is(err, gozk.ErrNoNode) {
				return nil, true, err
			}
			if h != nil {
				// The oldest lease is the holder inspect reports, and the one
				// `lock break` deletes (freeing one lease for the first waiter).
				info.Held, info.Holder, info.LastFence = true, h, h.Fence
				lines = append(lines, fmt.Sprintf("holder node %s, session %s, the oldest lease, held %s", e.Node, e.Session, e.Age))
				continue
			}
		}
		lines = append(lines, fmt.Sprintf("lease %s, session %s, held %s", e.Node, e.Session, e.Age))
	}
	held := len(entries)
	if pending >= 0 {
		held--
	}
	// The queue: every held lease (holding, the oldest first), then the pending lease
	// and the waiters on locks/.
	info.Queue = nil
	for i, e := range entries {
		if i != pending {
			q := e.QueueEntry
			q.Holding = true
			info.Queue = append(info.Queue, q)
		}
	}
	if pending >= 0 {
		info.Queue = append(info.Queue, entries[pending].QueueEntry)
	}
	info.Queue = append(info.Queue, waiterEntries...)
	info.Notes = append(info.Notes, fmt.Sprintf("Curator semaphore: %d lease(s) held (the lease limit is not stored in ZooKeeper: each client passes it)", held))
	info.Notes = append(info.Notes, lines...)
	info.Notes = append(info.Notes, waiterNotes...)
	return info, true, nil
}
