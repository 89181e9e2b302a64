// Package supervisor runs a command under a lock (`dsctl lock run`) on any lock
// backend: take the lease, start the child directly (no shell unless asked), renew the
// lease every TTL/3, forward SIGINT/SIGTERM, release when the child exits and return
// its exit code. When the lease is lost (renewal says the lock is gone or has another
// owner, renewals fail until the lease runs out, or this process did not run until
// after it had) the child is stopped: SIGTERM, then SIGKILL after a grace period (or
// SIGKILL at once, or nothing with OnLostIgnore). It prints nothing: the caller gets a
// Result saying what happened, when and why.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// OnLost is what happens to the child when the lease is lost.
type OnLost string

// Policies.
const (
	// OnLostTerm sends SIGTERM, then SIGKILL after the grace period.
	OnLostTerm OnLost = "term"
	// OnLostKill sends SIGKILL at once.
	OnLostKill OnLost = "kill"
	// OnLostIgnore lets the child run on; the run still ends with exit 4.
	OnLostIgnore OnLost = "ignore"
)

// ParseOnLost reads --on-lost.
func ParseOnLost(s string) (OnLost, error) {
	switch OnLost(strings.ToLower(strings.TrimSpace(s))) {
	case "", OnLostTerm:
		return OnLostTerm, nil
	case OnLostKill:
		return OnLostKill, nil
	case OnLostIgnore:
		return OnLostIgnore, nil
	}
	return "", errs.Usage("unknown --on-lost %q", s).WithHint("use term, kill or ignore")
}

// Environment variables the child gets.
const (
	EnvName  = "DSCTL_LOCK_NAME"
	EnvToken = "DSCTL_LOCK_TOKEN"
	EnvFence = "DSCTL_LOCK_FENCE"
	// EnvExpires is set by `lock acquire -o env`, not for a child of `lock run`.
	EnvExpires = "DSCTL_LOCK_EXPIRES"
)

// Options are the inputs of Run.
type Options struct {
	Locker  lock.Locker
	Name    string
	Acquire lock.AcquireOptions
	// Command is the child's argv; with Shell it is joined and run by sh -c.
	Command []string
	Shell   bool
	OnLost  OnLost
	// Grace is the time between SIGTERM and SIGKILL (default 5s).
	Grace time.Duration
	// Env is the child's environment before the DSCTL_LOCK_* variables are added. The
	// caller leaves out any secret (dsctl drops its own Redis password variable).
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Signals are forwarded to the child (the caller subscribes to SIGINT/SIGTERM).
	Signals <-chan os.Signal
	// Foreground keeps the child in this process group, because stdin is a terminal:
	// the child may read it, and ctrl-C reaches it from the terminal directly (so
	// SIGINT is not forwarded a second time). Otherwise the child gets its own
	// process group, and signals (and a kill on lost lease) reach its whole tree.
	Foreground bool
	// RenewEvery is the renewal period (default TTL/3).
	RenewEvery time.Duration
	// OnEvent, when set, receives progress (for -v). It must not block.
	OnEvent func(Event)
}

// Event is a step of the run, for verbose output.
type Event struct {
	At     time.Time
	What   string
	Detail string
}

// Result is what happened.
type Result struct {
	Lease   *lock.Lease `json:"lease"`
	Started time.Time   `json:"started"`
	Ended   time.Time   `json:"ended"`
	// ExitCode is the child's exit code; 128+N when signal N ended it (as shells do).
	ExitCode int `json:"exit_code"`
	// Signal names the signal that ended the child, if one did.
	Signal    string   `json:"signal,omitempty"`
	Renewals  int      `json:"renewals"`
	Forwarded []string `json:"forwarded,omitempty"`
	Lost      *Lost    `json:"lost,omitempty"`
	// ReleaseErr is a failure to release after the child exited (the lease then ends
	// at its TTL).
	ReleaseErr error `json:"-"`
}

