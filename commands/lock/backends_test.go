//go:build unix

package lock_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/dsctl/dsctl/commands"
	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver/zktest"
)

// backendUnderTest is one lock backend the CLI tests run on: the same commands, flags
// and checks, only the endpoint flags and the way to see what is left differ.
type backendUnderTest struct {
	name string
	// flags select the backend and its endpoints on every command.
	flags []string
	// detached: acquire returns at once and the lease lives on (Redis).
	detached bool
	// held lists what holds or waits on the lock in the backend itself (Redis: the
	// lock key; ZooKeeper: the ephemeral queue nodes under the lock), read directly.
	held func(t *testing.T, name string) []string
	// zk is set on ZooKeeper backends.
	zk *zkBackend
	// sql is set on MySQL and PostgreSQL backends.
	sql *sqlBackend
}

type zkBackend struct {
	target zktest.Target
	root   string
	conn   *gozk.Conn
}

// args puts the backend flags right after `lock VERB` (so never after --, and so a
// flag given later in args overrides them).
func (b backendUnderTest) args(args ...string) []string {
	n := min(2, len(args))
	if n > 0 && args[0] == "__complete" {
		n = min(3, len(args))
	}
	out := append(append(append([]string{}, args[:n]...), b.flags...), args[n:]...)
	return out
}

// eachBackend runs fn on Redis (miniredis, in process) and on ZooKeeper (the embedded
// server and the real ensemble from DSCTL_TEST_ZK), each ZooKeeper run under its own
// --zk-root, deleted afterwards.
func eachBackend(t *testing.T, fn func(t *testing.T, b backendUnderTest)) {
	t.Run("redis", func(t *testing.T) {
		m := miniredisT(t)
		fn(t, backendUnderTest{name: "redis", flags: []string{"--redis", m.Addr()}, detached: true,
			held: func(t *testing.T, name string) []string {
				if m.Exists("dsctl:lock:{" + name + "}") {
					return []string{"dsctl:lock:{" + name + "}"}
				}
				return nil
			}})
	})
	t.Run("zookeeper", func(t *testing.T) {
		zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
			fn(t, newZKBackend(t, tg))
		})
	})
	eachSQLBackend(t, fn) // sql_test.go: mysql and postgres, lease and session mode
}

func newZKBackend(t *testing.T, tg zktest.Target) backendUnderTest {
	t.Helper()
	conn, events, err := gozk.Connect(tg.Servers, 4*time.Second, gozk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range events {
		}
	}()
	root := "/dsctl-test/" + strings.ReplaceAll(strings.TrimPrefix(locktest.Name(t, "root"), "locktest/"), "/", ".")
	z := &zkBackend{target: tg, root: root, conn: conn}
	t.Cleanup(func() {
		z.deleteTree(root)
		conn.Close()
	})
	return backendUnderTest{name: "zookeeper", flags: []string{"--zk", strings.Join(tg.Servers, ","), "--zk-root", root},
		held: func(t *testing.T, name string) []string { return z.ephemerals(t, root+"/"+name) }, zk: z}
}

// ephemerals lists the ephemeral nodes (queue nodes) at and below p, as the leader
// sees them.
func (z *zkBackend) ephemerals(t *testing.T, p string) []string {
	t.Helper()
	_, _ = z.conn.Sync(p)
	var out []string
	stack := []string{p}
	for len(stack) > 0 && len(out) < 1000 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids, _, err := z.conn.Children(n)
		if err == gozk.ErrNoNode {
			continue
		}
		if err != nil {
			t.Fatalf("list %s: %v", n, err)
		}
		for _, k := range kids {
			c := n + "/" + k
			if _, st, err := z.conn.Get(c); err == nil && st.EphemeralOwner != 0 {
				out = append(out, c)
			}
			stack = append(stack, c)
		}
	}
	return out
}

func (z *zkBackend) deleteTree(p string) {
	kids, _, err := z.conn.Children(p)
	if err != nil {
		return
	}
	for _, k := range kids {
		z.deleteTree(p + "/" + k)
	}
	_ = z.conn.Delete(p, -1)
}

// dsctlCtx is dsctl with a context the test cancels (ctrl-C / SIGTERM in main).
func dsctlCtx(ctx context.Context, t *testing.T, env map[string]string, args ...string) result {
	ios, _, out, errOut := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc", Date: "2026-11-25"})
	home := t.TempDir()
	f.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "HOME" {
			return home
		}
		return ""
	}
	err := commands.Execute(ctx, f, commands.NewRoot(f), args)
	commands.PrintError(ios.ErrOut, false, err)
	return result{out: out.String(), errOut: errOut.String(), err: err, code: commands.CodeFor(err)}
}

// background runs dsctl in a goroutine; the channel gets its result.
func background(ctx context.Context, t *testing.T, env map[string]string, args ...string) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- dsctlCtx(ctx, t, env, args...) }()
	return ch
}

func await(t *testing.T, ch <-chan result, within time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("dsctl still running after %s", within)
	}
	return result{}
}

