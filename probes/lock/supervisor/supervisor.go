// Package supervisor runs a command under a lock (`dsctl lock run`) on any lock
// backend: take the lease, start the child directly (no shell unless asked), renew the
// lease every TTL/3, forward SIGINT/SIGTERM, release when the child exits and return
// its exit code.
//
// The child must not outlive the lease. The lease's local deadline alone decides when
// it is stopped (see schedule.go): SIGTERM at deadline - grace - margin and SIGKILL at
// deadline - margin unless a renewal succeeded first, whatever state the renewals are
// in; a renewal that finds the lease gone (broken, taken, expired) stops it at once.
// Asking the backend what happened comes after the signals. It prints nothing: the
// caller gets a Result saying what happened, when and why.
//
// One residual no client can close: if this process itself does not run (SIGSTOP,
// a VM or a machine paused) while the child does, nothing sends the signals until it
// runs again. It then acts at once and reports LostStalled; only a resource that checks
// the fencing token (DSCTL_LOCK_FENCE) rejects the child's writes in that window.
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
	"sync/atomic"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// OnLost is what happens to the child when the lease is lost.
type OnLost string

// Policies.
const (
	// OnLostTerm sends SIGTERM grace + margin before the lease's local end and SIGKILL
	// margin before it (SIGTERM at once, SIGKILL at most grace later, when a renewal
	// finds the lease gone).
	OnLostTerm OnLost = "term"
	// OnLostKill sends SIGKILL margin before the lease's local end (at once when a
	// renewal finds the lease gone).
	OnLostKill OnLost = "kill"
	// OnLostIgnore lets the child run on; the loss is declared at the lease's local end
	// and the run still ends as lost.
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
	// Grace is the time between SIGTERM and SIGKILL: DefaultGrace(TTL) when zero, and
	// less than half the TTL (CheckGrace).
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
	// RenewEvery is the renewal period (default TTL/3, shorter when a long grace leaves
	// a short window before SIGTERM; a longer value is not used).
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
	// Deadline is the lease's local end when the loss was declared.
	Deadline time.Time `json:"lease_end,omitzero"`
	// TermSent and KillSent are when SIGTERM and SIGKILL went to the child, if they did.
	TermSent time.Time `json:"sigterm_at,omitzero"`
	KillSent time.Time `json:"sigkill_at,omitzero"`
}

