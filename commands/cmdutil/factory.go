package cmdutil

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/sandbox"
)

// BuildInfo is set at link time in main.
type BuildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Globals are the root command's global flags.
type Globals struct {
	Context    string
	ConfigPath string
	Output     string
	Timeout    time.Duration
	NoColor    bool
	Verbose    bool
	Sandbox    bool
}

// SandboxEndpoints are what --sandbox points commands at.
type SandboxEndpoints struct {
	Redis     []string
	Kafka     []string
	ZooKeeper []string
	Running   *sandbox.Sandbox
}

// Factory gives commands lazy access to config, endpoints and printers.
type Factory struct {
	IO     *IOStreams
	Build  BuildInfo
	Global Globals
	Getenv func(string) string

	// Sandbox, when non-nil, replaces the Redis, Kafka and ZooKeeper endpoints (set by
	// --sandbox).
	Sandbox *SandboxEndpoints

	// PreRunStarted is set once dsctl code runs (after cobra parsed the command line).
	PreRunStarted bool

	cleanups []func()
	cfgOnce  sync.Once
	cfg      *config.File
	cfgErr   error
}

// New makes a factory on the given streams.
func New(ios *IOStreams, build BuildInfo) *Factory {
	return &Factory{IO: ios, Build: build, Getenv: os.Getenv}
}

// OnClose registers work to do when the command ends, whatever the outcome.
func (f *Factory) OnClose(fn func()) { f.cleanups = append(f.cleanups, fn) }

// Close runs the registered cleanups, last first.
func (f *Factory) Close() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// ConfigPath is the config file in use.
func (f *Factory) ConfigPath() string {
	if f.Global.ConfigPath != "" {
		return f.Global.ConfigPath
	}
	return config.DefaultPath(f.Getenv)
}

// Config loads the config file once.
func (f *Factory) Config() (*config.File, error) {
	f.cfgOnce.Do(func() {
		f.cfg, f.cfgErr = config.Load(f.ConfigPath(), f.Global.ConfigPath != "")
	})
	return f.cfg, f.cfgErr
}

// ConfigForWrite loads the config for a command that writes it: a file named with
// --config that does not exist yet is created rather than refused.
func (f *Factory) ConfigForWrite() (*config.File, error) {
	if f.Global.ConfigPath == "" {
		return f.Config()
	}
	return config.Load(f.Global.ConfigPath, false)
}

// ContextName is the context selected by --context, DSCTL_CONTEXT or the file.
func (f *Factory) ContextName() string {
	if f.Global.Context != "" {
		return f.Global.Context
	}
	return f.Getenv(config.EnvContext)
}

// Endpoints resolves the endpoints for this run with config.ResolveEndpoints: flags >
// env > context > default, with --sandbox replacing Redis, Kafka and ZooKeeper (the
// sandbox starts on first use, after an explicit endpoint flag was refused).
func (f *Factory) Endpoints(ctx context.Context, ov config.Overrides) (config.Endpoints, error) {
	if f.Global.Sandbox { // an explicit address must not be replaced silently
		if err := config.SandboxConflict(ov, nil); err != nil {
			return config.Endpoints{}, err
		}
		if f.Sandbox == nil {
			if err := f.StartSandbox(ctx, sandbox.Options{}); err != nil {
				return config.Endpoints{}, err
			}
		}
	}
	cfg, err := f.Config()
	if err != nil {
		return config.Endpoints{}, err
	}
	return config.ResolveEndpoints(cfg, f.ContextName(), f.Getenv, ov, f.Sandbox.Addrs())
}

// Addrs are the sandbox's addresses for config.ResolveEndpoints (nil without one).
func (s *SandboxEndpoints) Addrs() *config.SandboxAddrs {
	if s == nil {
		return nil
	}
	return &config.SandboxAddrs{Redis: s.Redis, Kafka: s.Kafka, ZooKeeper: s.ZooKeeper}
}

// StartSandbox starts the embedded servers, points Redis, Kafka and ZooKeeper at them,
// stops them when the command ends, and says so on stderr.
func (f *Factory) StartSandbox(ctx context.Context, opt sandbox.Options) error {
	sb, err := sandbox.Start(ctx, opt)
	if err != nil {
		return err
	}
	f.OnClose(sb.Close)
	f.Sandbox = &SandboxEndpoints{Redis: []string{sb.RedisAddr}, Kafka: sb.KafkaBrokers, ZooKeeper: []string{sb.ZooKeeperAddr}, Running: sb}
	f.IO.Notef("sandbox: embedded Redis at %s, 3-broker Kafka at %s and ZooKeeper at %s (in-process; data is discarded on exit; no SQL)",
		sb.RedisAddr, strings.Join(sb.KafkaBrokers, ","), sb.ZooKeeperAddr)
	return nil
}

// NoSandboxZooKeeper is the error for ZooKeeper commands under a sandbox that has no
// embedded ZooKeeper; nil when there is no sandbox or it embeds one (it does since
// probes/sandbox/zkserver).
func (f *Factory) NoSandboxZooKeeper() error {
	if f.Sandbox == nil || len(f.Sandbox.ZooKeeper) > 0 {
		return nil
	}
	return config.NoSandboxZooKeeper()
}

// NoSandboxSQL is the error for SQL commands under --sandbox.
func (f *Factory) NoSandboxSQL() error {
	if f.Sandbox == nil {
		return nil
	}
	return config.NoSandboxSQL()
}

// Dialer is the connection maker with the global timeout and warnings on stderr.
func (f *Factory) Dialer() endpoint.Dialer {
	d := endpoint.Dialer{Timeout: f.Timeout(), Warn: func(m string) { f.IO.Warnf("%s", m) }}
	if f.IO.Verbose {
		d.Trace = f.IO.Debug
	}
	return d
}

// Timeout is --timeout (default 5s).
func (f *Factory) Timeout() time.Duration {
	if f.Global.Timeout <= 0 {
		return endpoint.DefaultTimeout
	}
	return f.Global.Timeout
}

// Printer returns the printer for this command, checking -o against what it supports.
func (f *Factory) Printer(supported []output.Format) (*output.Printer, error) {
	format, err := output.ParseFormat(f.Global.Output, supported)
	if err != nil {
		return nil, err
	}
	return &output.Printer{Format: format, Out: f.IO.Out, Color: f.IO.ColorOut(), Width: f.IO.Width}, nil
}

// Context returns the command's context (cancelled on ctrl-C).
func Context(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
