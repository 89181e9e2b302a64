package tui

import (
	"context"
	"slices"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
)

// LockKinds are the lock backends the dashboard lists: Redis and ZooKeeper when the
// dashboard shows them (configured, the sandbox's, or the defaults), and the SQL
// database when one is configured.
func LockKinds(e config.Endpoints, shown []string) []backends.Kind {
	var out []backends.Kind
	if slices.Contains(shown, "redis") {
		out = append(out, backends.Redis)
	}
	if slices.Contains(shown, "zookeeper") {
		out = append(out, backends.ZooKeeper)
	}
	if slices.Contains(shown, "sql") {
		for _, k := range backends.Configured(e) {
			if k == backends.MySQL || k == backends.Postgres {
				out = append(out, k)
			}
		}
	}
	return out
}

// OpenLocker opens the Locker of one backend: the one place the dashboard makes
// lockers (backends.Open, as every lock command).
func OpenLocker(ctx context.Context, d endpoint.Dialer, e config.Endpoints, kind backends.Kind) (lock.Locker, error) {
	return backends.Open(ctx, d, e, kind, backends.Options{})
}
