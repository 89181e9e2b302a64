package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/errs"
)

// KafkaSession is a set of raw broker connections for callers that send their own
// requests and need the answers unmodified (error codes, offline replicas, config
// sources): one bootstrap Metadata request, then requests to chosen brokers. Every
// connection carries the dialer's timeout, TLS and SASL, like ConnectKafka's client.
type KafkaSession struct {
	// Config is the sarama configuration every connection uses.
	Config *sarama.Config
	// Name is the bootstrap list, for messages.
	Name string
	// Metadata is the bootstrap Metadata response.
	Metadata *sarama.MetadataResponse
	// Seed is the bootstrap broker that answered; SeedID is its id from the metadata
	// (-1 when its address is not among the advertised ones).
	Seed   *sarama.Broker
	SeedID int32

	dialer Dialer
	mu     sync.Mutex
	opened map[int32]*sarama.Broker
}

// KafkaSessionOptions adjust a session.
type KafkaSessionOptions struct {
	// Counter, when set, counts every request frame written to any broker, including
	// the ApiVersions and SASL requests sent when a connection opens.
	Counter *RequestCounter
	// Topics limits the bootstrap Metadata request; nil asks for every topic.
	Topics []string
}

// KafkaBootstrap connects to the first bootstrap broker that answers a Metadata
// request, trying them in order, all within the dialer's timeout.
func (d Dialer) KafkaBootstrap(ctx context.Context, ep Kafka, o KafkaSessionOptions) (*KafkaSession, error) {
	cfg, err := d.KafkaConfig(ep)
	if err != nil {
		return nil, err
	}
	if o.Counter != nil {
		d.countRequests(cfg, o.Counter)
	}
	brokers := KafkaBrokers(ep)
	for _, b := range brokers {
		if err := checkHostPort(b, "9092"); err != nil {
			return nil, errs.Usage("kafka: bad broker address %q: %v", b, err).WithHint("use host:port, e.g. 127.0.0.1:9092")
		}
	}
	s := &KafkaSession{Config: cfg, Name: strings.Join(brokers, ","), dialer: d, SeedID: -1, opened: map[int32]*sarama.Broker{}}
	d.traceKafkaDial(ctx, cfg, ep)
	d.trace(ctx, "kafka: bootstrap from %s (%s, timeout %s)", s.Name, kafkaAuthNote(ep), d.Limit())
	r, err := d.bootstrapRace(ctx, cfg, brokers, o.Topics)
	if err != nil {
		if !isTyped(err) {
			return nil, d.kafkaSessionError(ep, s.Name, err)
		}
		return nil, err
	}
	s.Seed, s.Metadata = r.b, r.resp
	for _, b := range s.Metadata.Brokers {
		if b.Addr() == s.Seed.Addr() {
			s.SeedID = b.ID()
			s.opened[b.ID()] = s.Seed
		}
	}
	return s, nil
}

// kafkaSessionError maps a bootstrap failure like ConnectKafka does.
func (d Dialer) kafkaSessionError(ep Kafka, name string, err error) error {
	if ep.SASL != nil && ep.SASL.Mechanism != "" && errors.Is(err, io.EOF) {
		return errs.New(errs.KindRuntime, "kafka %s: authentication failed: the broker closed the connection during %s authentication as %q",
			name, ep.SASL.Mechanism, ep.SASL.Username).
			WithHint("check kafka.sasl.mechanism, username and the password env var or file, and that the listener speaks SASL")
	}
	if err == nil {
		err = sarama.ErrOutOfBrokers
	}
	return d.KafkaError(name, err)
}

// Broker returns an open connection to the broker with the id (from the bootstrap
// metadata), reusing the seed's connection when it is that broker.
func (s *KafkaSession) Broker(id int32) (*sarama.Broker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.opened[id]; ok {
		return b, nil
	}
	for _, mb := range s.Metadata.Brokers {
		if mb.ID() == id {
			b := sarama.NewBroker(mb.Addr())
			if err := b.Open(s.Config); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
				return nil, err
			}
			s.opened[id] = b
			return b, nil
		}
	}
	return nil, sarama.ErrBrokerNotFound
}

