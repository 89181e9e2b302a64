package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer echoes lines back; it stands for any request/response server.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) (string, time.Duration, error) {
	t.Helper()
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", 0, err
	}
	line, err := r.ReadString('\n')
	return line, time.Since(start), err
}

func TestForwardsLatencyBlackholeReset(t *testing.T) {
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, _, err := roundTrip(t, c, r, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("plain forward: %q, %v", got, err)
	}

	p.SetLatency(40*time.Millisecond, 0)
	got, took, err := roundTrip(t, c, r, "slow")
	if err != nil || got != "slow\n" {
		t.Fatalf("with latency: %q, %v", got, err)
	}
	if took < 80*time.Millisecond { // 40ms each way, a lower bound only
		t.Fatalf("round trip took %s with 40ms latency each way, want >= 80ms", took)
	}
	p.SetLatency(0, 0)

	// A blackhole holds the bytes and delivers them when it heals.
	p.Blackhole(time.Hour)
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("read %q through a blackhole", line)
	}
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The timed-out read may have consumed part of nothing: the held line arrives now.
	if line, err := r.ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("after heal: %q, %v", line, err)
	}
	if s := p.Stats(); s.Blackholes != 1 || s.Conns != 1 {
		t.Fatalf("stats %+v", s)
	}

	if n := p.Reset(); n != 1 {
		t.Fatalf("reset %d connections, want 1", n)
	}
	if _, _, err := roundTrip(t, c, r, "after reset"); err == nil {
		t.Fatal("a reset connection still answered")
	}
	// New connections work after a reset.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, _, err := roundTrip(t, c2, bufio.NewReader(c2), "again"); err != nil || got != "again\n" {
		t.Fatalf("new connection after reset: %q, %v", got, err)
	}
}

func TestBlackholeHealsByItself(t *testing.T) {
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Blackhole(80 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr()) // accepted, forwarded only after the heal
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, took, err := roundTrip(t, c, bufio.NewReader(c), "x")
	if err != nil || got != "x\n" {
		t.Fatalf("%q, %v", got, err)
	}
	if took < 50*time.Millisecond {
		t.Fatalf("answered after %s through an 80ms blackhole", took)
	}
}
