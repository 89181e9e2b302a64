package zkserver

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// txn is one write transaction: every write request takes a zxid whether it succeeds
// or not (ZooKeeper logs failed writes as error transactions). Changes apply to the
// tree at once and are undone on rollback; watch triggers wait for commit.
type txn struct {
	s     *Server
	zxid  int64
	now   int64
	undo  []func()
	fires []fire
}

type fire struct {
	typ  int32
	path string
}

// begin starts a transaction; the caller holds s.mu.
func (s *Server) begin() *txn {
	s.zxid++
	return &txn{s: s, zxid: s.zxid, now: time.Now().UnixMilli()}
}

func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo, t.fires = nil, nil
}

// commit fires the watches in the order the changes were made. For a deletion the
// node's data and child watchers are told once each (DataTree.deleteNode).
func (t *txn) commit() {
	for _, f := range t.fires {
		switch f.typ {
		case evNodeCreated, evNodeDataChanged:
			t.s.fireTable(true, f.path, f.typ, nil)
		case evNodeChildrenChanged:
			t.s.fireTable(false, f.path, f.typ, nil)
		case evNodeDeleted:
			told := t.s.fireTable(true, f.path, f.typ, nil)
			t.s.fireTable(false, f.path, f.typ, told)
		}
	}
	t.undo, t.fires = nil, nil
}

func sessionIDs(ss *session, c *conn) []authID {
	var ids []authID
	if c != nil && c.ip != "" {
		ids = append(ids, authID{"ip", c.ip})
	}
	if ss != nil {
		ids = append(ids, ss.auth...)
	}
	return ids
}

// createReq is CreateRequest (and CreateTTLRequest when ttl >= 0).
type createReq struct {
	path  string
	data  []byte
	acl   []ACL
	flags int32
	ttl   int64
}

// create is PrepRequestProcessor.pRequest2TxnCreate followed by DataTree.createNode,
// with its checks in ZooKeeper's order.
func (t *txn) create(ss *session, c *conn, rq createReq) (string, Stat, Code) {
	s := t.s
	if rq.flags < flagPersistent || rq.flags > flagPersistentSeqTTL {
		return "", Stat{}, CodeBadArguments
	}
	isTTL := rq.flags == flagPersistentTTL || rq.flags == flagPersistentSeqTTL
	if isTTL && s.opt.DisableExtendedTypes {
		return "", Stat{}, CodeUnimplemented
	}
	if isTTL && (rq.ttl <= 0 || rq.ttl > maxTTL) || !isTTL && rq.ttl >= 0 {
		return "", Stat{}, CodeBadArguments
	}
	slash := strings.LastIndexByte(rq.path, '/')
	if slash < 0 || strings.IndexByte(rq.path, 0) >= 0 {
		return "", Stat{}, CodeBadArguments
	}
	parentPath := rq.path[:slash]
	if parentPath == "" {
		parentPath = "/"
	}
	acl, code := fixupACL(rq.acl, sessionIDs(ss, c))
	if code != CodeOK {
		return "", Stat{}, code
	}
	parent := s.nodes[parentPath]
	if parent == nil {
		return "", Stat{}, CodeNoNode
	}
	if !allowed(parent.acl, PermCreate, sessionIDs(ss, c)) {
		return "", Stat{}, CodeNoAuth
	}
	path := rq.path
	if rq.flags == flagSequential || rq.flags == flagEphemeralSequential || rq.flags == flagPersistentSeqTTL {
		path += fmt.Sprintf("%010d", parent.stat.Cversion)
	}
	if validatePath(path) != nil {
		return "", Stat{}, CodeBadArguments
	}
	if s.nodes[path] != nil {
		return "", Stat{}, CodeNodeExists
	}
	if ephemeralKind(parent.stat.EphemeralOwner) == kindEphemeral {
		return "", Stat{}, CodeNoChildrenForEphemerals
	}
	var owner int64
	switch rq.flags {
	case flagEphemeral, flagEphemeralSequential:
		owner = ss.id
	case flagContainer:
		owner = containerEphemeralOwner
	case flagPersistentTTL, flagPersistentSeqTTL:
		owner = ttlEphemeralOwnerMask | rq.ttl
	}
	n := &znode{data: rq.data, acl: acl, children: map[string]struct{}{}, stat: Stat{
		Czxid: t.zxid, Mzxid: t.zxid, Pzxid: t.zxid, Ctime: t.now, Mtime: t.now, EphemeralOwner: owner,
	}}
	t.insert(path, n)
	return path, n.clientStat(), CodeOK
}

