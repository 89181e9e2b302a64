package redislock_test

import (
	"strings"
	"testing"
	"time"

	bsm "github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	rsredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

// A key is a lock only when its value matches a known lock format. Everything else is
// reported for what it is, refused by break, and deleted only with Raw. Against real
// Redis: the application data must still be there after every refused break.
func TestKeysThatAreNotLocks(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	base := locktest.Name(t, "app")

	type keyCase struct {
		what  string
		key   string
		make  func(key string)
		check func(key string) bool // the data is intact
		want  []string              // in FormatDetail and notes
	}
	str := func(val string, ttl time.Duration) (func(string), func(string) bool) {
		return func(k string) { c.Set(ctx, k, val, ttl) },
			func(k string) bool { return c.Get(ctx, k).Val() == val }
	}
	counterMake, counterCheck := str("12345", 0)
	cacheMake, cacheCheck := str("12345", time.Minute)
	rsMake, rsCheck := str("q83vEjRWeJ0Sm7LhBcZwgA==", 0)     // a redsync token, no TTL
	blMake, blCheck := str("GX8m0KqLz5VbT2rNw1yYcQworker", 0) // a redislock value, no TTL
	lowerMake, lowerCheck := str("user_profile_cache_keyQ", time.Minute)
	cases := []keyCase{
		{"counter without TTL", "counter", counterMake, counterCheck, []string{"string", "5 bytes", "no expiry"}},
		{"counter with TTL", "cache", cacheMake, cacheCheck, []string{"string", "5 bytes", "expires in"}},
		{"list", "queue", func(k string) { c.RPush(ctx, k, "a", "b") },
			func(k string) bool { return c.LLen(ctx, k).Val() == 2 }, []string{"list", "2 elements"}},
		{"hash not Redisson's", "user", func(k string) { c.HSet(ctx, k, "name", "ada", "visits", "3") },
			func(k string) bool { return c.HGet(ctx, k, "name").Val() == "ada" }, []string{"hash", "2 fields"}},
		{"one-field hash not Redisson's", "flags", func(k string) { c.HSet(ctx, k, "beta", "1"); c.PExpire(ctx, k, time.Minute) },
			func(k string) bool { return c.HGet(ctx, k, "beta").Val() == "1" }, []string{"hash", "1 field"}},
		{"redsync-shaped token without TTL", "rs", rsMake, rsCheck, []string{"string", "24 bytes", "no expiry", "redsync", "sets one"}},
		{"redislock-shaped token without TTL", "bl", blMake, blCheck, []string{"no expiry", "redislock"}},
		{"Redisson-shaped hash without TTL", "rh", func(k string) { c.HSet(ctx, k, "8f14e45f-ceea-467f-a0e5-7ea9c1a2f3d1:57", 1) },
			func(k string) bool { return c.HLen(ctx, k).Val() == 1 }, []string{"hash", "1 field", "no expiry", "Redisson"}},
		{"lowercase identifier with TTL", "ident", lowerMake, lowerCheck, []string{"string", "23 bytes"}},
		{"set", "tags", func(k string) { c.SAdd(ctx, k, "x", "y", "z") },
			func(k string) bool { return c.SCard(ctx, k).Val() == 3 }, []string{"set", "3 members"}},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			key := base + "/" + tc.key
			tc.make(key)
			t.Cleanup(func() { c.Del(ctx, key) })

			info, err := l.Inspect(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Held || info.Format != lock.FormatNotALock || info.Holder != nil || info.Key != key {
				t.Fatalf("inspect: held %v format %q holder %+v key %q", info.Held, info.Format, info.Holder, info.Key)
			}
			text := info.FormatDetail + " | " + strings.Join(info.Notes, " | ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("inspect does not say %q: %s", w, text)
				}
			}

			_, err = l.Break(ctx, key, lock.BreakOptions{By: "test"})
			if errs.KindOf(err) != errs.KindUsage || err == nil {
				t.Fatalf("break without Raw: %v, want a usage error", err)
			}
			for _, w := range []string{key, "not a lock", "--raw", "nothing was deleted", tc.want[0]} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("break error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), "()") {
				t.Errorf("break error has an empty reason: %v", err)
			}
			if !tc.check(key) {
				t.Fatal("break without Raw changed the data")
			}
			// A token does not help: it is still not a lock.
			if _, err := l.Break(ctx, key, lock.BreakOptions{IfToken: "12345"}); errs.KindOf(err) != errs.KindUsage || !tc.check(key) {
				t.Fatalf("break --if-token of a non-lock: %v", err)
			}

			listed, err := l.List(ctx, lock.ListOptions{Prefix: key, Foreign: true})
			if err != nil || len(listed) != 0 {
				t.Fatalf("list --foreign shows a non-lock: %+v %v", listed, err)
			}

			prev, err := l.Break(ctx, key, lock.BreakOptions{By: "test", Raw: true})
			if err != nil || prev.Format != lock.FormatNotALock || prev.Held {
				t.Fatalf("break with Raw: %+v %v", prev, err)
			}
			if c.Exists(ctx, key).Val() != 0 {
				t.Fatal("break with Raw left the key")
			}
		})
	}
}

