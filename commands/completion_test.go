package commands

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
	"github.com/dsctl/dsctl/probes/testenv"
)

// completion is what `dsctl __complete ARGS...` printed: the suggestions (without
// descriptions), the directive, and the run itself.
type completion struct {
	names     []string
	directive cobra.ShellCompDirective
	run       run
	took      time.Duration
}

// complete asks the command tree for completions in process, as a shell script does:
// the last argument is the word being completed.
func complete(t *testing.T, env map[string]string, args ...string) completion {
	t.Helper()
	start := time.Now()
	r := dsctl(t, env, append([]string{cobra.ShellCompRequestCmd}, args...)...)
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, r.code, r.errOut)
	}
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, ":") {
		t.Fatalf("__complete %q: no directive line in\n%s", args, r.out)
	}
	d, err := strconv.Atoi(last[1:])
	if err != nil {
		t.Fatalf("__complete %q: bad directive %q", args, last)
	}
	c := completion{directive: cobra.ShellCompDirective(d), run: r, took: took}
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		c.names = append(c.names, name)
	}
	return c
}

func (c completion) noFiles() bool { return c.directive&cobra.ShellCompDirectiveNoFileComp != 0 }

func TestCompletionEnumFlags(t *testing.T) {
	t.Setenv("DSCTL_COMPLETION_TEST_SECRET", "not printed")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"kafka", "audit", "--fail-on", ""}, []string{"info", "warn", "error", "critical", "none"}},
		{[]string{"kafka", "audit", "--fail-on", "c"}, []string{"critical"}},
		{[]string{"kafka", "audit", "--client", ""}, []string{"auto", "java", "librdkafka"}},
		{[]string{"ring", "sweep", "--algo", ""}, []string{"ring", "bounded"}},
		{[]string{"ring", "sweep", "--compat", ""}, []string{"groupcache", "stathat"}},
		{[]string{"ring", "simulate", "--algo", "ring,j"}, []string{"ring,jump"}},
		{[]string{"ring", "simulate", "--algo", "ring,jump,"}, []string{"ring,jump,modulo", "ring,jump,rendezvous", "ring,jump,maglev", "ring,jump,bounded", "ring,jump,all", "ring,jump,groupcache", "ring,jump,stathat", "ring,jump,ketama"}},
		{[]string{"ring", "locate", "--compat", ""}, []string{"groupcache", "stathat", "ketama"}},
		{[]string{"ring", "simulate", "--hash", "m"}, []string{"murmur3", "md5"}},
		{[]string{"lock", "run", "--on-lost", ""}, []string{"term", "kill", "ignore"}},
		{[]string{"lock", "acquire", "--wait-strategy", ""}, []string{"notify", "poll"}},
		{[]string{"lock", "bench", "--wait-strategy", "p"}, []string{"poll"}},
		{[]string{"lock", "verify", "--faults", "latency,"}, []string{"latency,blackhole", "latency,reset", "latency,pause", "latency,all", "latency,none"}},
		{[]string{"zk", "get", "--as", ""}, []string{"auto", "text", "hex", "json"}},
		{[]string{"zk", "watch", "--as", "h"}, []string{"hex"}},
		{[]string{"id", "generate", "--on-clock-rollback", ""}, []string{"wait", "fail"}},
		{[]string{"config", "set-context", "x", "--sql-driver", ""}, []string{"mysql", "postgres"}},
		{[]string{"config", "set-context", "x", "--kafka-sasl", "SCRAM"}, []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}},
		{[]string{"config", "set-context", "x", "--redis-password-env", "DSCTL_COMPLETION_TEST_SECRET"}, []string{"DSCTL_COMPLETION_TEST_SECRET"}},
		// -o offers each command's own formats.
		{[]string{"version", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"id", "decode", "-o", ""}, []string{"table", "json", "yaml", "jsonl", "csv"}},
		{[]string{"id", "check", "--output", ""}, []string{"table", "json", "yaml", "jsonl"}},
		{[]string{"lock", "acquire", "-o", ""}, []string{"table", "json", "yaml", "env"}},
		{[]string{"lock", "renew", "-o", "e"}, []string{"env"}},
		{[]string{"lock", "inspect", "-o", ""}, []string{"table", "json", "yaml"}},
		{[]string{"zk", "watch", "-o", "j"}, []string{"json", "jsonl"}},
		{[]string{"sandbox", "-o", ""}, []string{"table", "json", "yaml", "env"}},
		{[]string{"kafka", "topics", "-o", ""}, []string{"table", "json", "yaml"}},
		// Commands that print no data offer nothing for -o.
		{[]string{"config", "use-context", "-o", ""}, nil},
		{[]string{"lock", "run", "-o", ""}, nil},
		{[]string{"completion", "bash", "-o", ""}, nil},
		{[]string{"lock", "-o", ""}, nil},
		// Numbers, durations and commands without arguments: nothing, and no file names.
		{[]string{"--timeout", ""}, nil},
		{[]string{"ring", "simulate", "--nodes", ""}, nil},
		{[]string{"kafka", "topics", ""}, nil},
		{[]string{"lock", "list", "--redis", ""}, nil},
	}
	for _, c := range cases {
		got := complete(t, nil, c.args...)
		if !slices.Equal(got.names, c.want) {
			t.Errorf("%q: got %q, want %q", c.args, got.names, c.want)
		}
		if !got.noFiles() {
			t.Errorf("%q: directive %d lets the shell complete file names", c.args, got.directive)
		}
	}
}

