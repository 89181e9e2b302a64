package zk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// ErrNotWhitelisted means the server refused a four-letter word (4lw.commands.whitelist).
var ErrNotWhitelisted = errors.New("four-letter word not in the server's 4lw.commands.whitelist")

// ErrNotServing means the server answered but is not serving requests (no quorum, or
// still joining the ensemble).
var ErrNotServing = errors.New("this ZooKeeper instance is not currently serving requests")

// NotZooKeeperError means the address answered with something that is not ZooKeeper.
type NotZooKeeperError struct {
	Addr  string
	Reply string
}

func (e *NotZooKeeperError) Error() string {
	if e.Reply == "" {
		return fmt.Sprintf("%s closed the connection without a ZooKeeper answer: not a ZooKeeper server?", e.Addr)
	}
	guess := ""
	if strings.HasPrefix(e.Reply, "-ERR") || strings.HasPrefix(e.Reply, "-NOAUTH") {
		guess = " (looks like Redis)"
	} else if strings.HasPrefix(e.Reply, "HTTP/") {
		guess = " (looks like an HTTP server)"
	}
	return fmt.Sprintf("%s is not a ZooKeeper server%s: it answered %q", e.Addr, guess, e.Reply)
}

// FourLetterWord sends a four-letter word (srvr, mntr, ruok, ...) to addr and returns
// the reply, within timeout. A refused word is ErrNotWhitelisted, a server out of
// quorum is ErrNotServing, and a reply that is not ZooKeeper's is a *NotZooKeeperError.
// The word goes out with CRLF: ZooKeeper ignores it, and line-based servers (Redis)
// then answer at once instead of waiting for the end of the line.
func FourLetterWord(ctx context.Context, addr, word string, timeout time.Duration) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte(word + "\r\n")); err != nil {
		return "", err
	}
	// ZooKeeper answers and closes the connection; read to the end, but stop early
	// once the reply cannot be ZooKeeper's.
	var buf []byte
	chunk := make([]byte, 32<<10)
	for len(buf) < 1<<20 {
		n, rerr := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if rerr != nil {
			if len(buf) == 0 {
				var ne net.Error
				if errors.As(rerr, &ne) && ne.Timeout() {
					return "", &NotZooKeeperError{Addr: addr}
				}
				return "", rerr
			}
			break
		}
		if !mayBeZooKeeper(string(buf)) {
			break
		}
	}
	text := string(buf)
	switch {
	case strings.Contains(text, "is not executed because it is not in the whitelist"):
		return "", ErrNotWhitelisted
	case strings.Contains(text, "not currently serving requests"):
		return "", ErrNotServing
	}
	if !looksLikeZooKeeper(word, text) {
		return "", &NotZooKeeperError{Addr: addr, Reply: firstLine(text, 80)}
	}
	return text, nil
}

// zkReplyStarts are how ZooKeeper's four-letter-word replies begin.
var zkReplyStarts = []string{"Zookeeper version:", "zk_", "imok", "This ZooKeeper instance", "clientPort=",
	"srvr is not executed", "mntr is not executed", "ruok is not executed", "stat is not executed", "conf is not executed"}

func mayBeZooKeeper(s string) bool {
	for _, p := range zkReplyStarts {
		n := min(len(s), len(p))
		if s[:n] == p[:n] {
			return true
		}
	}
	return false
}

func looksLikeZooKeeper(word, reply string) bool {
	switch word {
	case "ruok":
		return reply == "imok"
	case "mntr":
		return strings.HasPrefix(reply, "zk_")
	case "srvr", "stat":
		return strings.HasPrefix(reply, "Zookeeper version:")
	}
	return true
}

func firstLine(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// diagnoseNotZooKeeper explains a failed connection when no server answered like
// ZooKeeper: each address either refuses, says something else, or says nothing. It
// returns nil when at least one address is a ZooKeeper server (or cannot be told).
func diagnoseNotZooKeeper(ctx context.Context, servers []string, timeout time.Duration) error {
	if len(servers) == 0 {
		return nil
	}
	limit := min(timeout, time.Second)
	var bad []string
	for _, s := range servers {
		_, err := FourLetterWord(ctx, s, "srvr", limit)
		var nz *NotZooKeeperError
		if errors.As(err, &nz) && nz.Reply != "" {
			bad = append(bad, nz.Error())
			continue
		}
		return nil
	}
	// Another kind of server at the address counts as unreachable (exit 6), as for every
	// backend: ZooKeeper is not at that address.
	return errs.New(errs.KindUnreachable, "zookeeper: %s", strings.Join(bad, "; ")).
		WithHint("point --zk (or DSCTL_ZK, or the context's zookeeper.servers) at the ensemble's client ports")
}
