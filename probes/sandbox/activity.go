package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
	"github.com/dsctl/dsctl/probes/zk"
)

// Simulated activity for `dsctl tui --sandbox`: something to watch within seconds.
// It talks to the servers through their protocols only (as any client would), so it
// works against the sandbox or, in tests, any Redis, ZooKeeper and Kafka:
//
//   - lock workers take and release locks on Redis, queueing for the same few names
//     (so leases are handed over with growing fencing tokens); now and then a worker
//     "crashes" while holding one and its lease expires;
//   - a ZooKeeper config node changes every few seconds;
//   - a Kafka topic's unclean.leader.election.enable flips between true (an audit
//     error) and false, so an audit finding appears and clears.

// ActivityOptions say where and how busily to simulate. Zero values take defaults.
type ActivityOptions struct {
	Redis     []string
	ZooKeeper []string
	Kafka     []string

	// Workers is the number of lock workers (default 4) competing for LockNames
	// (default orders, payments, inventory) under LockPrefix (default "sandbox/").
	Workers    int
	LockNames  []string
	LockPrefix string
	// LockTTL is each lease's TTL (default 4s); a hold lasts a random part of it.
	LockTTL time.Duration
	// CrashOneIn makes one hold in this many end in a "crash": the worker leaves the
	// lease to expire and pauses (default 4; negative: never).
	CrashOneIn int
	// ConfigPath is the ZooKeeper node that changes every ConfigInterval (defaults
	// /sandbox/activity/rollout and 3s).
	ConfigPath     string
	ConfigInterval time.Duration
	// FlakyTopic is the Kafka topic whose config flips every FlipInterval (defaults
	// activity-flaky and 8s). It is created (3 partitions, replication factor 3) when
	// missing.
	FlakyTopic   string
	FlipInterval time.Duration
	// Seed makes the workers' choices repeatable (0: random).
	Seed uint64

	// BrokerOutageEvery, when set, takes one embedded Kafka broker down that often,
	// for BrokerOutageFor (default 6s), rotating through the brokers: the audit then
	// reports offline and under-replicated partitions, which clear when it is back.
	// Only (*Sandbox).StartActivity can do this (it needs the embedded cluster).
	BrokerOutageEvery time.Duration
	BrokerOutageFor   time.Duration
}

func (o *ActivityOptions) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if len(o.LockNames) == 0 {
		o.LockNames = []string{"orders", "payments", "inventory"}
	}
	if o.LockPrefix == "" {
		o.LockPrefix = "sandbox/"
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 4 * time.Second
	}
	if o.CrashOneIn == 0 {
		o.CrashOneIn = 4
	}
	if o.ConfigPath == "" {
		o.ConfigPath = "/sandbox/activity/rollout"
	}
	if o.ConfigInterval <= 0 {
		o.ConfigInterval = 3 * time.Second
	}
	if o.FlakyTopic == "" {
		o.FlakyTopic = "activity-flaky"
	}
	if o.FlipInterval <= 0 {
		o.FlipInterval = 8 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
}

// ActivityOptions points the simulation at this sandbox's servers, with a broker
// outage every 30s.
func (s *Sandbox) ActivityOptions() ActivityOptions {
	return ActivityOptions{Redis: []string{s.RedisAddr}, ZooKeeper: []string{s.ZooKeeperAddr}, Kafka: s.KafkaBrokers,
		BrokerOutageEvery: 30 * time.Second}
}

// StartActivity is StartActivity on this sandbox, plus the broker outages that only
// the embedded cluster allows (opt.BrokerOutageEvery). Stop the activity (end ctx,
// wait for Done) before Close: a broker that is down when ctx ends is brought back.
func (s *Sandbox) StartActivity(ctx context.Context, d endpoint.Dialer, opt ActivityOptions) (*Activity, error) {
	a, err := startActivity(ctx, d, opt, func(a *Activity) {
		if opt.BrokerOutageEvery > 0 && s.kafka != nil {
			a.run(func() { a.brokerOutages(ctx, s) })
		}
	})
	return a, err
}

// ActivityStats count what the simulation did.
type ActivityStats struct {
	Acquired      int64 `json:"acquired"`
	Released      int64 `json:"released"`
	Crashed       int64 `json:"crashed"`
	ConfigChanges int64 `json:"config_changes"`
	TopicFlips    int64 `json:"topic_flips"`
	// TopicUnclean is the flaky topic's unclean.leader.election.enable now (true: the
	// audit reports topic-unclean-election on it).
	TopicUnclean bool `json:"topic_unclean"`
	// BrokerOutages counts embedded brokers taken down; BrokerDown is the one down
	// now (-1: none).
	BrokerOutages int64 `json:"broker_outages"`
	BrokerDown    int32 `json:"broker_down"`
	// Errors counts failed steps (a server gone, say); the simulation carries on.
	Errors int64 `json:"errors"`
	// LastError is the latest of them.
	LastError string `json:"last_error,omitempty"`
}