func TestCompletionLayouts(t *testing.T) {
	decode := complete(t, nil, "id", "decode", "--layout", "")
	for _, want := range []string{"auto", "twitter", "sonyflake", "ulid", "ksuid"} {
		if !slices.Contains(decode.names, want) {
			t.Errorf("id decode --layout: %q missing from %q", want, decode.names)
		}
	}
	if !strings.Contains(decode.run.out, "twitter\t") {
		t.Errorf("presets should carry their description:\n%s", decode.run.out)
	}
	gen := complete(t, nil, "id", "generate", "-l", "")
	if slices.Contains(gen.names, "auto") || slices.Contains(gen.names, "ulid") || !slices.Contains(gen.names, "discord") {
		t.Errorf("id generate --layout offers only presets, got %q", gen.names)
	}
	check := complete(t, nil, "id", "check", "--layout", "u")
	if !slices.Equal(check.names, []string{"ulid"}) {
		t.Errorf("id check --layout u: %q", check.names)
	}
	layout := complete(t, nil, "id", "layout", "tw")
	if !slices.Equal(layout.names, []string{"twitter"}) {
		t.Errorf("id layout tw: %q", layout.names)
	}
	if second := complete(t, nil, "id", "layout", "twitter", ""); len(second.names) != 0 {
		t.Errorf("id layout takes one NAME, got suggestions %q for a second", second.names)
	}
}

func TestCompletionContexts(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	env := map[string]string{"DSCTL_CONFIG": cfg}
	for _, args := range [][]string{
		{"config", "set-context", "staging", "--redis", "127.0.0.1:6379"},
		{"config", "set-context", "prod", "--brokers", "127.0.0.1:9092", "--use"},
		{"config", "set-context", "sandbox-like", "--zk", "127.0.0.1:2181"},
	} {
		if r := dsctl(t, env, args...); r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.errOut)
		}
	}
	cases := []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{env, []string{"--context", ""}, []string{"prod", "sandbox-like", "staging"}},
		{env, []string{"ping", "--context", "s"}, []string{"sandbox-like", "staging"}},
		{env, []string{"config", "use-context", "st"}, []string{"staging"}},
		{env, []string{"config", "delete-context", ""}, []string{"prod", "sandbox-like", "staging"}},
		{env, []string{"config", "set-context", "p"}, []string{"prod"}},
		{env, []string{"config", "use-context", "prod", ""}, nil}, // one NAME only
		// --config on the line is the file read, whatever DSCTL_CONFIG says.
		{map[string]string{"DSCTL_CONFIG": filepath.Join(t.TempDir(), "none.yaml")}, []string{"--config", cfg, "--context", "p"}, []string{"prod"}},
		// A missing file gives nothing, and no error.
		{nil, []string{"--config", filepath.Join(t.TempDir(), "missing.yaml"), "--context", ""}, nil},
	}
	for _, c := range cases {
		got := complete(t, c.env, c.args...)
		if !slices.Equal(got.names, c.want) || !got.noFiles() {
			t.Errorf("%q: got %q (directive %d), want %q", c.args, got.names, got.directive, c.want)
		}
	}
	desc := complete(t, env, "--context", "pr")
	if !strings.Contains(desc.run.out, "prod\tcurrent, kafka") {
		t.Errorf("the current context should be described as such:\n%s", desc.run.out)
	}
}

