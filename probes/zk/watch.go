package zk

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/probes/errs"
)

// EventType names a watch event.
type EventType string

// Event types. Node events carry the path and the versions before and after; gap says
// how many changes happened that no event shows; resync events are the difference
// between before a session expired and after, one per changed node.
const (
	EventArmed           EventType = "armed"
	EventCreated         EventType = "created"
	EventDeleted         EventType = "deleted"
	EventDataChanged     EventType = "data_changed"
	EventChildrenChanged EventType = "children_changed"
	EventGap             EventType = "gap"
	EventDisconnected    EventType = "disconnected"
	EventReconnected     EventType = "reconnected"
	EventSessionExpired  EventType = "session_expired"
	EventResync          EventType = "resync"
	EventLimit           EventType = "limit"
)

// Event is one thing the watcher saw. Zero fields do not apply to the type.
type Event struct {
	Type EventType
	Time time.Time
	Path string
	// Change is the kind of change a gap or resync event stands for: created,
	// deleted, data_changed, children_changed (gap: data_changed or children_changed,
	// or created for a watched absent path created and deleted before its re-read). A
	// gap with a Message counts changes a notification proved on a node deleted before
	// it could be re-read: Missed is a lower bound.
	Change EventType
	// Stat is the node's stat after the event (zero for deleted).
	Stat Stat
	// OldVersion/Version are the data versions before and after; OldCversion/Cversion
	// the child versions.
	OldVersion, Version   int32
	OldCversion, Cversion int32
	// Data is the new value (with WatchOptions.Data).
	Data []byte
	// Added and Removed are child names (children_changed, resync).
	Added, Removed []string
	// Missed is how many changes no event shows (gap), or how many a resync event
	// stands for.
	Missed int64
	// Source is "watch" for changes seen through a watch, "verify" for changes found
	// by re-reading after a reconnect, "arm" for a node first seen while arming.
	Source string
	// SessionID and Server describe the session (armed, reconnected, session_expired).
	SessionID int64
	Server    string
	// Notified is when the watch notification behind this event reached the client
	// (zero for events not caused by one); Time - Notified is dsctl's own latency.
	Notified time.Time
	// Nodes counts nodes (armed: nodes watched; resync: nodes re-read).
	Nodes int
	// Message is a human note (limit, disconnected).
	Message string
}

// WatchOptions say what to watch.
type WatchOptions struct {
	Paths []string
	// Recursive watches every descendant down to Depth levels (negative: all).
	// Without it, each path is watched for data and for children added or removed.
	Recursive bool
	Depth     int
	// Data reads the new value on each change (GetW instead of ExistsW).
	Data bool
	// MaxNodes caps the nodes watched (default 100,000): arming refuses a bigger tree,
	// and nodes created beyond the cap are reported but not watched.
	MaxNodes int
	// Concurrency is the number of reads in flight (default DefaultConcurrency).
	Concurrency int
	// Progress, when set, is called while arming after each level with the nodes
	// armed so far.
	Progress func(armed int)
}

// Summary counts what a watch saw, for the ctrl-C summary.
type Summary struct {
	Events       int64               `json:"events"`
	ByType       map[EventType]int64 `json:"by_type"`
	Gaps         int64               `json:"gaps"`
	Missed       int64               `json:"missed"`
	Disconnects  int64               `json:"disconnects"`
	Reconnects   int64               `json:"reconnects"`
	Expirations  int64               `json:"session_expirations"`
	Resyncs      int64               `json:"resyncs"`
	Watched      int                 `json:"nodes_watched"`
	Started      time.Time           `json:"started"`
	Duration     time.Duration       `json:"-"`
	DurationText string              `json:"duration"`
}

// wnode is the watcher's knowledge of one node.
type wnode struct {
	path   string
	root   string
	depth  int
	isRoot bool
	exists bool
	stat   Stat
	kids   map[string]struct{}
	// noList: the session has no READ permission on the node (found when listing its
	// children fails): the server sends no notifications for it.
	noList bool
	// triggered is when the first notification not yet reported reached the client.
	triggered time.Time

	dataArmed, kidsArmed       bool
	dataInflight, kidsInflight bool
	dataDirty, kidsDirty       bool

	// notes counts the data notifications (created, data changed, deleted) handled;
	// each read records it when issued, so a reply tells whether it was read after a
	// given notification.
	notes int
	// changeNoted: a data-changed notification proves a change past version
	// noteBase that no data read has shown yet. If the node turns out deleted first,
	// a gap of at least 1 says so.
	changeNoted bool
	noteBase    int32
	// kidsNoted: likewise for a children-changed notification past cversion
	// kidsBase.
	kidsNoted bool
	kidsBase  int32
	// adopted: refused at --max-nodes, watched once room was freed: its first read
	// reports it armed, not created.
	adopted bool
	// createNote is the notes count of a created notification for a node not known to
	// exist (0: none pending): a read issued after it that finds no node proves a
	// creation and a deletion nobody saw.
	createNote int
}

