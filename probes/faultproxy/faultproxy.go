// Package faultproxy is an in-process TCP proxy that injects network faults between a
// client and one server: added latency with jitter, a blackhole (the link stalls: bytes
// are held, in order, and delivered when it heals, as TCP retransmission would after a
// partition), and connection resets. It runs on loopback, client side, so it can
// attack a shared server without disturbing anyone else's connections. It knows
// nothing of the protocol it carries: lock verify uses it for Redis, and the ZooKeeper
// and SQL backends can use it unchanged.
package faultproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Stats counts what the proxy did.
type Stats struct {
	Conns      int `json:"conns"`
	Resets     int `json:"resets"`
	Blackholes int `json:"blackholes"`
}

// Proxy forwards connections from its loopback listener to Target.
type Proxy struct {
	Target string
	ln     net.Listener

	mu        sync.Mutex
	latency   time.Duration
	jitter    time.Duration
	stallTill time.Time
	conns     map[*pair]struct{}
	stats     Stats
	closed    bool
	healed    chan struct{} // closed and replaced when a blackhole heals
	wg        sync.WaitGroup
}

type pair struct {
	client, server net.Conn
}

// New listens on 127.0.0.1 (a free port) and forwards to target (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Target: target, ln: ln, conns: map[*pair]struct{}{}, healed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk of bytes, each way, by base plus a uniform random
// jitter in [0, jitter). Order is kept. Zero removes the delay.
func (p *Proxy) SetLatency(base, jitter time.Duration) {
	p.mu.Lock()
	p.latency, p.jitter = base, jitter
	p.mu.Unlock()
}

// Blackhole stalls the link for d: nothing is delivered either way and new
// connections are not forwarded until it heals, then everything held is delivered.
func (p *Proxy) Blackhole(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Blackholes++
	if till := time.Now().Add(d); till.After(p.stallTill) {
		p.stallTill = till
	}
	heal := p.healed
	till := p.stallTill
	time.AfterFunc(time.Until(till)+time.Millisecond, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.healed == heal && !time.Now().Before(p.stallTill) {
			close(p.healed)
			p.healed = make(chan struct{})
		}
	})
}

// Heal ends a blackhole now.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallTill = time.Time{}
	close(p.healed)
	p.healed = make(chan struct{})
}

// Reset aborts every open connection (RST to both sides) and returns how many.
func (p *Proxy) Reset() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		abort(c.client)
		abort(c.server)
		delete(p.conns, c)
		n++
	}
	p.stats.Resets += n
	return n
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.client.Close()
		c.server.Close()
		delete(p.conns, c)
	}
	close(p.healed)
	p.healed = make(chan struct{})
	p.stallTill = time.Time{}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func abort(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.SetLinger(0)
	}
	_ = c.Close()
}

// stalled returns a channel closed when the current blackhole heals, or nil.
func (p *Proxy) stalled() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !time.Now().Before(p.stallTill) {
		return nil
	}
	return p.healed
}

func (p *Proxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.latency
	if p.jitter > 0 {
		d += rand.N(p.jitter)
	}
	return d
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if h := p.stalled(); h != nil { // a partition: the connection is not forwarded yet
		<-h
	}
	server, err := net.DialTimeout("tcp", p.Target, 5*time.Second)
	if err != nil {
		abort(client)
		return
	}
	c := &pair{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.stats.Conns++
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.pipe(server, client); done <- struct{}{} }()
	go func() { defer p.wg.Done(); p.pipe(client, server); done <- struct{}{} }()
	<-done // one side ended: end both
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst through a queue, so each chunk can be held back (latency,
// blackhole) while later ones keep being read, in order.
func (p *Proxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{b: buf[:n], at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		due := c.at.Add(p.delay())
		for {
			if h := p.stalled(); h != nil {
				<-h
				continue
			}
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait)
				continue // a blackhole may have begun meanwhile
			}
			break
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			for range q { // let the reader finish
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