// insert adds a node under its (existing) parent: the parent's create count goes up
// by one and its pzxid becomes this zxid.
func (t *txn) insert(path string, n *znode) {
	s := t.s
	parentPath, name := parentOf(path)
	parent := s.nodes[parentPath]
	oldParent := parent.stat
	parent.children[name] = struct{}{}
	parent.stat.Cversion++
	parent.stat.Pzxid = t.zxid
	s.nodes[path] = n
	var owner *session
	if ephemeralKind(n.stat.EphemeralOwner) == kindEphemeral {
		owner = s.sessions[n.stat.EphemeralOwner]
		if owner != nil {
			owner.ephemerals[path] = struct{}{}
		}
	}
	t.undo = append(t.undo, func() {
		delete(parent.children, name)
		parent.stat = oldParent
		delete(s.nodes, path)
		if owner != nil {
			delete(owner.ephemerals, path)
		}
	})
	t.fires = append(t.fires, fire{evNodeCreated, path}, fire{evNodeChildrenChanged, parentPath})
}

// removeNode deletes a node that exists, without checks (session close, container
// reaping, and delete after its checks).
func (t *txn) removeNode(path string) {
	s := t.s
	n := s.nodes[path]
	if n == nil {
		return
	}
	parentPath, name := parentOf(path)
	parent := s.nodes[parentPath]
	oldParent := parent.stat
	delete(parent.children, name)
	if t.zxid > parent.stat.Pzxid {
		parent.stat.Pzxid = t.zxid
	}
	delete(s.nodes, path)
	var owner *session
	if ephemeralKind(n.stat.EphemeralOwner) == kindEphemeral {
		owner = s.sessions[n.stat.EphemeralOwner]
		if owner != nil {
			delete(owner.ephemerals, path)
		}
	}
	t.undo = append(t.undo, func() {
		parent.children[name] = struct{}{}
		parent.stat = oldParent
		s.nodes[path] = n
		if owner != nil {
			owner.ephemerals[path] = struct{}{}
		}
	})
	t.fires = append(t.fires, fire{evNodeDeleted, path}, fire{evNodeChildrenChanged, parentPath})
}

func versionOK(current, expected int32) bool { return expected == -1 || expected == current }

// delete is the delete branch of PrepRequestProcessor.pRequest2Txn.
func (t *txn) delete(ss *session, c *conn, path string, version int32) Code {
	s := t.s
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 || isSpecialPath(path) {
		return CodeBadArguments
	}
	parentPath := path[:slash]
	if parentPath == "" {
		parentPath = "/"
	}
	parent := s.nodes[parentPath]
	if parent == nil {
		return CodeNoNode
	}
	if !allowed(parent.acl, PermDelete, sessionIDs(ss, c)) {
		return CodeNoAuth
	}
	n := s.nodes[path]
	if n == nil {
		return CodeNoNode
	}
	if !versionOK(n.stat.Version, version) {
		return CodeBadVersion
	}
	if len(n.children) > 0 {
		return CodeNotEmpty
	}
	t.removeNode(path)
	return CodeOK
}

func (t *txn) setData(ss *session, c *conn, path string, data []byte, version int32) (Stat, Code) {
	s := t.s
	if validatePath(path) != nil {
		return Stat{}, CodeBadArguments
	}
	n := s.nodes[path]
	if n == nil {
		return Stat{}, CodeNoNode
	}
	if !allowed(n.acl, PermWrite, sessionIDs(ss, c)) {
		return Stat{}, CodeNoAuth
	}
	if !versionOK(n.stat.Version, version) {
		return Stat{}, CodeBadVersion
	}
	oldData, oldStat := n.data, n.stat
	n.data = data
	n.stat.Version++
	n.stat.Mzxid = t.zxid
	n.stat.Mtime = t.now
	t.undo = append(t.undo, func() { n.data, n.stat = oldData, oldStat })
	t.fires = append(t.fires, fire{evNodeDataChanged, path})
	return n.clientStat(), CodeOK
}