// inspectJSON is `lock inspect -o json` decoded.
func inspectJSON(t *testing.T, b backendUnderTest, name string) map[string]any {
	t.Helper()
	r := dsctl(t, nil, b.args("lock", "inspect", name, "-o", "json")...)
	var info map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil {
		t.Fatalf("inspect: exit %d %q %q", r.code, r.out, r.errOut)
	}
	return info
}

func waitHeld(t *testing.T, b backendUnderTest, name string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info := inspectJSON(t, b, name)
		if info["held"] == true {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %s not held within 10s: %v", name, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The same lease life cycle on every backend: acquire (held in the foreground with
// --for, which every backend supports), a second acquire refused with exit 3 naming the
// holder, inspect, wrong tokens refused with exit 4 changing nothing, release, and
// nothing left behind.
func TestLeaseLifeCycleOnEveryBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backendUnderTest) {
		name := "cycle/" + strconv.FormatInt(time.Now().UnixNano(), 36)
		first := background(context.Background(), t, nil, b.args("lock", "acquire", name, "--for", "3s", "--ttl", "20s", "--owner", "release 1.4", "-o", "json")...)
		info := waitHeld(t, b, name)
		holder := info["holder"].(map[string]any)
		token := holder["token"].(string)
		if info["format"] != "dsctl" || info["fencing_safe"] != true || holder["fence"] == "" {
			t.Fatalf("inspect json: %v", info)
		}
		if owner := holder["owner"].(map[string]any); owner["label"] != "release 1.4" || owner["pid"] != float64(os.Getpid()) {
			t.Fatalf("owner while held in the foreground (pid is this process's): %v", owner)
		}
		r := dsctl(t, nil, b.args("lock", "acquire", name)...)
		if r.code != 3 || !strings.Contains(r.errOut, `"release 1.4"`) || !strings.Contains(r.errOut, "--wait 0") {
			t.Fatalf("second acquire: exit %d %q", r.code, r.errOut)
		}
		r = dsctl(t, nil, b.args("lock", "inspect", name)...)
		wants := []string{"state:       held", "token:       " + token, `"release 1.4"`, "waiters:     0"}
		if b.sql != nil { // SQL waiters race for the row: nobody counts them
			wants[3] = "waiters:     unknown"
		}
		for _, want := range wants {
			if !strings.Contains(r.out, want) {
				t.Fatalf("inspect lacks %q:\n%s", want, r.out)
			}
		}
		if b.zk != nil && !strings.Contains(r.out, "queue:       1. holding _c_"+token+"-lock-") {
			t.Fatalf("zookeeper inspect shows no queue:\n%s", r.out)
		}
		for _, verb := range []string{"release", "renew"} {
			r = dsctl(t, nil, b.args("lock", verb, name, "--token", "0000")...)
			if r.code != 4 || !strings.Contains(r.errOut, "held by") {
				t.Fatalf("%s with a wrong token: exit %d %q", verb, r.code, r.errOut)
			}
		}
		if got := inspectJSON(t, b, name)["holder"].(map[string]any)["token"]; got != token {
			t.Fatalf("wrong tokens changed the holder to %v", got)
		}
		if len(b.held(t, name)) != 1 {
			t.Fatalf("want exactly the holder in the backend, got %v", b.held(t, name))
		}
		r = await(t, first, 20*time.Second)
		var lease map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.out), &lease) != nil || lease["token"] != token {
			t.Fatalf("acquire --for: exit %d %q %q", r.code, r.out, r.errOut)
		}
		if !strings.Contains(r.errOut, "holding it in the foreground") || !strings.Contains(r.errOut, "released (--for elapsed") {
			t.Fatalf("acquire --for does not say it holds and releases: %q", r.errOut)
		}
		if left := b.held(t, name); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
		if inspectJSON(t, b, name)["held"] != false {
			t.Fatal("still held after --for")
		}
	})
}