// Lost says when and why the lease was lost, and what was done to the child.
type Lost struct {
	At      time.Time       `json:"at"`
	HeldFor time.Duration   `json:"-"`
	Reason  lock.LostReason `json:"reason"`
	Why     string          `json:"why"`
	Action  string          `json:"action"`
}

// Err is the error for the exit code: exit 4 naming when and why the lease was lost;
// the child's own exit code (errs.ExitStatus) when it failed; nil when it succeeded.
func (r *Result) Err() error {
	if r.Lost != nil {
		msg := fmt.Sprintf("lock %q lost at %s, %s after it was taken: %s; %s",
			r.Lease.Name, r.Lost.At.Local().Format("15:04:05.000"), lock.RoundDuration(r.Lost.HeldFor), r.Lost.Why, r.Lost.Action)
		return &errs.Error{Kind: errs.KindLockLost, Msg: msg,
			Hint: "the child's work may overlap with the next holder's; a resource that checks DSCTL_LOCK_FENCE rejects its late writes"}
	}
	if r.ExitCode != 0 {
		return &errs.ExitStatus{Code: r.ExitCode}
	}
	return nil
}

// StartError means the child could not be started (exit 127 not found, 126 otherwise).
type StartError struct {
	Command string
	Code    int
	Err     error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("cannot start %s: %v", e.Command, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }

// Run acquires the lock, runs the child under it, and returns the Result. An error
// means the child never ran: the lock was not acquired (typed lock errors), or the
// command could not be started (*StartError, after the lock was released again).
func Run(ctx context.Context, o Options) (*Result, error) {
	if len(o.Command) == 0 {
		return nil, errs.Usage("no command to run").WithHint("put it after --, e.g. dsctl lock run NAME -- ./job.sh")
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.OnLost == "" {
		o.OnLost = OnLostTerm
	}
	argv := o.Command
	if o.Shell {
		argv = shellArgv(strings.Join(o.Command, " "))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := runnable(cmd); err != nil { // do not take the lock for a command that cannot start
		return nil, startError(argv[0], err)
	}
	s := &run{o: o, res: &Result{}}
	lease, err := o.Locker.Acquire(ctx, o.Name, o.Acquire)
	if err != nil {
		return nil, err
	}
	s.res.Lease = lease
	s.event("acquired", fmt.Sprintf("fence %s, lease ends in %s", lease.Fence, lock.RoundDuration(lease.Remaining(time.Now()))))

	cmd.Env = childEnv(o.Env, lease)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	// When output goes through pipes (not files), a grandchild that keeps them open
	// must not keep us waiting after the child itself exited.
	cmd.WaitDelay = time.Second
	prepare(cmd, !o.Foreground)
	// Renewals and the release must survive the caller's ctrl-C: that signal is for
	// the child, and the lease is released when the child is done.
	bg := context.WithoutCancel(ctx)
	if err := cmd.Start(); err != nil {
		s.release(bg)
		return nil, startError(argv[0], err)
	}
	s.res.Started = time.Now()
	s.cmd = cmd
	s.supervise(bg)
	return s.res, nil
}

// runnable checks what exec.Command could not: that a path given with a slash names
// an executable file.
func runnable(cmd *exec.Cmd) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	info, err := os.Stat(cmd.Path)
	switch {
	case err != nil:
		return err
	case info.IsDir():
		return fmt.Errorf("%s is a directory", cmd.Path)
	case runtime.GOOS != "windows" && info.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", cmd.Path)
	}
	return nil
}

func startError(name string, err error) *StartError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	return &StartError{Command: name, Code: code, Err: err}
}

// inheritedLockVar reports whether kv is one of the variables dsctl sets for a lease
// (here, or by `lock acquire -o env`): an outer lock's must not reach the child.
// Other DSCTL_LOCK_* names are the user's and pass through.
func inheritedLockVar(kv string) bool {
	for _, v := range []string{EnvName, EnvToken, EnvFence, EnvExpires} {
		if strings.HasPrefix(kv, v+"=") {
			return true
		}
	}
	return false
}

// childEnv is env without the lease variables of an outer lock, plus this lease's.
func childEnv(env []string, lease *lock.Lease) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		if !inheritedLockVar(kv) {
			out = append(out, kv)
		}
	}
	out = append(out, EnvName+"="+lease.Name, EnvToken+"="+lease.Token)
	if lease.FencingSafe && lease.Fence != 0 {
		out = append(out, EnvFence+"="+lease.Fence.String())
	}
	return out
}

