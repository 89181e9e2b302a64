package verify_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

// brokenLocker is a deliberately wrong Redis lock, built here so the checker can be
// shown to catch each mistake on a real server. Each flaw is one a real library has
// shipped or a reviewer found in dsctl's own lock.
type brokenLocker struct {
	c    *redis.Client
	flaw string
}

// Flaws.
const (
	flawNoNX           = "no-nx"            // SET without NX: anyone "acquires"
	flawShortTTL       = "short-ttl"        // the server's TTL is a third of the lease's
	flawReleaseNoCheck = "release-no-check" // release is a plain DEL, whoever holds it
	flawFullTTL        = "full-ttl"         // deadline computed from the full TTL after a pause
	flawSameFence      = "same-fence"       // every holder gets fence 1
	flawNone           = "none"             // the correct version of the same lock
)

var errNotImplemented = errors.New("not implemented by the test locker")

func (b *brokenLocker) Backend() lock.Backend {
	return lock.Backend{Kind: "redis", Mode: lock.ModeSingle, Endpoints: []string{b.c.Options().Addr}, FencingSafe: true}
}

func key(name string) string { return "dsctl-verify-test:{" + name + "}" }

var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

func (b *brokenLocker) Acquire(ctx context.Context, name string, opt lock.AcquireOptions) (*lock.Lease, error) {
	tok := make([]byte, 8)
	_, _ = crand.Read(tok)
	token := hex.EncodeToString(tok)
	deadline := opt.Wait.Deadline(time.Now())
	for {
		sent := time.Now()
		px := opt.TTL
		if b.flaw == flawShortTTL {
			px = opt.TTL / 3
		}
		var ok bool
		var err error
		if b.flaw == flawNoNX {
			err = b.c.Set(ctx, key(name), token, px).Err()
			ok = err == nil
		} else {
			ok, err = b.c.SetNX(ctx, key(name), token, px).Result()
		}
		if err != nil {
			return nil, errs.New(errs.KindUnreachable, "test locker: %v", err)
		}
		if ok {
			f, err := b.c.Incr(ctx, key(name)+":fence").Result()
			if err != nil {
				return nil, errs.New(errs.KindUnreachable, "test locker: %v", err)
			}
			if b.flaw == flawSameFence {
				f = 1
			}
			expires := sent.Add(opt.TTL - lock.ClockDrift(opt.TTL))
			if b.flaw == flawFullTTL && rand.IntN(3) == 0 { // a pause between the answer and the return...
				time.Sleep(opt.TTL + time.Duration(rand.Int64N(int64(opt.TTL/2))))
				expires = time.Now().Add(opt.TTL - lock.ClockDrift(opt.TTL)) // ...not counted
			}
			return &lock.Lease{Name: name, Token: token, Fence: lock.FencingToken(f), FencingSafe: true, TTL: opt.TTL,
				AcquiredAt: sent, ExpiresAt: expires, Backend: b.Backend()}, nil
		}
		if opt.Wait.Zero() || !time.Now().Before(deadline) {
			return nil, lock.NotAcquired(&lock.NotAcquiredError{Name: name, Wait: opt.Wait})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (b *brokenLocker) Renew(ctx context.Context, name, token string, ttl time.Duration) (*lock.Lease, error) {
	sent := time.Now()
	n, err := renewScript.Run(ctx, b.c, []string{key(name)}, token, strconv.FormatInt(ttl.Milliseconds(), 10)).Int()
	if err != nil {
		return nil, errs.New(errs.KindUnreachable, "test locker: %v", err)
	}
	if n != 1 {
		return nil, lock.NotHeld(&lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired})
	}
	return &lock.Lease{Name: name, Token: token, TTL: ttl, AcquiredAt: sent, ExpiresAt: sent.Add(ttl - lock.ClockDrift(ttl)), FencingSafe: true}, nil
}

func (b *brokenLocker) Release(ctx context.Context, name, token string) error {
	if b.flaw == flawReleaseNoCheck {
		return b.c.Del(ctx, key(name)).Err()
	}
	n, err := releaseScript.Run(ctx, b.c, []string{key(name)}, token).Int()
	if err != nil {
		return errs.New(errs.KindUnreachable, "test locker: %v", err)
	}
	if n != 1 {
		return lock.NotHeld(&lock.NotHeldError{Name: name, Token: token, Reason: lock.LostExpired})
	}
	return nil
}

func (b *brokenLocker) Inspect(context.Context, string) (*lock.Info, error) {
	return nil, errNotImplemented
}
func (b *brokenLocker) List(context.Context, lock.ListOptions) ([]lock.Info, error) {
	return nil, errNotImplemented
}
func (b *brokenLocker) Break(context.Context, string, lock.BreakOptions) (*lock.Info, error) {
	return nil, errNotImplemented
}
func (b *brokenLocker) Close() error { return b.c.Close() }
