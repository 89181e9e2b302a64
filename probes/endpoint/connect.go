package endpoint

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-sql-driver/mysql"
	"github.com/go-zookeeper/zk"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/redis/go-redis/v9"
	"github.com/xdg-go/scram"

	"github.com/dsctl/dsctl/probes/errs"
)

// Default endpoints, used when neither a flag, an env var nor the context names one.
const (
	DefaultRedisAddr    = "127.0.0.1:6379"
	DefaultZooKeeper    = "127.0.0.1:2181"
	DefaultKafkaBroker  = "127.0.0.1:9092"
	DefaultZKSession    = 10 * time.Second
	DefaultTimeout      = 5 * time.Second
	defaultKafkaVersion = "3.9.0"
	redisConnectHint    = "is redis-server up? set --redis, DSCTL_REDIS or the context's redis.addrs"
	zkConnectHint       = "is the ensemble up? set --zk, DSCTL_ZK or the context's zookeeper.servers"
	redisWrongHint      = "check the address and port: Redis listens on 6379 by default; set --redis, DSCTL_REDIS or the context's redis.addrs"
	zkWrongHint         = "check the address and port: ZooKeeper clients use 2181 by default; set --zk, DSCTL_ZK or the context's zookeeper.servers"
	kafkaWrongHint      = "check the address and port: Kafka listens on 9092 by default; set --brokers, DSCTL_KAFKA or the context's kafka.brokers"
	kafkaConnectHint    = "is the broker up? set --brokers, DSCTL_KAFKA or the context's kafka.brokers"
	sqlConnectHint      = "is the database up? check the DSN in DSCTL_SQL_DSN or the context's sql.dsn"
)

// Dialer connects to backends with one timeout for every network call.
type Dialer struct {
	// Timeout bounds each connection attempt and each request.
	Timeout time.Duration
	// Warn receives non-fatal problems, such as a secret file readable by others.
	Warn func(string)
	// Trace, when set (-v), receives connection details: every dial and attempt made
	// through this dialer (see trace.go). It is the only tracing hook.
	Trace func(string)
	// WrapZooKeeperConn, when set, wraps each connection go-zookeeper dials (the
	// ZooKeeper lock backend reads the negotiated session timeout from the handshake).
	WrapZooKeeperConn func(net.Conn) net.Conn
}

// Limit is the timeout in force: Timeout, or DefaultTimeout when unset.
func (d Dialer) Limit() time.Duration {
	if d.Timeout <= 0 {
		return DefaultTimeout
	}
	return d.Timeout
}

func (d Dialer) warn(msg string) {
	if d.Warn != nil {
		d.Warn(msg)
	}
}

// ---- Redis ----

// RedisTarget is one Redis server: its display name and its client options.
type RedisTarget struct {
	Addr    string
	Options *redis.Options
}

// silenceRedisLog stops go-redis printing its own log lines on stderr: dsctl reports
// every failure itself, once, in its own words. go-redis's logger is process-wide.
var silenceRedisLog sync.Once

type nopRedisLogger struct{}

func (nopRedisLogger) Printf(context.Context, string, ...any) {}