func (t *txn) check(ss *session, c *conn, path string, version int32) Code {
	if validatePath(path) != nil {
		return CodeBadArguments
	}
	n := t.s.nodes[path]
	if n == nil {
		return CodeNoNode
	}
	if !allowed(n.acl, PermRead, sessionIDs(ss, c)) {
		return CodeNoAuth
	}
	if !versionOK(n.stat.Version, version) {
		return CodeBadVersion
	}
	return CodeOK
}

func (t *txn) setACL(ss *session, c *conn, path string, acl []ACL, version int32) (Stat, Code) {
	if validatePath(path) != nil {
		return Stat{}, CodeBadArguments
	}
	fixed, code := fixupACL(acl, sessionIDs(ss, c))
	if code != CodeOK {
		return Stat{}, code
	}
	n := t.s.nodes[path]
	if n == nil {
		return Stat{}, CodeNoNode
	}
	if !allowed(n.acl, PermAdmin, sessionIDs(ss, c)) {
		return Stat{}, CodeNoAuth
	}
	if !versionOK(n.stat.Aversion, version) {
		return Stat{}, CodeBadVersion
	}
	oldACL, oldStat := n.acl, n.stat
	n.acl = fixed
	n.stat.Aversion++
	t.undo = append(t.undo, func() { n.acl, n.stat = oldACL, oldStat })
	return n.clientStat(), CodeOK
}

// ---- request dispatch ----

func readCreate(r *reader, op int32) createReq {
	rq := createReq{path: r.string(), data: r.buffer(), acl: r.acls(), flags: r.int(), ttl: -1}
	if op == opCreateTTL {
		rq.ttl = r.long()
	}
	return rq
}

func writeCreate(w *writer, op int32, path string, st Stat) {
	w.string(path)
	if op != opCreate {
		w.stat(st)
	}
}

// handle serves one request; false closes the connection (closeSession, or a request
// that does not decode, as ZooKeeper does).
func (s *Server) handle(c *conn, frame []byte) bool {
	start := time.Now()
	s.received.Add(1)
	c.received.Add(1)
	r := &reader{b: frame}
	xid := r.int()
	op := r.int()
	if r.err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := c.sess
	if ss == nil || s.closed {
		return false // expired or replaced meanwhile
	}
	ss.lastSeen = time.Now()
	ok := s.dispatch(c, ss, r, xid, op)
	if op != opPing {
		s.lat.add(time.Since(start))
	}
	return ok
}

