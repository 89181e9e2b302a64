package verify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/dsctl/dsctl/probes/lock"
)

// ProcessOptions runs each worker in its own process: Command makes the command that
// serves one worker (dsctl re-executing itself as a hidden subcommand that calls
// ServeWorker); Backend is passed to it verbatim in the WorkerRequest.
type ProcessOptions struct {
	Command func(worker int) *exec.Cmd
	Backend json.RawMessage
}

// wireMsg is one line a worker process writes on stdout.
type wireMsg struct {
	Backend *lock.Backend `json:"backend,omitempty"`
	Event   *wireEvent    `json:"event,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// wireEvent carries wall-clock times: processes share the wall clock, not the
// monotonic one.
type wireEvent struct {
	Event
	AtNs      int64 `json:"at_ns"`
	ExpiresNs int64 `json:"expires_ns,omitempty"`
}

type proc struct {
	worker int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   chan struct{}
	mu     sync.Mutex
	paused bool
	fatal  string
}

func (r *runner) startProcesses(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) error {
	po := r.o.Processes
	backends := make(chan lock.Backend, r.o.Workers)
	for i := 0; i < r.o.Workers; i++ {
		cmd := po.Command(i)
		p := &proc{worker: i, cmd: cmd, done: make(chan struct{})}
		cmd.Stderr = &p.stderr
		var err error
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("verify: cannot start worker process %d (%s): %w", i, cmd.Path, err)
		}
		r.procs = append(r.procs, p)
		req := WorkerRequest{Config: WorkerConfig{Worker: i, Name: r.o.Name, TTL: r.o.TTL, Seed: r.o.Seed, Tool: r.o.Tool},
			Addrs: r.addrs[i], Backend: po.Backend}
		b, _ := json.Marshal(req)
		if _, err := p.stdin.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("verify: worker process %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(p.done)
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				var m wireMsg
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					continue
				}
				switch {
				case m.Backend != nil:
					backends <- *m.Backend
				case m.Error != "":
					p.mu.Lock()
					p.fatal = m.Error
					p.mu.Unlock()
				case m.Event != nil:
					e := m.Event.Event
					e.Worker = i
					e.at = time.Unix(0, m.Event.AtNs)
					if m.Event.ExpiresNs != 0 {
						e.expires = time.Unix(0, m.Event.ExpiresNs)
					}
					r.rec.Add(e)
				}
			}
			_ = p.cmd.Wait()
		}()
	}
	go func() {
		<-stop
		for _, p := range r.procs {
			_ = p.stdin.Close() // the worker finishes its section, releases and exits
		}
	}()
	// Every worker says what it talks to before it starts.
	timeout := time.After(30 * time.Second)
	for i := 0; i < r.o.Workers; i++ {
		select {
		case b := <-backends:
			r.procBackend = b
		case <-timeout:
			r.procErr = fmt.Errorf("verify: worker processes did not start within 30s%s", r.procStderr())
			return r.procErr
		case <-ctx.Done():
			return ctx.Err()
		case <-r.anyProcDone():
			r.procErr = fmt.Errorf("verify: a worker process failed to start%s", r.procStderr())
			return r.procErr
		}
	}
	return nil
}

// anyProcDone is closed when some worker process has ended.
func (r *runner) anyProcDone() <-chan struct{} {
	c := make(chan struct{})
	var once sync.Once
	for _, p := range r.procs {
		go func() {
			<-p.done
			once.Do(func() { close(c) })
		}()
	}
	return c
}

func (r *runner) procStderr() string {
	for _, p := range r.procs {
		p.mu.Lock()
		fatal := p.fatal
		p.mu.Unlock()
		if fatal != "" {
			return ": worker " + fmt.Sprint(p.worker) + ": " + fatal
		}
		if s := bytes.TrimSpace(p.stderr.Bytes()); len(s) > 0 {
			if len(s) > 500 {
				s = s[len(s)-500:]
			}
			return ": worker " + fmt.Sprint(p.worker) + ": " + string(s)
		}
	}
	return ""
}

// processesGone reports whether every worker process has ended early.
func (r *runner) processesGone() bool {
	if len(r.procs) == 0 {
		return false
	}
	for _, p := range r.procs {
		select {
		case <-p.done:
		default:
			return false
		}
	}
	r.procErr = fmt.Errorf("verify: every worker process ended early%s", r.procStderr())
	return true
}

// pauseProcess stops a worker process that holds the lock (any, if none does) with
// SIGSTOP for longer than the TTL, and continues it with SIGCONT.
func (r *runner) pauseProcess(e *Event) bool {
	r.mu.Lock()
	var cands []int
	for w, h := range r.holding {
		if h {
			cands = append(cands, w)
		}
	}
	r.mu.Unlock()
	if len(cands) == 0 {
		cands = []int{r.rnd.IntN(len(r.procs))}
	}
	p := r.procs[cands[r.rnd.IntN(len(cands))]]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused || p.cmd.Process == nil {
		return false
	}
	if err := stopProcess(p.cmd.Process); err != nil {
		return false
	}
	p.paused = true
	d := r.between(r.o.TTL*5/4, 2*r.o.TTL)
	e.Worker, e.Op = p.worker, OpPause
	e.Detail = fmt.Sprintf("SIGSTOP for %s (ttl %s)", d.Round(time.Millisecond), r.o.TTL)
	time.AfterFunc(d, func() { r.resume(p) })
	return true
}

func (r *runner) resume(p *proc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return
	}
	_ = continueProcess(p.cmd.Process)
	p.paused = false
	r.rec.Add(Event{Worker: p.worker, Op: OpPause, Type: TypeEnd, Detail: "SIGCONT"})
}

func (r *runner) resumeAll() {
	for _, p := range r.procs {
		r.resume(p)
	}
}

func (r *runner) killProcesses() {
	for _, p := range r.procs {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
	}
}

// ServeWorker is the body of a worker process: it reads its WorkerRequest from in,
// makes its Locker with newLocker, runs RunWorker until in is closed (or ctx ends),
// and writes its events as JSON lines on out.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer, newLocker func(addrs []string, backend json.RawMessage) (lock.Locker, error)) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("verify worker: no request on stdin: %w", err)
	}
	var req WorkerRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return fmt.Errorf("verify worker: bad request on stdin: %w", err)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m wireMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	l, err := newLocker(req.Addrs, req.Backend)
	if err != nil {
		send(wireMsg{Error: err.Error()})
		return err
	}
	defer l.Close()
	b := l.Backend()
	send(wireMsg{Backend: &b})
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, br) // the parent closes stdin to stop us
		close(stop)
	}()
	RunWorker(ctx, stop, l, req.Config, func(e Event) {
		we := &wireEvent{Event: e, AtNs: e.at.UnixNano()}
		if !e.expires.IsZero() {
			we.ExpiresNs = e.expires.UnixNano()
		}
		send(wireMsg{Event: we})
	})
	return nil
}