// RedisTargets turns the description into client options, one per address. It does no I/O.
func (d Dialer) RedisTargets(ep Redis) ([]RedisTarget, error) {
	silenceRedisLog.Do(func() { redis.SetLogger(nopRedisLogger{}) })
	addrs := ep.Addrs
	if len(addrs) == 0 {
		addrs = []string{DefaultRedisAddr}
	}
	password, err := ep.Password.Resolve("redis password", d.warn)
	if err != nil {
		return nil, errs.Usage("%v", err).WithHint("%s", missingSecretHint(ep.Password))
	}
	var tlsConf *tls.Config
	if ep.TLS.On() {
		if tlsConf, err = buildTLS(ep.TLS, "redis"); err != nil {
			return nil, err
		}
	}
	targets := make([]RedisTarget, 0, len(addrs))
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		var opt *redis.Options
		if strings.Contains(a, "://") {
			opt, err = redis.ParseURL(a)
			if err != nil {
				return nil, errs.Usage("redis: bad address %q: %v", MaskURL(a), err).
					WithHint("use host:port, redis://host:port/db or rediss://host:port")
			}
			if opt.Password != "" {
				d.warn(fmt.Sprintf("redis: address %s carries a password; prefer redis.password.env in the config", MaskURL(a)))
			}
		} else {
			if err := checkHostPort(a, "6379"); err != nil {
				return nil, errs.Usage("redis: bad address %q: %v", a, err).WithHint("use host:port, e.g. 127.0.0.1:6379")
			}
			opt = &redis.Options{Addr: withDefaultPort(a, "6379"), DB: ep.DB}
		}
		if opt.Username == "" {
			opt.Username = ep.Username
		}
		if opt.Password == "" {
			opt.Password = password
		}
		if tlsConf != nil { // the context's CA and client cert apply to rediss:// URLs too
			c := tlsConf.Clone()
			if c.ServerName == "" && opt.TLSConfig != nil {
				c.ServerName = opt.TLSConfig.ServerName
			}
			opt.TLSConfig = c
		}
		t := d.Limit()
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = t, t, t
		opt.MaxRetries = -1 // one attempt per call: dsctl reports failures instead of hiding them
		opt.DialerRetries = 1
		opt.ContextTimeoutEnabled = true
		opt.DisableIdentity = true // no CLIENT SETINFO: older servers and miniredis reject it
		opt.Dialer = tracedRedisDialer(opt, d.Trace)
		targets = append(targets, RedisTarget{Addr: opt.Addr, Options: opt})
	}
	return targets, nil
}

// ConnectRedis opens one client per address and PINGs each within the timeout.
// The first failure closes every client and comes back as an unreachable error.
func (d Dialer) ConnectRedis(ctx context.Context, ep Redis) ([]*redis.Client, error) {
	targets, err := d.RedisTargets(ep)
	if err != nil {
		return nil, err
	}
	clients := make([]*redis.Client, 0, len(targets))
	for _, t := range targets {
		c := redis.NewClient(t.Options)
		clients = append(clients, c)
		if err := d.PingRedis(ctx, t.Addr, c); err != nil {
			for _, c := range clients {
				c.Close()
			}
			return nil, err
		}
	}
	return clients, nil
}

// PingRedis sends PING and classifies a failure.
func (d Dialer) PingRedis(ctx context.Context, addr string, c *redis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, d.Limit())
	defer cancel()
	start := time.Now()
	err := c.Ping(ctx).Err()
	d.trace(ctx, "redis: PING %s (%s, timeout %s): %s", addr, redisNote(c.Options(), redisAuth(c.Options())), d.Limit(), outcome(start, err))
	if err != nil {
		return d.RedisError(addr, err)
	}
	return nil
}

// mayBeWrongServer reports a failure that another kind of server causes: a protocol
// error from the client library, or a connection closed or reset by the other side.
// (Refused connections and timeouts are not: nothing answered.)
func mayBeWrongServer(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var reply redis.Error
	if IsNetworkError(err) || errors.As(err, &reply) || errors.Is(err, context.Canceled) {
		return false // nothing answered, or a Redis server answered with an error
	}
	msg := err.Error()
	return strings.Contains(msg, "invalid reply") || strings.Contains(msg, "can't parse") ||
		strings.Contains(msg, "protocol error") || strings.Contains(msg, "unexpected")
}