type readKind int

const (
	readData readKind = iota
	readKids
	verifyData
	verifyKids
)

type readReply struct {
	// node is the watched node the read is for: a reply for a node since forgotten
	// (deleted, or replaced by a resync) is dropped.
	node *wnode
	// notes is node.notes when the read was issued.
	notes  int
	path   string
	kind   readKind
	exists bool
	stat   Stat
	data   []byte
	kids   []string
	err    error
}

// Watcher delivers events for the watched paths until its context ends.
type Watcher struct {
	c    *Client
	opt  WatchOptions
	out  chan Event
	done chan struct{}

	nodes map[string]*wnode
	// refused are children not watched because --max-nodes was reached (reported
	// once each with a limit event).
	refused  map[string]bool
	replies  chan readReply
	queue    []readReply // reads waiting for a slot (only path and kind set)
	inflight int

	// notified is the notification time of the reply being applied.
	notified time.Time

	connected  bool
	needResync bool
	// verifyAfter fires the re-read after a reconnect within the session (nil when none
	// is pending): see reconnectSettle.
	verifyAfter <-chan time.Time
	resyncErr   string
	sessionID   int64
	lastExpired time.Time

	mu      sync.Mutex
	summary Summary
}

// Watch arms watches on every path (and, with Recursive, every descendant within
// Depth) and returns once they are armed. Events arrive on Events() until ctx ends;
// then the channel is closed and Summary is final.
func (c *Client) Watch(ctx context.Context, opt WatchOptions) (*Watcher, error) {
	if len(opt.Paths) == 0 {
		return nil, errs.Usage("zk watch needs at least one path").WithHint("e.g. dsctl zk watch /app/config")
	}
	for _, p := range opt.Paths {
		if err := CheckPath(p); err != nil {
			return nil, err
		}
	}
	if !opt.Recursive {
		opt.Depth = 0
	}
	if opt.MaxNodes <= 0 {
		opt.MaxNodes = 100_000
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	w := &Watcher{c: c, opt: opt, out: make(chan Event, 4096), done: make(chan struct{}),
		replies: make(chan readReply, 1024), connected: true, sessionID: c.SessionID(), refused: map[string]bool{}}
	w.summary = Summary{ByType: map[EventType]int64{}, Started: time.Now()}
	// Subscribe before arming: nothing that happens after the first watch is set can
	// be missed.
	inbox, cancel := c.SubscribeInbox()
	nodes, err := w.snapshot(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	w.nodes = nodes
	w.setWatched()
	msg := "under " + strings.Join(opt.Paths, " ")
	if hidden := countNoList(nodes); hidden > 0 {
		msg += fmt.Sprintf(" (%d not readable by this session: ZooKeeper sends no notifications for them; authenticate with a user their ACL allows)", hidden)
	}
	w.emit(Event{Type: EventArmed, Nodes: len(nodes), SessionID: c.SessionID(), Server: c.conn.Server(), Source: "arm", Message: msg})
	go w.run(ctx, inbox, cancel)
	return w, nil
}

func countNoList(nodes map[string]*wnode) int {
	n := 0
	for _, nd := range nodes {
		if nd.noList {
			n++
		}
	}
	return n
}

// Events is the event stream, closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.out }

// Done is closed when the watcher has stopped (after Events is closed).
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Summary returns the counts so far.
func (w *Watcher) Summary() Summary {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.summary
	s.ByType = make(map[EventType]int64, len(w.summary.ByType))
	for k, v := range w.summary.ByType {
		s.ByType[k] = v
	}
	s.Duration = time.Since(s.Started).Round(time.Millisecond)
	s.DurationText = s.Duration.String()
	return s
}

func (w *Watcher) setWatched() {
	n := 0
	for _, nd := range w.nodes {
		if nd.exists || nd.isRoot {
			n++
		}
	}
	w.mu.Lock()
	w.summary.Watched = n
	w.mu.Unlock()
}

func (w *Watcher) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Notified.IsZero() && ev.Path != "" && ev.Type != EventResync {
		ev.Notified = w.notified
	}
	w.mu.Lock()
	w.summary.Events++
	w.summary.ByType[ev.Type]++
	switch ev.Type {
	case EventGap:
		w.summary.Gaps++
		w.summary.Missed += ev.Missed
	case EventDisconnected:
		w.summary.Disconnects++
	case EventReconnected:
		w.summary.Reconnects++
	case EventSessionExpired:
		w.summary.Expirations++
	}
	w.mu.Unlock()
	w.out <- ev
}

// ---- arming: a level-by-level walk that sets a data and a child watch on each node ----

// snapshot reads every watched node with watches set, pipelined, and returns the
// state. Roots that do not exist get an exists watch.
func (w *Watcher) snapshot(ctx context.Context) (map[string]*wnode, error) {
	nodes := map[string]*wnode{}
	var level []*wnode
	for _, p := range w.opt.Paths {
		if _, dup := nodes[p]; dup {
			continue
		}
		n := &wnode{path: p, root: p, isRoot: true}
		nodes[p] = n
		level = append(level, n)
	}
	for len(level) > 0 {
		replies := make([]readReply, len(level))
		kids := make([]readReply, len(level))
		err := parallel(ctx, len(level), w.opt.Concurrency, func(ctx context.Context, i int) error {
			replies[i] = w.read(ctx, level[i].path, readData)
			if replies[i].err != nil {
				return replies[i].err
			}
			if replies[i].exists {
				kids[i] = w.read(ctx, level[i].path, readKids)
				if kids[i].err != nil && !ErrNoNode(kids[i].err) && !ErrNoAuth(kids[i].err) {
					return kids[i].err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var next []*wnode
		for i, n := range level {
			r := replies[i]
			n.exists, n.stat, n.dataArmed = r.exists, r.stat, true
			if !r.exists {
				if !n.isRoot {
					delete(nodes, n.path)
				}
				continue
			}
			if kids[i].err != nil { // deleted between the two reads (its watch reports it), or not readable
				if ErrNoAuth(kids[i].err) {
					n.noList = true
				}
				continue
			}
			n.kidsArmed = true
			n.kids = make(map[string]struct{}, len(kids[i].kids))
			if kids[i].stat.Pzxid != 0 {
				n.stat = mergeKidStat(n.stat, kids[i].stat)
			}
			for _, k := range kids[i].kids {
				n.kids[k] = struct{}{}
				if !w.descend(n) {
					continue
				}
				cp := Join(n.path, k)
				if _, dup := nodes[cp]; dup {
					continue
				}
				if len(nodes) >= w.opt.MaxNodes {
					return nil, errs.Usage("zookeeper: %s has more than %d nodes to watch", n.root, w.opt.MaxNodes).
						WithHint("raise --max-nodes, or lower --depth")
				}
				child := &wnode{path: cp, root: n.root, depth: n.depth + 1}
				nodes[cp] = child
				next = append(next, child)
			}
		}
		level = next
		if w.opt.Progress != nil {
			w.opt.Progress(len(nodes))
		}
	}
	return nodes, nil
}

// descend reports whether n's children are watched themselves.
func (w *Watcher) descend(n *wnode) bool {
	return w.opt.Recursive && (w.opt.Depth < 0 || n.depth < w.opt.Depth)
}

// mergeKidStat takes the child-related fields from a children read (which may be
// newer than the data read) while keeping the data fields.
func mergeKidStat(data, kids Stat) Stat {
	if kids.Pzxid >= data.Pzxid {
		data.Pzxid, data.Cversion, data.NumChildren = kids.Pzxid, kids.Cversion, kids.NumChildren
	}
	return data
}

type readRes struct {
	exists bool
	st     *gozk.Stat
	data   []byte
	kids   []string
}

// read performs one read, with a watch for readData/readKids, bounded by the timeout
// (arming and resync, whose errors are reported).
func (w *Watcher) read(ctx context.Context, path string, kind readKind) readReply {
	out, err := call(ctx, w.c, "watch", path, func() (readRes, error) { return w.fetch(path, kind) })
	return w.reply(path, kind, out, err)
}

// readNow performs one read on the calling goroutine, with no timer and no second
// goroutine: the re-read after a trigger is on the event-to-output path. It cannot
// hang: go-zookeeper fails every pending request when it drops a connection that
// answers nothing for 2/3 of the session timeout (the failed read is marked dirty and
// redone on reconnect), and a reply that comes after the watch ended lands in the
// buffered replies channel (at most Concurrency reads are in flight).
func (w *Watcher) readNow(path string, kind readKind) readReply {
	// A read made while the connection is down or just back waits for go-zookeeper's
	// re-set of its watches (see ReconnectSettle), or fails as a queued one would.
	var out readRes
	err := w.c.AwaitSettled(context.Background(), time.Now().Add(w.c.timeout))
	if err == nil {
		out, err = w.fetch(path, kind)
	}
	if err != nil {
		err = w.c.classify("watch", path, err)
	}
	return w.reply(path, kind, out, err)
}

func (w *Watcher) reply(path string, kind readKind, out readRes, err error) readReply {
	r := readReply{path: path, kind: kind}
	r.exists, r.data, r.kids = out.exists, out.data, out.kids
	if out.st != nil && out.exists {
		r.stat = statOf(out.st)
	}
	if ErrNoNode(err) {
		r.exists = false
	}
	r.err = err
	return r
}

// fetch is the go-zookeeper request behind each read kind.
func (w *Watcher) fetch(path string, kind readKind) (readRes, error) {
	type res = readRes
	c := w.c
	abs := c.abs(path)
	{
		switch kind {
		case readKids:
			kids, st, _, err := c.conn.ChildrenW(abs)
			return res{exists: err == nil, st: st, kids: kids}, err
		case verifyKids:
			kids, st, err := c.conn.Children(abs)
			return res{exists: err == nil, st: st, kids: kids}, err
		case verifyData:
			ok, st, err := c.conn.Exists(abs)
			return res{exists: ok, st: st}, err
		}
		if !w.opt.Data {
			ok, st, _, err := c.conn.ExistsW(abs)
			return res{exists: ok, st: st}, err
		}
		for attempt := 0; ; attempt++ {
			data, st, _, err := c.conn.GetW(abs)
			if errors.Is(err, gozk.ErrNoAuth) {
				// The ACL hides the data; exists needs no permission: watch the versions.
				ok, st, _, err := c.conn.ExistsW(abs)
				return res{exists: ok, st: st}, err
			}
			if !errors.Is(err, gozk.ErrNoNode) || attempt == 3 {
				return res{exists: err == nil, st: st, data: data}, err
			}
			ok, st, _, err := c.conn.ExistsW(abs)
			if err != nil || !ok {
				return res{exists: false, st: st}, err
			}
			// created between the two reads: read its data (the exists watch is set)
		}
	}
}

// ---- the event loop ----

func (w *Watcher) run(ctx context.Context, inbox *Inbox, cancel func()) {
	defer close(w.done)
	defer close(w.out)
	defer cancel()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-inbox.Done():
			return
		case <-inbox.Ready():
			w.takeEvents(ctx, inbox)
			w.adoptRefused(ctx)
		case r := <-w.replies:
			// Every notification the server sent before this reply is in the inbox:
			// handle them first, so the reply is applied in the server's order (a
			// child's NodeDeleted before its parent's children re-read, say).
			w.takeEvents(ctx, inbox)
			w.inflight--
			w.onReply(r)
			w.adoptRefused(ctx)
			w.pump(ctx)
		case <-w.verifyAfter:
			w.verifyAfter = nil
			if w.connected {
				w.verifyAll(ctx)
			}
		case <-retry.C:
			switch {
			case w.connected && w.needResync:
				w.resync(ctx)
			case w.connected && w.verifyAfter == nil:
				w.retryDirty(ctx)
			}
		}
	}
}

func (w *Watcher) takeEvents(ctx context.Context, inbox *Inbox) {
	for _, ev := range inbox.Take() {
		w.onZKEvent(ctx, ev)
	}
}

func (w *Watcher) onZKEvent(ctx context.Context, note Notification) {
	ev := note.Event
	if ev.Type == gozk.EventSession {
		w.onSession(ctx, ev)
		return
	}
	path, ok := w.c.rel(ev.Path)
	if !ok {
		return
	}
	n := w.nodes[path]
	if n == nil {
		return
	}
	if n.triggered.IsZero() {
		n.triggered = note.Received
	}
	switch ev.Type {
	case gozk.EventNodeDataChanged, gozk.EventNodeCreated, gozk.EventNodeDeleted:
		n.notes++
	}
	switch ev.Type {
	case gozk.EventNodeDataChanged, gozk.EventNodeCreated:
		if ev.Type == gozk.EventNodeDataChanged && !n.changeNoted {
			n.changeNoted, n.noteBase = true, n.stat.Version
		}
		if ev.Type == gozk.EventNodeCreated && !n.exists {
			n.createNote = n.notes
		}
		n.dataArmed = false
		w.schedule(ctx, n, readData)
	case gozk.EventNodeDeleted:
		n.dataArmed, n.kidsArmed = false, false
		switch {
		case n.dataInflight:
			// The reply may predate the deletion (a node just learned from its
			// parent, whose arming read answered "exists"): read again after it,
			// and let that read decide.
			n.dataDirty = true
		case n.isRoot:
			w.schedule(ctx, n, readData)
		case n.exists:
			w.notified = note.Received
			w.nodeDeleted(n, "watch")
			w.notified = time.Time{}
		}
	case gozk.EventNodeChildrenChanged:
		if !n.kidsNoted {
			n.kidsNoted, n.kidsBase = true, n.stat.Cversion
		}
		n.kidsArmed = false
		w.schedule(ctx, n, readKids)
	case gozk.EventNotWatching:
		n.dataArmed, n.kidsArmed = false, false
	}
}

func (w *Watcher) onSession(ctx context.Context, ev gozk.Event) {
	switch ev.State {
	case gozk.StateDisconnected:
		if w.connected {
			w.connected = false
			w.emit(Event{Type: EventDisconnected, SessionID: w.sessionID, Server: ev.Server,
				Message: "connection lost; watches stay armed on the server while the session lives"})
		}
	case gozk.StateExpired:
		w.connected = false
		w.needResync = true
		w.lastExpired = time.Now()
		for _, n := range w.nodes {
			n.dataArmed, n.kidsArmed = false, false
		}
		w.emit(Event{Type: EventSessionExpired, SessionID: w.sessionID, Server: ev.Server,
			Message: "every watch is gone; the watched paths are re-read and re-armed on the next session"})
	case gozk.StateHasSession:
		w.connected = true
		sid := w.c.SessionID()
		if w.needResync || sid != w.sessionID {
			w.sessionID = sid
			w.resync(ctx)
			return
		}
		w.emit(Event{Type: EventReconnected, SessionID: sid, Server: ev.Server, Nodes: len(w.nodes),
			Message: "same session: re-reading every watched node to verify nothing was missed"})
		w.verifyAfter = time.After(reconnectSettle)
	}
}

// schedule queues a read of n unless one is in flight (then it is redone after).
func (w *Watcher) schedule(ctx context.Context, n *wnode, kind readKind) {
	switch kind {
	case readData:
		if n.dataInflight {
			n.dataDirty = true
			return
		}
		n.dataInflight, n.dataDirty = true, false
	case readKids:
		if n.kidsInflight {
			n.kidsDirty = true
			return
		}
		n.kidsInflight, n.kidsDirty = true, false
	}
	w.queue = append(w.queue, readReply{node: n, path: n.path, kind: kind})
	w.pump(ctx)
}

// pump starts queued reads while fewer than Concurrency are in flight.
func (w *Watcher) pump(ctx context.Context) {
	for len(w.queue) > 0 && w.inflight < w.opt.Concurrency {
		q := w.queue[0]
		w.queue = w.queue[1:]
		w.inflight++
		notes := 0
		if q.node != nil {
			notes = q.node.notes
		}
		go func() {
			r := w.readNow(q.path, q.kind)
			r.node, r.notes = q.node, notes
			w.replies <- r
		}()
	}
	if len(w.queue) == 0 {
		w.queue = nil // let the backing array go
	}
}

func (w *Watcher) onReply(r readReply) {
	n := w.nodes[r.path]
	if n == nil || n != r.node {
		return
	}
	switch r.kind {
	case readData:
		n.dataInflight = false
	case readKids:
		n.kidsInflight = false
	}
	if ErrNoAuth(r.err) && (r.kind == readKids || r.kind == verifyKids) {
		// No READ permission: the server lists nothing and notifies nothing for this node.
		if !n.noList {
			n.noList = true
			w.emit(Event{Type: EventLimit, Path: n.path, Source: w.source(r),
				Message: "not readable by this session (ACL): ZooKeeper sends no notifications for it; authenticate with a user its ACL allows"})
		}
		return
	}
	if r.err != nil && !ErrNoNode(r.err) {
		// Connection trouble or a timeout: read again once the session is back (a
		// session expiry re-reads everything anyway).
		switch r.kind {
		case readData, verifyData:
			n.dataDirty = true
		case readKids, verifyKids:
			n.kidsDirty = true
		}
		return
	}
	w.notified = n.triggered
	n.triggered = time.Time{}
	defer func() { w.notified = time.Time{} }()
	switch r.kind {
	case readData, verifyData:
		if r.kind == readData {
			n.dataArmed = true
		}
		w.applyData(n, r)
	case readKids, verifyKids:
		if r.kind == readKids && r.err == nil {
			n.kidsArmed = true
		}
		if r.err == nil {
			w.applyKids(n, r)
		}
	}
	if w.nodes[r.path] != n {
		return // deleted
	}
	ctx := context.Background()
	if n.dataDirty && !n.dataInflight {
		w.schedule(ctx, n, readData)
	}
	if n.kidsDirty && !n.kidsInflight && n.exists {
		w.schedule(ctx, n, readKids)
	}
}

func (w *Watcher) source(r readReply) string {
	if r.kind == verifyData || r.kind == verifyKids {
		return "verify"
	}
	return "watch"
}

// applyData compares a data read with what was known and emits what changed.
func (w *Watcher) applyData(n *wnode, r readReply) {
	src := w.source(r)
	if r.exists && r.stat.Version > n.noteBase {
		n.changeNoted = false // a read after the change shows it
	}
	switch {
	case !r.exists && !n.exists:
		if n.createNote > 0 && r.notes >= n.createNote {
			// read after a created notification, and gone again
			n.createNote = 0
			w.emit(Event{Type: EventGap, Path: n.path, Change: EventCreated, Missed: 2, Source: src,
				Message: "created and deleted before it could be read: at least 2 changes (the node is gone, so how many more is unknowable)"})
		}
		if !n.isRoot {
			delete(w.nodes, n.path)
		}
	case !r.exists && n.exists:
		w.nodeDeleted(n, src)
	case r.exists && !n.exists && n.adopted:
		n.adopted, n.createNote, n.changeNoted = false, 0, false
		n.exists, n.stat, n.kids = true, r.stat, map[string]struct{}{}
		w.emit(Event{Type: EventArmed, Path: n.path, Nodes: 1, Stat: r.stat, Version: r.stat.Version, Cversion: r.stat.Cversion,
			Data: r.data, SessionID: w.sessionID, Server: w.c.conn.Server(), Source: "arm", Message: "(room freed under --max-nodes)"})
		w.schedule(context.Background(), n, readKids)
		w.setWatched()
	case r.exists && !n.exists:
		n.createNote, n.changeNoted, n.kidsNoted = 0, false, false
		n.exists, n.stat = true, r.stat
		w.emit(Event{Type: EventCreated, Path: n.path, Stat: r.stat, Version: r.stat.Version, Cversion: r.stat.Cversion,
			Data: r.data, Source: src})
		if r.stat.Version > 0 {
			w.emit(Event{Type: EventGap, Path: n.path, Change: EventDataChanged, OldVersion: 0, Version: r.stat.Version,
				Missed: int64(r.stat.Version), Stat: r.stat, Source: src})
		}
		n.kids = map[string]struct{}{}
		w.schedule(context.Background(), n, readKids)
		w.setWatched()
	case r.stat.Czxid != n.stat.Czxid:
		// deleted and created again between two reads
		if r.stat.Version > 0 {
			// a data notification may be for the new node, whose sets the version counts
			n.changeNoted = false
		}
		w.nodeDeleted(n, src)
		if w.nodes[n.path] == nil {
			w.nodes[n.path] = n
		}
		n.exists, n.stat, n.kids = true, r.stat, map[string]struct{}{}
		w.emit(Event{Type: EventCreated, Path: n.path, Stat: r.stat, Version: r.stat.Version, Cversion: r.stat.Cversion,
			Data: r.data, Source: src})
		if r.stat.Version > 0 {
			w.emit(Event{Type: EventGap, Path: n.path, Change: EventDataChanged, Version: r.stat.Version,
				Missed: int64(r.stat.Version), Stat: r.stat, Source: src})
		}
		w.schedule(context.Background(), n, readKids)
	case r.stat.Version > n.stat.Version:
		old := n.stat.Version
		n.stat = mergeDataStat(n.stat, r.stat)
		w.emit(Event{Type: EventDataChanged, Path: n.path, Stat: n.stat, OldVersion: old, Version: r.stat.Version,
			Data: r.data, Source: src})
		if d := int64(r.stat.Version) - int64(old); d > 1 {
			w.emit(Event{Type: EventGap, Path: n.path, Change: EventDataChanged, OldVersion: old, Version: r.stat.Version,
				Missed: d - 1, Stat: n.stat, Source: src})
		}
	}
}

// mergeDataStat takes the data fields of a newer data read and keeps the child fields
// (Pzxid, Cversion, NumChildren) from the last children read: only a children read,
// which also lists the names, may move them, or the cversion it compares against
// would already include the changes it has to account for.
func mergeDataStat(known, read Stat) Stat {
	read.Pzxid, read.Cversion, read.NumChildren = known.Pzxid, known.Cversion, known.NumChildren
	return read
}

// applyKids compares a children read with the known children and emits what changed.
func (w *Watcher) applyKids(n *wnode, r readReply) {
	if !n.exists || r.stat.Czxid != n.stat.Czxid || r.stat.Pzxid < n.stat.Pzxid {
		return // stale, or the data read will report the node's re-creation first
	}
	if r.stat.Cversion > n.kidsBase {
		n.kidsNoted = false // a read after the change shows it
	}
	now := make(map[string]struct{}, len(r.kids))
	var added, removed []string
	for _, k := range r.kids {
		now[k] = struct{}{}
		if _, ok := n.kids[k]; !ok {
			added = append(added, k)
		}
	}
	for k := range n.kids {
		if _, ok := now[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	oldCv := n.stat.Cversion
	n.kids = now
	n.stat.Pzxid, n.stat.Cversion, n.stat.NumChildren = r.stat.Pzxid, r.stat.Cversion, r.stat.NumChildren
	src := w.source(r)
	if len(added)+len(removed) > 0 {
		w.emit(Event{Type: EventChildrenChanged, Path: n.path, Stat: n.stat, OldCversion: oldCv, Cversion: r.stat.Cversion,
			Added: added, Removed: removed, Source: src})
	}
	if d := int64(r.stat.Cversion) - int64(oldCv) - int64(len(added)+len(removed)); d > 0 {
		w.emit(Event{Type: EventGap, Path: n.path, Change: EventChildrenChanged, OldCversion: oldCv, Cversion: r.stat.Cversion,
			Missed: d, Stat: n.stat, Source: src})
	}
	for _, k := range removed {
		delete(w.refused, Join(n.path, k))
		if c := w.nodes[Join(n.path, k)]; c != nil && !c.isRoot && c.exists {
			w.nodeDeleted(c, src)
		}
	}
	if !w.descend(n) {
		return
	}
	// Every listed child not watched yet, not only the added names: a child deleted
	// and created again under the same name is no name change, but its deletion
	// forgot it, and the new node must be watched (and reported created).
	for _, k := range r.kids {
		cp := Join(n.path, k)
		if _, dup := w.nodes[cp]; dup {
			continue
		}
		if len(w.nodes) >= w.opt.MaxNodes {
			if !w.refused[cp] { // reported once
				w.refused[cp] = true
				w.emit(Event{Type: EventLimit, Path: cp, Source: src,
					Message: fmt.Sprintf("not watched: --max-nodes %d reached", w.opt.MaxNodes)})
			}
			continue
		}
		delete(w.refused, cp)
		child := &wnode{path: cp, root: n.root, depth: n.depth + 1}
		w.nodes[cp] = child
		w.schedule(context.Background(), child, readData)
	}
}

// adoptRefused watches children refused at --max-nodes once deletions made room,
// oldest path order first; a refused name its parent no longer lists is forgotten.
func (w *Watcher) adoptRefused(ctx context.Context) {
	if len(w.refused) == 0 || len(w.nodes) >= w.opt.MaxNodes {
		return
	}
	paths := make([]string, 0, len(w.refused))
	for p := range w.refused {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if len(w.nodes) >= w.opt.MaxNodes {
			return
		}
		delete(w.refused, p)
		i := strings.LastIndexByte(p, '/')
		dir, name := p[:i], p[i+1:]
		if dir == "" {
			dir = "/"
		}
		parent := w.nodes[dir]
		if parent == nil || !parent.exists || !w.descend(parent) {
			continue
		}
		if _, listed := parent.kids[name]; !listed {
			continue
		}
		if _, dup := w.nodes[p]; dup {
			continue
		}
		child := &wnode{path: p, root: parent.root, depth: parent.depth + 1, adopted: true}
		w.nodes[p] = child
		w.schedule(ctx, child, readData)
	}
}

// nodeDeleted reports n and its watched descendants deleted (deepest first) and
// forgets them; a root stays known as absent, with an exists watch.
func (w *Watcher) nodeDeleted(n *wnode, src string) {
	for _, k := range sortedKids(n) {
		if c := w.nodes[Join(n.path, k)]; c != nil && !c.isRoot && c.exists {
			w.nodeDeleted(c, src)
		}
	}
	if n.kidsNoted && len(n.kids) == 0 {
		// a child change on a node with no known child, and the node is gone: a
		// child was created and deleted (removing children it was known to have
		// is implied by its deletion)
		w.emit(Event{Type: EventGap, Path: n.path, Change: EventChildrenChanged, OldCversion: n.stat.Cversion, Cversion: n.stat.Cversion,
			Missed: 2, Stat: n.stat, Source: src,
			Message: "at least 2 child changes (a child created and deleted) before the node was deleted: it was gone before its children could be re-read, so the exact count is unknowable"})
	}
	n.kidsNoted = false
	if n.changeNoted {
		n.changeNoted = false
		w.emit(Event{Type: EventGap, Path: n.path, Change: EventDataChanged, OldVersion: n.stat.Version, Version: n.stat.Version,
			Missed: 1, Stat: n.stat, Source: src,
			Message: "at least 1 data change before the node was deleted: it was gone before it could be re-read, so the exact count is unknowable"})
	}
	w.emit(Event{Type: EventDeleted, Path: n.path, OldVersion: n.stat.Version, OldCversion: n.stat.Cversion,
		Stat: Stat{Czxid: n.stat.Czxid, Mzxid: n.stat.Mzxid, Pzxid: n.stat.Pzxid}, Source: src})
	n.exists, n.kids = false, nil
	if !n.isRoot {
		delete(w.nodes, n.path)
	} else {
		n.stat = Stat{}
		if !n.dataArmed {
			w.schedule(context.Background(), n, readData)
		}
	}
	w.setWatched()
}

func sortedKids(n *wnode) []string {
	out := make([]string, 0, len(n.kids))
	for k := range n.kids {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// retryDirty re-issues reads that failed while the connection was down.
func (w *Watcher) retryDirty(ctx context.Context) {
	for _, n := range w.nodes {
		if n.dataDirty && !n.dataInflight {
			w.schedule(ctx, n, readData)
		}
		if n.kidsDirty && !n.kidsInflight && n.exists {
			w.schedule(ctx, n, readKids)
		}
	}
}

// reconnectSettle is how long the re-read after a reconnect within the session waits:
// until the requests may go out (ReconnectSettle), after go-zookeeper's re-set of the
// watches, which the server fires for the nodes changed meanwhile; the verifying
// re-read only needs to come after them.
const reconnectSettle = ReconnectSettle

// verifyAll runs after a reconnect within the same session: go-zookeeper has re-set
// the watches (the server fires those whose nodes changed since the last zxid seen);
// every node is also re-read, so any difference is reported (source "verify"), and
// reads that failed during the outage are redone with their watches.
func (w *Watcher) verifyAll(ctx context.Context) {
	for _, n := range w.nodes {
		if !n.dataArmed || n.dataDirty {
			w.schedule(ctx, n, readData)
		} else {
			w.queue = append(w.queue, readReply{node: n, path: n.path, kind: verifyData})
		}
		if !n.exists {
			continue
		}
		if !n.kidsArmed || n.kidsDirty {
			w.schedule(ctx, n, readKids)
		} else {
			w.queue = append(w.queue, readReply{node: n, path: n.path, kind: verifyKids})
		}
	}
	w.pump(ctx)
}

// resync runs on a new session after expiry: re-read and re-arm the whole watched
// set, then report the difference from before as resync events.
func (w *Watcher) resync(ctx context.Context) {
	before := w.nodes
	after, err := w.snapshot(ctx)
	if err != nil {
		// The new session is not usable yet (or the tree grew past the cap): the retry
		// tick tries again every second.
		w.needResync = true
		if msg := err.Error(); msg != w.resyncErr && ctx.Err() == nil {
			w.resyncErr = msg
			w.emit(Event{Type: EventLimit, SessionID: w.c.SessionID(), Message: "resync failed, retrying every second: " + msg})
		}
		return
	}
	w.needResync, w.resyncErr = false, ""
	w.nodes = after
	w.refused = map[string]bool{}
	w.queue = nil
	w.mu.Lock()
	w.summary.Resyncs++
	w.mu.Unlock()
	var paths []string
	seen := map[string]bool{}
	for p, n := range before {
		if n.exists {
			paths = append(paths, p)
			seen[p] = true
		}
	}
	for p, n := range after {
		if n.exists && !seen[p] {
			paths = append(paths, p)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return pathLess(paths[i], paths[j]) })
	changed := 0
	for _, p := range paths {
		b, a := before[p], after[p]
		bx, ax := b != nil && b.exists, a != nil && a.exists
		ev := Event{Type: EventResync, Path: p, Source: "resync"}
		switch {
		case bx && !ax:
			ev.Change, ev.OldVersion, ev.OldCversion, ev.Missed = EventDeleted, b.stat.Version, b.stat.Cversion, 1
		case !bx && ax:
			// a new node starts at version 0 and each set adds 1: the creation, then
			// Version sets
			ev.Change, ev.Version, ev.Cversion, ev.Stat = EventCreated, a.stat.Version, a.stat.Cversion, a.stat
			ev.Missed = 1 + int64(a.stat.Version)
			if a.stat.Version > 0 {
				ev.Message = fmt.Sprintf("created, then %d data changes", a.stat.Version)
			}
		case a.stat.Czxid != b.stat.Czxid:
			ev.Change, ev.OldVersion, ev.Version, ev.Stat = EventCreated, b.stat.Version, a.stat.Version, a.stat
			ev.OldCversion, ev.Cversion = b.stat.Cversion, a.stat.Cversion
			ev.Missed = 2 + int64(a.stat.Version)
			ev.Message = fmt.Sprintf("deleted and created again, then %d data changes (changes to the old node before its deletion cannot be known)", a.stat.Version)
		default:
			dv := int64(a.stat.Version) - int64(b.stat.Version)
			dc := int64(a.stat.Cversion) - int64(b.stat.Cversion)
			if dv == 0 && dc == 0 {
				continue
			}
			ev.Stat, ev.OldVersion, ev.Version, ev.OldCversion, ev.Cversion = a.stat, b.stat.Version, a.stat.Version, b.stat.Cversion, a.stat.Cversion
			if dv != 0 {
				ev.Change, ev.Missed = EventDataChanged, dv
				if dc != 0 {
					ev.Missed += dc
					ev.Message = "data and children changed"
				}
			} else {
				ev.Change, ev.Missed = EventChildrenChanged, dc
			}
			ev.Added, ev.Removed = diffKids(b.kids, a.kids)
		}
		changed++
		w.emit(ev)
	}
	w.setWatched()
	w.emit(Event{Type: EventArmed, Nodes: len(after), SessionID: w.sessionID, Server: w.c.conn.Server(), Source: "resync",
		Message: fmt.Sprintf("re-armed after session expiry; %d nodes changed while unwatched", changed)})
}

func diffKids(before, after map[string]struct{}) (added, removed []string) {
	for k := range after {
		if _, ok := before[k]; !ok {
			added = append(added, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}
