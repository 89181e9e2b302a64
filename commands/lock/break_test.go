package lock_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/testenv"
)

// squash collapses the padding of key: value tables, so tests do not depend on widths.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// The reproduction: SET counter 12345, then `lock break counter --force`
// deleted it and said "broken (was held)". Now inspect says what it is, break refuses
// it with exit 2 and leaves it, and only --raw deletes it.
func TestBreakRefusesAnApplicationKey(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	c := redisClient(t, addr)
	ctx := context.Background()
	counter := locktest.Name(t, "counter")
	cache := locktest.Name(t, "cache")
	user := locktest.Name(t, "user")
	c.Set(ctx, counter, "12345", 0)
	c.Set(ctx, cache, "12345", time.Minute)
	c.HSet(ctx, user, "name", "ada", "visits", "3")
	t.Cleanup(func() { c.Del(ctx, counter, cache, user) })

	r := dsctl(t, nil, "lock", "inspect", counter, "--redis", addr)
	for _, want := range []string{"state: not a lock", "format: not-a-lock: string, 5 bytes, no expiry; matches no known lock format", "key: " + counter,
		"no dsctl lock named", "--force` refuses it; only --raw deletes it"} {
		if r.code != 0 || !strings.Contains(squash(r.out), want) {
			t.Fatalf("inspect: exit %d, lacks %q:\n%s%s", r.code, want, r.out, r.errOut)
		}
	}
	if strings.Contains(r.out, "held") && !strings.Contains(r.out, "no dsctl lock named") || strings.Contains(r.out, "token:") {
		t.Fatalf("inspect shows a holder:\n%s", r.out)
	}
	r = dsctl(t, nil, "lock", "inspect", cache, "--redis", addr, "-o", "json")
	var info map[string]any
	if err := json.Unmarshal([]byte(r.out), &info); err != nil || info["format"] != "not-a-lock" || info["held"] != false || info["holder"] != nil ||
		!strings.Contains(info["format_detail"].(string), "string, 5 bytes, expires in") {
		t.Fatalf("inspect -o json: %v\n%s", err, r.out)
	}

	for _, key := range []string{counter, cache, user} {
		r = dsctl(t, nil, "lock", "break", key, "--force", "--redis", addr)
		if r.code != 2 {
			t.Fatalf("break %s: exit %d, want 2\n%s%s", key, r.code, r.out, r.errOut)
		}
		for _, want := range []string{"is not a lock", "nothing was deleted", "--force --raw", "lock inspect"} {
			if !strings.Contains(r.errOut, want) {
				t.Errorf("break %s: message lacks %q: %s", key, want, r.errOut)
			}
		}
		if strings.Contains(r.errOut, "()") || strings.Contains(r.out, "broken") {
			t.Errorf("break %s: %q %q", key, r.out, r.errOut)
		}
	}
	if !strings.Contains(r.errOut, "hash, 2 fields, no expiry") {
		t.Errorf("break of a hash does not say what it is: %s", r.errOut)
	}
	if c.Get(ctx, counter).Val() != "12345" || c.Get(ctx, cache).Val() != "12345" || c.TTL(ctx, cache).Val() <= 50*time.Second ||
		c.HGet(ctx, user, "name").Val() != "ada" {
		t.Fatal("a refused break changed the data")
	}

	r = dsctl(t, nil, "lock", "list", "--prefix", cache[:strings.LastIndex(cache, "/")+1], "--foreign", "--redis", addr, "-o", "json")
	if r.code != 0 || strings.TrimSpace(r.out) != "[]" {
		t.Fatalf("list --foreign shows non-locks: exit %d\n%s", r.code, r.out)
	}

	r = dsctl(t, nil, "lock", "break", counter, "--force", "--raw", "--redis", addr)
	if r.code != 0 || !strings.Contains(r.out, "deleted (--raw: it was not a lock)") || c.Exists(ctx, counter).Val() != 0 {
		t.Fatalf("break --raw: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", user, "--force", "--raw", "--redis", addr, "-o", "json")
	var out map[string]any
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || r.code != 0 || out["action"] != "deleted" || out["format"] != "not-a-lock" || c.Exists(ctx, user).Val() != 0 {
		t.Fatalf("break --raw -o json: exit %d %v\n%s", r.code, err, r.out)
	}
}

func TestBreakIfTokenExitCodes(t *testing.T) {
	addr := testenv.List(t, testenv.Redis)[0]
	c := redisClient(t, addr)
	ctx := context.Background()
	name := locktest.Name(t, "deploy")
	key := "dsctl:lock:{" + name + "}"
	t.Cleanup(func() { c.Del(ctx, key, key+":owner", key+":fence", key+":break") })

	r := dsctl(t, nil, "lock", "acquire", name, "--redis", addr, "--ttl", "30s", "-o", "json")
	var lease map[string]any
	if err := json.Unmarshal([]byte(r.out), &lease); err != nil || r.code != 0 {
		t.Fatalf("acquire: %v %d %s", err, r.code, r.errOut)
	}
	token := lease["token"].(string)

	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", "")
	if r.code != 2 || !strings.Contains(r.errOut, "--if-token needs") {
		t.Fatalf("--if-token '': exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", "0123456789abcdef0123456789abcdef", "--redis", addr)
	if r.code != 4 || !strings.Contains(r.errOut, "held by") || !strings.Contains(r.errOut, "token is "+token) || !strings.Contains(r.errOut, "nothing was deleted") {
		t.Fatalf("break with a wrong token: exit %d %q", r.code, r.errOut)
	}
	if c.Get(ctx, key).Val() != token {
		t.Fatal("a break with a wrong token deleted the lease")
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", token, "--reason", "INC-7", "--redis", addr)
	if r.code != 0 || !strings.Contains(r.out, "broken (was held)") || !strings.Contains(r.out, token) || c.Exists(ctx, key).Val() != 0 {
		t.Fatalf("break with the token: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", token, "--redis", addr)
	if r.code != 4 || !strings.Contains(r.errOut, "free") {
		t.Fatalf("break of a free lock with a token: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--redis", addr)
	if r.code != 0 || !strings.Contains(r.out, "was not held: nothing to break") {
		t.Fatalf("break of a free lock: exit %d\n%s%s", r.code, r.out, r.errOut)
	}

	// Another library's lock, made by that library: redsync.
	rname := name + "/redsync"
	mutex := redsync.New(goredis.NewPool(c)).NewMutex(rname, redsync.WithExpiry(30*time.Second), redsync.WithTries(1))
	if err := mutex.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(ctx, rname) })
	r = dsctl(t, nil, "lock", "break", rname, "--force", "--if-token", "AAAAAAAAAAAAAAAAAAAAAA==", "--redis", addr)
	if r.code != 4 || c.Get(ctx, rname).Val() != mutex.Value() {
		t.Fatalf("redsync break with a wrong token: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", rname, "--force", "--if-token", mutex.Value(), "--redis", addr)
	if r.code != 0 || !strings.Contains(squash(r.out), "format: redsync") || c.Exists(ctx, rname).Val() != 0 {
		t.Fatalf("redsync break with its token: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

// Quorum mode: per server, and nothing deleted anywhere when refused.
func TestBreakQuorumThroughTheCommand(t *testing.T) {
	addrs := testenv.List(t, testenv.Redis)
	if len(addrs) < 3 {
		t.Skip("needs 3 Redis servers in DSCTL_TEST_REDIS")
	}
	all := strings.Join(addrs, ",")
	ctx := context.Background()
	var cs []*redis.Client
	for _, a := range addrs {
		cs = append(cs, redisClient(t, a))
	}
	name := locktest.Name(t, "q")
	key := "dsctl:lock:{" + name + "}"
	t.Cleanup(func() {
		for _, c := range cs {
			c.Del(ctx, name, key, key+":owner", key+":fence", key+":break")
		}
	})
	r := dsctl(t, nil, "lock", "acquire", name, "--redis", all, "--ttl", "30s", "-o", "json")
	var lease map[string]any
	if err := json.Unmarshal([]byte(r.out), &lease); err != nil || r.code != 0 {
		t.Fatalf("acquire: %v %d %s", err, r.code, r.errOut)
	}
	token := lease["token"].(string)
	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", "0123456789abcdef0123456789abcdef", "--redis", all)
	if r.code != 4 || !strings.Contains(r.errOut, "holds 0 of 3 servers") {
		t.Fatalf("quorum break with a wrong token: exit %d %q", r.code, r.errOut)
	}
	for i, c := range cs {
		if c.Get(ctx, key).Val() != token {
			t.Fatalf("server %d lost the lease", i)
		}
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--if-token", token, "--redis", all, "-o", "json")
	var out map[string]any
	if err := json.Unmarshal([]byte(r.out), &out); err != nil || r.code != 0 || out["held"] != true || out["action"] != "broken" || len(out["instances"].([]any)) != 3 {
		t.Fatalf("quorum break with the token: exit %d %v\n%s%s", r.code, err, r.out, r.errOut)
	}
	for i, c := range cs {
		if c.Exists(ctx, key).Val() != 0 {
			t.Fatalf("server %d still has the lease", i)
		}
	}

	// An application key on one server only: refused, named, kept.
	cs[2].Set(ctx, name, "12345", 0)
	r = dsctl(t, nil, "lock", "inspect", name, "--redis", all)
	if r.code != 0 || !strings.Contains(r.out, "not a lock") || !strings.Contains(r.out, "on "+addrs[2]+" key") {
		t.Fatalf("quorum inspect: exit %d\n%s", r.code, r.out)
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--redis", all)
	if r.code != 2 || !strings.Contains(r.errOut, "on "+addrs[2]+": string, 5 bytes") || cs[2].Get(ctx, name).Val() != "12345" {
		t.Fatalf("quorum break of a non-lock: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "break", name, "--force", "--raw", "--redis", all)
	if r.code != 0 || cs[2].Exists(ctx, name).Val() != 0 {
		t.Fatalf("quorum break --raw: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
}

func TestBreakHelpDescribesRawAndIfToken(t *testing.T) {
	r := dsctl(t, nil, "lock", "break", "--help")
	for _, want := range []string{"--raw", "--if-token", "not a lock", "exits 4", "Exit codes: 0 broken"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("break --help lacks %q", want)
		}
	}
	r = dsctl(t, nil, "lock", "inspect", "--help")
	if !strings.Contains(r.out, `shown as "not a lock"`) {
		t.Errorf("inspect --help does not explain not-a-lock:\n%s", r.out)
	}
}
