package zk

import (
	"context"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// Stream is a watch that owns its session, for a live view (the TUI's ZooKeeper pane)
// that starts and stops watches as the user picks paths: it connects, arms, forwards
// the events, and when ctx ends closes the session and the channel, even when nobody
// reads any more (a Watcher alone blocks on a full channel).
type Stream struct {
	w      *Watcher
	c      *Client
	events chan Event
	done   chan struct{}
}

// WatchStream opens a session to opt's ensemble and arms wopt's watches on it (see
// Client.Watch). The first event is armed; gaps, disconnects, session expiry and
// resyncs arrive as events too, so a pane can mark them.
func WatchStream(ctx context.Context, d endpoint.Dialer, opt Options, wopt WatchOptions) (*Stream, error) {
	c, err := Connect(ctx, d, opt)
	if err != nil {
		return nil, err
	}
	w, err := c.Watch(ctx, wopt)
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &Stream{w: w, c: c, events: make(chan Event, 64), done: make(chan struct{})}
	go s.forward(ctx)
	return s, nil
}

func (s *Stream) forward(ctx context.Context) {
	defer close(s.done)
	defer s.c.Close()
	defer close(s.events)
	for ev := range s.w.Events() {
		select {
		case s.events <- ev:
		case <-ctx.Done():
			for range s.w.Events() { // drain: the watcher stops at ctx's end
			}
			return
		}
	}
}

// Events delivers the watch's events; it is closed when ctx ends.
func (s *Stream) Events() <-chan Event { return s.events }

// Done is closed once the session is closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Summary is the counts so far.
func (s *Stream) Summary() Summary { return s.w.Summary() }
