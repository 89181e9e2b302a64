package health

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
)

// State is a backend's condition as a dashboard shows it.
type State string

// States. Degraded means the backend answers but something about it is wrong: a
// ZooKeeper member down or out of quorum, a Kafka broker in the metadata that does not
// answer, a Redis replica cut off from its master, a read-only SQL server.
const (
	Connected   State = "connected"
	Degraded    State = "degraded"
	Unreachable State = "unreachable"
)

// Backend names (config's, so Endpoints.Unavailable keys them too), in the order
// Check reports them.
const (
	BackendRedis     = config.BackendRedis
	BackendZooKeeper = config.BackendZooKeeper
	BackendKafka     = config.BackendKafka
	BackendSQL       = config.BackendSQL
)

// Backends are every backend Check knows, in report order.
var Backends = []string{BackendRedis, BackendZooKeeper, BackendKafka, BackendSQL}

// Targets say what Check checks.
type Targets struct {
	Endpoints config.Endpoints
	// Backends to check (names from Backends); empty means Configured(Endpoints).
	Backends []string
	// Unavailable maps a backend to why it cannot be checked here (say, --sandbox has
	// no SQL; pass Endpoints.Unavailable): it is reported unreachable with that error,
	// without a connection.
	Unavailable map[string]error
}

// Configured picks the backends configured in some way (flag, env, context, sandbox);
// with none, the three that have a built-in default: Redis, ZooKeeper, Kafka.
func Configured(e config.Endpoints) []string {
	var out []string
	if e.RedisSource != config.SourceDefault {
		out = append(out, BackendRedis)
	}
	if e.ZKSource != config.SourceDefault {
		out = append(out, BackendZooKeeper)
	}
	if e.KafkaSource != config.SourceDefault {
		out = append(out, BackendKafka)
	}
	if e.SQLSource != config.SourceDefault {
		out = append(out, BackendSQL)
	}
	if len(out) == 0 {
		out = []string{BackendRedis, BackendZooKeeper, BackendKafka}
	}
	return slices.Clip(out)
}

// Check checks the chosen backends concurrently, each within the dialer's timeout,
// and returns their results in the order of Targets.Backends (Redis: one result per
// address). Every result has a State and a latency; none is missing when ctx ends
// early (those report the context's error).
func Check(ctx context.Context, d endpoint.Dialer, t Targets) []Result {
	which := t.Backends
	if len(which) == 0 {
		which = Configured(t.Endpoints)
	}
	groups := make([][]Result, len(which))
	var wg sync.WaitGroup
	for i, b := range which {
		if err := t.Unavailable[b]; err != nil {
			groups[i] = []Result{finish(Result{Backend: b, Endpoint: "-"}, time.Now(), err)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups[i] = checkOne(ctx, d, b, t.Endpoints)
		}()
	}
	wg.Wait()
	var out []Result
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func checkOne(ctx context.Context, d endpoint.Dialer, backend string, e config.Endpoints) []Result {
	switch backend {
	case BackendRedis:
		return Redis(ctx, d, e.Redis)
	case BackendZooKeeper:
		return []Result{ZooKeeper(ctx, d, e.ZooKeeper)}
	case BackendKafka:
		return []Result{Kafka(ctx, d, e.Kafka)}
	case BackendSQL:
		return []Result{SQL(ctx, d, e.SQL)}
	}
	return []Result{finish(Result{Backend: backend, Endpoint: "-"}, time.Now(), errUnknownBackend(backend))}
}
