// Package verify is dsctl's Jepsen-style checker for a lock backend: workers, each with
// its own connections behind an in-process fault proxy, loop acquire -> critical
// section -> release on a throwaway lock; the critical section writes to an in-process
// register that checks fencing tokens; every operation is recorded (invoke, ok, fail,
// unknown, with monotonic times) and the history is checked afterwards for overlapping
// holders, fencing-token order, stale writes the register let through, leases lost
// before their local deadline, whether `lock run` would have stopped an overrunning
// child in time, and (with porcupine) linearizability of the lock operations.
//
// It is backend-neutral: it makes Lockers through a factory given the (proxied)
// addresses of the servers, so ZooKeeper and SQL backends plug in unchanged.
package verify

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// Operations recorded in the history.
const (
	OpAcquire = "acquire"
	OpRenew   = "renew"
	OpWrite   = "write"
	OpRelease = "release"
	// OpDeadline marks a holder noticing its local deadline passed before it was done.
	OpDeadline = "deadline"
	// OpPause is a worker pausing while it holds (in-process sleep or SIGSTOP).
	OpPause = "pause"
	// OpFault is a network fault injected by the proxy of one worker.
	OpFault = "fault"
	// OpRun is the first line of a history file: what was run (worker -1).
	OpRun = "run"
)

// Event types. A write is ok when the register accepted it and fail when it refused
// it by fence; pauses and faults have start and end.
const (
	TypeInvoke  = "invoke"
	TypeOK      = "ok"
	TypeFail    = "fail"
	TypeUnknown = "unknown"
	TypeStart   = "start"
	TypeEnd     = "end"
)

// Event is one line of the history. Times are microseconds since the run started,
// on the monotonic clock (in --processes mode, the wall clock the workers share).
type Event struct {
	Seq    int    `json:"seq"`
	TUs    int64  `json:"t_us"`
	Worker int    `json:"worker"`
	Op     string `json:"op"`
	Type   string `json:"type"`
	// Holding numbers a worker's successful acquisitions (1, 2, ...): the lease the
	// event belongs to.
	Holding int               `json:"holding,omitempty"`
	Fence   lock.FencingToken `json:"fence,omitempty"`
	Token   string            `json:"token,omitempty"`
	// ExpiresUs is the lease's local deadline (acquire and renew ok).
	ExpiresUs int64 `json:"expires_us,omitempty"`
	// Late marks a write made after the writer's local deadline (a paused holder).
	Late   bool   `json:"late,omitempty"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
	// TTLMs and Backend describe the run (OpRun only), so a saved history can be
	// checked again on its own.
	TTLMs   int64         `json:"ttl_ms,omitempty"`
	Backend *lock.Backend `json:"backend,omitempty"`

	at      time.Time // when it happened (converted to TUs by the recorder)
	expires time.Time
}

// Recorder collects the history and is the register the critical sections write to:
// a write is accepted when its fence is at least the largest seen (fence 0, from a
// backend without fencing tokens, cannot be checked and is accepted).
type Recorder struct {
	mu       sync.Mutex
	t0       time.Time
	events   []Event
	maxFence lock.FencingToken
	observe  func(Event)
}

// NewRecorder starts a history at t0.
func NewRecorder(t0 time.Time, observe func(Event)) *Recorder {
	return &Recorder{t0: t0, observe: observe}
}

// Add records e (stamping its sequence number and times) and returns it; a write is
// applied to the register here, atomically with its place in the history.
func (r *Recorder) Add(e Event) Event {
	r.mu.Lock()
	if e.at.IsZero() {
		e.at = time.Now()
	}
	e.TUs = e.at.Sub(r.t0).Microseconds()
	if !e.expires.IsZero() {
		e.ExpiresUs = e.expires.Sub(r.t0).Microseconds()
	}
	if e.Op == OpWrite {
		e.Type = TypeOK
		switch {
		case e.Fence == 0:
		case e.Fence < r.maxFence:
			e.Type = TypeFail
			e.Detail = "refused: fence " + e.Fence.String() + " < " + r.maxFence.String()
		default:
			r.maxFence = e.Fence
		}
	}
	e.Seq = len(r.events) + 1
	r.events = append(r.events, e)
	obs := r.observe
	r.mu.Unlock()
	if obs != nil {
		obs(e)
	}
	return e
}

// Events returns a copy of the history so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// WriteJSONL writes events one JSON object per line.
func WriteJSONL(w io.Writer, events []Event) error {
	enc := json.NewEncoder(w)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// RunEvent is the line that opens a history file.
func RunEvent(b lock.Backend, ttl time.Duration, detail string) Event {
	return Event{Worker: -1, Op: OpRun, Type: TypeStart, TTLMs: ttl.Milliseconds(), Backend: &b, Detail: detail}
}

// ReadJSONL reads a history written by WriteJSONL (for re-checking a saved run).
func ReadJSONL(r io.Reader) ([]Event, error) {
	dec := json.NewDecoder(r)
	var out []Event
	for {
		var e Event
		if err := dec.Decode(&e); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}
