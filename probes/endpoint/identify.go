package endpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// What answered at an address, when it is not the server dsctl expected. A client
// library's view of the wrong server is a protocol error ("invalid reply:
// <!DOCTYPE HTML>") or a closed connection; Identify asks the address itself.
const (
	AnsweredRedis   = "Redis"
	AnsweredHTTP    = "HTTP"
	AnsweredTLS     = "TLS (a TLS-only port)"
	AnsweredSSH     = "SSH"
	AnsweredMySQL   = "MySQL/MariaDB"
	AnsweredSilence = "silence"
	AnsweredUnknown = "something else"
)

// Identify connects to addr, sends a Redis PING, and names what answered from the
// first bytes it sends back (or from its silence). It returns "" when it could not
// connect at all (then the original network error stands).
func Identify(ctx context.Context, addr string, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Servers that speak first (SSH, MySQL) have sent their greeting by the time they
	// read the PING; the others answer it.
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return AnsweredSilence
	}
	buf := make([]byte, 512)
	n, err := io.ReadAtLeast(conn, buf, 1)
	if n == 0 {
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return "" // no answer in time: the timeout message says it
		}
		return AnsweredSilence
	}
	return classifyAnswer(buf[:n])
}

// classifyAnswer names a protocol from the first bytes a server sent.
func classifyAnswer(b []byte) string {
	lower := bytes.ToLower(b)
	switch {
	case len(b) > 0 && (b[0] == '+' || b[0] == '-' || b[0] == '$' || b[0] == '*' || b[0] == ':'):
		return AnsweredRedis
	case bytes.HasPrefix(b, []byte("HTTP/")), bytes.Contains(lower, []byte("<!doctype html")), bytes.Contains(lower, []byte("<html")):
		return AnsweredHTTP
	case len(b) >= 3 && b[0] == 0x15 && b[1] == 0x03:
		return AnsweredTLS // a TLS alert: it wanted a handshake
	case bytes.HasPrefix(b, []byte("SSH-")):
		return AnsweredSSH
	case len(b) > 5 && b[3] == 0 && b[4] == 10:
		return AnsweredMySQL // greeting packet: 3-byte length, sequence 0, protocol 10
	}
	return AnsweredUnknown
}

// WrongServer is the error for an address where something other than the expected
// server answered. It counts as unreachable (exit 6): the backend is not at that address.
func WrongServer(backend, addr, answered, hint string, cause error) error {
	what := "it answered like " + answered
	switch answered {
	case AnsweredSilence:
		what = "it accepted the connection and closed it without answering (Kafka and ZooKeeper ports do that)"
	case AnsweredUnknown:
		what = "it answered in another protocol"
	}
	return (&errs.Error{Kind: errs.KindUnreachable, Err: cause,
		Msg: fmt.Sprintf("%s: %s is not a %s server: %s", backend, addr, backendTitle(backend), what)}).
		WithHint("%s", hint)
}

func backendTitle(backend string) string {
	switch backend {
	case "redis":
		return "Redis"
	case "kafka":
		return "Kafka"
	case "zookeeper":
		return "ZooKeeper"
	}
	return backend
}

// identifyBudget bounds the question put to addresses that did not behave like the
// expected server, asked after the command's timeout ran out: a fifth of it, at most
// 250ms (a server that speaks another protocol answers a PING at once), so the
// failure still comes close to --timeout.
func identifyBudget(timeout time.Duration) time.Duration {
	return min(timeout/5, 250*time.Millisecond)
}

// wrongServer asks each address, in parallel and within budget, what it is,
// and returns a WrongServer error for the first (in order) that answered in another
// recognisable protocol; nil when none did (silence is not proof: Kafka and
// ZooKeeper ports are silent to a Redis PING too).
func wrongServer(backend string, addrs []string, budget time.Duration, hint string, cause error) error {
	answers := make([]string, len(addrs))
	done := make(chan struct{})
	for i, a := range addrs {
		go func() {
			answers[i] = Identify(context.Background(), a, budget)
			done <- struct{}{}
		}()
	}
	for range addrs {
		<-done
	}
	for i, what := range answers {
		switch what {
		case "", AnsweredSilence, AnsweredUnknown:
			continue
		}
		if backend == "redis" && what == AnsweredRedis {
			continue
		}
		return WrongServer(backend, addrs[i], what, hint, cause)
	}
	return nil
}
