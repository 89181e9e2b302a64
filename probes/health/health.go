// Package health checks that each configured backend answers, and says what it is:
// Redis PING and version, ZooKeeper session and each server's mode, Kafka brokers and
// controller, SQL SELECT and server version.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// Result is the outcome of checking one endpoint.
type Result struct {
	Backend   string  `json:"backend"`
	Endpoint  string  `json:"endpoint"`
	OK        bool    `json:"ok"`
	LatencyMs float64 `json:"latency_ms"`
	Detail    string  `json:"detail,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Err is the typed error behind Error, for the exit code.
	Err error `json:"-"`
}

func finish(r Result, start time.Time, err error) Result {
	r.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		r.OK, r.Err, r.Error = false, err, err.Error()
		return r
	}
	r.OK = true
	return r
}

// Redis PINGs every address (each is an independent server) and reads its version.
func Redis(ctx context.Context, d endpoint.Dialer, ep endpoint.Redis) []Result {
	targets, err := d.RedisTargets(ep)
	if err != nil {
		return []Result{{Backend: "redis", Endpoint: strings.Join(ep.Addrs, ","), Error: err.Error(), Err: err}}
	}
	out := make([]Result, len(targets))
	for i, t := range targets {
		start := time.Now()
		r := Result{Backend: "redis", Endpoint: t.Addr}
		c := redis.NewClient(t.Options)
		err := d.PingRedis(ctx, t.Addr, c)
		if err == nil {
			r.Detail = redisVersion(ctx, c, d.Limit())
		}
		c.Close()
		out[i] = finish(r, start, err)
	}
	return out
}

func redisVersion(ctx context.Context, c *redis.Client, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "PONG"
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return "PONG, redis " + v
		}
	}
	return "PONG"
}

// ZooKeeper opens a session and, where the srvr four-letter word is allowed, reports
// each server's mode (leader, follower, standalone). An address that is not ZooKeeper
// (a Redis port, say) is diagnosed at once as a usage error, as by dsctl zk, instead
// of being retried until the timeout.
func ZooKeeper(ctx context.Context, d endpoint.Dialer, ep endpoint.ZooKeeper) Result {
	start := time.Now()
	r := Result{Backend: "zookeeper", Endpoint: strings.Join(ep.Servers, ",")}
	c, err := zkprobe.Connect(ctx, d, zkprobe.Options{Endpoint: ep})
	if err != nil {
		return finish(r, start, err)
	}
	defer c.Close()
	r.Detail = "session 0x" + fmt.Sprintf("%x", c.SessionID())
	var modes []string
	for _, srv := range ep.Servers {
		modes = append(modes, srv+"="+ServerMode(ctx, srv, d.Limit()))
	}
	r.Detail += ", " + strings.Join(modes, " ")
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
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.TrimSpace(addr), "2181")
	}
	reply, err := zkprobe.FourLetterWord(ctx, addr, "srvr", timeout)
	var nz *zkprobe.NotZooKeeperError
	switch {
	case errors.Is(err, zkprobe.ErrNotWhitelisted):
		return ModeSrvrDisabled
	case errors.Is(err, zkprobe.ErrNotServing):
		return ModeNotServing
	case errors.As(err, &nz) && nz.Reply != "":
		return ModeNotZooKeeper
	case err != nil:
		return ModeDown
	}
	for _, line := range strings.Split(reply, "\n") {
		if mode, ok := strings.CutPrefix(strings.TrimSpace(line), "Mode:"); ok {
			return strings.TrimSpace(mode)
		}
	}
	return ModeUnknown
}

// Kafka fetches cluster metadata and reports the brokers and the controller.
func Kafka(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka) Result {
	start := time.Now()
	brokers := endpoint.KafkaBrokers(ep)
	r := Result{Backend: "kafka", Endpoint: strings.Join(brokers, ",")}
	c, err := d.ConnectKafka(ctx, ep)
	if err != nil {
		return finish(r, start, err)
	}
	defer c.Close()
	var ids []int
	for _, b := range c.Brokers() {
		ids = append(ids, int(b.ID()))
	}
	sort.Ints(ids)
	r.Detail = fmt.Sprintf("%d brokers %v", len(ids), ids)
	if ctrl, err := c.Controller(); err == nil {
		r.Detail += fmt.Sprintf(", controller %d", ctrl.ID())
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
	r.Detail = version
	return finish(r, start, nil)
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
