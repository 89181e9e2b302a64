// Package lock is dsctl's backend-neutral lock contract: the types every lock backend
// (Redis today; ZooKeeper and SQL later) speaks, the Locker interface they implement,
// the input rules (names, TTLs, --wait), and the typed errors that map to dsctl's exit
// codes. Backends live in sub-packages (redislock); the run-under-lock supervisor
// (supervisor) and the contended benchmark (bench) only use this package, so they work
// unchanged on every backend.
//
// The model is a lease: Acquire returns a Lease whose holder Token proves ownership for
// Renew and Release, whose Fence is a number that grows with every acquisition (so a
// resource can reject writes from a holder that lost the lease without knowing it), and
// whose ExpiresAt is a conservative local deadline: the backend may keep the lease a
// little longer, never shorter, unless someone breaks it.
package lock

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FencingToken is a number that is larger for every new holder of a lock. A resource
// that remembers the largest token it has seen and refuses smaller ones is safe even
// when a paused holder wakes up after losing its lease. Zero means "no token": the
// backend cannot give a safe one (e.g. Redis quorum mode). It is written as a string
// in JSON (64-bit numbers do not survive JavaScript).
type FencingToken uint64

// MarshalText writes the token as decimal text.
func (f FencingToken) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatUint(uint64(f), 10)), nil
}

// UnmarshalText reads decimal text.
func (f *FencingToken) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("bad fencing token %q", string(b))
	}
	*f = FencingToken(v)
	return nil
}

// String is the decimal form, or "-" for no token.
func (f FencingToken) String() string {
	if f == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(f), 10)
}

// Owner describes who holds a lease, for people reading `inspect` and `list`.
// Nothing in it is used for safety (the Token is).
type Owner struct {
	Host string `json:"host,omitempty"`
	// PID is the process that holds the lease: the supervisor for `lock run`, the
	// calling shell or script for `lock acquire` (dsctl itself exits at once).
	PID  int    `json:"pid,omitempty"`
	User string `json:"user,omitempty"`
	// Command is what runs under the lock (`lock run`), or the dsctl command line.
	Command string `json:"command,omitempty"`
	// Label is free text from --owner.
	Label string `json:"label,omitempty"`
	// Tool names the program that took the lease, e.g. "dsctl 1.2.0".
	Tool string `json:"tool,omitempty"`
}

// String renders the owner in one line: label, user@host, pid, command.
func (o Owner) String() string {
	var parts []string
	if o.Label != "" {
		parts = append(parts, strconv.Quote(o.Label))
	}
	who := o.User
	if o.Host != "" {
		if who != "" {
			who += "@"
		}
		who += o.Host
	}
	if who != "" {
		parts = append(parts, who)
	}
	if o.PID > 0 {
		parts = append(parts, "pid "+strconv.Itoa(o.PID))
	}
	if o.Command != "" {
		parts = append(parts, strconv.Quote(o.Command))
	}
	if len(parts) == 0 {
		return "unknown owner"
	}
	return strings.Join(parts, " ")
}

// Lease is a held lock, as returned by Acquire and Renew.
type Lease struct {
	Name string `json:"name"`
	// Token is the holder token: Renew and Release only work with it.
	Token string       `json:"token"`
	Fence FencingToken `json:"fence,omitempty"`
	// FencingSafe is false when Fence is missing or cannot be trusted (quorum mode).
	FencingSafe bool          `json:"fencing_safe"`
	TTL         time.Duration `json:"-"`
	TTLMs       int64         `json:"ttl_ms"`
	// AcquiredAt is when the request that took (or last renewed) the lease was sent.
	AcquiredAt time.Time `json:"acquired_at"`
	// ExpiresAt is the conservative local deadline: request sent + TTL - clock drift.
	ExpiresAt time.Time `json:"expires_at"`
	Owner     Owner     `json:"owner,omitzero"`
	Backend   Backend   `json:"backend"`
	// Note explains a limit of this lease, e.g. why there is no safe fencing token.
	Note string `json:"note,omitempty"`
}

// Remaining is the time left on the lease by the local deadline.
func (l *Lease) Remaining(now time.Time) time.Duration { return l.ExpiresAt.Sub(now) }