// Err is the error for the exit code: exit 4 naming when and why the lease was lost;
// the child's own exit code (errs.ExitStatus) when it failed; nil when it succeeded.
func (r *Result) Err() error {
	if r.Lost != nil {
		msg := fmt.Sprintf("lock %q lost at %s, %s after it was taken: %s; %s",
			r.Lease.Name, r.Lost.At.Local().Format("15:04:05.000"), lock.RoundDuration(r.Lost.HeldFor), r.Lost.Why, r.Lost.Action)
		hint := "the child's work may overlap with the next holder's; a resource that checks DSCTL_LOCK_FENCE rejects its late writes"
		l := r.Lost
		stoppedInTime := (!l.KillSent.IsZero() && l.KillSent.Before(l.Deadline)) || (!l.TermSent.IsZero() && r.Ended.Before(l.Deadline))
		if l.Reason == lock.LostUnreachable && stoppedInTime {
			hint = "the child was stopped before the lease could end, so before anyone else could take the lock; its work is unfinished"
		}
		return &errs.Error{Kind: errs.KindLockLost, Msg: msg, Hint: hint}
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
	ttl := o.Acquire.TTL
	if err := lock.ValidateTTL(ttl); err != nil {
		return nil, err
	}
	defaultGrace := o.Grace == 0
	if defaultGrace {
		o.Grace = DefaultGrace(ttl)
	}
	if err := CheckGrace(o.Grace, ttl); err != nil {
		return nil, err
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
	s := &run{o: o, res: &Result{}, t: newTiming(ttl, o.Grace, o.RenewEvery)}
	lease, err := o.Locker.Acquire(ctx, o.Name, o.Acquire)
	if err != nil {
		return nil, err
	}
	s.res.Lease = lease
	if bound := Bound(lease); bound < ttl {
		// The backend holds the lease for less than the TTL (ZooKeeper: the session
		// timeout is shorter): renewals, grace and margin follow that bound.
		if defaultGrace {
			o.Grace = DefaultGrace(bound)
		} else if err := CheckGrace(o.Grace, bound); err != nil {
			_ = o.Locker.Release(context.WithoutCancel(ctx), o.Name, lease.Token)
			return nil, errs.Usage("--grace %s is too long for this lease: %s bounds it to %s, less than --ttl %s", o.Grace, lease.Backend.Kind, bound, ttl).
				WithHint("use a --grace under %s (the lock was released, the command did not run)", bound/2)
		}
		s.o.Grace = o.Grace
		s.t = newTiming(bound, o.Grace, o.RenewEvery)
		s.event("bounded", fmt.Sprintf("the backend holds the lease for %s, less than the TTL", lock.RoundDuration(bound)))
	}
	s.sched = newSchedule(o.OnLost, s.t, lease)
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

// Bound is how long the backend holds lease without a renewal: its TTL, or less when
// the backend bounds it (a ZooKeeper lease ends with its session, whose timeout may be
// shorter than the TTL). It inverts lock.ClockDrift on the lease's local span, so call
// it on a lease fresh from Acquire or Renew.
func Bound(lease *lock.Lease) time.Duration {
	span := lease.ExpiresAt.Sub(lease.AcquiredAt)
	bound := time.Duration(float64(span+2*time.Millisecond) / 0.99)
	// Within 5% of the TTL is the TTL (a quorum's own round trips shave a little off
	// the span; that is not a bound).
	if bound >= lease.TTL-lease.TTL/20 || bound <= 0 {
		return lease.TTL
	}
	return bound
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
	o     Options
	res   *Result
	cmd   *exec.Cmd
	t     timing
	sched *schedule
	// inflight is the send time (UnixNano) of the renewal in flight, 0 when none.
	inflight atomic.Int64
}

func (s *run) event(what, detail string) {
	if s.o.OnEvent != nil {
		s.o.OnEvent(Event{At: time.Now(), What: what, Detail: detail})
	}
}

// renewal is the outcome of one renewal call.
type renewal struct {
	lease *lock.Lease
	err   error
	// offset is bootOffset just before the request was sent.
	offset time.Duration
}

// supervise waits for the child while the renewer renews, forwarding signals and
// stopping the child on the lease's schedule. Nothing here waits for a renewal.
func (s *run) supervise(ctx context.Context) {
	waited := make(chan error, 1)
	go func() { waited <- s.cmd.Wait() }()
	rctx, stopRenewer := context.WithCancel(ctx)
	outcomes := make(chan renewal)
	go s.renewer(rctx, outcomes)

	var tick <-chan time.Time
	if _, ok := bootOffset(); ok {
		ticker := time.NewTicker(s.t.tick)
		defer ticker.Stop()
		tick = ticker.C
	}
	var waitErr error
loop:
	for {
		s.actIfDue()
		var due <-chan time.Time
		var timer *time.Timer
		if at := s.sched.next(); !at.IsZero() {
			timer = time.NewTimer(time.Until(at))
			due = timer.C
		}
		select {
		case waitErr = <-waited:
			stopTimer(timer)
			break loop
		case r := <-outcomes:
			s.actIfDue() // an overdue action comes first, e.g. after SIGSTOP
			s.outcome(r)
		case <-due:
		case <-tick:
		case sig := <-s.o.Signals:
			if !(s.o.Foreground && isInterrupt(sig)) { // else the terminal already delivered it
				_ = signalChild(s.cmd.Process, sig, !s.o.Foreground)
				s.res.Forwarded = append(s.res.Forwarded, sig.String())
				s.event("forwarded", sig.String())
			}
		}
		stopTimer(timer)
	}
	s.res.Ended = time.Now()
	s.res.ExitCode, s.res.Signal = exitInfo(s.cmd.ProcessState, waitErr)
	stopRenewer()
	st := s.sched
	if l := st.lost; l != nil {
		if !st.termSent.IsZero() && st.killSent.IsZero() {
			l.Action += fmt.Sprintf(" and exited %s later", max(lock.RoundDuration(s.res.Ended.Sub(st.termSent)), time.Millisecond))
		}
		if st.lateRenewal && s.o.OnLost != OnLostIgnore {
			l.Action += "; a renewal succeeded afterwards, too late"
		}
		if s.o.OnLost == OnLostIgnore {
			l.Action += fmt.Sprintf("; it exited with code %d", s.res.ExitCode)
		}
	} else {
		select {
		case r := <-outcomes: // lost just as the child exited
			if nh, ok := lock.AsNotHeld(r.err); ok {
				s.res.Lost = &Lost{At: time.Now(), HeldFor: time.Since(s.res.Lease.AcquiredAt), Reason: nh.Reason,
					Why: nh.Why(), Action: "the child had already exited", Deadline: st.deadline}
			}
		default:
		}
	}
	if st.lost != nil {
		s.res.Lost = st.lost
		s.diagnose(ctx)
	}
	s.release(ctx)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// actIfDue runs every action of the schedule whose time has come.
func (s *run) actIfDue() {
	s.sched.checkSuspend()
	for {
		at := s.sched.next()
		now := time.Now()
		if at.IsZero() || now.Before(at) {
			return
		}
		var inflight time.Time
		if ns := s.inflight.Load(); ns != 0 {
			inflight = time.Unix(0, ns)
		}
		s.signal(s.sched.fire(now, at, inflight))
		if s.sched.lost != nil && s.sched.lost.At.Equal(now) {
			s.event("lost", s.sched.lost.Why)
		}
	}
}

func (s *run) outcome(r renewal) {
	if r.err == nil {
		s.res.Renewals++
		s.sched.renewed(r.lease, r.offset)
		s.event("renewed", fmt.Sprintf("lease ends in %s", lock.RoundDuration(time.Until(s.sched.deadline))))
		return
	}
	now := time.Now()
	if nh, ok := lock.AsNotHeld(r.err); ok {
		first := s.sched.lost == nil
		s.signal(s.sched.notHeld(now, nh))
		if first {
			s.event("lost", s.sched.lost.Why)
		}
		return
	}
	s.sched.failed(now, r.err)
	s.event("renewal failed", fmt.Sprintf("%v; retrying, lease ends in %s", r.err, lock.RoundDuration(s.sched.deadline.Sub(now))))
}

func (s *run) signal(sig os.Signal) {
	if sig == nil {
		return
	}
	_ = signalChild(s.cmd.Process, sig, !s.o.Foreground)
	name := "SIGKILL"
	if sig != os.Kill {
		name = "SIGTERM"
	}
	s.event("signalled", name)
}

// renewer renews the lease every t.every, retrying failures every t.retry, each call
// bounded by t.attempt and by the lease's end, and reports every outcome. It stops
// when ctx ends, when the lease is found gone, or when the lease's local end has
// passed (the schedule has acted by then). The supervisor never waits for it.
func (s *run) renewer(ctx context.Context, out chan<- renewal) {
	lease := s.res.Lease
	deadline := lease.ExpiresAt
	next := lease.AcquiredAt.Add(s.t.every)
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		sent := time.Now()
		if !sent.Before(deadline) {
			return
		}
		offset, _ := bootOffset()
		s.inflight.Store(sent.UnixNano())
		rctx, cancel := context.WithDeadline(ctx, minTime(deadline, sent.Add(s.t.attempt)))
		renewed, err := s.o.Locker.Renew(rctx, lease.Name, lease.Token, lease.TTL)
		cancel()
		s.inflight.Store(0)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- renewal{lease: renewed, err: err, offset: offset}:
		case <-ctx.Done():
			return
		}
		if err == nil {
			if renewed.ExpiresAt.After(deadline) {
				deadline = renewed.ExpiresAt
			}
			next = renewed.AcquiredAt.Add(s.t.every)
			continue
		}
		if _, ok := lock.AsNotHeld(err); ok {
			return
		}
		next = time.Now().Add(s.t.retry)
	}
}

// diagnose asks the backend, after the child was dealt with, who holds the lock now,
// for a loss that was found locally (no renewal in time, or this process stalled).
func (s *run) diagnose(ctx context.Context) {
	l := s.res.Lost
	if s.sched.gone || (l.Reason != lock.LostUnreachable && l.Reason != lock.LostStalled) {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := s.o.Locker.Inspect(ictx, s.res.Lease.Name)
	if err != nil {
		return
	}
	switch {
	case info.Held && info.Holder != nil && info.Holder.Token == s.res.Lease.Token:
		l.Why += "; it was still held by this lease afterwards"
	case info.Held && info.Holder != nil:
		l.Why += "; it is now held by " + info.Holder.String()
	case !info.Held:
		l.Why += "; it is now free"
	}
}

// release gives the lease back. A release that finds the lock not held means it was
// lost after the last renewal, while the child still ran: that is a loss too. After a
// loss it is bounded to a second: the lease is most likely gone, or the server
// unreachable, and the child is already stopped.
func (s *run) release(ctx context.Context) {
	if s.res.Lost != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
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

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func clock(t time.Time) string { return t.Local().Format("15:04:05.000") }