// Activity is a running simulation.
type Activity struct {
	opt  ActivityOptions
	d    endpoint.Dialer
	wg   sync.WaitGroup
	done chan struct{}

	acquired, released, crashed, configChanges, topicFlips, errCount atomic.Int64
	lastErr                                                          atomic.Value // string

	// unclean is the flaky topic's unclean.leader.election.enable as last set.
	unclean atomic.Bool

	outages    atomic.Int64
	brokerDown atomic.Int32
}

// StartActivity prepares what the simulation needs (the config node, the flaky topic,
// Redis connections), then runs it until ctx ends. A backend left out of opt (no
// addresses) is not simulated. It fails only when preparing fails.
func StartActivity(ctx context.Context, d endpoint.Dialer, opt ActivityOptions) (*Activity, error) {
	return startActivity(ctx, d, opt, nil)
}

func startActivity(ctx context.Context, d endpoint.Dialer, opt ActivityOptions, more func(*Activity)) (*Activity, error) {
	opt.defaults()
	a := &Activity{opt: opt, d: d, done: make(chan struct{})}
	a.lastErr.Store("")
	a.brokerDown.Store(-1)
	var lockers []lock.Locker
	closeAll := func() {
		for _, l := range lockers {
			l.Close()
		}
	}
	if len(opt.Redis) > 0 {
		for range opt.Workers {
			l, err := redislock.New(d, endpoint.Redis{Addrs: opt.Redis})
			if err != nil {
				closeAll()
				return nil, err
			}
			lockers = append(lockers, l)
		}
	}
	var zc *zk.Client
	if len(opt.ZooKeeper) > 0 {
		c, err := zk.Connect(ctx, d, zk.Options{Endpoint: endpoint.ZooKeeper{Servers: opt.ZooKeeper}})
		if err != nil {
			closeAll()
			return nil, err
		}
		if err := c.CreateAll(ctx, parents(opt.ConfigPath), []byte(a.config(0)), 0); err != nil {
			c.Close()
			closeAll()
			return nil, err
		}
		zc = c
	}
	var admin sarama.ClusterAdmin
	if len(opt.Kafka) > 0 {
		ad, err := a.flakyTopic(ctx)
		if err != nil {
			if zc != nil {
				zc.Close()
			}
			closeAll()
			return nil, err
		}
		admin = ad
	}
	for i, l := range lockers {
		a.run(func() { a.lockWorker(ctx, l, i) })
	}
	if zc != nil {
		a.run(func() { a.configChanger(ctx, zc) })
	}
	if admin != nil {
		a.run(func() { a.topicFlipper(ctx, admin) })
	}
	if more != nil {
		more(a)
	}
	go func() {
		a.wg.Wait()
		close(a.done)
	}()
	return a, nil
}

func (a *Activity) run(fn func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		fn()
	}()
}

// Done is closed when every part of the simulation has stopped (after ctx ended) and
// its connections are closed. Leases of crashed workers are left to expire.
func (a *Activity) Done() <-chan struct{} { return a.done }

// Stats are the counts so far.
func (a *Activity) Stats() ActivityStats {
	return ActivityStats{Acquired: a.acquired.Load(), Released: a.released.Load(), Crashed: a.crashed.Load(),
		ConfigChanges: a.configChanges.Load(), TopicFlips: a.topicFlips.Load(), TopicUnclean: a.unclean.Load(),
		BrokerOutages: a.outages.Load(), BrokerDown: a.brokerDown.Load(), Errors: a.errCount.Load(),
		LastError: a.lastErr.Load().(string)}
}

func (a *Activity) fail(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	a.errCount.Add(1)
	a.lastErr.Store(err.Error())
}

// sleep waits d or until ctx ends (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// lockWorker loops: pick a name, wait for it (at most a TTL), hold it for part of the
// TTL, release it, or now and then "crash" and leave the lease to expire.
func (a *Activity) lockWorker(ctx context.Context, l lock.Locker, i int) {
	defer l.Close()
	rng := rand.New(rand.NewPCG(a.opt.Seed, uint64(i)))
	owner := lock.Owner{Label: fmt.Sprintf("sandbox worker %d", i+1), Tool: "dsctl sandbox activity"}
	ttl := a.opt.LockTTL
	for ctx.Err() == nil {
		name := a.opt.LockPrefix + a.opt.LockNames[rng.IntN(len(a.opt.LockNames))]
		lease, err := l.Acquire(ctx, name, lock.AcquireOptions{TTL: ttl, Wait: lock.WaitFor(ttl), Owner: owner})
		if err != nil {
			if errs.KindOf(err) != errs.KindLockNotAcquired {
				a.fail(ctx, err)
			}
			if !sleep(ctx, jitter(rng, ttl/4)) {
				return
			}
			continue
		}
		a.acquired.Add(1)
		hold := ttl/5 + jitter(rng, ttl/2) // well inside the TTL
		if !sleep(ctx, hold) {
			a.release(l, name, lease.Token)
			return
		}
		if a.opt.CrashOneIn > 0 && rng.IntN(a.opt.CrashOneIn) == 0 {
			a.crashed.Add(1) // no release: the lease runs out; the worker "restarts" later
			if !sleep(ctx, ttl+jitter(rng, ttl)) {
				return
			}
			continue
		}
		a.release(l, name, lease.Token)
		if !sleep(ctx, jitter(rng, ttl/2)) {
			return
		}
	}
}