// On ZooKeeper a lease lives with dsctl's session: acquire prints the lease at once,
// holds it until ctrl-C/SIGTERM (its context ends), then releases it and exits 0.
func TestZooKeeperAcquireHoldsInTheForegroundUntilInterrupted(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		name := "fg"
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := background(ctx, t, nil, b.args("lock", "acquire", name, "-o", "env")...)
		info := waitHeld(t, b, name)
		token := info["holder"].(map[string]any)["token"].(string)
		// Another process cannot renew it: the lease belongs to the holder's session.
		r := dsctl(t, nil, b.args("lock", "renew", name, "--token", token)...)
		if r.code != 2 || !strings.Contains(r.errOut, "another process's ZooKeeper session") {
			t.Fatalf("renew from another process: exit %d %q", r.code, r.errOut)
		}
		time.Sleep(300 * time.Millisecond)
		select {
		case r := <-done:
			t.Fatalf("acquire returned while it should hold: exit %d %q", r.code, r.errOut)
		default:
		}
		cancel() // ctrl-C
		r = await(t, done, 10*time.Second)
		if r.code != 0 || !strings.Contains(r.out, "export DSCTL_LOCK_TOKEN="+token) || !strings.Contains(r.out, "export DSCTL_LOCK_FENCE=") {
			t.Fatalf("acquire after ctrl-C: exit %d\n%s%s", r.code, r.out, r.errOut)
		}
		for _, want := range []string{"lives as long as this process's session", "until ctrl-C or SIGTERM", "released (interrupted"} {
			if !strings.Contains(r.errOut, want) {
				t.Fatalf("stderr lacks %q: %q", want, r.errOut)
			}
		}
		if left := b.held(t, name); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// A foreground holder whose session expires (the server says so) exits 4.
func TestZooKeeperForegroundAcquireExits4WhenTheSessionExpires(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := newZKBackend(t, zktest.Target{Name: "embedded", Servers: []string{srv.Addr()}, Embedded: srv})
	done := background(context.Background(), t, nil, b.args("lock", "acquire", "exp", "--ttl", "3s")...)
	info := waitTaken(t, b, "exp")
	expireHolder(t, srv, info)
	r := await(t, done, 15*time.Second)
	if r.code != 4 || !strings.Contains(r.errOut, `lock "exp" lost at`) || !strings.Contains(r.errOut, "the ZooKeeper session expired") {
		t.Fatalf("session expired while holding: exit %d %q", r.code, r.errOut)
	}
}

// waitTaken is waitHeld on ZooKeeper, and then waits until the holder's node has been
// written by its confirming write (the last request of an acquire): a session expired
// before it is a failed acquire, not a lost lease.
func waitTaken(t *testing.T, b backendUnderTest, name string) map[string]any {
	t.Helper()
	info := waitHeld(t, b, name)
	dir := b.zk.root + "/" + name
	waitFor(t, "the grant confirmed", 10*time.Second, func() bool {
		kids, _, _ := b.zk.conn.Children(dir)
		for _, k := range kids {
			if _, st, err := b.zk.conn.Get(dir + "/" + k); err == nil && st.Version > 0 {
				return true
			}
		}
		return false
	})
	return info
}

// expireHolder expires the session of the holder that inspect showed.
func expireHolder(t *testing.T, srv *zkserver.Server, info map[string]any) {
	t.Helper()
	q := info["queue"].([]any)
	sess := q[0].(map[string]any)["session"].(string)
	id, err := strconv.ParseInt(strings.TrimPrefix(sess, "0x"), 16, 64)
	if err != nil || !srv.ExpireSession(id) {
		t.Fatalf("cannot expire session %s: %v", sess, err)
	}
}

// `lock run` on every backend: the child gets the lease in its environment (the
// fencing token included), its exit code comes back, and nothing is left behind.
func TestRunOnEveryBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backendUnderTest) {
		r := dsctl(t, nil, b.args("lock", "run", "job", "--", "sh", "-c", "echo name=$DSCTL_LOCK_NAME fence=$DSCTL_LOCK_FENCE; exit 7")...)
		if r.code != 7 || !strings.Contains(r.out, "name=job fence=") || strings.Contains(r.out, "fence=\n") {
			t.Fatalf("run: exit %d %q %q", r.code, r.out, r.errOut)
		}
		if left := b.held(t, "job"); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
		r = dsctl(t, nil, b.args("lock", "run", "job", "--", "/no/such/dsctl-cmd")...)
		if r.code != 127 || len(b.held(t, "job")) != 0 {
			t.Fatalf("missing command: exit %d %q, left %v", r.code, r.errOut, b.held(t, "job"))
		}
	})
}

