package sqllock_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingProxy forwards TCP to a database and counts client requests: bursts of
// client bytes that follow a server answer (a pipelined request, written at once, is
// one burst), so a count of 1 is one round trip. It can also cut every connection.
type countingProxy struct {
	ln     net.Listener
	target string
	count  atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn
}

func newCountingProxy(t testing.TB, target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *countingProxy) addr() string    { return p.ln.Addr().String() }
func (p *countingProxy) requests() int64 { return p.count.Load() }

func (p *countingProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var turn atomic.Bool // true once the server has answered since the last request
		turn.Store(true)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if turn.Swap(false) {
						p.count.Add(1)
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			s.Close()
		}()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					turn.Store(true)
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
	}
}

// cut closes every proxied connection.
func (p *countingProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *countingProxy) close() {
	p.ln.Close()
	p.cut()
}
