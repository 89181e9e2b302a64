package zkserver

// Watches, as ZooKeeper's WatchManager keeps them: per path, the connections watching
// it and how. Watches belong to a connection (a ServerCnxn is the Watcher), so they
// go when it closes and a reconnecting client re-sends them with setWatches.

type watchMode uint8

const (
	modeStandard   watchMode = iota // one-shot: getData, exists, getChildren
	modePersistent                  // addWatch PERSISTENT: stays after firing
	modeRecursive                   // addWatch PERSISTENT_RECURSIVE: the path and below
)

type watchTable struct {
	byPath map[string]map[*conn]watchMode
	// recursive counts recursive entries: triggers walk up the parents only when some
	// exist.
	recursive int
}

func newWatchTable() *watchTable { return &watchTable{byPath: map[string]map[*conn]watchMode{}} }

// add sets c's watch on path; a later add replaces the mode (WatcherModeManager).
func (wt *watchTable) add(c *conn, path string, mode watchMode) {
	set := wt.byPath[path]
	if set == nil {
		set = map[*conn]watchMode{}
		wt.byPath[path] = set
	}
	if old, ok := set[c]; ok && old == modeRecursive {
		wt.recursive--
	}
	set[c] = mode
	if mode == modeRecursive {
		wt.recursive++
	}
}

func (wt *watchTable) remove(c *conn, path string) bool {
	set := wt.byPath[path]
	mode, ok := set[c]
	if !ok {
		return false
	}
	if mode == modeRecursive {
		wt.recursive--
	}
	delete(set, c)
	if len(set) == 0 {
		delete(wt.byPath, path)
	}
	return true
}

func (wt *watchTable) has(c *conn, path string) bool {
	_, ok := wt.byPath[path][c]
	return ok
}

// trigger is WatchManager.triggerWatch: the watchers of path (one-shot ones are
// removed), plus recursive watchers of its ancestors for anything but a children
// change. It returns every connection that matched, told or suppressed.
func (wt *watchTable) trigger(path string, typ int32) map[*conn]bool {
	matched := map[*conn]bool{}
	for p, atParent := path, false; ; p, atParent = parentPath(p), true {
		for c, mode := range wt.byPath[p] {
			switch {
			case mode == modeRecursive:
				if typ != evNodeChildrenChanged {
					matched[c] = true
				}
			case !atParent:
				matched[c] = true
				if mode == modeStandard {
					wt.remove(c, p)
				}
			}
		}
		if p == "/" || wt.recursive == 0 {
			break
		}
	}
	return matched
}

func parentPath(p string) string {
	parent, _ := parentOf(p)
	return parent
}

func (s *Server) table(data bool) *watchTable {
	if data {
		return s.dataW
	}
	return s.childW
}

func (c *conn) paths(data bool) map[string]struct{} {
	if data {
		return c.dataW
	}
	return c.childW
}

func (s *Server) addWatch(data bool, c *conn, path string) {
	s.setWatch(data, c, path, modeStandard)
}

func (s *Server) setWatch(data bool, c *conn, path string, mode watchMode) {
	s.table(data).add(c, path, mode)
	c.paths(data)[path] = struct{}{}
}

func (s *Server) removeWatch(data bool, c *conn, path string) bool {
	delete(c.paths(data), path)
	return s.table(data).remove(c, path)
}

func (s *Server) dropWatches(c *conn) {
	for _, data := range []bool{true, false} {
		for p := range c.paths(data) {
			s.table(data).remove(c, p)
		}
	}
	c.dataW = map[string]struct{}{}
	c.childW = map[string]struct{}{}
}

// fireTable fires path's watches in one table and tells each matching connection
// once, except those in skip (already told by the other table). It returns the
// connections that matched.
func (s *Server) fireTable(data bool, path string, typ int32, skip map[*conn]bool) map[*conn]bool {
	matched := s.table(data).trigger(path, typ)
	for c := range matched {
		if !s.table(data).has(c, path) {
			delete(c.paths(data), path) // a one-shot watch that just fired
		}
		if !skip[c] {
			c.event(typ, path)
		}
	}
	return matched
}

// watchCounts are wchs's numbers: connections watching, paths watched, watches.
func (s *Server) watchCountsLocked() (conns, paths, total int) {
	watching := map[*conn]bool{}
	all := map[string]bool{}
	for _, wt := range []*watchTable{s.dataW, s.childW} {
		for p, set := range wt.byPath {
			all[p] = true
			total += len(set)
			for c := range set {
				watching[c] = true
			}
		}
	}
	return len(watching), len(all), total
}