// A broken lease stops `lock run`'s child at once and exits 4 saying who broke it; on
// ZooKeeper break says the holder's session will see it.
func TestRunLostByBreakOnEveryBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backendUnderTest) {
		// Break once the child runs (in SQL session mode a break that ends the holder's
		// connection before it has read the grant's reply is a failed acquire, exit 6).
		started := filepath.Join(t.TempDir(), "started")
		done := background(context.Background(), t, nil, b.args("lock", "run", "victim", "--ttl", "3s", "--", "sh", "-c", `: > "$0"; exec sleep 30`, started)...)
		waitFor(t, "the child to start", 10*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
		r := dsctl(t, nil, b.args("lock", "break", "victim", "--force", "--reason", "INC-42 runner died")...)
		if r.code != 0 || !strings.Contains(r.out, "broken (was held)") {
			t.Fatalf("break: exit %d %q %q", r.code, r.out, r.errOut)
		}
		if b.zk != nil && !strings.Contains(r.errOut, "the holder's session 0x") {
			t.Fatalf("zookeeper break does not say the holder's session will see it: %q", r.errOut)
		}
		r = await(t, done, 10*time.Second)
		if r.code != 4 {
			t.Fatalf("run after break: exit %d %q", r.code, r.errOut)
		}
		// (SQL session mode: break ends the holder's connection, and the holder reads
		// the break record when it sees its connection gone.)
		wants := []string{`lock "victim" lost at `, "broken by", "INC-42 runner died", "SIGTERM"}
		for _, want := range wants {
			if !strings.Contains(r.errOut, want) {
				t.Fatalf("message lacks %q: %q", want, r.errOut)
			}
		}
		if left := b.held(t, "victim"); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// list and the queue in inspect: a holder and two waiters, in order, each with its
// session and age; the JSON queue has the holder first.
func TestZooKeeperInspectShowsTheQueueAndListFindsIt(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var runs []<-chan result
		runs = append(runs, background(ctx, t, nil, b.args("lock", "acquire", "q/a", "--owner", "first")...))
		waitHeld(t, b, "q/a")
		for _, o := range []string{"second", "third"} {
			runs = append(runs, background(ctx, t, nil, b.args("lock", "acquire", "q/a", "--owner", o, "--wait", "1m")...))
			want := len(runs)
			waitFor(t, "waiter queued", 10*time.Second, func() bool { return len(b.held(t, "q/a")) == want })
		}
		info := inspectJSON(t, b, "q/a")
		q := info["queue"].([]any)
		if len(q) != 3 || info["waiters"] != 2.0 {
			t.Fatalf("queue %v", info)
		}
		for i, label := range []string{"first", "second", "third"} {
			e := q[i].(map[string]any)
			if e["owner"].(map[string]any)["label"] != label || e["holding"] != (i == 0) || !strings.HasPrefix(e["session"].(string), "0x") {
				t.Fatalf("queue entry %d: %v", i, e)
			}
		}
		r := dsctl(t, nil, b.args("lock", "inspect", "q/a")...)
		if !strings.Contains(r.out, "1. holding") || !strings.Contains(r.out, "3. waiting") || !strings.Contains(r.out, `"third"`) {
			t.Fatalf("inspect table:\n%s", r.out)
		}
		r = dsctl(t, nil, b.args("lock", "list", "-o", "json")...)
		var rows []map[string]any
		if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 1 || rows[0]["name"] != "q/a" || rows[0]["waiters"] != 2.0 {
			t.Fatalf("list: %v %s", err, r.out)
		}
		r = dsctl(t, nil, b.args("lock", "list", "--prefix", "nothing")...)
		if r.code != 0 || !strings.Contains(r.out, "no locks held") {
			t.Fatalf("empty list: %q", r.out)
		}
		cancel()
		for _, ch := range runs {
			await(t, ch, 10*time.Second)
		}
		if left := b.held(t, "q/a"); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// Bad input on ZooKeeper: a clear error, the right exit code, and no node left in the
// lock's queue after any failure.
func TestZooKeeperBadInputLeavesNothingBehind(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		z := b.zk
		mk := func(p string, data []byte, flags int32, acl []gozk.ACL) {
			parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
			for i := 1; i < len(parts); i++ {
				_, _ = z.conn.Create("/"+strings.Join(parts[:i], "/"), nil, 0, gozk.WorldACL(gozk.PermAll))
			}
			if _, err := z.conn.Create(p, data, flags, acl); err != nil {
				t.Fatalf("create %s: %v", p, err)
			}
		}
		// A lock node whose ACL lets nobody create children.
		mk(z.root+"/locked", nil, 0, gozk.WorldACL(gozk.PermRead))
		// A node that is ephemeral: it cannot have children, so it cannot be a lock.
		mk(z.root+"/eph", nil, gozk.FlagEphemeral, gozk.WorldACL(gozk.PermAll))
		// A lock whose queue holds an application node that is not a lock node.
		mk(z.root+"/mixed/config", []byte("x=1"), 0, gozk.WorldACL(gozk.PermAll))

		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"lock", "acquire", "a/../b"}, 2, "not a valid ZooKeeper path"},
			{[]string{"lock", "acquire", "a//b"}, 2, "not a valid ZooKeeper path"},
			{[]string{"lock", "acquire", "trailing/"}, 2, "not a valid ZooKeeper path"},
			{[]string{"lock", "acquire", "locked"}, 1, "not authorized by the node's ACL"},
			{[]string{"lock", "run", "locked", "--", "true"}, 1, "not authorized by the node's ACL"},
			{[]string{"lock", "acquire", "eph"}, 2, "is an ephemeral node, not a lock"},
			{[]string{"lock", "break", "mixed", "--force"}, 2, "is not a lock"},
			{[]string{"lock", "break", "locked"}, 2, "--force"},
			{[]string{"lock", "acquire", "x", "--backend", "etcd"}, 2, "unknown lock backend \"etcd\""},
			{[]string{"lock", "acquire", "x", "--backend", "redis"}, 2, "--zk and --backend redis contradict each other"},
			{[]string{"lock", "acquire", "x", "--zk-root", "no-slash"}, 2, "is not a valid path"},
			{[]string{"lock", "acquire", "x", "--for", "-1s"}, 2, "--for must be positive"},
		} {
			r := dsctl(t, nil, b.args(c.args...)...)
			if r.code != c.code || !strings.Contains(r.errOut, c.want) || strings.Count(r.errOut, "\n") != 1 {
				t.Errorf("%q: exit %d %q, want %d and %q on one line", c.args, r.code, r.errOut, c.code, c.want)
			}
			if left := z.ephemerals(t, z.root); len(left) != 1 || left[0] != z.root+"/eph" {
				t.Fatalf("%q left %v behind", c.args, left)
			}
		}
		// The application node in the queue does not stop the lock; inspect names it,
		// and a release leaves it alone.
		r := dsctl(t, nil, b.args("lock", "run", "mixed", "--", "true")...)
		if r.code != 0 {
			t.Fatalf("run on a lock with an application child: exit %d %q", r.code, r.errOut)
		}
		if kids, _, err := z.conn.Children(z.root + "/mixed"); err != nil || len(kids) != 1 || kids[0] != "config" {
			t.Fatalf("children of the mixed lock after run: %v %v", kids, err)
		}
	})
}

