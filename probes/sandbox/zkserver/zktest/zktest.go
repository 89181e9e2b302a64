// Package zktest runs a test against both ZooKeepers dsctl is checked on: the embedded
// server (zkserver) and the real ensemble from scripts/services (DSCTL_TEST_ZK), so a
// suite proves the sandbox behaves like ZooKeeper for what it uses.
package zktest

import (
	"context"
	"testing"

	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/testenv"
)

// Target is one ZooKeeper to test against.
type Target struct {
	Name    string   // "embedded" or "ensemble"
	Servers []string // connect string, one host:port per server
	// Embedded is the in-process server (its hooks: ExpireSession, DisconnectSession,
	// Sessions), nil for the ensemble.
	Embedded *zkserver.Server
}

// Run runs fn as two subtests: "embedded", on a fresh embedded server started with
// opt and closed afterwards, and "ensemble", on DSCTL_TEST_ZK (skipped with a message
// when unset, failed under CI=true). Tests should use unique paths and delete them.
func Run(t *testing.T, opt zkserver.Options, fn func(t *testing.T, tg Target)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		srv, err := zkserver.Start(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		fn(t, Target{Name: "embedded", Servers: []string{srv.Addr()}, Embedded: srv})
	})
	t.Run("ensemble", func(t *testing.T) {
		fn(t, Target{Name: "ensemble", Servers: testenv.List(t, testenv.ZK)})
	})
}