// Backend says what a Locker talks to and what it can promise.
type Backend struct {
	// Kind is "redis", later "zookeeper", "mysql", "postgres".
	Kind string `json:"kind"`
	// Mode is "single" or "quorum" (Redis Redlock over independent masters).
	Mode      string   `json:"mode"`
	Endpoints []string `json:"endpoints"`
	// FencingSafe reports whether fencing tokens strictly increase across holders.
	FencingSafe bool `json:"fencing_safe"`
	// Notify reports whether waiters are woken by the backend (not by polling).
	Notify bool `json:"notify"`
	// Detached reports whether a lease outlives the process that took it (until its
	// TTL), so `lock acquire` can hand it to a script.
	Detached bool `json:"detached"`
	// EndsWithConnection reports that the server frees a lease when dsctl's connection
	// ends (SQL session locks): a holder may then learn of its loss before its local
	// deadline, while the backend still keeps every other holder out until then.
	EndsWithConnection bool `json:"ends_with_connection,omitempty"`
	// Warnings are weaknesses of this setup that do not stop it from working (e.g.
	// an even number of quorum members); commands show them on stderr.
	Warnings []string `json:"warnings,omitempty"`
}

// String is e.g. "redis 127.0.0.1:6379" or "redis quorum of 3 (a, b, c)".
func (b Backend) String() string {
	if b.Mode == ModeQuorum {
		return fmt.Sprintf("%s quorum of %d (%s)", b.Kind, len(b.Endpoints), strings.Join(b.Endpoints, ", "))
	}
	return b.Kind + " " + strings.Join(b.Endpoints, ",")
}

// Modes.
const (
	ModeSingle = "single"
	ModeQuorum = "quorum"
)

// Format names how a lock is stored, so `inspect` can say which library made it.
type Format string

// Known formats. Backends add their own (ZooKeeper recipes, SQL tables) as they come.
const (
	FormatNone      Format = ""          // no such lock
	FormatDsctl     Format = "dsctl"     // dsctl's own: token, owner, fencing counter
	FormatRedsync   Format = "redsync"   // go-redsync/redsync: string key, base64 token
	FormatRedislock Format = "redislock" // bsm/redislock: string key, token + metadata
	FormatRedisson  Format = "redisson"  // Redisson RLock: hash <uuid>:<threadId> -> count
	FormatString    Format = "string"    // a string key with a TTL (SET NX PX style), library unknown
	FormatNotALock  Format = "not-a-lock"
)

// Describe says in a few words what the format is.
func (f Format) Describe() string {
	switch f {
	case FormatDsctl:
		return "dsctl lease (token, owner, fencing counter, release notifications)"
	case FormatRedsync:
		return "go-redsync/redsync mutex (string key, random base64 token, no owner data)"
	case FormatRedislock:
		return "bsm/redislock lock (string key, random token + optional metadata)"
	case FormatRedisson:
		return "Redisson RLock (hash field <client uuid>:<thread id> = re-entrancy count)"
	case FormatString:
		return "string token with a TTL (SET NX PX style; library unknown)"
	case FormatNotALock:
		return "the key exists but does not look like a lock"
	}
	return "no lock"
}

// Holder is the current holder of a lock as seen by Inspect, List, and errors that
// name who holds what.
type Holder struct {
	Token string       `json:"token"`
	Fence FencingToken `json:"fence,omitempty"`
	// Owner is nil when the lock's format carries no owner data.
	Owner *Owner `json:"owner,omitempty"`
	// AcquiredAt is zero when unknown.
	AcquiredAt time.Time `json:"acquired_at,omitzero"`
	// TTLLeft is the time until the backend drops the lease; negative means no expiry.
	TTLLeft   time.Duration `json:"-"`
	TTLLeftMs int64         `json:"ttl_left_ms"`
	// Reentrancy is the hold count of re-entrant formats (Redisson), 0 otherwise.
	Reentrancy int `json:"reentrancy,omitempty"`
}

// String renders the holder in one line, for messages.
func (h *Holder) String() string {
	if h == nil {
		return "unknown holder"
	}
	var b strings.Builder
	if h.Owner != nil {
		b.WriteString(h.Owner.String())
	} else {
		b.WriteString("token " + ShortToken(h.Token))
	}
	if h.Fence != 0 {
		fmt.Fprintf(&b, ", fence %d", h.Fence)
	}
	switch {
	case h.TTLLeft > 0:
		fmt.Fprintf(&b, ", %s left", RoundDuration(h.TTLLeft))
	case h.TTLLeft < 0:
		b.WriteString(", no expiry")
	}
	return b.String()
}

