package lock

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
)

// Input limits shared by every backend.
const (
	// MaxNameLen is the longest lock name, in bytes. ZooKeeper paths and SQL keys
	// (VARCHAR(255) with room for a prefix) both fit it.
	MaxNameLen = 200
	// MinTTL is the shortest lease: below it, a round trip and the clock-drift
	// allowance eat the lease before the holder can use it.
	MinTTL = 100 * time.Millisecond
	// MaxTTL bounds a lease (a forgotten `lock acquire` must end some day).
	MaxTTL = 7 * 24 * time.Hour
	// DefaultTTL is --ttl's default.
	DefaultTTL = 30 * time.Second
	// DefaultPollInterval is --poll-interval's default.
	DefaultPollInterval = 100 * time.Millisecond
	// MaxLabelLen bounds --owner text.
	MaxLabelLen   = 200
	maxCommandLen = 300
)

// ValidateName checks a lock name: 1 to 200 bytes of printable UTF-8, no spaces, and no
// braces (Redis uses {…} as the hash tag that keeps a lock's keys in one cluster slot).
func ValidateName(name string) error {
	switch {
	case name == "":
		return errs.Usage("lock name is empty").WithHint("give a name such as deploy-prod or jobs/nightly")
	case len(name) > MaxNameLen:
		return errs.Usage("lock name is %d bytes long; the limit is %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return errs.Usage("lock name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		switch {
		case r == '{' || r == '}':
			return errs.Usage("lock name %q contains %q", name, r).
				WithHint("braces are reserved for the Redis hash tag; use letters, digits and - _ . : / @")
		case unicode.IsSpace(r) || !unicode.IsPrint(r):
			return errs.Usage("lock name %q contains a space or control character", name).
				WithHint("use letters, digits and - _ . : / @")
		}
	}
	return nil
}

// ValidateTTL checks a lease TTL.
func ValidateTTL(ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return errs.Usage("--ttl must be positive, got %s", ttl).WithHint("e.g. --ttl 30s")
	case ttl < MinTTL:
		return errs.Usage("--ttl %s is too short; the minimum is %s", ttl, MinTTL).
			WithHint("a lease shorter than a few round trips cannot be used safely")
	case ttl > MaxTTL:
		return errs.Usage("--ttl %s is too long; the maximum is %s", ttl, MaxTTL)
	case ttl%time.Millisecond != 0:
		return errs.Usage("--ttl %s is finer than a millisecond", ttl).WithHint("use whole milliseconds, e.g. 1500ms")
	}
	return nil
}

// ValidateLabel checks --owner text.
func ValidateLabel(s string) error {
	if len(s) > MaxLabelLen {
		return errs.Usage("--owner text is %d bytes; the limit is %d", len(s), MaxLabelLen)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return errs.Usage("--owner text %q contains control characters", s)
	}
	return nil
}

// Wait is how long Acquire waits for a held lock: not at all, up to a duration, or
// until the context ends.
type Wait struct {
	max     time.Duration
	forever bool
}

// NoWait fails at once when the lock is held.
var NoWait = Wait{}

// WaitForever waits until the context is cancelled.
var WaitForever = Wait{forever: true}

// WaitFor waits up to d.
func WaitFor(d time.Duration) Wait { return Wait{max: d} }

// Forever reports whether w waits without limit.
func (w Wait) Forever() bool { return w.forever }

// Max is the limit (0 for NoWait and WaitForever).
func (w Wait) Max() time.Duration { return w.max }

// Zero reports whether w does not wait.
func (w Wait) Zero() bool { return !w.forever && w.max <= 0 }

// Deadline is when waiting ends (zero time for forever).
func (w Wait) Deadline(start time.Time) time.Time {
	if w.forever {
		return time.Time{}
	}
	return start.Add(w.max)
}

// String is the --wait text.
func (w Wait) String() string {
	switch {
	case w.forever:
		return "forever"
	case w.max <= 0:
		return "0"
	}
	return w.max.String()
}

// ParseWait reads --wait: 0, a duration such as 30s, or forever.
func ParseWait(s string) (Wait, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch s {
	case "", "0", "0s", "no", "none":
		return NoWait, nil
	case "forever", "inf", "infinite":
		return WaitForever, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Wait{}, errs.Usage("bad --wait %q", s).WithHint("use 0, a duration such as 30s or 5m, or forever")
	}
	if d < 0 {
		return Wait{}, errs.Usage("--wait must not be negative, got %s", s)
	}
	return WaitFor(d), nil
}

// ParseStrategy reads --wait-strategy.
func ParseStrategy(s string) (WaitStrategy, error) {
	switch WaitStrategy(strings.ToLower(strings.TrimSpace(s))) {
	case "", WaitNotify:
		return WaitNotify, nil
	case WaitPoll:
		return WaitPoll, nil
	}
	return "", errs.Usage("unknown --wait-strategy %q", s).WithHint("use notify or poll")
}

// ValidatePollInterval checks --poll-interval.
func ValidatePollInterval(d time.Duration) error {
	if d < time.Millisecond {
		return errs.Usage("--poll-interval must be at least 1ms, got %s", d)
	}
	if d > MaxPollInterval {
		return errs.Usage("--poll-interval must be at most %s, got %s", MaxPollInterval, d).
			WithHint("a waiter's place in the queue is kept for its next planned retry plus a margin, and a retry plan is at most %s", MaxPollInterval)
	}
	return nil
}

// MaxPollInterval is the longest --poll-interval: backends keep a waiter's place in
// the queue until its next planned retry plus a margin, and plans are capped at this.
const MaxPollInterval = time.Minute

// CurrentOwner describes this process as a lock owner: host, user, the given pid and
// command (truncated), label and tool.
func CurrentOwner(pid int, command, label, tool string) Owner {
	o := Owner{PID: pid, Label: label, Tool: tool, Command: truncate(command, maxCommandLen)}
	o.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		o.User = u.Username
	} else {
		o.User = os.Getenv("USER")
	}
	return o
}

// QuoteCommand joins argv for display, quoting words that need it.
func QuoteCommand(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Describe names a wait for messages: "at once", "within 30s", "forever".
func (w Wait) Describe() string {
	switch {
	case w.forever:
		return "while waiting forever"
	case w.max <= 0:
		return "at once (--wait 0)"
	}
	return fmt.Sprintf("within --wait %s", w.max)
}
