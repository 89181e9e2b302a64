package endpoint

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"
)

// netDialer is sarama's proxy.Dialer.
type netDialer interface {
	Dial(network, addr string) (net.Conn, error)
}

// Tracing: with -v, the Dialer's Trace function (the one hook: commands set it from
// -v in Factory.Dialer, the TUI to its log) receives, for every connection made
// through this package, which address it dials, with what TLS and authentication
// (never a secret), and how long each dial or attempt took. A Dialer without Trace is
// silent, whatever the context.

// trace reports one line when the dialer has a trace function.
func (d Dialer) trace(_ context.Context, format string, args ...any) {
	if d.Trace != nil {
		d.Trace(fmt.Sprintf(format, args...))
	}
}

// outcome renders the result of an attempt that started at start.
func outcome(start time.Time, err error) string {
	took := time.Since(start).Round(10 * time.Microsecond)
	if err != nil {
		return fmt.Sprintf("failed after %s: %v", took, err)
	}
	return fmt.Sprintf("ok in %s", took)
}

// secretNote says whether a password is in use and where it comes from, never its value.
func secretNote(s Secret) string {
	if s.IsZero() {
		return "no password"
	}
	return "password from " + s.Source()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// redisNote describes a client's TLS and authentication, never the password itself.
func redisNote(opt *redis.Options, auth string) string {
	tlsNote := "tls off"
	if opt.TLSConfig != nil {
		tlsNote = "tls on"
		if opt.TLSConfig.InsecureSkipVerify {
			tlsNote += " (certificate not verified)"
		}
	}
	return tlsNote + ", " + auth
}

// kafkaAuthNote describes the TLS and SASL settings of a sarama config.
func kafkaAuthNote(ep Kafka) string {
	parts := []string{"tls " + onOff(ep.TLS.On())}
	if ep.SASL != nil && ep.SASL.Mechanism != "" {
		parts = append(parts, fmt.Sprintf("sasl %s as %q, %s", strings.ToUpper(ep.SASL.Mechanism), ep.SASL.Username, secretNote(ep.SASL.Password)))
	} else {
		parts = append(parts, "no sasl")
	}
	return strings.Join(parts, ", ")
}

// traceKafkaDial routes sarama's connections through a dialer that reports each dial,
// when the context carries a trace function. TLS is still layered on by sarama.
func (d Dialer) traceKafkaDial(_ context.Context, cfg *sarama.Config, ep Kafka) {
	fn := d.Trace
	if fn == nil {
		return
	}
	var base netDialer = &net.Dialer{Timeout: cfg.Net.DialTimeout, KeepAlive: cfg.Net.KeepAlive}
	if cfg.Net.Proxy.Enable && cfg.Net.Proxy.Dialer != nil {
		base = cfg.Net.Proxy.Dialer
	}
	note := kafkaAuthNote(ep)
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = tracingDialer{base: base, fn: fn, note: note}
}

type tracingDialer struct {
	base netDialer
	fn   func(string)
	note string
}

func (t tracingDialer) Dial(network, addr string) (net.Conn, error) {
	start := time.Now()
	c, err := t.base.Dial(network, addr)
	t.fn(fmt.Sprintf("kafka: dial %s (%s): %s", addr, t.note, outcome(start, err)))
	return c, err
}

// tracedRedisDialer is go-redis's own dialer for opt, reporting each dial to trace
// (the Dialer's: go-redis dials from its pool with a background context).
func tracedRedisDialer(opt *redis.Options, trace func(string)) func(context.Context, string, string) (net.Conn, error) {
	base := redis.NewDialer(opt)
	if trace == nil {
		return base
	}
	note := redisNote(opt, redisAuth(opt))
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := base(ctx, network, addr)
		trace(fmt.Sprintf("redis: dial %s (%s): %s", addr, note, outcome(start, err)))
		return c, err
	}
}