func (s *Server) dispatch(c *conn, ss *session, r *reader, xid, op int32) bool {
	read := func(code Code, body func(*writer)) bool {
		if r.err != nil {
			return false
		}
		c.reply(xid, s.zxid, code, body)
		return true
	}
	// write applies one write request in a transaction of its own (committed when its
	// code is OK) and replies with that transaction's zxid.
	write := func(apply func(t *txn) (Code, func(*writer))) bool {
		if r.err != nil {
			return false
		}
		t := s.begin()
		code, body := apply(t)
		s.finish(t, code)
		c.reply(xid, t.zxid, code, body)
		return true
	}
	switch op {
	case opPing:
		c.reply(xidPing, s.zxid, CodeOK, nil)
		return true

	case opAuth:
		_ = r.int()
		scheme := r.string()
		auth := r.buffer()
		if r.err != nil {
			return false
		}
		// The reply echoes the request's xid (the Java client uses -4, go-zookeeper
		// a normal one).
		if scheme != "digest" || !strings.Contains(string(auth), ":") {
			c.reply(xid, 0, CodeAuthFailed, nil)
			return false
		}
		id := authID{"digest", digestID(string(auth))}
		if !containsID(ss.auth, id) {
			ss.auth = append(ss.auth, id)
		}
		c.reply(xid, 0, CodeOK, nil)
		return true

	case opSetWatches, opSetWatches2:
		rel := r.long()
		data, exist, child := r.strings(), r.strings(), r.strings()
		var persistent, recursive []string
		if op == opSetWatches2 {
			persistent, recursive = r.strings(), r.strings()
		}
		if r.err != nil {
			return false
		}
		s.setWatches(c, rel, data, exist, child)
		for _, p := range persistent {
			s.setWatch(true, c, p, modePersistent)
			s.setWatch(false, c, p, modePersistent)
		}
		for _, p := range recursive {
			s.setWatch(true, c, p, modeRecursive)
		}
		c.reply(xid, s.zxid, CodeOK, nil)
		return true

	case opCloseSession:
		zxid := s.killSessionReply(c, ss)
		c.reply(xid, zxid, CodeOK, nil)
		return false

	case opCreate, opCreate2, opCreateContainer, opCreateTTL:
		rq := readCreate(r, op)
		return write(func(t *txn) (Code, func(*writer)) {
			path, st, code := t.create(ss, c, rq)
			return code, func(w *writer) { writeCreate(w, op, path, st) }
		})

	case opDelete:
		path, version := r.string(), r.int()
		return write(func(t *txn) (Code, func(*writer)) { return t.delete(ss, c, path, version), nil })

	case opSetData:
		path, data, version := r.string(), r.buffer(), r.int()
		return write(func(t *txn) (Code, func(*writer)) {
			st, code := t.setData(ss, c, path, data, version)
			return code, func(w *writer) { w.stat(st) }
		})

	case opSetACL:
		path, acl, version := r.string(), r.acls(), r.int()
		return write(func(t *txn) (Code, func(*writer)) {
			st, code := t.setACL(ss, c, path, acl, version)
			return code, func(w *writer) { w.stat(st) }
		})

	case opMulti:
		return s.multi(c, ss, r, xid)

	case opExists:
		path, watch := r.string(), r.bool()
		if r.err != nil {
			return false
		}
		if strings.IndexByte(path, 0) >= 0 {
			return read(CodeBadArguments, nil)
		}
		if watch {
			s.addWatch(true, c, path)
		}
		n := s.nodes[path]
		if n == nil {
			return read(CodeNoNode, nil)
		}
		return read(CodeOK, func(w *writer) { w.stat(n.clientStat()) })

	case opGetData:
		path, watch := r.string(), r.bool()
		n, code := s.readable(c, ss, path)
		if code == CodeOK && watch {
			s.addWatch(true, c, path)
		}
		return read(code, func(w *writer) {
			w.buffer(n.data, n.data == nil)
			w.stat(n.clientStat())
		})

	case opGetChildren, opGetChildren2:
		path, watch := r.string(), r.bool()
		n, code := s.readable(c, ss, path)
		if code == CodeOK && watch {
			s.addWatch(false, c, path)
		}
		return read(code, func(w *writer) {
			w.strings(sortedChildren(n))
			if op == opGetChildren2 {
				w.stat(n.clientStat())
			}
		})

	case opGetACL:
		path := r.string()
		n := s.nodes[path]
		code := CodeOK
		if n == nil {
			code = CodeNoNode
		} else if !allowed(n.acl, PermRead|PermAdmin, sessionIDs(ss, c)) {
			code = CodeNoAuth
		}
		return read(code, func(w *writer) {
			w.acls(redactDigests(n.acl, allowed(n.acl, PermAdmin, sessionIDs(ss, c))))
			w.stat(n.clientStat())
		})

	case opSync:
		path := r.string()
		return read(CodeOK, func(w *writer) { w.string(path) })

	case opGetAllChildren:
		path := r.string()
		n, code := s.readable(c, ss, path)
		return read(code, func(w *writer) { w.int(int32(s.countDescendants(path, n))) })

	case opGetEphemerals:
		prefix := r.string()
		var list []string
		for p := range ss.ephemerals {
			if strings.HasPrefix(p, prefix) {
				list = append(list, p)
			}
		}
		sort.Strings(list)
		return read(CodeOK, func(w *writer) { w.strings(list) })

	case opWhoAmI:
		ids := sessionIDs(ss, c)
		return read(CodeOK, func(w *writer) {
			w.int(int32(len(ids)))
			for _, id := range ids {
				user := id.ID
				if id.Scheme == "digest" {
					user, _, _ = strings.Cut(id.ID, ":")
				}
				w.string(id.Scheme)
				w.string(user)
			}
		})

	case opCheckWatches, opRemoveWatches:
		// WatcherType: 1 children, 2 data, 3 any.
		path, kind := r.string(), r.int()
		if r.err != nil {
			return false
		}
		hasChild := (kind == 1 || kind == 3) && s.childW.has(c, path)
		hasData := (kind == 2 || kind == 3) && s.dataW.has(c, path)
		if !hasChild && !hasData {
			return read(CodeNoWatcher, nil)
		}
		if op == opRemoveWatches {
			if hasChild {
				s.removeWatch(false, c, path)
			}
			if hasData {
				s.removeWatch(true, c, path)
			}
		}
		return read(CodeOK, nil)

	case opAddWatch:
		// AddWatchMode: 0 PERSISTENT (data and children of the path), 1
		// PERSISTENT_RECURSIVE (data of the path and every node below it).
		path, mode := r.string(), r.int()
		if r.err != nil {
			return false
		}
		switch mode {
		case 0:
			s.setWatch(true, c, path, modePersistent)
			s.setWatch(false, c, path, modePersistent)
		case 1:
			s.setWatch(true, c, path, modeRecursive)
		default: // WatcherMode.fromZooKeeperMode refuses it
			return read(CodeMarshallingError, nil)
		}
		return read(CodeOK, func(w *writer) { w.int(0) }) // an ErrorResponse(0), as ZooKeeper sends

	case opMultiRead:
		return s.multiRead(c, ss, r, xid)
	}
	// reconfig, SASL: not served.
	return read(CodeUnimplemented, nil)
}