// Backend selection: the one configured kind is used; --backend and DSCTL_LOCK_BACKEND
// choose; an unknown one is exit 2 with the list; several configured without Redis is
// refused.
func TestBackendSelection(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := miniredisT(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("current_context: t\ncontexts:\n  t:\n    zookeeper:\n      servers: [%s]\n", srv.Addr())), 0o600)
	kind := func(env map[string]string, args ...string) (string, result) {
		r := dsctl(t, env, append([]string{"lock", "list", "-o", "json"}, args...)...)
		if r.code != 0 {
			return "", r
		}
		return "ok", r
	}
	backendOf := func(env map[string]string, args ...string) string {
		t.Helper()
		r := dsctl(t, env, append([]string{"lock", "inspect", "sel", "-o", "json"}, args...)...)
		var info map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.out), &info) != nil {
			t.Fatalf("%v %v: exit %d %q", env, args, r.code, r.errOut)
		}
		return info["backend"].(map[string]any)["kind"].(string)
	}
	zkOnly := map[string]string{"DSCTL_CONFIG": cfg}
	if got := backendOf(zkOnly); got != "zookeeper" {
		t.Fatalf("only ZooKeeper configured: %s", got)
	}
	both := map[string]string{"DSCTL_CONFIG": cfg, "DSCTL_REDIS": m.Addr()}
	if got := backendOf(both); got != "redis" {
		t.Fatalf("Redis and ZooKeeper configured: %s (Redis stays the default)", got)
	}
	if got := backendOf(both, "--backend", "zk"); got != "zookeeper" {
		t.Fatalf("--backend zk: %s", got)
	}
	if got := backendOf(map[string]string{"DSCTL_CONFIG": cfg, "DSCTL_REDIS": m.Addr(), "DSCTL_LOCK_BACKEND": "zookeeper"}); got != "zookeeper" {
		t.Fatalf("DSCTL_LOCK_BACKEND=zookeeper: %s", got)
	}
	if got := backendOf(zkOnly, "--redis", m.Addr()); got != "redis" {
		t.Fatalf("--redis with ZooKeeper in the context: %s", got)
	}
	sqlToo := map[string]string{"DSCTL_CONFIG": cfg, "DSCTL_SQL_DSN": "postgres://u@127.0.0.1:1/db"}
	if _, r := kind(sqlToo); r.code != 2 || !strings.Contains(r.errOut, "several lock backends are configured: zookeeper (context), postgres (env)") {
		t.Fatalf("ZooKeeper and PostgreSQL configured: exit %d %q", r.code, r.errOut)
	}
	for _, k := range []string{"mysql", "postgres"} {
		if _, r := kind(zkOnly, "--backend", k); r.code != 2 || !strings.Contains(r.errOut, "sql: no database configured") || !strings.Contains(r.errOut, "set DSCTL_SQL_DSN") {
			t.Fatalf("--backend %s without a DSN: exit %d %q", k, r.code, r.errOut)
		}
	}
	if _, r := kind(map[string]string{"DSCTL_LOCK_BACKEND": "etcd"}); r.code != 2 || !strings.Contains(r.errOut, "DSCTL_LOCK_BACKEND=etcd") || !strings.Contains(r.errOut, "redis, zookeeper, mysql, postgres") {
		t.Fatalf("DSCTL_LOCK_BACKEND=etcd: exit %d %q", r.code, r.errOut)
	}
	if _, r := kind(nil, "--redis", m.Addr(), "--zk", srv.Addr()); r.code != 2 || !strings.Contains(r.errOut, "choose one with --backend") {
		t.Fatalf("--redis and --zk: exit %d %q", r.code, r.errOut)
	}
}

// --sandbox works for ZooKeeper too (its embedded server).
func TestSandboxZooKeeperLock(t *testing.T) {
	r := dsctl(t, nil, "lock", "run", "sb", "--sandbox", "--backend", "zookeeper", "--", "sh", "-c", "test -n \"$DSCTL_LOCK_FENCE\"")
	if r.code != 0 {
		t.Fatalf("run --sandbox --backend zookeeper: exit %d %q", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "acquire", "sb", "--sandbox", "--backend", "zookeeper", "--for", "200ms", "-o", "json")
	if r.code != 0 || !strings.Contains(r.out, `"kind": "zookeeper"`) {
		t.Fatalf("acquire --sandbox --backend zookeeper: exit %d %q %q", r.code, r.out, r.errOut)
	}
}

// Completion of lock names comes from the backend the command would use.
func TestCompletionOfZooKeeperLockNames(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := background(ctx, t, nil, b.args("lock", "acquire", "deploy/api")...)
		waitHeld(t, b, "deploy/api")
		r := dsctl(t, nil, b.args("__complete", "lock", "inspect", "dep")...)
		if !strings.Contains(r.out, "deploy/api") {
			t.Fatalf("completion: %q %q", r.out, r.errOut)
		}
		cancel()
		await(t, done, 10*time.Second)
	})
}

