// Package errs holds dsctl's typed errors. Every probe returns one of these kinds
// (or wraps one) so the command layer can map it to an exit code without string matching.
// The kind-to-exit-code table itself lives in commands/exitcodes.go.
package errs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Kind classifies an error for the exit-code table.
type Kind int

const (
	// KindRuntime is any failure that is not one of the kinds below (exit 1).
	KindRuntime Kind = iota
	// KindUsage is bad input: a flag, an argument, a file the user gave (exit 2).
	KindUsage
	// KindLockNotAcquired means the lock was held by someone else within --wait (exit 3).
	KindLockNotAcquired
	// KindLockLost means a held lease was lost before the work finished (exit 4).
	KindLockLost
	// KindAuditFailed means an audit found problems at or above --fail-on (exit 5).
	KindAuditFailed
	// KindUnreachable means a backend could not be reached or answered too late (exit 6).
	KindUnreachable
	// KindInterrupted means the user pressed ctrl-C or the process got SIGTERM (exit 130).
	KindInterrupted
)

// Error is dsctl's error value: a kind, a message that names the input, and an optional
// hint that says what to do next.
type Error struct {
	Kind Kind
	Msg  string
	Hint string
	Err  error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil && s == "" {
		s = e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// New makes an error of the given kind.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Usage reports bad input: exit 2.
func Usage(format string, args ...any) *Error { return New(KindUsage, format, args...) }

// WithHint returns a copy of e with a hint.
func (e *Error) WithHint(format string, args ...any) *Error {
	c := *e
	c.Hint = fmt.Sprintf(format, args...)
	return &c
}

// Wrap returns a copy of e that wraps cause (kept for errors.Is/As, not printed when
// Msg is set: Msg must already say what went wrong in the user's terms).
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// Unreachable reports a backend that did not answer: exit 6. It names the backend and
// the endpoint, the time allowed, and what to check.
func Unreachable(backend, endpoint string, timeout time.Duration, hint string, cause error) *Error {
	msg := fmt.Sprintf("%s: cannot reach %s within %s", backend, endpoint, timeout)
	if cause != nil {
		if d := describeCause(cause); d != "" {
			msg += ": " + d
		}
	}
	return &Error{Kind: KindUnreachable, Msg: msg, Hint: hint, Err: cause}
}

// describeCause shortens network errors to the part a user can act on
// ("connect: connection refused"); a timeout says nothing more than "within".
func describeCause(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Timeout() {
			return ""
		}
		return op.Op + ": " + rootCause(op.Err).Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ""
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimRight(msg[:i], ": ")
	}
	return msg
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// KindOf returns the kind of err: the kind of the outermost *Error in its chain,
// KindRuntime otherwise.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var p *Partial
	if errors.As(err, &p) {
		return p.Kind
	}
	return KindRuntime
}

// ExitStatus carries an exit code chosen by someone else, e.g. the child process of
// `lock run`, which dsctl passes through unchanged. It prints nothing of its own.
type ExitStatus struct {
	Code int
}

func (e *ExitStatus) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Partial reports that some items of a bulk input failed while the others succeeded.
// The failures were already reported item by item; this error only sets the exit code.
type Partial struct {
	Kind   Kind
	Failed int
	Total  int
	What   string
}

func (e *Partial) Error() string {
	return fmt.Sprintf("%d of %d %s failed", e.Failed, e.Total, e.What)
}