func TestCompletionLockNames(t *testing.T) {
	redis := testenv.List(t, testenv.Redis)[0]
	name := locktest.Name(t, "completion")
	other := name + "-other"
	for _, n := range []string{name, other} {
		if r := dsctl(t, nil, "lock", "acquire", n, "--redis", redis, "--ttl", "60s"); r.code != 0 {
			t.Fatalf("acquire %s: exit %d: %s", n, r.code, r.errOut)
		}
		t.Cleanup(func() { dsctl(t, nil, "lock", "break", n, "--force", "--redis", redis) })
	}
	for _, verb := range []string{"inspect", "release", "renew", "break", "acquire", "run"} {
		got := complete(t, nil, "lock", verb, "--redis", redis, name)
		if !slices.Equal(got.names, []string{name, other}) || !got.noFiles() {
			t.Errorf("lock %s %s: got %q (directive %d)", verb, name, got.names, got.directive)
		}
	}
	// The endpoint comes from DSCTL_REDIS too, and the prefix narrows the list.
	got := complete(t, map[string]string{"DSCTL_REDIS": redis}, "lock", "inspect", other)
	if !slices.Equal(got.names, []string{other}) {
		t.Errorf("lock inspect %s with DSCTL_REDIS: %q", other, got.names)
	}
	got = complete(t, nil, "lock", "list", "--redis", redis, "--prefix", name)
	if !slices.Equal(got.names, []string{name, other}) {
		t.Errorf("lock list --prefix: %q", got.names)
	}
	// A second argument is not a lock name; lock run's are the command to run.
	if got := complete(t, nil, "lock", "inspect", "--redis", redis, name, ""); len(got.names) != 0 {
		t.Errorf("lock inspect second argument: %q", got.names)
	}
	if got := complete(t, nil, "lock", "run", "--redis", redis, name, "--", ""); got.directive != cobra.ShellCompDirectiveDefault {
		t.Errorf("lock run's command should complete as the shell does, directive %d", got.directive)
	}
}

func TestCompletionTopics(t *testing.T) {
	brokers := testenv.List(t, testenv.Kafka)
	prefix := fmt.Sprintf("dsctl-comp-%s-", strconv.FormatInt(time.Now().UnixNano(), 36))
	createTopics(t, brokers, prefix+"orders", prefix+"payments")
	bootstrap := strings.Join(brokers, ",")
	want := []string{prefix + "orders", prefix + "payments"}
	cases := [][]string{
		{"kafka", "describe", "topic", "--brokers", bootstrap, prefix},
		{"kafka", "audit", "--brokers", bootstrap, "--topic", prefix},
		{"kafka", "partition", "--brokers", bootstrap, "--topic", prefix},
		{"kafka", "topics", "--brokers", bootstrap, "--pattern", prefix},
	}
	for _, args := range cases {
		got := complete(t, nil, args...)
		if !slices.Equal(got.names, want) || !got.noFiles() {
			t.Errorf("%q: got %q (directive %d), want %q", args, got.names, got.directive, want)
		}
	}
	got := complete(t, map[string]string{"DSCTL_KAFKA": bootstrap}, "kafka", "describe", "topic", prefix+"o")
	if !slices.Equal(got.names, want[:1]) {
		t.Errorf("with DSCTL_KAFKA: %q", got.names)
	}
	// Internal topics only once the word starts with "_".
	if got := complete(t, nil, "kafka", "describe", "topic", "--brokers", bootstrap, ""); slices.Contains(got.names, "__consumer_offsets") {
		t.Errorf("internal topics offered for an empty word: %q", got.names)
	}
	ensureOffsetsTopic(t, brokers) // a fresh cluster makes it on the first group lookup
	if got := complete(t, nil, "kafka", "describe", "topic", "--brokers", bootstrap, "__"); !slices.Contains(got.names, "__consumer_offsets") {
		t.Errorf("__ should offer __consumer_offsets, got %q", got.names)
	}
	// One topic per describe.
	if got := complete(t, nil, "kafka", "describe", "topic", "--brokers", bootstrap, prefix+"orders", ""); len(got.names) != 0 {
		t.Errorf("describe topic second argument: %q", got.names)
	}
}