// Curator's SUSPENDED on `lock run`: the network to every ZooKeeper server is cut
// (requests hang, nothing is refused); dsctl keeps the child running only while the
// session could still be alive by its own monotonic clock (the last renewal's send
// time plus the session timeout, less drift and the stop margin), then stops it and
// exits 4. Another client, talking to ZooKeeper directly, gets the lock only once the
// server expired dsctl's session: the child's last write must come before that.
func TestZooKeeperSuspendedRunStopsTheChildBeforeTheSessionCanExpire(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		var proxies []*faultProxy
		var addrs []string
		for _, s := range tg.Servers {
			p := newFaultProxy(t, s)
			proxies = append(proxies, p)
			addrs = append(addrs, p.addr())
		}
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		os.WriteFile(cfg, []byte("current_context: t\ncontexts:\n  t:\n    zookeeper:\n      servers: ["+strings.Join(addrs, ", ")+"]\n      session_timeout: 2s\n"), 0o600)
		file := filepath.Join(t.TempDir(), "stamps")
		// TTL 20s: the session timeout (2s), not the TTL, bounds the lease.
		p := start(t, []string{"DSCTL_CONFIG=" + cfg, helperEnv + "=stamper", "DSCTL_LOCK_TEST_STAMPS=" + file},
			"lock", "run", "suspended", "--zk-root", b.zk.root, "--ttl", "20s", "-v", "--", self)
		waitFor(t, "the child's first write", 10*time.Second, func() bool {
			_, s := readStamps(file)
			return len(s) > 0
		})
		child, _ := readStamps(file)
		defer syscall.Kill(child, syscall.SIGKILL)
		defer syscall.Kill(-child, syscall.SIGKILL)
		time.Sleep(1200 * time.Millisecond) // a renewal or two go through first

		for _, px := range proxies {
			px.blackhole(true)
		}
		cut := time.Now()
		l, err := backends.Open(context.Background(), endpoint.Dialer{Timeout: 5 * time.Second},
			config.Endpoints{ZooKeeper: endpoint.ZooKeeper{Servers: tg.Servers}}, backends.ZooKeeper, backends.Options{ZKRoot: b.zk.root})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		next, err := l.Acquire(context.Background(), "suspended", lock.AcquireOptions{TTL: 5 * time.Second, Wait: lock.WaitFor(30 * time.Second)})
		if err != nil {
			t.Fatalf("the next holder did not get the lock once the session expired: %v", err)
		}
		got := time.Now()
		defer l.Release(context.Background(), "suspended", next.Token)

		code := p.wait(t, 30*time.Second)
		waitFor(t, "the child to be gone", 5*time.Second, func() bool { return syscall.Kill(child, 0) != nil })
		_, stamps := readStamps(file)
		last := stamps[len(stamps)-1]
		t.Logf("%s: the child's last write %s after the cut; the next holder had the lock %s after the cut",
			tg.Name, last.Sub(cut).Round(time.Millisecond), got.Sub(cut).Round(time.Millisecond))
		msg := p.stderr.String()
		if code != 4 || !strings.Contains(msg, "no renewal succeeded since") || !strings.Contains(msg, "the backend holds the lease for") {
			t.Fatalf("exit %d, want 4 with a lost lease bounded by the session:\n%s", code, msg)
		}
		if !last.Before(got) {
			t.Fatalf("the child kept writing %s after the next holder had the lock", last.Sub(got).Round(time.Millisecond))
		}
		// Suspended is not lost at once: the child ran on while the session could live.
		if last.Sub(cut) < 200*time.Millisecond {
			t.Fatalf("the child was stopped %s after the cut: a suspended session is not lost yet", last.Sub(cut))
		}
	})
}