type run struct {
	o   Options
	res *Result
	cmd *exec.Cmd
}

func (s *run) event(what, detail string) {
	if s.o.OnEvent != nil {
		s.o.OnEvent(Event{At: time.Now(), What: what, Detail: detail})
	}
}

// supervise waits for the child while the watchdog renews, forwarding signals and
// stopping the child if the lease is lost.
func (s *run) supervise(ctx context.Context) {
	waited := make(chan error, 1)
	go func() { waited <- s.cmd.Wait() }()
	wctx, stopWatchdog := context.WithCancel(ctx)
	lost := make(chan *Lost, 1)
	renewals := make(chan int, 1)
	go func() {
		l, n := s.watchdog(wctx)
		renewals <- n
		if l != nil {
			lost <- l
		}
	}()

	var kill <-chan time.Time
	var termSent time.Time
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-waited:
			break loop
		case l := <-lost:
			s.res.Lost = l
			s.event("lost", l.Why)
			switch s.o.OnLost {
			case OnLostIgnore:
				l.Action = "the child was left running (--on-lost ignore)"
			case OnLostKill:
				_ = signalChild(s.cmd.Process, os.Kill, !s.o.Foreground)
				l.Action = "the child was killed (SIGKILL)"
			default:
				_ = signalChild(s.cmd.Process, termSignal, !s.o.Foreground)
				termSent = time.Now()
				kill = time.After(s.o.Grace)
				l.Action = "the child was sent SIGTERM"
			}
		case <-kill:
			_ = signalChild(s.cmd.Process, os.Kill, !s.o.Foreground)
			s.res.Lost.Action = fmt.Sprintf("the child was sent SIGTERM and, still running after --grace %s, SIGKILL", s.o.Grace)
			kill = nil
		case sig := <-s.o.Signals:
			if s.o.Foreground && isInterrupt(sig) {
				continue // the terminal already delivered it to the child
			}
			_ = signalChild(s.cmd.Process, sig, !s.o.Foreground)
			s.res.Forwarded = append(s.res.Forwarded, sig.String())
			s.event("forwarded", sig.String())
		}
	}
	s.res.Ended = time.Now()
	s.res.ExitCode, s.res.Signal = exitInfo(s.cmd.ProcessState, waitErr)
	if s.res.Lost != nil && !termSent.IsZero() && s.res.Lost.Action == "the child was sent SIGTERM" {
		s.res.Lost.Action += fmt.Sprintf(" and exited %s later", max(lock.RoundDuration(s.res.Ended.Sub(termSent)), time.Millisecond))
	}
	if s.res.Lost != nil && s.o.OnLost == OnLostIgnore {
		s.res.Lost.Action += fmt.Sprintf("; it exited with code %d", s.res.ExitCode)
	}
	stopWatchdog()
	s.res.Renewals = <-renewals
	if s.res.Lost == nil {
		select {
		case l := <-lost: // lost just as the child exited
			s.res.Lost = l
			l.Action = "the child had already exited"
		default:
		}
	}
	s.release(ctx)
}

