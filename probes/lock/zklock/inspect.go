package zklock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// maxListNodes bounds the tree walk of List.
const maxListNodes = 20000

// maxQueueShown bounds the waiters Inspect reads one by one.
const maxQueueShown = 100

// QueueEntry is one node of a lock's queue, holder first (the contract's type).
type QueueEntry = lock.QueueEntry

// breakRecord is what Break writes on the lock node (its data), so the broken holder
// can be told who broke it.
type breakRecord struct {
	Break *lock.Break `json:"dsctl_break"`
}

// holderInfo reads a queue member's node into a Holder.
func (l *Locker) holderInfo(ctx context.Context, dir string, m member) (*lock.Holder, error) {
	e, err := l.entry(ctx, dir, m)
	if err != nil {
		return nil, err
	}
	h := &lock.Holder{Token: m.token, Fence: e.Fence, Owner: e.Owner, AcquiredAt: e.Created}
	if d, ok := e.data(); ok && d.TTLMs > 0 {
		left := time.Until(e.modified.Add(time.Duration(d.TTLMs) * time.Millisecond))
		left = min(max(left, time.Millisecond), time.Duration(d.TTLMs)*time.Millisecond)
		h.SetTTLLeft(left)
	} else {
		h.SetTTLLeft(-1) // held until its session ends
	}
	return h, nil
}

type entry struct {
	QueueEntry
	raw      []byte
	modified time.Time
	// version is the node's data version; -1 for an ephemeral node (session-bound).
	version int32
}

func (e *entry) data() (nodeData, bool) { return decodeData(e.raw) }

func (l *Locker) entry(ctx context.Context, dir string, m member) (*entry, error) {
	p := dir + "/" + m.name
	data, st, err := l.getNode(ctx, p)
	if err != nil {
		return nil, err
	}
	e := &entry{raw: data, modified: time.UnixMilli(st.Mtime), version: st.Version}
	if st.EphemeralOwner != 0 {
		e.version = -1
	}
	e.QueueEntry = QueueEntry{Node: p, Token: m.token, Seq: m.seq, Fence: lock.FencingToken(st.Czxid), Format: m.format,
		Session: fmt.Sprintf("0x%x", st.EphemeralOwner), Created: time.UnixMilli(st.Ctime)}
	if st.EphemeralOwner == 0 {
		e.Session = "" // a TTL node (a detached lease): no session
	}
	e.Age = max(time.Since(e.Created), 0)
	e.AgeMs = e.Age.Milliseconds()
	if d, ok := decodeData(data); ok {
		o := d.Owner
		e.Owner = &o
		e.Format = lock.FormatDsctl
	} else if o := foreignOwner(m.format, data); o != nil { // formats_foreign.go
		e.Owner = o
	}
	return e, nil
}