// `lock verify` and `lock bench` on ZooKeeper go through backends.Open: each verify
// worker's fault proxies sit between its Locker and ZooKeeper; nothing is left behind.
func TestVerifyAndBenchOnZooKeeper(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		r := dsctl(t, nil, b.args("lock", "bench", "--clients", "3", "--ops", "60", "-o", "json")...)
		var res map[string]any
		if err := json.Unmarshal([]byte(r.out), &res); err != nil || r.code != 0 || res["ok"] != true || res["ops"] != 60.0 ||
			res["backend"].(map[string]any)["kind"] != "zookeeper" || res["fencing_checked"] != true {
			t.Fatalf("bench: %v exit %d\n%s%s", err, r.code, r.out, r.errOut)
		}
		r = dsctl(t, nil, b.args("lock", "verify", "--workers", "3", "--duration", "3s", "--ttl", "300ms", "--timeout", "1s", "--faults", "all", "-o", "json")...)
		v := parseVerify(t, r.out)
		checkVerdict(t, v, r.code, r.errOut)
		if !v.Safe {
			t.Fatalf("the ZooKeeper lock failed lock verify: %s", r.out)
		}
		if v.Backend.Kind != "zookeeper" || !v.FencingChecked || v.Counts["sections"] < 3 {
			t.Fatalf("verify: %s", r.out)
		}
		injected := 0
		for _, n := range v.FaultsInjected {
			injected += n
		}
		if injected == 0 {
			t.Fatalf("no faults injected: %v", v.FaultsInjected)
		}
		waitFor(t, "the verify lock's nodes to go", 15*time.Second, func() bool { return len(b.held(t, v.LockName)) == 0 })
		if left := b.zk.ephemerals(t, b.zk.root); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// Curator's LOST on `lock run`: the server expires dsctl's session; the next renewal
// finds the lease gone, the child is stopped at once, exit 4 saying why.
func TestZooKeeperRunSessionExpiredIsLost(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := newZKBackend(t, zktest.Target{Name: "embedded", Servers: []string{srv.Addr()}, Embedded: srv})
	done := background(context.Background(), t, nil, b.args("lock", "run", "exp", "--ttl", "3s", "--", "sleep", "30")...)
	info := waitTaken(t, b, "exp")
	expireHolder(t, srv, info)
	r := await(t, done, 15*time.Second)
	for _, want := range []string{`lock "exp" lost at`, "the ZooKeeper session expired", "SIGTERM"} {
		if r.code != 4 || !strings.Contains(r.errOut, want) {
			t.Fatalf("session expired under lock run: exit %d, want 4 and %q: %q", r.code, want, r.errOut)
		}
	}
}

// The real binary: `lock acquire` on ZooKeeper prints the lease at once (a reader
// sees it while the lease is held), holds it, and on SIGTERM releases it and exits 0.
func TestZooKeeperAcquireProcessPrintsAtOnceAndReleasesOnSIGTERM(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		p := start(t, nil, b.args("lock", "acquire", "proc", "-o", "env")...)
		waitFor(t, "the lease on stdout", 10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "DSCTL_LOCK_FENCE=") })
		info := inspectJSON(t, b, "proc")
		if info["held"] != true || !strings.Contains(p.stdout.String(), info["holder"].(map[string]any)["token"].(string)) {
			t.Fatalf("printed lease is not the holder: %v\n%s", info, p.stdout)
		}
		if owner := info["holder"].(map[string]any)["owner"].(map[string]any); owner["pid"] != float64(p.cmd.Process.Pid) {
			t.Fatalf("owner pid %v, want dsctl's own %d (it holds the lease)", owner["pid"], p.cmd.Process.Pid)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t, 10*time.Second); code != 0 || !strings.Contains(p.stderr.String(), "released (interrupted") {
			t.Fatalf("after SIGTERM: exit %d %s", code, p.stderr)
		}
		if left := b.held(t, "proc"); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// The ZooKeeper digest password is dsctl's secret: `lock run`'s child does not get the
// variable that holds it.
func TestZooKeeperRunChildEnvWithoutTheDigestPassword(t *testing.T) {
	zktest.Run(t, zkserver.Options{}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		os.WriteFile(cfg, []byte("current_context: t\ncontexts:\n  t:\n    zookeeper:\n      servers: ["+strings.Join(tg.Servers, ", ")+
			"]\n      digest_user: dsctl\n      digest_password: {env: DSCTL_TEST_ZK_DIGEST_PW}\n"), 0o600)
		t.Setenv("DSCTL_TEST_ZK_DIGEST_PW", "zk-s3cret-for-dsctl") // secrets are read from the process env
		r := dsctl(t, map[string]string{"DSCTL_CONFIG": cfg}, "lock", "run", "digest", "--zk-root", b.zk.root, "--", "sh", "-c", "env; exit 3")
		if r.code != 3 || !strings.Contains(r.out, "DSCTL_LOCK_FENCE=") {
			t.Fatalf("run: exit %d %q", r.code, r.errOut)
		}
		if strings.Contains(r.out, "zk-s3cret-for-dsctl") || strings.Contains(r.out, "DSCTL_TEST_ZK_DIGEST_PW") {
			t.Fatal("the child's environment holds the ZooKeeper digest password")
		}
		if !strings.Contains(r.out, "PATH=") {
			t.Fatal("the child lost the rest of the environment")
		}
	})
}

// ctrl-C while waiting: exit 130, and the waiter leaves nothing in the queue.
func TestInterruptWhileWaitingOnEveryBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backendUnderTest) {
		holder := background(context.Background(), t, nil, b.args("lock", "acquire", "busy", "--for", "3s")...)
		waitHeld(t, b, "busy")
		ctx, cancel := context.WithCancel(context.Background())
		waiter := background(ctx, t, nil, b.args("lock", "acquire", "busy", "--wait", "forever")...)
		if b.zk != nil {
			waitFor(t, "the waiter queued", 10*time.Second, func() bool { return len(b.held(t, "busy")) == 2 })
		} else {
			time.Sleep(200 * time.Millisecond)
		}
		cancel()
		if r := await(t, waiter, 10*time.Second); r.code != 130 {
			t.Fatalf("interrupted waiter: exit %d %q", r.code, r.errOut)
		}
		if left := b.held(t, "busy"); len(left) != 1 {
			t.Fatalf("after the interrupted waiter: %v, want only the holder", left)
		}
		if r := await(t, holder, 10*time.Second); r.code != 0 {
			t.Fatalf("holder: exit %d %q", r.code, r.errOut)
		}
		if left := b.held(t, "busy"); len(left) != 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
}

