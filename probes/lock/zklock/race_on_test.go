//go:build race

package zklock_test

// raceEnabled: go-zookeeper v1.0.4 has a data race of its own (Conn.lastZxid, read by
// sendSetWatches while the new connection's recvLoop writes it; go-zookeeper/zk PR #35,
// samuel/go-zookeeper#260) whenever a client with pending watches reconnects. Tests
// that force reconnections of waiting clients avoid it under -race.
const raceEnabled = true