// RedisError turns a Redis call failure into a typed error naming the server.
func (d Dialer) RedisError(addr string, err error) error {
	if err == nil {
		return nil
	}
	if mayBeWrongServer(err) {
		// A reply that is not RESP, or a connection closed at once: ask the address what
		// it is, and say so (exit 6) rather than show a parser error.
		if what := Identify(context.Background(), addr, d.Limit()); what != "" && what != AnsweredRedis {
			return WrongServer("redis", addr, what, redisWrongHint, err)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return errs.New(errs.KindRuntime, "redis %s: authentication failed: %s", addr, msg).
			WithHint("check redis.username and the password env var or file")
	case IsNetworkError(err):
		return errs.Unreachable("redis", addr, d.Limit(), redisConnectHint, err)
	}
	return errs.New(errs.KindRuntime, "redis %s: %s", addr, msg).Wrap(err)
}

// ---- ZooKeeper ----

// ZKSession is a connected ZooKeeper session and its event channel. The caller must
// drain Events (go-zookeeper drops events when the small buffer is full) and Close it.
type ZKSession struct {
	Conn   *zk.Conn
	Events <-chan zk.Event
}

// Close ends the session.
func (s *ZKSession) Close() { s.Conn.Close() }

type silentZKLogger struct{}

func (silentZKLogger) Printf(string, ...any) {}

// ConnectZooKeeper opens a session and waits for it within the timeout.
func (d Dialer) ConnectZooKeeper(ctx context.Context, ep ZooKeeper) (*ZKSession, error) {
	return d.ConnectZooKeeperWithCallback(ctx, ep, nil)
}

// ConnectZooKeeperWithCallback is ConnectZooKeeper with go-zookeeper's event callback:
// onEvent (when not nil) receives every session and watch event, in order, on the
// library's receive goroutine, before the buffered Events channel that drops events
// when full. It must not block.
func (d Dialer) ConnectZooKeeperWithCallback(ctx context.Context, ep ZooKeeper, onEvent func(zk.Event)) (*ZKSession, error) {
	servers := ep.Servers
	if len(servers) == 0 {
		servers = []string{DefaultZooKeeper}
	}
	for i, s := range servers {
		if err := checkHostPort(s, "2181"); err != nil {
			return nil, errs.Usage("zookeeper: bad server %q: %v", s, err).WithHint("use host:port, e.g. 127.0.0.1:2181")
		}
		servers[i] = withDefaultPort(strings.TrimSpace(s), "2181")
	}
	session := time.Duration(ep.SessionTimeout)
	if session <= 0 {
		session = DefaultZKSession
	}
	var password string
	if ep.DigestUser != "" {
		var err error
		if password, err = ep.DigestPassword.Resolve("zookeeper digest password", d.warn); err != nil {
			return nil, errs.Usage("%v", err).WithHint("%s", missingSecretHint(ep.DigestPassword))
		}
	}
	timeout := d.Limit()
	d.trace(ctx, "zookeeper: connecting to %s (session timeout %s, %s, timeout %s)", strings.Join(servers, ","), session, zkAuthNote(ep), timeout)
	// go-zookeeper retries the servers forever; dial failures come back here so that an
	// ensemble whose every server refuses fails at once instead of at the timeout.
	dialed := make(chan error, 64)
	dial := func(network, address string, _ time.Duration) (net.Conn, error) {
		start := time.Now()
		c, err := net.DialTimeout(network, address, timeout)
		d.trace(ctx, "zookeeper: dial %s: %s", address, outcome(start, err))
		if err == nil && d.WrapZooKeeperConn != nil {
			c = d.WrapZooKeeperConn(c)
		}
		select {
		case dialed <- err:
		default:
		}
		return c, err
	}
	callback := func(zk.Event) {}
	if onEvent != nil {
		callback = onEvent
	}
	conn, events, err := zk.Connect(servers, session, zk.WithDialer(dial), zk.WithLogger(silentZKLogger{}), zk.WithLogInfo(false),
		zk.WithEventCallback(callback))
	if err != nil {
		return nil, errs.Usage("zookeeper: %v", err)
	}
	// go-zookeeper's Close waits up to a second for the server to acknowledge; a session
	// we give up on is closed in the background so the failure is reported on time.
	abandon := func() { go conn.Close() }
	endpointName := strings.Join(servers, ",")
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	refused, connected := 0, false
	for {
		select {
		case err := <-dialed:
			// A dial timeout has already used the whole timeout: the timer reports it.
			connected = connected || err == nil
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
			}
			if !connected && refused >= len(servers) {
				abandon()
				return nil, errs.Unreachable("zookeeper", endpointName, timeout, zkConnectHint, err)
			}
		case ev, ok := <-events:
			if !ok {
				return nil, errs.Unreachable("zookeeper", endpointName, timeout, zkConnectHint, errors.New("connection closed"))
			}
			if ev.State == zk.StateAuthFailed {
				abandon()
				return nil, errs.New(errs.KindRuntime, "zookeeper %s: authentication failed", endpointName)
			}
			if ev.State == zk.StateHasSession {
				if ep.DigestUser != "" {
					if err := conn.AddAuth("digest", []byte(ep.DigestUser+":"+password)); err != nil {
						conn.Close()
						return nil, errs.New(errs.KindRuntime, "zookeeper %s: digest authentication as %s failed: %v",
							endpointName, ep.DigestUser, err)
					}
				}
				d.trace(ctx, "zookeeper: session 0x%x with %s", conn.SessionID(), conn.Server())
				return &ZKSession{Conn: conn, Events: events}, nil
			}
		case <-timer.C:
			abandon()
			if connected {
				// Something accepted the connection but no session came: ask what it is.
				if werr := wrongServer("zookeeper", servers, identifyBudget(timeout), zkWrongHint, nil); werr != nil {
					return nil, werr
				}
			}
			return nil, errs.Unreachable("zookeeper", endpointName, timeout, zkConnectHint, nil)
		case <-ctx.Done():
			abandon()
			return nil, ctxError(ctx, "zookeeper", endpointName, timeout, zkConnectHint)
		}
	}
}