// SetTTLLeft sets TTLLeft and its JSON form together.
func (h *Holder) SetTTLLeft(d time.Duration) {
	h.TTLLeft = d
	h.TTLLeftMs = d.Milliseconds()
	if d < 0 {
		h.TTLLeftMs = -1
	}
}

// Info is what Inspect and List report about one lock.
type Info struct {
	Name string `json:"name"`
	// Key is where the lock lives in the backend (Redis key, znode path, table row).
	Key    string `json:"key"`
	Held   bool   `json:"held"`
	Format Format `json:"format"`
	// FormatDetail says what the format is, in words.
	FormatDetail string `json:"format_detail"`
	// Object says what the key holds when it is not a lock (Format not-a-lock).
	Object *KeyObject `json:"object,omitempty"`
	Holder *Holder    `json:"holder,omitempty"`
	// Waiters is the number of processes waiting, or -1 when the backend cannot know
	// (formats whose clients poll).
	Waiters int `json:"waiters"`
	// LastFence is the last fencing token handed out for this name (0 if none).
	LastFence   FencingToken `json:"last_fence,omitempty"`
	FencingSafe bool         `json:"fencing_safe"`
	// LastBreak is the last `lock break` of this name, when the backend remembers it.
	LastBreak *Break `json:"last_break,omitempty"`
	// Queue is the lock's queue in order, holder first, then each waiter, on backends
	// whose waiters are visible (ZooKeeper). Empty elsewhere (Redis counts its
	// waiters in Waiters).
	Queue []QueueEntry `json:"queue,omitempty"`
	// Instances is the per-server view in quorum mode.
	Instances []InstanceInfo `json:"instances,omitempty"`
	Backend   Backend        `json:"backend"`
	Notes     []string       `json:"notes,omitempty"`
}

// QueueEntry is one member of a lock's queue: the holder (Holding) or a waiter.
type QueueEntry struct {
	// Node is where the member lives in the backend (a znode path).
	Node string `json:"node"`
	// Token identifies the member (for dsctl, its holder token).
	Token string `json:"token"`
	// Seq is its place in the queue (the sequence number of its node).
	Seq     int64        `json:"seq"`
	Fence   FencingToken `json:"fence,omitempty"`
	Holding bool         `json:"holding"`
	// Format is the library that made the member (dsctl, curator, kazoo, ...).
	Format Format `json:"format"`
	// Session is the backend session that owns the member (hex), when known.
	Session string `json:"session,omitempty"`
	// Owner is nil when the format carries no owner data.
	Owner   *Owner    `json:"owner,omitempty"`
	Created time.Time `json:"created,omitzero"`
	// Age is how long the member has been queued (or holding) when read.
	Age   time.Duration `json:"-"`
	AgeMs int64         `json:"age_ms"`
}

