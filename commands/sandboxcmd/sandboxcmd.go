// Package sandboxcmd implements `dsctl sandbox`: the embedded servers in the foreground.
package sandboxcmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/sandbox"
	"github.com/dsctl/dsctl/probes/sandbox/zkserver"
)

// Options are the flags of `dsctl sandbox`.
type Options struct {
	RedisPort int
	KafkaPort int
	ZKPort    int
}

// Info is what `dsctl sandbox` prints once the servers are up.
type Info struct {
	Redis     string              `json:"redis"`
	Kafka     []string            `json:"kafka"`
	ZooKeeper string              `json:"zookeeper"`
	Topics    []sandbox.DemoTopic `json:"topics"`
	ZNodes    []DemoZNode         `json:"znodes"`
}

// DemoZNode is one part of the seeded ZooKeeper tree and what it demonstrates.
type DemoZNode struct {
	Path         string `json:"path"`
	Demonstrates string `json:"demonstrates"`
}

// demoZNodes describes the seeded tree (zkserver.Server.SeedDemo).
func demoZNodes(d *zkserver.Demo) []DemoZNode {
	if d == nil {
		return nil
	}
	var out []DemoZNode
	for _, svc := range []string{"checkout", "search"} {
		if members := d.Services[svc]; len(members) > 0 {
			out = append(out, DemoZNode{Path: zkserver.DemoServicesPath + "/" + svc + "/members",
				Demonstrates: fmt.Sprintf("service registry: %d ephemeral-sequential members", len(members))})
		}
	}
	out = append(out,
		DemoZNode{Path: d.ConfigPath, Demonstrates: "config that changes every few seconds (zk watch it)"},
		DemoZNode{Path: d.LockPath, Demonstrates: fmt.Sprintf("Curator-style lock queue: %d _c_<uuid>-lock-<seq> nodes, the lowest holds", len(d.LockQueue))})
	return out
}

// Table lists the endpoints and the demo topics.
func (i Info) Table() *output.TableData {
	t := &output.TableData{Header: []string{"server", "endpoint", "notes"}}
	t.AddRow("redis", i.Redis, "miniredis (Redis protocol, in process)")
	t.AddRow("kafka", strings.Join(i.Kafka, ","), "kfake, 3 brokers (Kafka protocol, in process)")
	t.AddRow("zookeeper", i.ZooKeeper, "zkserver, standalone (ZooKeeper protocol, in process)")
	for _, tp := range i.Topics {
		t.AddRow("topic", tp.Name, fmt.Sprintf("rf %d: %s", tp.ReplicationFactor, tp.Demonstrates))
	}
	for _, z := range i.ZNodes {
		t.AddRow("znode", z.Path, z.Demonstrates)
	}
	t.Notes = []output.Cell{
		output.C(""),
		output.S("# point other shells or tools at the sandbox:", output.Dim),
	}
	for _, kv := range i.EnvLines() {
		t.Notes = append(t.Notes, output.C("export "+kv[0]+"="+kv[1]))
	}
	return t
}

// EnvLines are the env vars that point dsctl at the sandbox.
func (i Info) EnvLines() [][2]string {
	return [][2]string{{"DSCTL_REDIS", i.Redis}, {"DSCTL_KAFKA", strings.Join(i.Kafka, ",")}, {"DSCTL_ZK", i.ZooKeeper}}
}

// NewCmd builds `dsctl sandbox`.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the embedded Redis, 3-broker Kafka and ZooKeeper in the foreground until ctrl-C",
		Long: `Run dsctl's embedded servers in the foreground and print their endpoints, so other
commands (in another shell) or other tools can use them: a Redis-protocol server
(miniredis), a 3-broker Kafka-protocol cluster (kfake) seeded with demo topics that
each show one durability risk, and a standalone ZooKeeper (dsctl's own zkserver,
speaking the ZooKeeper 3.8 wire protocol, tickTime 500ms so session timeouts of 1s
to 10s) seeded with a demo tree: a service registry of ephemeral members, a config
node that changes every few seconds, and a Curator-style lock queue. ZooKeeper
clients connect as to a real server (go-zookeeper and ZooKeeper's own Java client
are tested against it); the four-letter words ruok, srvr, stat and mntr answer on
the same port. Everything is in memory and gone on ctrl-C.
There is no embedded SQL database.

Use --redis-port 0 / --kafka-port 0 / --zk-port 0 for any free port. -o env prints
only the export lines (eval them in another shell).

JSON keys: redis, kafka, zookeeper, topics (name, partitions, replication_factor,
configs, demonstrates), znodes (path, demonstrates).`,
		Example: `  dsctl sandbox
  dsctl sandbox --redis-port 0 --kafka-port 0 --zk-port 0 -o json
  # in another shell:
  export DSCTL_REDIS=127.0.0.1:46379 DSCTL_KAFKA=127.0.0.1:49092,127.0.0.1:49093,127.0.0.1:49094 DSCTL_ZK=127.0.0.1:42181
  dsctl ping`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.Printer([]output.Format{output.Table, output.JSON, output.YAML, output.Env})
			if err != nil {
				return err
			}
			return Run(cmd.Context(), f, p, o)
		},
	}
	cmd.Flags().IntVar(&o.RedisPort, "redis-port", 46379, "Redis port (0 = any free port)")
	cmd.Flags().IntVar(&o.KafkaPort, "kafka-port", 49092, "first of three consecutive Kafka broker ports (0 = any free ports)")
	cmd.Flags().IntVar(&o.ZKPort, "zk-port", 42181, "ZooKeeper client port (0 = any free port)")
	cmdutil.SetOutputFormats(cmd, []output.Format{output.Table, output.JSON, output.YAML, output.Env})
	return cmd
}

// Run starts the sandbox, prints its endpoints and blocks until ctx is cancelled.
func Run(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *Options) error {
	for _, p := range []struct {
		flag     string
		port     int
		max      int
		consecut string
	}{{"--redis-port", o.RedisPort, 65535, ""}, {"--kafka-port", o.KafkaPort, 65533, "; the three brokers take it and the next two"},
		{"--zk-port", o.ZKPort, 65535, ""}} {
		if p.port < 0 || p.port > p.max {
			return errs.Usage("%s %d is out of range (0 for any free port, else 1-%d%s)", p.flag, p.port, p.max, p.consecut)
		}
	}
	if f.Sandbox == nil {
		if err := f.StartSandbox(ctx, sandbox.Options{RedisPort: o.RedisPort, KafkaPort: o.KafkaPort, ZooKeeperPort: o.ZKPort}); err != nil {
			return err
		}
	}
	info := Info{Redis: f.Sandbox.Redis[0], Kafka: f.Sandbox.Kafka, Topics: sandbox.DemoTopics}
	if len(f.Sandbox.ZooKeeper) > 0 {
		info.ZooKeeper = f.Sandbox.ZooKeeper[0]
	}
	if f.Sandbox.Running != nil {
		info.ZNodes = demoZNodes(f.Sandbox.Running.ZKDemo)
	}
	if err := p.Print(info); err != nil {
		return err
	}
	fmt.Fprintln(f.IO.ErrOut, "sandbox running; press ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(f.IO.ErrOut, "sandbox stopped")
	return nil
}