// createTopics makes topics on the real cluster and deletes them when the test ends.
func createTopics(t *testing.T, brokers []string, names ...string) {
	t.Helper()
	client, err := endpoint.Dialer{Timeout: 10 * time.Second}.ConnectKafka(context.Background(), endpoint.Kafka{Brokers: brokers})
	if err != nil {
		t.Fatalf("kafka: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range names {
			_ = admin.DeleteTopic(n)
		}
		admin.Close()
	})
	for _, n := range names {
		if err := admin.CreateTopic(n, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
	}
	// Metadata reaches every broker shortly after creation, and completion may ask any of
	// them: wait until each broker lists every topic (asking one broker is not enough).
	deadline := time.Now().Add(15 * time.Second)
	for {
		missing, err := topicsMissingOnSomeBroker(client, names)
		if err == nil && missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics %q not on every broker after 15s (missing %q, err %v)", names, missing, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// topicsMissingOnSomeBroker asks each broker for the topics' metadata and names the first
// topic one of them does not know yet.
func topicsMissingOnSomeBroker(client sarama.Client, names []string) (string, error) {
	if err := client.RefreshMetadata(); err != nil {
		return "", err
	}
	for _, b := range client.Brokers() {
		if ok, _ := b.Connected(); !ok {
			if err := b.Open(client.Config()); err != nil && err != sarama.ErrAlreadyConnected {
				return "", err
			}
		}
		resp, err := b.GetMetadata(&sarama.MetadataRequest{Version: 4, Topics: names, AllowAutoTopicCreation: false})
		if err != nil {
			return "", err
		}
		known := map[string]bool{}
		for _, tm := range resp.Topics {
			if tm.Err == sarama.ErrNoError {
				known[tm.Name] = true
			}
		}
		for _, n := range names {
			if !known[n] {
				return n, nil
			}
		}
	}
	return "", nil
}

// TestCompletionZooKeeperPaths runs against the embedded ZooKeeper with its demo tree,
// so it needs no external server.
func TestCompletionZooKeeperPaths(t *testing.T) {
	srv, err := zkserver.Start(context.Background(), zkserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := srv.SeedDemo(zkserver.DemoOptions{ConfigInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	zk := srv.Addr()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"zk", "ls", "--zk", zk, ""}, []string{"/config", "/dsctl", "/services", "/zookeeper"}},
		{[]string{"zk", "ls", "--zk", zk, "/"}, []string{"/config", "/dsctl", "/services", "/zookeeper"}},
		{[]string{"zk", "get", "--zk", zk, "/se"}, []string{"/services"}},
		{[]string{"zk", "stat", "--zk", zk, "/services/"}, []string{"/services/checkout", "/services/search"}},
		{[]string{"zk", "tree", "--zk", zk, "/config/checkout/s"}, []string{"/config/checkout/settings"}},
		// A word that is exactly one node offers its children too: TAB walks down.
		{[]string{"zk", "get", "--zk", zk, "/config/checkout"}, []string{"/config/checkout", "/config/checkout/feature-flags", "/config/checkout/settings"}},
		// Every PATH of watch; only the first of ls.
		{[]string{"zk", "watch", "--zk", zk, "/config", "/se"}, []string{"/services"}},
		{[]string{"zk", "ls", "--zk", zk, "/config", "/se"}, nil},
		// Paths are under --chroot.
		{[]string{"zk", "ls", "--zk", zk, "--chroot", "/config", "/"}, []string{"/checkout"}},
		// Relative words and missing parents give nothing.
		{[]string{"zk", "ls", "--zk", zk, "services"}, nil},
		{[]string{"zk", "ls", "--zk", zk, "/nope/x"}, nil},
	}
	for _, c := range cases {
		got := complete(t, nil, c.args...)
		if !slices.Equal(got.names, c.want) || !got.noFiles() {
			t.Errorf("%q: got %q (directive %d), want %q", c.args, got.names, got.directive, c.want)
		}
		if len(c.want) > 0 && got.directive&cobra.ShellCompDirectiveNoSpace == 0 {
			t.Errorf("%q: a path goes on with /, so no space should follow", c.args)
		}
	}
	// The ensemble comes from DSCTL_ZK too.
	got := complete(t, map[string]string{"DSCTL_ZK": zk}, "zk", "ls", "/dsctl/")
	if !slices.Equal(got.names, []string{"/dsctl/locks"}) {
		t.Errorf("with DSCTL_ZK: %q", got.names)
	}
}

// deadEndpoints are a closed port and a listener that accepts connections and never
// answers (a paused or hung server): both must give no suggestion, quickly.
func deadEndpoints(t *testing.T) (closed, silent string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = l.Addr().String()
	l.Close()
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or written
		}
	}()
	t.Cleanup(func() {
		hung.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return closed, hung.Addr().String()
}

func TestCompletionDeadServerGivesNothingQuickly(t *testing.T) {
	closed, silent := deadEndpoints(t)
	for _, addr := range []string{closed, silent} {
		cases := [][]string{
			{"lock", "inspect", "--redis", addr, ""},
			{"kafka", "describe", "topic", "--brokers", addr, ""},
			{"zk", "ls", "--zk", addr, "/"},
			// --timeout above the cap: completion still waits at most a second.
			{"--timeout", "30s", "kafka", "audit", "--brokers", addr, "--topic", ""},
		}
		for _, args := range cases {
			got := complete(t, nil, args...)
			if len(got.names) != 0 || !got.noFiles() {
				t.Errorf("%q: got %q (directive %d), want nothing and no files", args, got.names, got.directive)
			}
			if strings.Count(got.run.out, "\n") != 1 {
				t.Errorf("%q: stdout must hold only the directive:\n%s", args, got.run.out)
			}
			if got.took > 1500*time.Millisecond {
				t.Errorf("%q: took %s; a completion must give up within about a second", args, got.took)
			}
		}
	}
	// A shorter --timeout is kept.
	got := complete(t, nil, "--timeout", "200ms", "lock", "inspect", "--redis", silent, "")
	if got.took > 1000*time.Millisecond || len(got.names) != 0 {
		t.Errorf("--timeout 200ms: took %s, got %q", got.took, got.names)
	}
}

// TestCompletionEveryFlagIsQuietWhenServersAreDown asks every flag of every command
// for values, with every backend pointing at a closed port: no panic, no error text in
// the suggestions, a directive line last.
func TestCompletionEveryFlagIsQuietWhenServersAreDown(t *testing.T) {
	closed, _ := deadEndpoints(t)
	env := map[string]string{"DSCTL_REDIS": closed, "DSCTL_KAFKA": closed, "DSCTL_ZK": closed,
		"DSCTL_CONFIG": filepath.Join(t.TempDir(), "config.yaml")}
	f := cmdutil.New(&cmdutil.IOStreams{}, cmdutil.BuildInfo{})
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Hidden {
			return
		}
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	root := NewRoot(f)
	walk(root, nil)
	asked := 0
	for _, path := range paths {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		words := [][]string{append(slices.Clone(path), "")}
		cmd.Flags().VisitAll(func(fl *pflag.Flag) {
			if fl.Value.Type() != "bool" && !fl.Hidden {
				words = append(words, append(slices.Clone(path), "--"+fl.Name, ""))
			}
		})
		for _, args := range words {
			got := complete(t, env, args...)
			asked++
			for _, n := range got.names {
				if strings.Contains(strings.ToLower(n), "error") && !strings.HasSuffix(strings.Join(args, " "), "--fail-on ") {
					t.Errorf("%q: error text in the suggestions: %q", args, got.names)
				}
			}
		}
	}
	if asked < 100 {
		t.Fatalf("walked only %d flag and argument positions: the walk is broken", asked)
	}
}

func TestCompletionScriptsGenerate(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := dsctl(t, nil, "completion", shell)
		if r.code != 0 || !strings.Contains(r.out, "__complete") || !strings.Contains(r.out, "dsctl") {
			t.Errorf("completion %s: exit %d, %d bytes: %s", shell, r.code, len(r.out), r.errOut)
		}
	}
}

// ensureOffsetsTopic makes the cluster create __consumer_offsets (a group coordinator
// lookup does) and waits, bounded, until metadata lists it.
func ensureOffsetsTopic(t *testing.T, brokers []string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	c, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, cerr := c.Coordinator("dsctl-completion-test")
		_ = c.RefreshMetadata()
		topics, _ := c.Topics()
		if slices.Contains(topics, "__consumer_offsets") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("__consumer_offsets not created within 30s (coordinator lookup: %v)", cerr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