// InstanceInfo is one server's view of a lock in quorum mode.
type InstanceInfo struct {
	Endpoint string       `json:"endpoint"`
	Held     bool         `json:"held"`
	Format   Format       `json:"format,omitempty"`
	Token    string       `json:"token,omitempty"`
	Fence    FencingToken `json:"fence,omitempty"`
	TTLLeft  int64        `json:"ttl_left_ms,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// KeyObject describes a key that is not a lock: its type, expiry and size.
type KeyObject struct {
	// Type is the backend's type name ("string", "hash", "list", ...).
	Type string `json:"type"`
	// TTLLeftMs is the time to expiry in ms, -1 for none.
	TTLLeftMs int64 `json:"ttl_left_ms"`
	// Size is bytes of a string, fields of a hash, elements or members; -1 unknown.
	Size int64 `json:"size"`
}

// Break records a forced release: who, when, why, and whose lease it ended.
type Break struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	// Token is the holder token the break took away.
	Token string       `json:"token"`
	Fence FencingToken `json:"fence,omitempty"`
}

// WaitStrategy is how a waiter learns that the lock may be free.
type WaitStrategy string

// Strategies.
const (
	// WaitNotify is told by the backend when the lock is handed to it or may be free
	// (Redis pub/sub, ZooKeeper watch), or wakes when the holder's TTL runs out.
	WaitNotify WaitStrategy = "notify"
	// WaitPoll retries every PollInterval: the common baseline, kept for comparison
	// and for backends without notifications.
	WaitPoll WaitStrategy = "poll"
)

// AcquireOptions are the inputs of Acquire.
type AcquireOptions struct {
	TTL          time.Duration
	Wait         Wait
	Strategy     WaitStrategy
	PollInterval time.Duration
	Owner        Owner
	// RequireFencing refuses backends that cannot give safe fencing tokens.
	RequireFencing bool
	// OnWait, when set, is called each time the lock is found held by a holder not
	// seen before while waiting (for a status line).
	OnWait func(*Holder)
	// Detached asks for a lease that outlives this process until its TTL, on a
	// backend whose leases otherwise live with the session (ZooKeeper: a TTL node).
	// Backends whose leases are always detached (Redis) ignore it; those that cannot
	// give one refuse it with a usage error.
	Detached bool
	// Fair asks for strict first-come-first-served order among waiters (like
	// Redisson's fair lock): a newcomer never takes a free lock ahead of a live waiter
	// queued before it. Backends that cannot honour it refuse it.
	Fair bool
	// Permits makes the lock a counting semaphore: 0 or 1 is a mutex; N > 1 lets up to
	// N holders hold the name at once, each with its own lease (ZooKeeper: Curator's
	// InterProcessSemaphoreV2 layout). Backends that cannot do it refuse N > 1 with a
	// usage error.
	Permits int
}

// ListOptions are the inputs of List.
type ListOptions struct {
	Prefix string
	// Foreign also lists locks made by other libraries (recognised by their format).
	Foreign bool
}

// BreakOptions are the inputs of Break.
type BreakOptions struct {
	Reason string
	// By says who breaks the lock (user@host), for the record.
	By string
	// IfToken, when set, breaks the lock only while that holder token holds it.
	IfToken string
	// Raw allows deleting a key that is not recognised as a lock of any known format
	// (the only way to do so).
	Raw bool
}

// Locker is the contract every lock backend implements. All methods are safe for
// concurrent use. Errors are typed (see errors.go): NotAcquired (exit 3), NotHeld and
// Lost (exit 4), and the backend's unreachable errors (exit 6).
type Locker interface {
	// Backend describes the backend and what it can promise.
	Backend() Backend
	// Acquire takes the lock, waiting as opt.Wait says.
	Acquire(ctx context.Context, name string, opt AcquireOptions) (*Lease, error)
	// Renew extends the lease of the holder of token to ttl from now. It never
	// re-acquires a lock that was lost: that is a NotHeldError.
	Renew(ctx context.Context, name, token string, ttl time.Duration) (*Lease, error)
	// Release frees the lock if token holds it and passes it on (hands it to the next
	// waiter, or wakes the waiters); with another token it changes nothing and returns
	// a NotHeldError naming the holder.
	Release(ctx context.Context, name, token string) error
	// Inspect reports the lock's state, recognising other libraries' formats.
	Inspect(ctx context.Context, name string) (*Info, error)
	// List reports the locks whose name starts with opt.Prefix.
	List(ctx context.Context, opt ListOptions) ([]Info, error)
	// Break deletes the lock whoever holds it, wakes the waiters, and returns what it
	// was before (Held false when there was nothing to break).
	Break(ctx context.Context, name string, opt BreakOptions) (*Info, error)
	// Close releases connections (not leases).
	Close() error
}

// ClockDrift is the allowance for clock rate differences between this machine and
// the backend, subtracted from every lease: 1% of the TTL plus 2 ms (as in Redlock).
func ClockDrift(ttl time.Duration) time.Duration {
	return ttl/100 + 2*time.Millisecond
}

// ShortToken abbreviates a token for messages (full tokens are in -o json).
func ShortToken(t string) string {
	if len(t) <= 12 {
		return t
	}
	return t[:8] + "…"
}

// RoundDuration rounds for display: ms precision under 10 s, then 0.1 s.
func RoundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second && d > -10*time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