// An application key whose name is also a free dsctl lock name is not shown as held,
// and break does not delete it; a held dsctl lock of that name is still the lock.
func TestAppKeyNamedLikeADsctlLock(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	name := locktest.Name(t, "counter")
	c.Set(ctx, name, "12345", 0)
	t.Cleanup(func() { c.Del(ctx, name, "dsctl:lock:{"+name+"}:fence", "dsctl:lock:{"+name+"}:break") })

	info, err := l.Inspect(ctx, name)
	if err != nil || info.Held || info.Format != lock.FormatNotALock {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	if !strings.Contains(strings.Join(info.Notes, " "), "no dsctl lock named") {
		t.Errorf("inspect does not say the dsctl lock is free: %v", info.Notes)
	}
	_, err = l.Break(ctx, name, lock.BreakOptions{By: "test"})
	if errs.KindOf(err) != errs.KindUsage || c.Get(ctx, name).Val() != "12345" || !strings.Contains(err.Error(), "no dsctl lock named") {
		t.Fatalf("break: %v; value %q", err, c.Get(ctx, name).Val())
	}

	lease, err := l.Acquire(ctx, name, ownerOpts(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil || !info.Held || info.Format != lock.FormatDsctl || info.Holder.Token != lease.Token {
		t.Fatalf("inspect of the held dsctl lock: %+v %v", info, err)
	}
	prev, err := l.Break(ctx, name, lock.BreakOptions{By: "test"})
	if err != nil || !prev.Held || prev.Format != lock.FormatDsctl {
		t.Fatalf("break of the dsctl lock: %+v %v", prev, err)
	}
	if c.Get(ctx, name).Val() != "12345" {
		t.Fatal("breaking the dsctl lock touched the application key")
	}
}

// A dsctl key that does not hold a dsctl lease (someone wrote it by hand) is not a lock.
func TestDsctlKeyWithForeignValueIsNotALock(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	name := locktest.Name(t, "hand")
	key := "dsctl:lock:{" + name + "}"
	c.Set(ctx, key, "hello", 0)
	t.Cleanup(func() { c.Del(ctx, key) })
	info, err := l.Inspect(ctx, name)
	if err != nil || info.Held || info.Format != lock.FormatNotALock || info.Key != key {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	if _, err := l.Break(ctx, name, lock.BreakOptions{}); errs.KindOf(err) != errs.KindUsage || c.Get(ctx, key).Val() != "hello" {
		t.Fatalf("break: %v", err)
	}
	if own, err := l.List(ctx, lock.ListOptions{Prefix: name}); err != nil || len(own) != 0 {
		t.Fatalf("list shows it: %+v %v", own, err)
	}
	if _, err := l.Break(ctx, name, lock.BreakOptions{Raw: true}); err != nil || c.Exists(ctx, key).Val() != 0 {
		t.Fatalf("break --raw: %v", err)
	}
}

// Every known format, made by the real library where it is Go, is a lock; break with
// IfToken deletes it only for its holder's token.
func TestBreakIfToken(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	l := newLocker(t, addr)
	c := l.Clients()[0]
	base := locktest.Name(t, "iftoken")

	lease, err := l.Acquire(ctx, base+"/dsctl", ownerOpts(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(ctx, "dsctl:lock:{"+base+"/dsctl}:fence", "dsctl:lock:{"+base+"/dsctl}:break") })

	mutex := redsync.New(goredis.NewPool(c)).NewMutex(base+"/redsync", redsync.WithExpiry(30*time.Second), redsync.WithTries(1))
	if err := mutex.Lock(); err != nil {
		t.Fatal(err)
	}
	bl, err := bsm.New(c).Obtain(ctx, base+"/redislock", 30*time.Second, &bsm.Options{Metadata: "worker-7"})
	if err != nil {
		t.Fatal(err)
	}
	// Redisson RLock written by hand as its lock script does (there is no JVM here):
	// HSET name "<client uuid>:<thread id>" 1; PEXPIRE name leaseTime.
	redisson, field := base+"/redisson", "0b7e1d2c-5f4a-4e3b-9c8d-7a6b5c4d3e2f:1"
	c.HSet(ctx, redisson, field, 1)
	c.PExpire(ctx, redisson, 30*time.Second)
	t.Cleanup(func() { c.Del(ctx, base+"/redsync", base+"/redislock", redisson) })

	for _, tc := range []struct {
		name, key, token string
		format           lock.Format
		intact           func() bool
	}{
		{base + "/dsctl", "dsctl:lock:{" + base + "/dsctl}", lease.Token, lock.FormatDsctl,
			func() bool { return c.Get(ctx, "dsctl:lock:{"+base+"/dsctl}").Val() == lease.Token }},
		{base + "/redsync", base + "/redsync", mutex.Value(), lock.FormatRedsync,
			func() bool { return c.Get(ctx, base+"/redsync").Val() == mutex.Value() }},
		{base + "/redislock", base + "/redislock", bl.Token(), lock.FormatRedislock,
			func() bool { return c.Get(ctx, base+"/redislock").Val() == bl.Token()+"worker-7" }},
		{redisson, redisson, field, lock.FormatRedisson,
			func() bool { return c.HGet(ctx, redisson, field).Val() == "1" }},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			info, err := l.Inspect(ctx, tc.name)
			if err != nil || !info.Held || info.Format != tc.format || info.Holder == nil || info.Holder.Token != tc.token {
				t.Fatalf("inspect: %+v %v", info, err)
			}
			_, err = l.Break(ctx, tc.name, lock.BreakOptions{By: "test", IfToken: "not-the-holder"})
			nh, ok := lock.AsNotHeld(err)
			if !ok || errs.KindOf(err) != errs.KindLockLost || nh.Reason != lock.LostTaken || nh.Current == nil || nh.Current.Token != tc.token {
				t.Fatalf("break with a wrong token: %v", err)
			}
			if !strings.Contains(err.Error(), "not-the-") || !strings.Contains(err.Error(), "held by") ||
				!strings.Contains(err.Error(), "token is "+tc.token) || !strings.Contains(err.Error(), "nothing was deleted") {
				t.Errorf("error does not name the token and the holder: %v", err)
			}
			if !tc.intact() {
				t.Fatal("break with a wrong token deleted the lock")
			}
			prev, err := l.Break(ctx, tc.name, lock.BreakOptions{By: "test", IfToken: tc.token})
			if err != nil || !prev.Held || prev.Holder == nil || prev.Holder.Token != tc.token {
				t.Fatalf("break with the holder's token: %+v %v", prev, err)
			}
			if c.Exists(ctx, tc.key).Val() != 0 {
				t.Fatal("break with the holder's token left the lock")
			}
			// Now free: the token holds nothing.
			_, err = l.Break(ctx, tc.name, lock.BreakOptions{IfToken: tc.token})
			if nh, ok := lock.AsNotHeld(err); !ok || nh.Reason != lock.LostExpired {
				t.Fatalf("break of a free lock with a token: %v", err)
			}
		})
	}
	// A redislock value is token + metadata: the whole value is accepted as the token too.
	bl2, err := bsm.New(c).Obtain(ctx, base+"/redislock", 30*time.Second, &bsm.Options{Metadata: "w8"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Break(ctx, base+"/redislock", lock.BreakOptions{IfToken: bl2.Token() + "w8"}); err != nil || c.Exists(ctx, base+"/redislock").Val() != 0 {
		t.Fatalf("break with the full redislock value: %v", err)
	}
	// A string of unknown origin: Raw with IfToken deletes it only while it holds that value.
	odd := base + "/odd"
	c.Set(ctx, odd, "holder-1", time.Minute)
	if _, err := l.Break(ctx, odd, lock.BreakOptions{Raw: true, IfToken: "holder-2"}); errs.KindOf(err) != errs.KindLockLost || c.Get(ctx, odd).Val() != "holder-1" {
		t.Fatalf("raw break with a wrong value: %v", err)
	}
	if _, err := l.Break(ctx, odd, lock.BreakOptions{Raw: true, IfToken: "holder-1"}); err != nil || c.Exists(ctx, odd).Val() != 0 {
		t.Fatalf("raw break with the value: %v", err)
	}
}

// Quorum mode: inspect and break look at every server. A key that is not a lock on any
// server stops the break everywhere (nothing is deleted anywhere); IfToken needs the
// token to hold a majority.
func TestQuorumBreakPerServer(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis servers in DSCTL_TEST_REDIS")
	}
	l := newLocker(t, addrs...)
	cs := l.Clients()
	name := locktest.Name(t, "q")
	key := "dsctl:lock:{" + name + "}"
	t.Cleanup(func() {
		for _, c := range cs {
			c.Del(ctx, name, key, key+":owner", key+":fence", key+":break")
		}
	})
	lease, err := l.Acquire(ctx, name, ownerOpts(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.Inspect(ctx, name)
	if err != nil || !info.Held || info.Format != lock.FormatDsctl || len(info.Instances) != 3 {
		t.Fatalf("inspect: %+v %v", info, err)
	}
	_, err = l.Break(ctx, name, lock.BreakOptions{IfToken: "0123456789abcdef0123456789abcdef"})
	if nh, ok := lock.AsNotHeld(err); !ok || nh.Current == nil || nh.Current.Token != lease.Token {
		t.Fatalf("quorum break with a wrong token: %v", err)
	}
	for i, c := range cs {
		if c.Get(ctx, key).Val() != lease.Token {
			t.Fatalf("server %d lost the lease to a break with a wrong token", i)
		}
	}
	prev, err := l.Break(ctx, name, lock.BreakOptions{IfToken: lease.Token, By: "test"})
	if err != nil || !prev.Held || prev.Holder.Token != lease.Token {
		t.Fatalf("quorum break with the token: %+v %v", prev, err)
	}
	for i, c := range cs {
		if c.Exists(ctx, key).Val() != 0 {
			t.Fatalf("server %d still has the lease", i)
		}
	}

	// A redsync mutex over the three servers, and an application key of the same name
	// on one of them (redsync could only take the other two).
	rname := name + "/redsync"
	cs[1].Set(ctx, rname, "12345", 0)
	t.Cleanup(func() {
		for _, c := range cs {
			c.Del(ctx, rname)
		}
	})
	pools := []rsredis.Pool{goredis.NewPool(cs[0]), goredis.NewPool(cs[1]), goredis.NewPool(cs[2])}
	mutex := redsync.New(pools...).NewMutex(rname, redsync.WithExpiry(30*time.Second), redsync.WithTries(1))
	if err := mutex.Lock(); err != nil {
		t.Fatal(err)
	}
	info, err = l.Inspect(ctx, rname)
	if err != nil || !info.Held || info.Format != lock.FormatRedsync || info.Holder.Token != mutex.Value() {
		t.Fatalf("inspect of a 2-of-3 redsync lock: %+v %v", info, err)
	}
	if notes := strings.Join(info.Notes, " "); !strings.Contains(notes, addrs[1]) || !strings.Contains(notes, "not a lock") {
		t.Errorf("inspect does not say what is on %s: %v", addrs[1], info.Notes)
	}
	_, err = l.Break(ctx, rname, lock.BreakOptions{By: "test"})
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), addrs[1]) {
		t.Fatalf("quorum break with a non-lock on one server: %v", err)
	}
	for i, want := range []string{mutex.Value(), "12345", mutex.Value()} {
		if got := cs[i].Get(ctx, rname).Val(); got != want {
			t.Fatalf("server %d: %q, want %q: a refused break deleted something", i, got, want)
		}
	}
	prev, err = l.Break(ctx, rname, lock.BreakOptions{By: "test", Raw: true})
	if err != nil || !prev.Held || prev.Format != lock.FormatRedsync {
		t.Fatalf("quorum break --raw: %+v %v", prev, err)
	}
	for i, c := range cs {
		if c.Exists(ctx, rname).Val() != 0 {
			t.Fatalf("server %d still has the key after --raw", i)
		}
	}

	// The same application key on every server: not a lock, nowhere a lock.
	for _, c := range cs {
		c.Set(ctx, name, "12345", 0)
	}
	info, err = l.Inspect(ctx, name)
	if err != nil || info.Held || info.Format != lock.FormatNotALock {
		t.Fatalf("inspect of a non-lock in quorum mode: %+v %v", info, err)
	}
	if _, err := l.Break(ctx, name, lock.BreakOptions{}); errs.KindOf(err) != errs.KindUsage {
		t.Fatalf("quorum break of a non-lock: %v", err)
	}
	for i, c := range cs {
		if c.Get(ctx, name).Val() != "12345" {
			t.Fatalf("server %d lost the application key", i)
		}
	}
	if listed, err := l.List(ctx, lock.ListOptions{Prefix: name, Foreign: true}); err != nil || len(listed) != 0 {
		t.Fatalf("quorum list --foreign shows a non-lock: %+v %v", listed, err)
	}
}

// Inspect describes a key that is not a lock in typed fields, not only in words.
func TestNotALockHasATypedObject(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	c := newLocker(t, addrs[0]).Clients()[0]
	key := "locktest-app-" + newSuffix()
	if err := c.RPush(ctx, key, "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Del(ctx, key)
	info, err := newLocker(t, addrs[0]).Inspect(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != lock.FormatNotALock || info.Object == nil || *info.Object != (lock.KeyObject{Type: "list", TTLLeftMs: -1, Size: 3}) {
		t.Fatalf("inspect of a 3-element list: format %q object %+v", info.Format, info.Object)
	}
	if len(addrs) < 3 {
		return
	}
	for _, a := range addrs[1:3] {
		cc := newLocker(t, a).Clients()[0]
		cc.RPush(ctx, key, "x")
		defer cc.Del(ctx, key)
	}
	q, err := newLocker(t, addrs[:3]...).Inspect(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range q.Instances {
		if in.Format != lock.FormatNotALock {
			t.Fatalf("quorum instance %s: format %q, want not-a-lock", in.Endpoint, in.Format)
		}
	}
}