// redactDigests hides the password hashes of digest entries from a reader without
// ADMIN permission, as ZooKeeper 3.8 does ("user:x").
func redactDigests(acl []ACL, admin bool) []ACL {
	if admin {
		return acl
	}
	out := make([]ACL, len(acl))
	for i, a := range acl {
		if a.Scheme == "digest" {
			user, _, _ := strings.Cut(a.ID, ":")
			a.ID = user + ":x"
		}
		out[i] = a
	}
	return out
}

func containsID(ids []authID, id authID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// finish commits a successful write and undoes a failed one.
func (s *Server) finish(t *txn, code Code) {
	if code == CodeOK {
		t.commit()
	} else {
		t.rollback()
	}
}

// readable is the lookup and READ check of getData and getChildren.
func (s *Server) readable(c *conn, ss *session, path string) (*znode, Code) {
	n := s.nodes[path]
	if n == nil {
		return nil, CodeNoNode
	}
	if !allowed(n.acl, PermRead, sessionIDs(ss, c)) {
		return nil, CodeNoAuth
	}
	return n, CodeOK
}

func sortedChildren(n *znode) []string {
	out := make([]string, 0, len(n.children))
	for k := range n.children {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Server) countDescendants(path string, n *znode) int {
	total := 0
	for name := range n.children {
		child := path + "/" + name
		if path == "/" {
			child = "/" + name
		}
		total++
		if cn := s.nodes[child]; cn != nil {
			total += s.countDescendants(child, cn)
		}
	}
	return total
}

// killSessionReply ends the session of a closeSession request; the caller replies.
func (s *Server) killSessionReply(c *conn, ss *session) int64 {
	ss.conn = nil // keep c open so the reply goes out
	s.dropWatches(c)
	c.sess = nil
	return s.killSession(ss)
}

// setWatches is DataTree.setWatches: re-arms a reconnecting client's watches, firing
// at once those whose condition changed after relativeZxid (the last zxid it saw).
func (s *Server) setWatches(c *conn, rel int64, data, exist, child []string) {
	for _, p := range data {
		switch n := s.nodes[p]; {
		case n == nil:
			c.event(evNodeDeleted, p)
		case n.stat.Mzxid > rel:
			c.event(evNodeDataChanged, p)
		default:
			s.addWatch(true, c, p)
		}
	}
	for _, p := range exist {
		if s.nodes[p] != nil {
			c.event(evNodeCreated, p)
		} else {
			s.addWatch(true, c, p)
		}
	}
	for _, p := range child {
		switch n := s.nodes[p]; {
		case n == nil:
			c.event(evNodeDeleted, p)
		case n.stat.Pzxid > rel:
			c.event(evNodeChildrenChanged, p)
		default:
			s.addWatch(false, c, p)
		}
	}
}

// multiOp is one decoded operation of a multi request.
type multiOp struct {
	op      int32
	create  createReq
	path    string
	data    []byte
	version int32
}

// multi applies all operations or none. On failure every result is an error: 0 for
// the operations before the failing one, its code for it, RuntimeInconsistency for
// the rest; the reply header itself carries no error (FinalRequestProcessor).
func (s *Server) multi(c *conn, ss *session, r *reader, xid int32) bool {
	var ops []multiOp
	for {
		typ, done, _ := r.int(), r.bool(), r.int()
		if r.err != nil {
			return false
		}
		if done {
			break
		}
		m := multiOp{op: typ}
		switch typ {
		case opCreate, opCreate2, opCreateContainer, opCreateTTL:
			m.create = readCreate(r, typ)
		case opDelete, opCheck:
			m.path, m.version = r.string(), r.int()
		case opSetData:
			m.path, m.data, m.version = r.string(), r.buffer(), r.int()
		default:
			return false // "Invalid type of op": ZooKeeper closes the connection
		}
		ops = append(ops, m)
	}
	if r.err != nil {
		return false
	}
	t := s.begin()
	type result struct {
		code Code
		path string
		stat Stat
	}
	results := make([]result, len(ops))
	failed := -1
	for i, m := range ops {
		var res result
		switch m.op {
		case opCreate, opCreate2, opCreateContainer, opCreateTTL:
			res.path, res.stat, res.code = t.create(ss, c, m.create)
		case opDelete:
			res.code = t.delete(ss, c, m.path, m.version)
		case opSetData:
			res.stat, res.code = t.setData(ss, c, m.path, m.data, m.version)
		case opCheck:
			res.code = t.check(ss, c, m.path, m.version)
		}
		results[i] = res
		if res.code != CodeOK {
			failed = i
			break
		}
	}
	if failed >= 0 {
		t.rollback()
	} else {
		t.commit()
	}
	c.reply(xid, t.zxid, CodeOK, func(w *writer) {
		for i, m := range ops {
			if failed >= 0 {
				code := CodeOK
				switch {
				case i == failed:
					code = results[i].code
				case i > failed:
					code = CodeRuntimeInconsistency
				}
				w.int(opError)
				w.bool(false)
				w.int(int32(code))
				w.int(int32(code))
				continue
			}
			w.int(m.op)
			w.bool(false)
			w.int(0)
			switch m.op {
			case opCreate:
				w.string(results[i].path)
			case opCreate2, opCreateContainer, opCreateTTL:
				w.string(results[i].path)
				w.stat(results[i].stat)
			case opSetData:
				w.stat(results[i].stat)
			}
		}
		w.int(-1)
		w.bool(true)
		w.int(-1)
	})
	return true
}

// multiRead runs getData and getChildren operations in one request; unlike multi it
// is not a transaction and a failing read does not fail the others.
func (s *Server) multiRead(c *conn, ss *session, r *reader, xid int32) bool {
	type readOp struct {
		op   int32
		path string
	}
	var ops []readOp
	for {
		typ, done, _ := r.int(), r.bool(), r.int()
		if r.err != nil {
			return false
		}
		if done {
			break
		}
		if typ != opGetData && typ != opGetChildren {
			return false
		}
		path, _ := r.string(), r.bool()
		ops = append(ops, readOp{typ, path})
	}
	if r.err != nil {
		return false
	}
	c.reply(xid, s.zxid, CodeOK, func(w *writer) {
		for _, o := range ops {
			n, code := s.readable(c, ss, o.path)
			if code != CodeOK {
				w.int(opError)
				w.bool(false)
				w.int(int32(code))
				w.int(int32(code))
				continue
			}
			w.int(o.op)
			w.bool(false)
			w.int(0)
			if o.op == opGetData {
				w.buffer(n.data, n.data == nil)
				w.stat(n.clientStat())
			} else {
				w.strings(sortedChildren(n))
			}
		}
		w.int(-1)
		w.bool(true)
		w.int(-1)
	})
	return true
}