// missingSecretHint says how to supply a secret that could not be read. A context's
// TLS and auth settings apply even when the addresses come from flags or env, so a
// secret of the current context can be needed for a flag-given address too.
func missingSecretHint(s Secret) string {
	how := "create the file " + s.File + " holding only the secret (chmod 600)"
	if s.Env != "" {
		how = "export " + s.Env
	}
	return how + ", or pick a context that does not need it with --context NAME (the context's auth applies even to addresses given by flag or env)"
}

func zkAuthNote(ep ZooKeeper) string {
	if ep.DigestUser == "" {
		return "no auth"
	}
	return fmt.Sprintf("digest auth as %q, %s", ep.DigestUser, secretNote(ep.DigestPassword))
}

// redisAuth describes a client's authentication without its password.
func redisAuth(opt *redis.Options) string {
	if opt.Password == "" && opt.Username == "" {
		return "no auth"
	}
	return "user " + orDefaultUser(opt.Username) + " with a password"
}

func orDefaultUser(u string) string {
	if u == "" {
		return "default"
	}
	return u
}

// ---- Kafka ----

// KafkaConfig builds the sarama configuration: timeouts, protocol version, TLS and SASL.
func (d Dialer) KafkaConfig(ep Kafka) (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "dsctl"
	t := d.Limit()
	cfg.Net.DialTimeout, cfg.Net.ReadTimeout, cfg.Net.WriteTimeout = t, t, t
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Timeout = t
	cfg.Admin.Timeout = t
	cfg.Admin.Retry.Max = 1
	version := ep.Version
	if version == "" {
		version = defaultKafkaVersion
	}
	v, err := sarama.ParseKafkaVersion(version)
	if err != nil {
		return nil, errs.Usage("kafka: bad version %q: %v", version, err).WithHint("use e.g. 3.9.0")
	}
	cfg.Version = v
	if ep.TLS.On() {
		tc, err := buildTLS(ep.TLS, "kafka")
		if err != nil {
			return nil, err
		}
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}
	if ep.SASL != nil && ep.SASL.Mechanism != "" {
		if err := d.applySASL(cfg, ep.SASL); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func (d Dialer) applySASL(cfg *sarama.Config, s *SASL) error {
	password, err := s.Password.Resolve("kafka sasl password", d.warn)
	if err != nil {
		return errs.Usage("%v", err).WithHint("%s", missingSecretHint(s.Password))
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.User = s.Username
	cfg.Net.SASL.Password = password
	switch strings.ToUpper(s.Mechanism) {
	case "PLAIN":
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case "SCRAM-SHA-256":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
	case "SCRAM-SHA-512":
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
	default:
		return errs.Usage("kafka: unknown SASL mechanism %q", s.Mechanism).
			WithHint("use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	if s.Username == "" {
		return errs.Usage("kafka: SASL %s needs a username (kafka.sasl.username)", s.Mechanism)
	}
	return nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient interface.
type scramClient struct {
	hash func() hash.Hash
	conv *scram.ClientConversation
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := scram.HashGeneratorFcn(c.hash).NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }
func (c *scramClient) Done() bool                            { return c.conv.Done() }

// KafkaBrokers returns the broker list or the default.
func KafkaBrokers(ep Kafka) []string {
	if len(ep.Brokers) == 0 {
		return []string{DefaultKafkaBroker}
	}
	return ep.Brokers
}

// ConnectKafka opens a sarama client (which fetches cluster metadata) within the timeout.
// The client survives individual brokers being down as long as one answers.
func (d Dialer) ConnectKafka(ctx context.Context, ep Kafka) (sarama.Client, error) {
	cfg, err := d.KafkaConfig(ep)
	if err != nil {
		return nil, err
	}
	brokers := KafkaBrokers(ep)
	for _, b := range brokers {
		if err := checkHostPort(b, "9092"); err != nil {
			return nil, errs.Usage("kafka: bad broker address %q: %v", b, err).WithHint("use host:port, e.g. 127.0.0.1:9092")
		}
	}
	name := strings.Join(brokers, ",")
	d.traceKafkaDial(ctx, cfg, ep)
	d.trace(ctx, "kafka: bootstrap from %s (%s, timeout %s)", name, kafkaAuthNote(ep), d.Limit())
	start := time.Now()
	defer func() { d.trace(ctx, "kafka: bootstrap took %s", time.Since(start).Round(10*time.Microsecond)) }()
	done := make(chan kafkaResult, 1)
	go func() {
		c, err := sarama.NewClient(brokers, cfg)
		done <- kafkaResult{c, err}
	}()
	// sarama tries each seed broker in turn, so the wall time is bounded here, once.
	timer := time.NewTimer(d.Limit())
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil && ep.SASL != nil && ep.SASL.Mechanism != "" && errors.Is(r.err, io.EOF) {
			// Brokers (and kfake) may close the connection instead of answering a failed
			// SASL exchange; with SASL on, that is almost always bad credentials.
			return nil, errs.New(errs.KindRuntime, "kafka %s: authentication failed: the broker closed the connection during %s authentication as %q",
				name, ep.SASL.Mechanism, ep.SASL.Username).
				WithHint("check kafka.sasl.mechanism, username and the password env var or file, and that the listener speaks SASL")
		}
		if r.err != nil {
			return nil, d.KafkaError(name, r.err)
		}
		return r.c, nil
	case <-timer.C:
		go closeLater(done)
		return nil, errs.Unreachable("kafka", name, d.Limit(), kafkaConnectHint, nil)
	case <-ctx.Done():
		go closeLater(done)
		return nil, ctxError(ctx, "kafka", name, d.Limit(), kafkaConnectHint)
	}
}

type kafkaResult struct {
	c   sarama.Client
	err error
}

// closeLater closes a client whose connect finished after we gave up on it.
func closeLater(done <-chan kafkaResult) {
	if r := <-done; r.c != nil {
		r.c.Close()
	}
}

// KafkaError turns a sarama failure into a typed error naming the brokers.
func (d Dialer) KafkaError(brokers string, err error) error {
	if err == nil {
		return nil
	}
	var kerr sarama.KError
	if errors.As(err, &kerr) && (kerr == sarama.ErrSASLAuthenticationFailed || kerr == sarama.ErrIllegalSASLState ||
		kerr == sarama.ErrUnsupportedSASLMechanism) {
		return errs.New(errs.KindRuntime, "kafka %s: authentication failed: %v", brokers, err).
			WithHint("check kafka.sasl.mechanism, username and the password env var or file")
	}
	if strings.Contains(err.Error(), "SASL") {
		return errs.New(errs.KindRuntime, "kafka %s: authentication failed: %v", brokers, err).
			WithHint("check kafka.sasl.mechanism, username and the password env var or file")
	}
	if errors.Is(err, sarama.ErrOutOfBrokers) || IsNetworkError(err) {
		if werr := wrongServer("kafka", splitAddrs(brokers), identifyBudget(d.Limit()), kafkaWrongHint, err); werr != nil {
			return werr
		}
		return errs.Unreachable("kafka", brokers, d.Limit(), kafkaConnectHint, err)
	}
	return errs.New(errs.KindRuntime, "kafka %s: %v", brokers, err).Wrap(err)
}

// ---- SQL ----

// SQLTarget is a resolved SQL endpoint: the database/sql driver name, the DSN to open
// and a display name with no password.
type SQLTarget struct {
	Driver  string // "mysql" or "postgres" (user-facing)
	Name    string // host:port/db, safe to print
	dsn     string
	sqlName string // registered database/sql driver name
}

// silenceMySQLLog stops go-sql-driver printing its own "[mysql] ... i/o timeout" lines
// on stderr: dsctl reports the failure itself. The driver's logger is process-wide.
var silenceMySQLLog sync.Once

type nopMySQLLogger struct{}

func (nopMySQLLogger) Print(...any) {}

// SQLTarget resolves the DSN and driver. It does no I/O.
func (d Dialer) SQLTarget(ep SQL) (SQLTarget, error) {
	silenceMySQLLog.Do(func() { mysql.SetLogger(nopMySQLLogger{}) })
	dsn := ep.dsnValue
	if dsn == "" {
		if ep.DSN.IsZero() {
			return SQLTarget{}, errs.Usage("sql: no database configured").
				WithHint("set DSCTL_SQL_DSN, or sql.dsn.env / sql.dsn.file in the context (dsctl config set-context NAME --sql-dsn-env VAR)")
		}
		var err error
		if dsn, err = ep.DSN.Resolve("sql dsn", d.warn); err != nil {
			return SQLTarget{}, errs.Usage("%v", err)
		}
		if dsn == "" {
			return SQLTarget{}, errs.Usage("sql: the DSN from %s is empty", ep.DSN.Source())
		}
	}
	driver, err := sqlDriver(ep.Driver, dsn)
	if err != nil {
		return SQLTarget{}, err
	}
	t := SQLTarget{Driver: driver}
	switch driver {
	case "mysql":
		cfg, err := mysqlConfig(dsn)
		if err != nil {
			return SQLTarget{}, err
		}
		cfg.Timeout = d.Limit()
		cfg.ReadTimeout, cfg.WriteTimeout = d.Limit(), d.Limit()
		// dsctl decides from "rows affected" (e.g. an INSERT ... ON DUPLICATE KEY UPDATE
		// that changed nothing); clientFoundRows=true in a DSN would report matched rows
		// instead, so it is never used (the lock backend relies on it).
		cfg.ClientFoundRows = false
		delete(cfg.Params, "clientFoundRows")
		t.dsn, t.sqlName = cfg.FormatDSN(), "mysql"
		t.Name = cfg.Addr + "/" + cfg.DBName
	case "postgres":
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			return SQLTarget{}, errs.Usage("sql: bad PostgreSQL DSN %s: %v", MaskURL(dsn), maskErr(err, dsn)).
				WithHint("use postgres://user@host:5432/db?sslmode=disable")
		}
		t.dsn, t.sqlName = dsn, "pgx"
		t.Name = fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
	}
	return t, nil
}

// ConnectSQL opens the database and runs a ping within the timeout.
func (d Dialer) ConnectSQL(ctx context.Context, ep SQL) (*sql.DB, SQLTarget, error) {
	t, err := d.SQLTarget(ep)
	if err != nil {
		return nil, t, err
	}
	db, err := sql.Open(t.sqlName, t.dsn)
	if err != nil {
		return nil, t, errs.Usage("sql %s: %v", t.Name, maskErr(err, t.dsn))
	}
	pctx, cancel := context.WithTimeout(ctx, d.Limit())
	defer cancel()
	start := time.Now()
	err = db.PingContext(pctx)
	d.trace(ctx, "sql: connect %s %s (password never shown): %s", t.Driver, t.Name, outcome(start, err))
	if err != nil {
		db.Close()
		if ctx.Err() != nil {
			return nil, t, ctxError(ctx, "sql", t.Name, d.Limit(), sqlConnectHint)
		}
		return nil, t, d.SQLError(t, err)
	}
	return db, t, nil
}

// SQLError turns a database failure into a typed error naming the database.
func (d Dialer) SQLError(t SQLTarget, err error) error {
	if err == nil {
		return nil
	}
	if isBrokenConn(err) {
		// The driver's word for a connection that failed mid-exchange, typically a
		// server that accepted the connection and then said nothing within the timeout.
		return errs.Unreachable("sql", t.Name, d.Limit(), sqlConnectHint, stalledError{err})
	}
	if IsNetworkError(err) {
		e := errs.Unreachable("sql", t.Name, d.Limit(), sqlConnectHint, err)
		e.Msg = maskErr(errors.New(e.Msg), t.dsn)
		return e
	}
	return errs.New(errs.KindRuntime, "sql %s (%s): %s", t.Name, t.Driver, maskErr(err, t.dsn)).Wrap(err)
}

// isBrokenConn reports the database/sql and go-sql-driver errors for a connection that
// broke before the server answered.
func isBrokenConn(err error) bool {
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		strings.Contains(err.Error(), "invalid connection")
}

// stalledError says what a broken connection means to the user, keeping the driver's
// error for errors.Is.
type stalledError struct{ err error }

func (e stalledError) Error() string { return "connected, but the server did not answer" }
func (e stalledError) Unwrap() error { return e.err }

func sqlDriver(driver, dsn string) (string, error) {
	switch strings.ToLower(driver) {
	case "mysql", "mariadb":
		return "mysql", nil
	case "postgres", "postgresql", "pg", "pgx":
		return "postgres", nil
	case "":
	default:
		return "", errs.Usage("sql: unknown driver %q", driver).WithHint("use mysql or postgres")
	}
	lower := strings.ToLower(dsn)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"),
		strings.Contains(lower, "host=") || strings.Contains(lower, "dbname="):
		return "postgres", nil
	case strings.HasPrefix(lower, "mysql://"), strings.HasPrefix(lower, "mariadb://"),
		strings.Contains(dsn, "@tcp("), strings.Contains(dsn, "@unix("), strings.Contains(dsn, "@/"):
		return "mysql", nil
	}
	return "", errs.Usage("sql: cannot tell the driver from the DSN").
		WithHint("set sql.driver to mysql or postgres, or DSCTL_SQL_DRIVER")
}

// mysqlConfig accepts go-sql-driver DSNs (user:pass@tcp(host:3306)/db) and
// mysql://user:pass@host:3306/db URLs.
func mysqlConfig(dsn string) (*mysql.Config, error) {
	lower := strings.ToLower(dsn)
	if strings.HasPrefix(lower, "mysql://") || strings.HasPrefix(lower, "mariadb://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, errs.Usage("sql: bad MySQL URL %s", MaskURL(dsn))
		}
		cfg := mysql.NewConfig()
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.Net = "tcp"
		cfg.Addr = withDefaultPort(u.Host, "3306")
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		for k, v := range u.Query() {
			if cfg.Params == nil {
				cfg.Params = map[string]string{}
			}
			cfg.Params[k] = v[0]
		}
		return cfg, nil
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, errs.Usage("sql: bad MySQL DSN %s: %s", MaskDSN(dsn), maskErr(err, dsn)).
			WithHint("use user:pass@tcp(host:3306)/db or mysql://user@host:3306/db")
	}
	return cfg, nil
}

// ---- shared helpers ----

// IsNetworkError reports whether err means the server could not be reached or did not
// answer in time (as opposed to an answer that was an error).
func IsNetworkError(err error) bool {
	if err == nil {
		return false
	}
	var nerr net.Error
	var operr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, net.ErrClosed),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn):
		return true
	case errors.As(err, &operr), errors.As(err, &dnsErr):
		return true
	case errors.As(err, &nerr) && nerr.Timeout():
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "i/o timeout") ||
		strings.Contains(s, "no such host") || strings.Contains(s, "broken pipe")
}