// --detach on ZooKeeper: a TTL node that outlives acquire; renew and release work with
// the token from other processes; an unrenewed one is deleted by the server after its
// TTL (at its container check) and the next waiter, watching it, takes the lock.
func TestZooKeeperDetachedLeaseIsATTLNode(t *testing.T) {
	zktest.Run(t, zkserver.Options{ContainerCheckInterval: 100 * time.Millisecond}, func(t *testing.T, tg zktest.Target) {
		b := newZKBackend(t, tg)
		r := dsctl(t, nil, b.args("lock", "acquire", "det", "--detach", "--ttl", "20s", "-o", "json")...)
		var lease map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.out), &lease) != nil || lease["backend"].(map[string]any)["detached"] != true {
			t.Fatalf("acquire --detach: exit %d %q %q", r.code, r.out, r.errOut)
		}
		token := lease["token"].(string)
		if info := inspectJSON(t, b, "det"); info["held"] != true || info["holder"].(map[string]any)["token"] != token {
			t.Fatalf("not held after acquire --detach returned: %v", info)
		}
		if q := b.zk.queueNodes(t, b.zk.root+"/det"); len(q) != 1 || len(b.held(t, "det")) != 0 {
			t.Fatalf("want one persistent (TTL) queue node and no ephemeral one: %v %v", q, b.held(t, "det"))
		}
		r = dsctl(t, nil, b.args("lock", "renew", "det", "--token", token, "--ttl", "10s")...)
		if r.code != 0 || !strings.Contains(r.out, "ttl:      10s") {
			t.Fatalf("renew from another process: exit %d %q %q", r.code, r.out, r.errOut)
		}
		r = dsctl(t, nil, b.args("lock", "acquire", "det", "--detach")...)
		if r.code != 3 {
			t.Fatalf("second acquire: exit %d %q", r.code, r.errOut)
		}
		r = dsctl(t, nil, b.args("lock", "release", "det", "--token", token)...)
		if r.code != 0 || len(b.zk.queueNodes(t, b.zk.root+"/det")) != 0 {
			t.Fatalf("release: exit %d %q, left %v", r.code, r.errOut, b.zk.queueNodes(t, b.zk.root+"/det"))
		}
		if r = dsctl(t, nil, b.args("lock", "renew", "det", "--token", token)...); r.code != 4 {
			t.Fatalf("renew after release: exit %d %q", r.code, r.errOut)
		}
		if tg.Embedded == nil {
			return // the ensemble's container check runs every 60s
		}
		// Abandoned: the server deletes it after its TTL; a waiter gets the lock.
		if r = dsctl(t, nil, b.args("lock", "acquire", "gone", "--detach", "--ttl", "400ms")...); r.code != 0 {
			t.Fatalf("acquire --detach: exit %d %q", r.code, r.errOut)
		}
		// A waiting --detach acquire keeps its own TTL node alive while it waits.
		r = dsctl(t, nil, b.args("lock", "acquire", "gone", "--detach", "--ttl", "300ms", "--wait", "10s", "-o", "json")...)
		if r.code != 0 || !strings.Contains(r.out, `"detached": true`) {
			t.Fatalf("waiter: exit %d %q %q", r.code, r.out, r.errOut)
		}
		waitFor(t, "the unrenewed lease to be deleted", 10*time.Second, func() bool { return len(b.zk.queueNodes(t, b.zk.root+"/gone")) == 0 })
	})
}

// A ZooKeeper without TTL nodes refuses --detach with exit 2 saying so; nothing is left.
func TestZooKeeperDetachWithoutTTLNodesSaysSo(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{DisableExtendedTypes: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := newZKBackend(t, zktest.Target{Name: "embedded", Servers: []string{srv.Addr()}, Embedded: srv})
	r := dsctl(t, nil, b.args("lock", "acquire", "det", "--detach")...)
	if r.code != 2 || !strings.Contains(r.errOut, "does not enable TTL nodes") || !strings.Contains(r.errOut, "extendedTypesEnabled=true") {
		t.Fatalf("--detach without TTL nodes: exit %d %q", r.code, r.errOut)
	}
	if q := b.zk.queueNodes(t, b.zk.root); len(q) != 0 {
		t.Fatalf("left behind: %v", q)
	}
	r = dsctl(t, nil, b.args("lock", "acquire", "det", "--detach", "--for", "1s")...)
	if r.code != 2 || !strings.Contains(r.errOut, "drop one of them") {
		t.Fatalf("--detach --for: exit %d %q", r.code, r.errOut)
	}
}

// queueNodes lists the lock queue nodes (any library's, ephemeral or TTL) at and below
// p, as the leader sees them.
func (z *zkBackend) queueNodes(t *testing.T, p string) []string {
	t.Helper()
	_, _ = z.conn.Sync(p)
	var out []string
	stack := []string{p}
	for len(stack) > 0 && len(out) < 1000 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids, _, err := z.conn.Children(n)
		if err == gozk.ErrNoNode {
			continue
		}
		if err != nil {
			t.Fatalf("list %s: %v", n, err)
		}
		for _, k := range kids {
			if strings.Contains(k, "-lock-") || strings.Contains(k, "__lock__") {
				out = append(out, n+"/"+k)
			}
			stack = append(stack, n+"/"+k)
		}
	}
	return out
}