// Close closes every connection.
func (s *KafkaSession) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Seed != nil {
		_ = s.Seed.Close()
	}
	for _, b := range s.opened {
		if b != s.Seed {
			_ = b.Close()
		}
	}
	s.opened = map[int32]*sarama.Broker{}
}

// Error maps a request failure on broker addr to a typed error.
func (s *KafkaSession) Error(addr string, err error) error {
	return s.dialer.KafkaError(addr, err)
}

// countRequests routes every connection through a dialer that counts request frames.
// It does the TLS handshake itself so that it sees the plaintext frames.
func (d Dialer) countRequests(cfg *sarama.Config, c *RequestCounter) {
	cd := &countingDialer{timeout: d.Limit(), counter: c}
	if cfg.Net.TLS.Enable {
		cd.tls = cfg.Net.TLS.Config
		if cd.tls == nil {
			cd.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		cfg.Net.TLS.Enable = false // the counting dialer did the handshake
		cfg.Net.TLS.Config = nil
	}
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = cd
}

type seedResult struct {
	b    *sarama.Broker
	resp *sarama.MetadataResponse
	err  error
}

// bootstrapRace asks the seed brokers for metadata in a staggered race (like happy
// eyeballs): the next seed starts when the previous one fails or after a short delay,
// so a broker that accepts connections but never answers (paused, overloaded) costs a
// fraction of the timeout instead of all of it. The first answer wins; connections that
// answer later are closed. With healthy seeds only the first one is ever contacted.
func (d Dialer) bootstrapRace(ctx context.Context, cfg *sarama.Config, brokers []string, topics []string) (seedResult, error) {
	name := strings.Join(brokers, ",")
	stagger := d.Limit() / time.Duration(2*len(brokers))
	stagger = min(max(stagger, 50*time.Millisecond), 500*time.Millisecond)

	results := make(chan seedResult, len(brokers))
	stop := make(chan struct{})
	failed := make(chan struct{}, len(brokers))
	try := func(addr string) {
		b := sarama.NewBroker(withDefaultPort(strings.TrimSpace(addr), "9092"))
		if err := b.Open(cfg); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			failed <- struct{}{}
			results <- seedResult{err: err}
			return
		}
		resp, err := b.GetMetadata(sarama.NewMetadataRequest(cfg.Version, topics))
		if err != nil {
			_ = b.Close()
			failed <- struct{}{}
			results <- seedResult{err: err}
			return
		}
		results <- seedResult{b: b, resp: resp}
	}
	go func() {
		for i, addr := range brokers {
			if i > 0 {
				t := time.NewTimer(stagger)
				select {
				case <-t.C:
				case <-failed:
					t.Stop()
				case <-stop:
					t.Stop()
					return
				}
			}
			go try(addr)
		}
	}()

	deadline := time.NewTimer(d.Limit())
	defer deadline.Stop()
	var last error
	for pending := len(brokers); pending > 0; {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				last = r.err
				continue
			}
			close(stop)
			go drainSeeds(results, pending)
			return r, nil
		case <-deadline.C:
			close(stop)
			go drainSeeds(results, pending)
			// No broker answered in time: if one of them is another kind of server, say so.
			if werr := wrongServer("kafka", brokers, identifyBudget(d.Limit()), kafkaWrongHint, nil); werr != nil {
				return seedResult{}, werr
			}
			return seedResult{}, errs.Unreachable("kafka", name, d.Limit(), kafkaConnectHint, nil)
		case <-ctx.Done():
			close(stop)
			go drainSeeds(results, pending)
			return seedResult{}, ctxError(ctx, "kafka", name, d.Limit(), kafkaConnectHint)
		}
	}
	if last == nil {
		last = sarama.ErrOutOfBrokers
	}
	return seedResult{}, last
}

// drainSeeds closes the connections of seeds that answer after the race is decided.
// Seeds never started (stopped launcher) are not waited for: their results never come.
func drainSeeds(results <-chan seedResult, pending int) {
	timeout := time.After(time.Minute)
	for ; pending > 0; pending-- {
		select {
		case r := <-results:
			if r.b != nil {
				_ = r.b.Close()
			}
		case <-timeout:
			return
		}
	}
}

func isTyped(err error) bool {
	var e *errs.Error
	return errors.As(err, &e)
}