// Queue lists the lock's queue in order, holder first, with each node's session and age.
func (l *Locker) Queue(ctx context.Context, name string) ([]QueueEntry, error) {
	dir, err := l.lockPath(name)
	if err != nil {
		return nil, err
	}
	ms, _, err := l.queue(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make([]QueueEntry, 0, len(ms))
	for _, m := range ms {
		e, err := l.entry(ctx, dir, m)
		if errors.Is(err, gozk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e.Holding = len(out) == 0
		out = append(out, e.QueueEntry)
	}
	return out, nil
}

// lastBreak reads the break record on the lock node, if any.
func (l *Locker) lastBreak(ctx context.Context, dir string) (*lock.Break, error) {
	b, _, err := l.getNode(ctx, dir)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r breakRecord
	if len(b) == 0 || json.Unmarshal(b, &r) != nil {
		return nil, nil
	}
	return r.Break, nil
}

// Inspect reports the lock's holder and queue (dsctl's, Curator's, go-zookeeper's and
// kazoo's queues are recognised).
func (l *Locker) Inspect(ctx context.Context, name string) (*lock.Info, error) {
	dir, err := l.lockPath(name)
	if err != nil {
		return nil, err
	}
	if info, ok, err := l.inspectSemaphore(ctx, name, dir); ok || err != nil { // semaphore.go
		return info, err
	}
	return l.inspectDir(ctx, name, dir)
}

func (l *Locker) inspectDir(ctx context.Context, name, dir string) (*lock.Info, error) {
	info := &lock.Info{Name: name, Key: dir, FencingSafe: true, Backend: l.backend, FormatDetail: lock.FormatNone.Describe()}
	if err := l.sync(ctx, dir); err != nil {
		return nil, err
	}
	for {
		ms, others, err := l.queue(ctx, dir)
		if err != nil {
			return nil, err
		}
		ms, others = foreignMembers(ms, others) // Curator read-write locks (formats_foreign.go)
		info.Waiters = max(len(ms)-1, 0)
		if len(ms) == 0 {
			if b, err := l.lastBreak(ctx, dir); err == nil {
				info.LastBreak = b
			}
			if len(others) > 0 {
				// Application data or the parent of other locks: nothing here is a queue.
				info.Format, info.FormatDetail = lock.FormatNotALock, "the node exists but has no lock queue nodes (application data, or the parent of other locks)"
				info.Object = &lock.KeyObject{Type: "znode", TTLLeftMs: -1, Size: int64(len(others))}
				info.Notes = append(info.Notes, fmt.Sprintf("%d child node(s) that are not lock nodes, e.g. %s", len(others), others[0]))
			}
			return info, nil
		}
		if len(others) > 0 {
			info.Notes = append(info.Notes, fmt.Sprintf("%d child node(s) besides the queue that are not lock nodes, e.g. %s", len(others), others[0]))
		}
		e, err := l.entry(ctx, dir, ms[0])
		if errors.Is(err, gozk.ErrNoNode) {
			continue // the holder left between the two reads
		}
		if err != nil {
			return nil, err
		}
		h, err := l.holderInfo(ctx, dir, ms[0])
		if errors.Is(err, gozk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		info.Held, info.Holder, info.Format, info.LastFence = true, h, e.Format, h.Fence
		info.FormatDetail = describe(e.Format)
		if b, err := l.lastBreak(ctx, dir); err == nil {
			info.LastBreak = b
		}
		info.Notes = append(info.Notes, foreignNotes(ms)...)
		// The queue in order, holder first, with each waiter's session and age (the
		// first maxQueueShown).
		e.Holding = true
		info.Queue = append(info.Queue, e.QueueEntry)
		for i, m := range ms[1:] {
			if i == maxQueueShown {
				info.Notes = append(info.Notes, fmt.Sprintf("... and %d more waiters (not read)", len(ms)-1-i))
				break
			}
			w, err := l.entry(ctx, dir, m)
			if err != nil {
				continue // it left meanwhile
			}
			info.Queue = append(info.Queue, w.QueueEntry)
		}
		return info, nil
	}
}

func describe(f lock.Format) string {
	switch f {
	case FormatCurator:
		return "Apache Curator InterProcessMutex (_c_<uuid>-lock-<seq>, ephemeral-sequential)"
	case FormatGoZK:
		return "go-zookeeper Lock (_c_<32 hex>-lock-<seq>, ephemeral-sequential)"
	case FormatKazoo:
		return "kazoo Lock (<uuid>__lock__<seq>, ephemeral-sequential)"
	case lock.FormatDsctl:
		return "dsctl lease (Curator-compatible queue node with owner data; fence = czxid)"
	}
	if d, ok := describeForeign(f); ok {
		return d
	}
	return f.Describe()
}

// List reports the locks (nodes with a queue) whose name starts with opt.Prefix.
func (l *Locker) List(ctx context.Context, opt lock.ListOptions) ([]lock.Info, error) {
	if len(opt.Prefix) > lock.MaxNameLen {
		return nil, errs.Usage("--prefix is %d bytes long; the limit is %d", len(opt.Prefix), lock.MaxNameLen)
	}
	start := l.root
	if i := strings.LastIndexByte(opt.Prefix, '/'); i > 0 {
		start = l.root + "/" + opt.Prefix[:i]
		if err := lockPathCheck(start); err != nil {
			return nil, errs.Usage("--prefix %q is not a valid lock name prefix", opt.Prefix)
		}
	}
	var names []string
	stack := []string{start}
	seen := 0
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		children, err := l.getChildren(ctx, dir)
		if errors.Is(err, gozk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		seen += len(children)
		if seen > maxListNodes {
			return nil, errs.New(errs.KindRuntime, "zookeeper: more than %d nodes under %s", maxListNodes, start).
				WithHint("narrow the listing with --prefix")
		}
		isLock := false
		for _, c := range children {
			if _, ok := parseMember(c); ok || isForeignNode(c) { // formats_foreign.go
				isLock = true
				continue
			}
			stack = append(stack, dir+"/"+c)
		}
		if isLock && dir != l.root {
			name := strings.TrimPrefix(dir, l.root+"/")
			if strings.HasPrefix(name, opt.Prefix) {
				names = append(names, name)
			}
		}
	}
	names, sems := l.foldSemaphores(ctx, names) // semaphore.go
	sort.Strings(names)
	out := make([]lock.Info, 0, len(names))
	for _, n := range names {
		info, err := l.inspectListed(ctx, n, sems) // semaphore.go
		if err != nil {
			return nil, err
		}
		if info.Held {
			out = append(out, *info)
		}
	}
	return out, nil
}

func lockPathCheck(p string) error {
	if strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return errors.New("bad path")
	}
	return nil
}

// Break deletes the holder's node (only while opt.IfToken holds, when given) after
// writing a break record on the lock node; the next waiter, watching that node, takes
// the lock. The broken holder's session is not touched: its next renewal finds its node
// gone and is told who broke it.
func (l *Locker) Break(ctx context.Context, name string, opt lock.BreakOptions) (*lock.Info, error) {
	dir, err := l.lockPath(name)
	if err != nil {
		return nil, err
	}
	if err := lock.ValidateLabel(opt.Reason); err != nil {
		return nil, errs.Usage("--reason: %v", strings.TrimPrefix(err.Error(), "--owner text "))
	}
	if info, ok, err := l.breakSemaphore(ctx, name, dir, opt); ok || err != nil { // semaphore.go
		return info, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		info, err := l.inspectDir(ctx, name, dir)
		if err != nil {
			return nil, err
		}
		if info.Format == lock.FormatNotALock {
			// --raw does not change this: dsctl deletes only lock queue nodes.
			return nil, errs.Usage("%s is not a lock (a znode with %d child node(s), none of them a lock queue node); nothing was deleted", dir, info.Object.Size).
				WithHint("see `dsctl lock inspect %s` and `dsctl zk ls %s`; dsctl never deletes application nodes", lock.QuoteCommand([]string{name}), dir)
		}
		if !info.Held {
			if opt.IfToken != "" {
				return nil, l.notHeld(ctx, name, dir, opt.IfToken)
			}
			return info, nil
		}
		h := info.Holder
		if opt.IfToken != "" && h.Token != opt.IfToken {
			return nil, l.notHeld(ctx, name, dir, opt.IfToken)
		}
		if info.Format == FormatSemaphore || len(info.Queue) == 0 || info.Queue[0].Token != h.Token {
			// A semaphore has several holders (break one lease by its token); and
			// without the holder's node in the queue there is nothing exact to delete.
			return nil, errs.Usage("lock %q (%s) has no single holder node to break; nothing was deleted", name, describe(info.Format)).
				WithHint("break one lease at a time with --if-token TOKEN; see `dsctl lock inspect %s`", lock.QuoteCommand([]string{name}))
		}
		if note, err := l.recordBreak(ctx, dir, &lock.Break{At: time.Now().UTC(), By: opt.By, Reason: opt.Reason, Token: h.Token, Fence: h.Fence}); err != nil {
			return nil, err
		} else if note != "" {
			info.Notes = append(info.Notes, note)
		}
		node := info.Queue[0].Node // the holder
		// Delete exactly that node, at the version we read: a holder that renewed
		// meanwhile still gets broken (same node), a new holder is never deleted.
		_, err = call(ctx, l, "delete", node, func() (struct{}, error) { return struct{}{}, l.conn.Delete(node, -1) }, nil)
		if errors.Is(err, gozk.ErrNoNode) {
			if opt.IfToken != "" {
				return nil, l.notHeld(ctx, name, dir, opt.IfToken)
			}
			continue // released meanwhile: look again
		}
		if err != nil {
			return nil, err
		}
		return info, nil
	}
	return nil, errs.New(errs.KindRuntime, "zookeeper: lock %q changed holders five times while breaking it; nothing more was deleted", name)
}

// recordBreak writes the break record as the lock node's data, only when that data is
// empty or already a dsctl break record (a version-checked write): other libraries
// lock on any node, including one that holds the application's data, which dsctl
// never overwrites. (No child node either: go-zookeeper's Lock fails on children it
// cannot parse.) A non-empty note says why no record was written.
func (l *Locker) recordBreak(ctx context.Context, dir string, b *lock.Break) (string, error) {
	rec, _ := json.Marshal(breakRecord{Break: b})
	for attempt := 0; attempt < 3; attempt++ {
		data, st, err := l.getNode(ctx, dir)
		if errors.Is(err, gozk.ErrNoNode) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		var old breakRecord
		if len(data) > 0 && (json.Unmarshal(data, &old) != nil || old.Break == nil) {
			return fmt.Sprintf("no break record written: the lock node %s holds other data (%d bytes), which dsctl never overwrites; the broken holder will not be told who broke it", dir, len(data)), nil
		}
		_, err = call(ctx, l, "set", dir, func() (*gozk.Stat, error) { return l.conn.Set(dir, rec, st.Version) }, nil)
		if errors.Is(err, gozk.ErrBadVersion) {
			continue // written meanwhile: look again
		}
		if errors.Is(err, gozk.ErrNoNode) {
			return "", nil
		}
		return "", err
	}
	return fmt.Sprintf("no break record written: the lock node %s kept changing", dir), nil
}

// sync makes the connected server catch up with the leader, so the reads that follow
// see every write committed before (ZooKeeper reads are otherwise served from the
// server's possibly lagging copy). A missing node is fine.
func (l *Locker) sync(ctx context.Context, p string) error {
	_, err := call(ctx, l, "sync", p, func() (string, error) { return l.conn.Sync(p) }, nil)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil
	}
	return err
}
