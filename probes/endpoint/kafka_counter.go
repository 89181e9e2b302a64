package endpoint

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"
)

// RequestCounter counts Kafka requests by API key. It is safe for concurrent use.
type RequestCounter struct {
	mu    sync.Mutex
	byKey map[int16]int
}

// Total is the number of requests written so far.
func (c *RequestCounter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.byKey {
		n += v
	}
	return n
}

// ByAPI returns the counts keyed by API name (Metadata, DescribeConfigs, ...).
func (c *RequestCounter) ByAPI() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.byKey))
	for k, v := range c.byKey {
		out[KafkaAPIName(k)] += v
	}
	return out
}

// String renders the counts as "9 (ApiVersions 3, DescribeConfigs 4, Metadata 2)".
func (c *RequestCounter) String() string {
	by := c.ByAPI()
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	s := fmt.Sprintf("%d (", c.Total())
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", n, by[n])
	}
	return s + ")"
}

func (c *RequestCounter) add(key int16) {
	c.mu.Lock()
	if c.byKey == nil {
		c.byKey = map[int16]int{}
	}
	c.byKey[key]++
	c.mu.Unlock()
}

// KafkaAPIName names the request types dsctl sends; others show as "api N".
func KafkaAPIName(key int16) string {
	switch key {
	case 2:
		return "ListOffsets"
	case 3:
		return "Metadata"
	case 9:
		return "OffsetFetch"
	case 10:
		return "FindCoordinator"
	case 15:
		return "DescribeGroups"
	case 16:
		return "ListGroups"
	case 17:
		return "SaslHandshake"
	case 18:
		return "ApiVersions"
	case 19:
		return "CreateTopics"
	case 20:
		return "DeleteTopics"
	case 32:
		return "DescribeConfigs"
	case 36:
		return "SaslAuthenticate"
	case 44:
		return "IncrementalAlterConfigs"
	case 60:
		return "DescribeCluster"
	}
	return fmt.Sprintf("api %d", key)
}

// countingDialer dials plain TCP (and TLS itself, so that it sees the plaintext
// frames) and counts the request frames written on each connection.
type countingDialer struct {
	timeout time.Duration
	tls     *tls.Config
	counter *RequestCounter
}

func (d *countingDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: d.timeout}).Dial(network, addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		conf := d.tls
		if conf.ServerName == "" {
			conf = conf.Clone()
			conf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, conf)
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &countingConn{Conn: conn, counter: d.counter}, nil
}

// countingConn parses the Kafka framing of what it writes: a 4-byte big-endian size,
// then the request header whose first two bytes are the API key.
type countingConn struct {
	net.Conn
	counter *RequestCounter
	mu      sync.Mutex
	head    [6]byte // size + api key of the frame being written
	have    int     // bytes of head collected
	left    int64   // bytes of the current frame body still to skip
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.scan(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *countingConn) scan(p []byte) {
	for len(p) > 0 {
		if c.left > 0 {
			skip := min(int64(len(p)), c.left)
			p = p[skip:]
			c.left -= skip
			continue
		}
		k := copy(c.head[c.have:], p)
		c.have += k
		p = p[k:]
		if c.have < len(c.head) {
			return
		}
		size := int64(binary.BigEndian.Uint32(c.head[:4]))
		c.counter.add(int16(binary.BigEndian.Uint16(c.head[4:6])))
		c.have = 0
		c.left = max(size-2, 0)
	}
}
