package zklock

// Recognition of the other Apache Curator lock recipes by inspect (and only by
// inspect: dsctl's own queue, in locker.go, is the mutex queue):
//
//   - InterProcessReadWriteLock: under the lock node, protected ephemeral-sequential
//     nodes _c_<uuid>-__WRIT__<seq> (writers) and _c_<uuid>-__READ__<seq> (readers),
//     ordered by sequence. A writer holds when it is first; readers hold together when
//     no writer is before them.
//   - InterProcessSemaphoreV2 (leases/ and locks/ under the lock node) is dsctl's own
//     semaphore layout too: semaphore.go inspects, lists and breaks it.
//   - kazoo's ReadLock: <uuid hex>__rlock__<seq> (its WriteLock's nodes are its Lock's,
//     <uuid hex>__lock__<seq>, recognised in locker.go). Readers hold together when no
//     writer is before them.

import (
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/lock"
)

// Curator recipes inspect recognises besides the mutex.
const (
	// FormatCuratorRW is Curator's InterProcessReadWriteLock (_c_<uuid>-__WRIT__<seq>,
	// _c_<uuid>-__READ__<seq>).
	FormatCuratorRW lock.Format = "curator-rwlock"
	// FormatCuratorSemaphore is Curator's InterProcessSemaphoreV2: the same format as
	// FormatSemaphore (semaphore.go), under the name the interop tests use.
	FormatCuratorSemaphore = FormatSemaphore
	// FormatKazooRead is a reader of kazoo's ReadLock (<uuid hex>__rlock__<seq>).
	FormatKazooRead lock.Format = "kazoo-read"
)

const (
	curatorWrite = "__WRIT__"
	curatorRead  = "__READ__"
	kazooRead    = "__rlock__"
)

// parseKazooRead recognises a kazoo ReadLock node, <32 hex>__rlock__<10 digits>.
func parseKazooRead(child string) (member, bool) {
	if len(child) != 32+len(kazooRead)+10 || child[32:32+len(kazooRead)] != kazooRead || !isHex(child[:32]) {
		return member{}, false
	}
	seq, ok := seqOf(child)
	if !ok {
		return member{}, false
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
	seq, ok := seqOf(child)
	if !ok {
		return member{}, false
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
	case FormatCurator, FormatCuratorRW, FormatSemaphore:
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
	case FormatSemaphore:
		return "Apache Curator InterProcessSemaphoreV2 (leases/_c_<uuid>-lease-<seq>; waiters queue on locks/)", true
	case FormatKazooRead:
		return "kazoo ReadLock (<uuid>__rlock__<seq>, ephemeral-sequential; its WriteLock uses kazoo Lock nodes)", true
	}
	return "", false
}

// isForeignNode reports whether child is a read-write lock node (Curator's, or kazoo's
// reader), which makes its parent a lock for List.
func isForeignNode(child string) bool {
	_, ok := parseForeignMember(child)
	return ok
}
