//go:build race

package lock_test

// raceEnabled: go-zookeeper v1.0.4 races on its own Conn.lastZxid when a client with
// pending watches reconnects (see probes/lock/zklock/race_on_test.go); ZooKeeper tests
// that force reconnections of waiting clients avoid it under -race.
const raceEnabled = true
