// Package health checks that each configured backend answers, and says what it is:
// Redis PING and version, ZooKeeper session and each server's mode, Kafka brokers and
// controller, SQL SELECT and server version.
package health

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// Result is the outcome of checking one endpoint.
type Result struct {
	Backend  string `json:"backend"`
	Endpoint string `json:"endpoint"`
	// OK means the backend answered (State connected or degraded).
	OK    bool  `json:"ok"`
	State State `json:"state"`
	// Latency is how long the check took, connection included.
	Latency   time.Duration `json:"-"`
	LatencyMs float64       `json:"latency_ms"`
	// Version is the server's version where it says (Redis, ZooKeeper, SQL).
	Version string `json:"version,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Warning says why the state is degraded.
	Warning string `json:"warning,omitempty"`
	Error   string `json:"error,omitempty"`
	// Err is the typed error behind Error, for the exit code.
	Err error `json:"-"`
}

func finish(r Result, start time.Time, err error) Result {
	r.Latency = time.Since(start)
	r.LatencyMs = float64(r.Latency.Microseconds()) / 1000
	switch {
	case err != nil:
		r.OK, r.State, r.Err, r.Error = false, Unreachable, err, err.Error()
	case r.Warning != "":
		r.OK, r.State = true, Degraded
	default:
		r.OK, r.State = true, Connected
	}
	return r
}

func errUnknownBackend(b string) error {
	return errs.Usage("unknown backend %q", b).WithHint("choose from %s", strings.Join(Backends, ", "))
}

// Redis PINGs every address (each is an independent server) concurrently and reads
// its version and replication role: a replica whose link to its master is down, or a
// server still loading its data set, is degraded.
func Redis(ctx context.Context, d endpoint.Dialer, ep endpoint.Redis) []Result {
	targets, err := d.RedisTargets(ep)
	if err != nil {
		return []Result{finish(Result{Backend: "redis", Endpoint: strings.Join(ep.Addrs, ",")}, time.Now(), err)}
	}
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := Result{Backend: "redis", Endpoint: t.Addr}
			c := redis.NewClient(t.Options)
			err := d.PingRedis(ctx, t.Addr, c)
			if err == nil {
				r.Version, r.Warning = redisInfo(ctx, c, d.Limit())
				r.Detail = "PONG"
				if r.Version != "" {
					r.Detail += ", redis " + r.Version
				}
			}
			c.Close()
			out[i] = finish(r, start, err)
		}()
	}
	wg.Wait()
	return out
}

// redisInfo reads the version and what makes a server degraded from INFO (a server
// that refuses INFO, as some proxies do, is taken as it answered PING).
func redisInfo(ctx context.Context, c *redis.Client, timeout time.Duration) (version, warning string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fields := map[string]string{}
	for _, section := range []string{"server", "replication", "persistence"} {
		info, err := c.Info(ctx, section).Result()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(info, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[k] = v
			}
		}
	}
	switch {
	case fields["loading"] == "1":
		warning = "loading its data set: answers only PING and INFO"
	case fields["role"] == "slave" && fields["master_link_status"] != "" && fields["master_link_status"] != "up":
		warning = fmt.Sprintf("replica of %s:%s with the link %s", fields["master_host"], fields["master_port"], fields["master_link_status"])
	}
	return fields["redis_version"], warning
}

// ZooKeeper opens a session and, where the srvr four-letter word is allowed, reports
// each server's mode (leader, follower, standalone) and the version. A member that is
// down, out of quorum or not ZooKeeper makes the ensemble degraded. An address that is
// not ZooKeeper (a Redis port, say) is diagnosed at once as a usage error, as by
// dsctl zk, instead of being retried until the timeout.
func ZooKeeper(ctx context.Context, d endpoint.Dialer, ep endpoint.ZooKeeper) Result {
	start := time.Now()
	r := Result{Backend: "zookeeper", Endpoint: strings.Join(ep.Servers, ",")}
	c, err := zkprobe.Connect(ctx, d, zkprobe.Options{Endpoint: ep})
	if err != nil {
		return finish(r, start, err)
	}
	defer c.Close()
	r.Detail = "session 0x" + fmt.Sprintf("%x", c.SessionID())
	stats := make([]serverStat, len(ep.Servers))
	var wg sync.WaitGroup
	for i, srv := range ep.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i] = statServer(ctx, srv, d.Limit())
		}()
	}
	wg.Wait()
	var modes, bad []string
	for i, srv := range ep.Servers {
		st := stats[i]
		modes = append(modes, srv+"="+st.mode)
		switch st.mode {
		case ModeDown, ModeNotServing, ModeNotZooKeeper, ModeUnknown:
			bad = append(bad, srv+" "+st.mode)
		}
		if r.Version == "" {
			r.Version = st.version
		}
	}
	r.Detail += ", " + strings.Join(modes, " ")
	if len(bad) > 0 {
		r.Warning = fmt.Sprintf("%d of %d members not serving: %s", len(bad), len(ep.Servers), strings.Join(bad, ", "))
	}
	return finish(r, start, nil)
}

// Modes ServerMode reports besides the server's own (leader, follower, observer,
// standalone, read-only).
const (
	ModeDown         = "down"          // no answer: refused, timed out, reset
	ModeSrvrDisabled = "srvr-disabled" // srvr not in 4lw.commands.whitelist
	ModeNotServing   = "not-serving"   // up but out of quorum, or still joining
	ModeNotZooKeeper = "not-zookeeper" // something else answers on the port
	ModeUnknown      = "unknown"       // a ZooKeeper reply without a Mode line
)

// ServerMode asks one ZooKeeper server for its mode with the srvr four-letter word
// (zk.FourLetterWord: sent with CRLF, so a line-based server such as Redis answers at
// once and is told apart instead of holding the connection until the timeout):
// leader, follower, observer or standalone, else one of the Mode* values above.
func ServerMode(ctx context.Context, addr string, timeout time.Duration) string {
	return statServer(ctx, addr, timeout).mode
}

type serverStat struct{ mode, version string }

func statServer(ctx context.Context, addr string, timeout time.Duration) serverStat {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.TrimSpace(addr), "2181")
	}
	reply, err := zkprobe.FourLetterWord(ctx, addr, "srvr", timeout)
	var nz *zkprobe.NotZooKeeperError
	switch {
	case errors.Is(err, zkprobe.ErrNotWhitelisted):
		return serverStat{mode: ModeSrvrDisabled}
	case errors.Is(err, zkprobe.ErrNotServing):
		return serverStat{mode: ModeNotServing}
	case errors.As(err, &nz) && nz.Reply != "":
		return serverStat{mode: ModeNotZooKeeper}
	case err != nil:
		return serverStat{mode: ModeDown}
	}
	st := serverStat{mode: ModeUnknown}
	for _, line := range strings.Split(reply, "\n") {
		line = strings.TrimSpace(line)
		if mode, ok := strings.CutPrefix(line, "Mode:"); ok {
			st.mode = strings.TrimSpace(mode)
		}
		if v, ok := strings.CutPrefix(line, "Zookeeper version:"); ok {
			v, _, _ = strings.Cut(strings.TrimSpace(v), ",") // "3.8.0-..., built on ..."
			st.version = v
		}
	}
	return st
}

// Kafka fetches cluster metadata and reports the brokers and the controller; a broker
// the metadata lists that does not answer, or no controller, makes it degraded.
func Kafka(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka) Result {
	start := time.Now()
	brokers := endpoint.KafkaBrokers(ep)
	r := Result{Backend: "kafka", Endpoint: strings.Join(brokers, ",")}
	c, err := d.ConnectKafka(ctx, ep)
	if err != nil {
		return finish(r, start, err)
	}
	defer c.Close()
	listed := c.Brokers()
	ids := make([]int, len(listed))
	answered := make([]bool, len(listed))
	var wg sync.WaitGroup
	for i, b := range listed {
		ids[i] = int(b.ID())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Open(c.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
				return
			}
			ok, err := b.Connected()
			answered[i] = ok && err == nil
		}()
	}
	wg.Wait()
	var down []int
	for i, ok := range answered {
		if !ok {
			down = append(down, ids[i])
		}
	}
	sort.Ints(ids)
	sort.Ints(down)
	r.Detail = fmt.Sprintf("%d brokers %v", len(ids), ids)
	ctrl, cerr := c.Controller()
	if cerr == nil {
		r.Detail += fmt.Sprintf(", controller %d", ctrl.ID())
	}
	switch {
	case len(down) > 0:
		r.Warning = fmt.Sprintf("brokers %v are in the metadata but do not answer", down)
	case cerr != nil:
		r.Warning = "no active controller"
	}
	return finish(r, start, nil)
}

// SQL runs SELECT version() (both MySQL/MariaDB and PostgreSQL have it).
func SQL(ctx context.Context, d endpoint.Dialer, ep endpoint.SQL) Result {
	start := time.Now()
	r := Result{Backend: "sql"}
	db, t, err := d.ConnectSQL(ctx, ep)
	r.Endpoint = strings.TrimSpace(t.Driver + " " + t.Name)
	if err != nil {
		return finish(r, start, err)
	}
	defer db.Close()
	qctx, cancel := context.WithTimeout(ctx, d.Limit())
	defer cancel()
	var version string
	if err := db.QueryRowContext(qctx, "SELECT version()").Scan(&version); err != nil {
		return finish(r, start, d.SQLError(t, err))
	}
	if i := strings.Index(version, " on "); i > 0 { // PostgreSQL's build details
		version = version[:i]
	}
	r.Detail, r.Version = version, version
	r.Warning = sqlReadOnly(qctx, db, t.Driver)
	return finish(r, start, nil)
}

// sqlReadOnly says why the server accepts no writes (a lock table needs them), or "".
func sqlReadOnly(ctx context.Context, db *sql.DB, driver string) string {
	var ro bool
	switch driver {
	case "postgres":
		if db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&ro) == nil && ro {
			return "in recovery (a standby): read-only"
		}
	case "mysql":
		if db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro) == nil && ro {
			return "read_only is on: writes are refused"
		}
	}
	return ""
}

// FirstError returns the most severe error among results: unreachable wins, so the
// exit code says "backend unreachable" when any is.
func FirstError(results []Result) error {
	var first error
	for _, r := range results {
		if r.Err == nil {
			continue
		}
		if errs.KindOf(r.Err) == errs.KindUnreachable {
			return r.Err
		}
		if first == nil {
			first = r.Err
		}
	}
	return first
}