// release gives the lease back. A release that finds the lock not held means it was
// lost after the last renewal, while the child still ran: that is a loss too.
func (s *run) release(ctx context.Context) {
	err := s.o.Locker.Release(ctx, s.res.Lease.Name, s.res.Lease.Token)
	if err == nil {
		s.event("released", "")
		return
	}
	if s.res.Lost != nil || s.cmd == nil {
		return // already reported (or the child never ran)
	}
	if nh, ok := lock.AsNotHeld(err); ok {
		s.res.Lost = &Lost{At: time.Now(), HeldFor: time.Since(s.res.Lease.AcquiredAt), Reason: nh.Reason,
			Why: "found at release: " + nh.Why(), Action: fmt.Sprintf("the child had already exited with code %d", s.res.ExitCode)}
		return
	}
	s.res.ReleaseErr = err
}

// watchdog renews the lease every RenewEvery until ctx ends or the lease is lost. It
// returns the loss (nil if none) and the number of renewals.
func (s *run) watchdog(ctx context.Context) (*Lost, int) {
	lease := s.res.Lease
	ttl := lease.TTL
	every := s.o.RenewEvery
	if every <= 0 {
		every = ttl / 3
	}
	retry := max(min(ttl/10, 500*time.Millisecond), 20*time.Millisecond)
	deadline := lease.ExpiresAt
	next := lease.AcquiredAt.Add(every)
	renewals := 0
	lastRan := time.Now()
	var lastErr error
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, renewals
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(deadline) {
			if lastErr == nil || now.Sub(lastRan) > every+retry+time.Second {
				// We did not run for a while (SIGSTOP, suspend, starvation): the lease
				// ran out meanwhile, and someone else may have held the lock.
				why := fmt.Sprintf("this process did not run from %s to %s, past the lease's end at %s",
					clock(lastRan), clock(now), clock(deadline))
				return s.lost(ctx, lock.LostStalled, why), renewals
			}
			return s.lost(ctx, lock.LostUnreachable, fmt.Sprintf("renewal failed until the lease ran out at %s: %v", clock(deadline), lastErr)), renewals
		}
		lastRan = now
		// One attempt may not take longer than a renewal period, so a hung connection
		// leaves time for retries before the lease runs out.
		rctx, cancel := context.WithDeadline(ctx, minTime(deadline, now.Add(every)))
		renewed, err := s.o.Locker.Renew(rctx, lease.Name, lease.Token, ttl)
		cancel()
		if ctx.Err() != nil {
			return nil, renewals
		}
		if err == nil {
			renewals++
			lastErr = nil
			deadline = renewed.ExpiresAt
			next = renewed.AcquiredAt.Add(every)
			s.event("renewed", fmt.Sprintf("lease ends in %s", lock.RoundDuration(time.Until(deadline))))
			continue
		}
		if nh, ok := lock.AsNotHeld(err); ok {
			l := &Lost{At: time.Now(), HeldFor: time.Since(lease.AcquiredAt), Reason: nh.Reason, Why: nh.Why()}
			if nh.Detail != "" {
				l.Why += " (" + nh.Detail + ")"
			}
			return l, renewals
		}
		lastErr = err
		s.event("renewal failed", fmt.Sprintf("%v; retrying, lease ends in %s", err, lock.RoundDuration(time.Until(deadline))))
		next = time.Now().Add(min(retry, time.Until(deadline)))
	}
}

// lost builds a loss found locally, asking the backend (briefly) who holds it now.
func (s *run) lost(ctx context.Context, reason lock.LostReason, why string) *Lost {
	l := &Lost{At: time.Now(), HeldFor: time.Since(s.res.Lease.AcquiredAt), Reason: reason, Why: why}
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if info, err := s.o.Locker.Inspect(ictx, s.res.Lease.Name); err == nil {
		switch {
		case info.Held && info.Holder != nil && info.Holder.Token != s.res.Lease.Token:
			l.Why += "; it is now held by " + info.Holder.String()
		case !info.Held:
			l.Why += "; it is now free"
		}
	}
	return l
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func clock(t time.Time) string { return t.Local().Format("15:04:05.000") }