func ctxError(ctx context.Context, backend, name string, timeout time.Duration, hint string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return errs.New(errs.KindInterrupted, "%s: interrupted while connecting to %s", backend, name)
	}
	return errs.Unreachable(backend, name, timeout, hint, ctx.Err())
}

func checkHostPort(addr, defaultPort string) error {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return errors.New("empty address")
	}
	host, port, err := net.SplitHostPort(withDefaultPort(addr, defaultPort))
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p <= 0 || p > 65535 || fmt.Sprint(p) != port {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// withDefaultPort appends the default port when addr has none.
func withDefaultPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") { // bare IPv6
		return "[" + addr + "]:" + port
	}
	if strings.HasSuffix(addr, ":") {
		return addr + port
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), port)
}

func buildTLS(t *TLS, backend string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by the user
	if t.CA != "" {
		pem, err := os.ReadFile(ExpandHome(t.CA))
		if err != nil {
			return nil, errs.Usage("%s: cannot read TLS CA file %s: %v", backend, t.CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errs.Usage("%s: TLS CA file %s holds no PEM certificate", backend, t.CA)
		}
		conf.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errs.Usage("%s: TLS client certificate needs both cert and key", backend)
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(ExpandHome(t.Cert), ExpandHome(t.Key))
		if err != nil {
			return nil, errs.Usage("%s: cannot load TLS client certificate %s / %s: %v", backend, t.Cert, t.Key, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// splitAddrs splits a comma-joined address list.
func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