func (a *Activity) release(l lock.Locker, name, token string) {
	// Its own short context: a release at shutdown still frees the lock.
	ctx, cancel := context.WithTimeout(context.Background(), a.d.Limit())
	defer cancel()
	if err := l.Release(ctx, name, token); err != nil {
		a.fail(ctx, err)
		return
	}
	a.released.Add(1)
}

// jitter is a random duration in [0, d).
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}

func (a *Activity) config(n int64) string {
	return fmt.Sprintf("rollout_percent=%d\nrevision=%d\n", (n*10)%110, n)
}

// parents lists path and its ancestors, root first (for CreateAll).
func parents(path string) []string {
	var out []string
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	return append(out, path)
}

func (a *Activity) configChanger(ctx context.Context, c *zk.Client) {
	defer c.Close()
	for n := int64(1); sleep(ctx, a.opt.ConfigInterval); n++ {
		if _, err := c.Set(ctx, a.opt.ConfigPath, []byte(a.config(n)), -1); err != nil {
			a.fail(ctx, err)
			continue
		}
		a.configChanges.Add(1)
	}
}

// flakyTopic creates the flaky topic when it is missing and returns an admin client.
func (a *Activity) flakyTopic(ctx context.Context) (sarama.ClusterAdmin, error) {
	client, err := a.d.ConnectKafka(ctx, endpoint.Kafka{Brokers: a.opt.Kafka})
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, errs.New(errs.KindRuntime, "sandbox activity: kafka admin: %v", err)
	}
	off, minISR := "false", "2"
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3,
		ConfigEntries: map[string]*string{"unclean.leader.election.enable": &off, "min.insync.replicas": &minISR}}
	err = admin.CreateTopic(a.opt.FlakyTopic, detail, false)
	var te *sarama.TopicError
	if err != nil && !(errors.As(err, &te) && te.Err == sarama.ErrTopicAlreadyExists) {
		admin.Close()
		return nil, errs.New(errs.KindRuntime, "sandbox activity: cannot create topic %s: %v", a.opt.FlakyTopic, err)
	}
	return admin, nil
}

func (a *Activity) topicFlipper(ctx context.Context, admin sarama.ClusterAdmin) {
	defer admin.Close()
	for sleep(ctx, a.opt.FlipInterval) {
		next := !a.unclean.Load()
		value := fmt.Sprint(next)
		err := admin.IncrementalAlterConfig(sarama.TopicResource, a.opt.FlakyTopic, map[string]sarama.IncrementalAlterConfigsEntry{
			"unclean.leader.election.enable": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &value},
		}, false)
		if err != nil {
			a.fail(ctx, err)
			continue
		}
		a.unclean.Store(next)
		a.topicFlips.Add(1)
	}
}

// brokerOutages takes the embedded brokers down in turn, each for BrokerOutageFor, and
// brings each back on its own port with the demo's leader placement restored.
func (a *Activity) brokerOutages(ctx context.Context, s *Sandbox) {
	outage := a.opt.BrokerOutageFor
	if outage <= 0 {
		outage = 6 * time.Second
	}
	for turn := 0; sleep(ctx, a.opt.BrokerOutageEvery); turn++ {
		nodes, ports, err := s.brokerPorts(ctx)
		if err != nil {
			a.fail(ctx, err)
			continue
		}
		node := nodes[turn%len(nodes)]
		if err := s.kafka.RemoveNode(node); err != nil {
			a.fail(ctx, err)
			continue
		}
		a.outages.Add(1)
		a.brokerDown.Store(node)
		sleep(ctx, outage) // back at once when ctx ends: the sandbox stays whole
		if _, _, err := s.kafka.AddNode(node, ports[node]); err != nil {
			a.fail(context.Background(), fmt.Errorf("sandbox: cannot bring kafka broker %d back on port %d: %w", node, ports[node], err))
			continue
		}
		a.brokerDown.Store(-1)
		if err := s.placeLeaders(nodes); err != nil {
			a.fail(context.Background(), err)
		}
	}
}

// brokerPorts maps each embedded broker's id to its port (kfake lists addresses only).
func (s *Sandbox) brokerPorts(ctx context.Context) ([]int32, map[int32]int, error) {
	d := endpoint.Dialer{Timeout: 5 * time.Second}
	c, err := d.ConnectKafka(ctx, endpoint.Kafka{Brokers: s.KafkaBrokers})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	ports := map[int32]int{}
	var nodes []int32
	for _, b := range c.Brokers() {
		_, p, err := net.SplitHostPort(b.Addr())
		if err != nil {
			return nil, nil, err
		}
		ports[b.ID()], _ = strconv.Atoi(p)
		nodes = append(nodes, b.ID())
	}
	if len(nodes) < 2 {
		return nil, nil, errs.New(errs.KindRuntime, "sandbox: %d kafka brokers up; an outage needs two or more", len(nodes))
	}
	slices.Sort(nodes)
	return nodes, ports, nil
}
