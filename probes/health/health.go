// Package health checks that each configured backend answers, and says what it is:
// Redis PING and version, ZooKeeper session and each server's mode, Kafka brokers and
// controller, SQL SELECT and server version.
package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
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
// each server's mode (leader, follower, standalone).
func ZooKeeper(ctx context.Context, d endpoint.Dialer, ep endpoint.ZooKeeper) Result {
	start := time.Now()
	r := Result{Backend: "zookeeper", Endpoint: strings.Join(ep.Servers, ",")}
	s, err := d.ConnectZooKeeper(ctx, ep)
	if err != nil {
		return finish(r, start, err)
	}
	defer s.Close()
	r.Detail = "session 0x" + fmt.Sprintf("%x", s.Conn.SessionID())
	var modes []string
	for _, srv := range ep.Servers {
		modes = append(modes, srv+"="+ServerMode(ctx, srv, d.Limit()))
	}
	r.Detail += ", " + strings.Join(modes, " ")
	return finish(r, start, nil)
}

// ServerMode asks one ZooKeeper server for its mode with the srvr four-letter word:
// leader, follower, observer or standalone; "down" when it does not answer and
// "srvr-disabled" when the server does not allow the command (4lw.commands.whitelist).
// go-zookeeper's FLWSrvr cannot parse ZooKeeper 3.8's version line, hence our own.
func ServerMode(ctx context.Context, addr string, timeout time.Duration) string {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return "down"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return "down"
	}
	reply, _ := io.ReadAll(io.LimitReader(conn, 64<<10))
	for _, line := range strings.Split(string(reply), "\n") {
		if mode, ok := strings.CutPrefix(strings.TrimSpace(line), "Mode:"); ok {
			return strings.TrimSpace(mode)
		}
	}
	if strings.Contains(string(reply), "not in the whitelist") || strings.Contains(string(reply), "not executed") {
		return "srvr-disabled"
	}
	return "unknown"
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
