package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/backends"
	"github.com/dsctl/dsctl/probes/lock/verify"
)

// VerifyOptions are the flags of `dsctl lock verify`.
type VerifyOptions struct {
	Workers   int
	Duration  time.Duration
	Sections  int
	TTL       time.Duration
	Faults    string
	History   string
	Report    string
	Processes bool
	Seed      uint64
	// Check re-checks a saved history instead of running.
	Check   string
	Backend backendFlags
	// durationSet is whether --duration was given (with --sections alone the run is
	// bounded by maxVerifyDuration instead); ttlSet whether --ttl was.
	durationSet, ttlSet bool
}

const (
	maxVerifyWorkers  = 64
	maxVerifyDuration = 10 * time.Minute
	verifyWorkerVerb  = "__worker"
)

func newVerifyCmd(f *cmdutil.Factory) *cobra.Command {
	o := &VerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [--workers 8] [--duration 30s | --sections N] [--ttl 500ms] [--faults latency,blackhole,reset,pause]",
		Short: "Check that the lock excludes under faults (a Jepsen-style test against your own deployment)",
		Long: `Check that the lock backend you depend on actually excludes, under faults.

--workers clients, each with its own connections, loop acquire -> critical section ->
release on a throwaway lock name (dsctl-verify/<random>, purged afterwards: nothing is
left behind). The critical section writes, with the lease's fencing token, to a register
in this process that refuses tokens older than the newest it has seen, as a fenced
storage would. Some sections outlive the TTL and renew it every TTL/3, as ` + "`lock run`" + `
does. Every operation is recorded (invoke, then ok, fail or unknown, monotonic times).

Faults are injected client side, so this is safe on a shared server: each worker
talks to the servers through its own in-process TCP proxy, which adds latency and
jitter, blackholes the link for a while (held bytes arrive late, as after a
partition heals), or resets the connections; pause makes a holder sleep past its TTL
and then write without looking at the clock (with --processes: a real SIGSTOP and
SIGCONT of a worker process).

The history is then checked for:
  mutual_exclusion   two holders that both believed they held the lock at once
                     (belief: from acquire's answer to the release or the lease's
                     local deadline, whichever is first)
  fence_order        fencing tokens strictly increasing from holder to holder
  stale_writes       writes the fenced register accepted from a holder older than
                     one that had already written (critical sections interleaved)
  lease_deadline     a lease reported gone (renew/release: not held) before its local
                     deadline
  run_stops_in_time  a holder still working at its deadline (` + "`lock run`" + ` kills its
                     child then) overtaken by the next holder before that deadline
  linearizable       porcupine finds an order of the acquisitions and ends that
                     keeps the lock exclusive
Backends without safe fencing tokens (Redis quorum mode) are checked by belief
intervals only: fence_order and stale_writes are reported not_checked.

Exit 0 when every property holds, 5 when one is violated (the table and -o json say
which, with the worst overlap's timeline), 2 on bad input, 6 when the backend cannot
be reached. --history writes every operation as JSON lines (the first line, op "run",
says what ran); --report writes an HTML page with a timeline of holders per worker
where overlaps show in red. --check FILE checks a saved history again, touching no
server (with --report: draws it).

Load: on Redis, per worker and server a small pool of command connections and one
pub/sub connection; 8 workers sent one Redis about 750 commands/s at --ttl 500ms and
2,500/s at 200ms (it grows as the TTL shrinks). On ZooKeeper, one session per worker
(its proxies in front of every server of the ensemble), under --zk-root. On MySQL
and PostgreSQL, one connection pool per worker through its proxy in front of the
DSN's host:port (the DSN itself is never printed), on --table. In SQL session mode a
reset ends the holder's connection, which frees its session lock on the server at
once: dsctl then reports the lease lost before its local deadline, so lease_deadline
can be violated by design (a plain GET_LOCK / pg_advisory_lock user could take the
lock then); use --faults latency,blackhole,pause to check the rest. The run ends after --duration (or --sections) and the
sections in flight. Set --timeout (default 5s) near the TTL so faulty calls give up
quickly.

JSON keys: backend, lock_name, workers, duration_ms, ttl_ms, faults, processes, seed,
faults_injected {latency, blackhole, reset, pause}, safe, violations, fencing_checked,
properties [{name, verdict (ok|violated|not_checked|unknown), violations, checked,
detail}], counts {acquire_ok, acquire_fail, acquire_unknown, sections, renew_ok,
renew_fail, renew_unknown, release_ok, release_fail, release_unknown, writes_accepted,
writes_refused, late_writes, leases_lost, overran, pauses, network_faults},
worst_overlap {a, b: {worker, holding, fence, invoked_us, from_us, to_us, ended},
from_us, to_us, duration_ms, timeline [events]}, overlaps (up to 20, longest first),
duration_us, history_file, report_file.
History events (JSONL): seq, t_us, worker, op (run|acquire|renew|write|release|
deadline|pause|fault), type (invoke|ok|fail|unknown|start|end), holding, fence, token,
expires_us, late, error, detail; the run line has ttl_ms and backend.`,
		Example: `  dsctl lock verify --redis 127.0.0.1:6379 --duration 30s
  dsctl lock verify --zk zk1:2181,zk2:2181,zk3:2181 --duration 30s --timeout 1s
  DSCTL_SQL_DSN=postgres://app@db:5432/app dsctl lock verify --backend postgres --duration 30s --timeout 1s
  dsctl lock verify --redis r1:6379,r2:6379,r3:6379 --ttl 500ms --timeout 1s --report verify.html
  dsctl lock verify --sections 2000 --faults pause,reset --history verify.jsonl -o json
  dsctl lock verify --processes --workers 4 --duration 20s
  dsctl lock verify --check verify.jsonl --report verify.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.durationSet = cmd.Flags().Changed("duration")
			o.ttlSet = cmd.Flags().Changed("ttl")
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunVerify(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Workers, "workers", 8, "concurrent clients, each with its own connections and fault proxy")
	fl.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to run (with --sections: whichever ends first)")
	fl.IntVar(&o.Sections, "sections", 0, "stop after this many critical sections (at most 10m without --duration)")
	fl.DurationVar(&o.TTL, "ttl", 500*time.Millisecond, "lease TTL (short TTLs make faults bite more often)")
	fl.StringVar(&o.Faults, "faults", strings.Join(verify.AllFaults, ","), "faults to inject: latency, blackhole, reset, pause (comma-separated), all or none")
	fl.StringVar(&o.History, "history", "", "write every operation to FILE as JSON lines")
	fl.StringVar(&o.Report, "report", "", "write an HTML report with a timeline of holders per worker to FILE")
	fl.BoolVar(&o.Processes, "processes", false, "run each worker as its own process (pause = real SIGSTOP/SIGCONT)")
	fl.StringVar(&o.Check, "check", "", "check a history saved with --history again (no servers touched; with --report: draw it)")
	fl.Uint64Var(&o.Seed, "seed", 0, "random seed for faults and workloads (0: random; the output shows the one used)")
	o.Backend.register(cmd)
	cmdutil.RegisterFlag(cmd, "faults", cmdutil.CommaList(append(slices.Clone(verify.AllFaults), "all", "none")...))
	cmd.AddCommand(newVerifyWorkerCmd(f))
	return cmd
}

// VerifyView is what verify prints.
type VerifyView struct {
	Backend        lock.Backend   `json:"backend"`
	LockName       string         `json:"lock_name"`
	Workers        int            `json:"workers"`
	DurationMs     int64          `json:"duration_ms"`
	TTLMs          int64          `json:"ttl_ms"`
	Faults         []string       `json:"faults"`
	Processes      bool           `json:"processes"`
	Seed           string         `json:"seed"`
	FaultsInjected map[string]int `json:"faults_injected"`
	// ClockStepUs is how far this machine's wall clock moved against its monotonic
	// clock during the run (not known for --check).
	ClockStepUs    int64  `json:"clock_step_us"`
	*verify.Report        // safe, violations, properties, counts, worst_overlap, ...
	HistoryFile    string `json:"history_file,omitempty"`
	ReportFile     string `json:"report_file,omitempty"`
}

// RunVerify validates the flags, runs the check and prints the verdicts. A violation
// is exit 5 (after printing).
func RunVerify(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *VerifyOptions) error {
	if o.Check != "" {
		return recheck(p, o)
	}
	switch {
	case o.Workers < 1 || o.Workers > maxVerifyWorkers:
		return errs.Usage("--workers must be between 1 and %d, got %d", maxVerifyWorkers, o.Workers)
	case o.Sections < 0:
		return errs.Usage("--sections must not be negative, got %d", o.Sections)
	case o.Duration <= 0 || o.Duration > time.Hour:
		return errs.Usage("--duration must be between 1s and 1h, got %s", o.Duration).WithHint("e.g. --duration 30s")
	}
	if o.Sections > 0 && !o.durationSet {
		o.Duration = maxVerifyDuration
	}
	if err := lock.ValidateTTL(o.TTL); err != nil {
		return err
	}
	if o.Duration < 4*o.TTL {
		return errs.Usage("--duration %s is too short for --ttl %s", o.Duration, o.TTL).
			WithHint("run for at least 4 TTLs (faults and pauses are sized by the TTL)")
	}
	faults, err := verify.ParseFaults(o.Faults)
	if err != nil {
		return err
	}
	// Open the output files first: a bad path must fail before any load is put on.
	var historyFile, reportFile *os.File
	for _, out := range []struct {
		flag, path string
		f          **os.File
	}{{"--history", o.History, &historyFile}, {"--report", o.Report, &reportFile}} {
		if out.path == "" {
			continue
		}
		fh, err := os.Create(out.path)
		if err != nil {
			return errs.Usage("%s: cannot write %s: %v", out.flag, out.path, rootErr(err)).WithHint("give a path in a writable directory")
		}
		defer fh.Close()
		*out.f = fh
	}

	r, err := o.Backend.resolve(ctx, f)
	if err != nil {
		return err
	}
	d := f.Dialer()
	addrs, err := backends.Targets(d, r.kind, r.e)
	if err != nil {
		return err
	}
	// Reach every server before the run: an unreachable one is exit 6, not a run of
	// failed acquisitions.
	if err := backends.Reach(ctx, d, r.kind, r.e, r.opt); err != nil {
		return err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "dsctl-verify/" + hex.EncodeToString(b)

	vo := verify.Options{Workers: o.Workers, Duration: o.Duration, Sections: o.Sections, TTL: o.TTL, Faults: faults,
		Name: name, Targets: addrs, Tool: tool(f), Seed: o.Seed}
	if o.Seed == 0 {
		vo.Seed = randomSeed()
	}
	if o.Processes {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lock verify --processes: cannot find this program to run its workers: %w", err)
		}
		spec, _ := json.Marshal(workerBackend{Kind: r.kind, Redis: r.e.Redis, ZooKeeper: r.e.ZooKeeper, ZKRoot: r.opt.ZKRoot, TimeoutMs: d.Limit().Milliseconds(),
			SQL: r.e.SQL, SQLMode: string(r.opt.Mode), SQLTable: r.opt.Table, SQLFormat: string(r.opt.Format)})
		vo.Processes = &verify.ProcessOptions{Backend: spec, Command: func(int) *exec.Cmd {
			c := exec.Command(exe, "lock", "verify", verifyWorkerVerb)
			c.Env = os.Environ()
			return c
		}}
	} else {
		vo.NewLocker = func(_ int, proxied []string) (lock.Locker, error) {
			// The worker's own fault proxies sit between its Locker and the servers.
			return backends.Open(ctx, quietDialer(d), backends.Proxied(r.kind, r.e, proxied), r.kind, r.opt)
		}
	}
	if f.IO.StderrTTY {
		vo.Progress = func(pr verify.Progress) {
			sections := strconv.Itoa(pr.Sections)
			if o.Sections > 0 {
				sections += "/" + strconv.Itoa(o.Sections)
			}
			fmt.Fprintf(f.IO.ErrOut, "\rlock verify: %s of %s, %s critical sections, %d faults injected ",
				pr.Elapsed.Round(100*time.Millisecond), o.Duration, sections, pr.Faults)
		}
	}
	outcome, err := verify.Run(ctx, vo)
	if f.IO.StderrTTY {
		fmt.Fprintln(f.IO.ErrOut)
	}
	cleanupVerify(context.WithoutCancel(ctx), f, r, name, o.TTL)
	if err != nil {
		return err
	}
	backend := lock.Backend{}
	if l, lerr := backends.Open(context.WithoutCancel(ctx), d, r.e, r.kind, r.opt); lerr == nil {
		backend = l.Backend()
		_ = l.Close()
	}
	view := VerifyView{Backend: backend, LockName: name, Workers: o.Workers, DurationMs: durationMs(outcome),
		TTLMs: o.TTL.Milliseconds(), Faults: nonNil(faults), Processes: o.Processes, Seed: strconv.FormatUint(vo.Seed, 10),
		FaultsInjected: outcome.Faults, Report: outcome.Report, HistoryFile: o.History, ReportFile: o.Report,
		ClockStepUs: outcome.ClockStep.Microseconds()}
	if historyFile != nil {
		head := verify.RunEvent(backend, o.TTL, "lock "+name+": "+verifyCommandLine(o, faults)+" --seed "+strconv.FormatUint(vo.Seed, 10))
		if err := verify.WriteJSONL(historyFile, append([]verify.Event{head}, outcome.Events...)); err != nil {
			return fmt.Errorf("--history: cannot write %s: %w", o.History, err)
		}
	}
	if reportFile != nil {
		meta := verify.ReportMeta{Title: "dsctl lock verify: " + backend.String(), Workers: o.Workers,
			Command: verifyCommandLine(o, faults)}
		if err := verify.WriteHTML(reportFile, outcome.Report, outcome.Events, meta); err != nil {
			return fmt.Errorf("--report: cannot write %s: %w", o.Report, err)
		}
	}
	if err := p.Print(view); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errs.New(errs.KindInterrupted, "lock verify: interrupted after %s; the verdicts above cover the history up to then",
			lock.RoundDuration(time.Duration(outcome.Report.DurationUs)*time.Microsecond))
	}
	if !outcome.Report.Safe {
		var names []string
		for _, pr := range outcome.Report.Properties {
			if pr.Verdict == verify.VerdictViolated {
				names = append(names, fmt.Sprintf("%s (%d)", pr.Name, pr.Violations))
			}
		}
		hint := "rerun with --report FILE to see the timeline"
		if o.Report != "" {
			hint = "see the timeline in " + o.Report
		}
		return errs.New(errs.KindAuditFailed, "lock verify: the lock on %s is not safe under these faults: %s violated",
			backend, strings.Join(names, ", ")).WithHint("%s; the seed was %d", hint, vo.Seed)
	}
	return nil
}

// recheck checks a saved history again and prints it like a run (exit 5 on a
// violation), drawing it with --report.
func recheck(p *output.Printer, o *VerifyOptions) error {
	fh, err := os.Open(o.Check)
	if err != nil {
		return errs.Usage("--check: cannot read %s: %v", o.Check, rootErr(err)).WithHint("give a file written by --history")
	}
	defer fh.Close()
	events, err := verify.ReadJSONL(fh)
	if err != nil {
		return errs.Usage("--check: %s is not a lock verify history: %v", o.Check, err).WithHint("give a file written by --history")
	}
	var run *verify.Event
	for i := range events {
		if events[i].Op == verify.OpRun {
			run = &events[i]
			break
		}
	}
	var backend lock.Backend
	ttl := o.TTL
	switch {
	case run != nil && run.Backend != nil:
		backend = *run.Backend
		if !o.ttlSet {
			ttl = time.Duration(run.TTLMs) * time.Millisecond
		}
	case !o.ttlSet:
		return errs.Usage("--check: %s does not say its TTL", o.Check).WithHint("give the run's --ttl")
	default: // an older history: fencing is checked when every lease had a token
		backend.FencingSafe = true
		for _, e := range events {
			if e.Op == verify.OpAcquire && e.Type == verify.TypeOK && e.Fence == 0 {
				backend.FencingSafe = false
			}
		}
	}
	if err := lock.ValidateTTL(ttl); err != nil {
		return err
	}
	rep := verify.Check(events, verify.CheckOptions{TTL: ttl, FencingSafe: backend.FencingSafe, EndsWithConnection: backend.EndsWithConnection})
	workers := 0
	for _, e := range events {
		workers = max(workers, e.Worker+1)
	}
	view := VerifyView{Backend: backend, Workers: workers, DurationMs: rep.DurationUs / 1000, TTLMs: ttl.Milliseconds(),
		Faults: []string{}, FaultsInjected: map[string]int{}, Report: rep, HistoryFile: o.Check, ReportFile: o.Report}
	for _, e := range events {
		kind := ""
		switch {
		case e.Op == verify.OpPause && e.Type == verify.TypeStart:
			kind = verify.FaultPause
		case e.Op == verify.OpFault && e.Type == verify.TypeStart:
			kind, _, _ = strings.Cut(e.Detail, " ")
		}
		if kind != "" {
			view.FaultsInjected[kind]++
		}
	}
	for _, k := range verify.AllFaults {
		if view.FaultsInjected[k] > 0 {
			view.Faults = append(view.Faults, k)
		}
	}
	if o.Report != "" {
		rf, err := os.Create(o.Report)
		if err != nil {
			return errs.Usage("--report: cannot write %s: %v", o.Report, rootErr(err)).WithHint("give a path in a writable directory")
		}
		defer rf.Close()
		if err := verify.WriteHTML(rf, rep, events, verify.ReportMeta{Title: "dsctl lock verify --check " + o.Check, Workers: workers}); err != nil {
			return fmt.Errorf("--report: cannot write %s: %w", o.Report, err)
		}
	}
	if err := p.Print(view); err != nil {
		return err
	}
	if !rep.Safe {
		return errs.New(errs.KindAuditFailed, "lock verify: the history in %s shows %d violations", o.Check, rep.Violations)
	}
	return nil
}

// workerBackend is what a --processes worker needs to make its Locker (sent on its
// stdin, never in argv: the Redis password stays a reference to an env var or file).
type workerBackend struct {
	Kind      backends.Kind      `json:"kind"`
	Redis     endpoint.Redis     `json:"redis"`
	ZooKeeper endpoint.ZooKeeper `json:"zookeeper"`
	ZKRoot    string             `json:"zk_root,omitempty"`
	TimeoutMs int64              `json:"timeout_ms"`
	// SQL is the database's driver and DSN reference (env var or file); a DSN given
	// as DSCTL_SQL_DSN is not in it: the worker reads it from its own environment.
	SQL       endpoint.SQL `json:"sql"`
	SQLMode   string       `json:"sql_mode,omitempty"`
	SQLTable  string       `json:"sql_table,omitempty"`
	SQLFormat string       `json:"sql_format,omitempty"`
}

// newVerifyWorkerCmd is the hidden worker of --processes: it reads its request on
// stdin and writes its operations on stdout as JSON lines.
func newVerifyWorkerCmd(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:    verifyWorkerVerb,
		Short:  "internal: one worker process of lock verify --processes",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return verify.ServeWorker(cmdutil.Context(cmd), f.IO.In, f.IO.Out, func(addrs []string, raw json.RawMessage) (lock.Locker, error) {
				var wb workerBackend
				if err := json.Unmarshal(raw, &wb); err != nil {
					return nil, fmt.Errorf("lock verify worker: bad backend description: %w", err)
				}
				d := endpoint.Dialer{Timeout: time.Duration(wb.TimeoutMs) * time.Millisecond}
				e := config.Endpoints{Redis: wb.Redis, ZooKeeper: wb.ZooKeeper, SQL: wb.SQL}
				if dsn := os.Getenv(config.EnvSQLDSN); dsn != "" && backends.IsSQL(wb.Kind) && wb.SQL.DSN.IsZero() {
					e.SQL, e.SQLSource = e.SQL.WithDSNValue(dsn), config.SourceEnv
				}
				opt := backends.Options{ZKRoot: wb.ZKRoot, Mode: backends.Mode(wb.SQLMode), Table: wb.SQLTable, Format: lock.Format(wb.SQLFormat)}
				return backends.Open(cmdutil.Context(cmd), d, backends.Proxied(wb.Kind, e, addrs), wb.Kind, opt)
			})
		},
	}
}

// quietDialer drops the per-dial trace: workers redial through their proxies all the
// time under faults, which would drown -v.
func quietDialer(d endpoint.Dialer) endpoint.Dialer {
	d.Trace = nil
	return d
}

// cleanupVerify purges the throwaway lock; a lease left by a release that got no
// answer is waited out (at most one TTL) and purged again.
func cleanupVerify(ctx context.Context, f *cmdutil.Factory, r resolved, name string, ttl time.Duration) {
	purge(ctx, f, r, name)
	l, err := backends.Open(ctx, f.Dialer(), r.e, r.kind, r.opt)
	if err != nil {
		return
	}
	defer l.Close()
	for i := 0; i < 3; i++ {
		info, err := l.Inspect(ctx, name)
		if err != nil || !info.Held {
			return
		}
		time.Sleep(ttl)
		purge(ctx, f, r, name)
	}
}

func randomSeed() uint64 {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	var s uint64
	for _, x := range b {
		s = s<<8 | uint64(x)
	}
	return s | 1
}

func durationMs(o *verify.Outcome) int64 { return o.Report.DurationUs / 1000 }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func rootErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func verifyCommandLine(o *VerifyOptions, faults []string) string {
	s := fmt.Sprintf("dsctl lock verify --workers %d --duration %s --ttl %s --faults %s", o.Workers, o.Duration, o.TTL, strings.Join(nonNil(faults), ","))
	if o.Sections > 0 {
		s += fmt.Sprintf(" --sections %d", o.Sections)
	}
	if o.Processes {
		s += " --processes"
	}
	return s
}

var propertyTitles = map[string]string{
	verify.PropMutualExclusion: "mutual exclusion",
	verify.PropFenceOrder:      "fence order",
	verify.PropStaleWrites:     "stale writes",
	verify.PropLeaseDeadline:   "lease deadline",
	verify.PropRunStopsInTime:  "lock run stops child",
	verify.PropLinearizable:    "linearizable",
}

// Table renders the run, one line per property, and the worst overlap's timeline.
func (v VerifyView) Table() *output.TableData {
	r := v.Report
	c := r.Counts
	t := &output.TableData{}
	kv := func(k string, cell output.Cell) { t.AddCells(output.S(k+":", output.Dim), cell) }
	kv("backend", output.C(v.Backend.String()))
	run := fmt.Sprintf("%d workers for %s, ttl %s, lock %s (purged)", v.Workers,
		lock.RoundDuration(time.Duration(v.DurationMs)*time.Millisecond), time.Duration(v.TTLMs)*time.Millisecond, v.LockName)
	if v.LockName == "" { // --check
		run = fmt.Sprintf("%d workers for %s, ttl %s, re-checked from %s", v.Workers,
			lock.RoundDuration(time.Duration(v.DurationMs)*time.Millisecond), time.Duration(v.TTLMs)*time.Millisecond, v.HistoryFile)
	}
	if v.Processes {
		run += ", one process each"
	}
	kv("run", output.C(run))
	var fs []string
	for _, f := range v.Faults {
		fs = append(fs, fmt.Sprintf("%s ×%d", f, v.FaultsInjected[f]))
	}
	if len(fs) == 0 {
		fs = []string{"none"}
	}
	kv("faults", output.C(strings.Join(fs, ", ")))
	kv("leases", output.C(fmt.Sprintf("%d critical sections (acquire: %d ok, %d not acquired, %d no answer); %d renewals; %d lost, %d outlived their TTL",
		c.Sections, c.AcquireOK, c.AcquireFail, c.AcquireUnknown, c.RenewOK+c.RenewFail+c.RenewUnknown, c.LeasesLost, c.Overran)))
	kv("writes", output.C(fmt.Sprintf("%d accepted, %d refused by fence, %d late (after the writer's deadline)",
		c.WritesAccepted, c.WritesRefused, c.LateWrites)))
	for _, p := range r.Properties {
		style := output.OK
		switch p.Verdict {
		case verify.VerdictViolated:
			style = output.Critical
		case verify.VerdictNotChecked, verify.VerdictUnknown:
			style = output.Warn
		}
		title := propertyTitles[p.Name]
		if title == "" {
			title = p.Name
		}
		verdict := strings.ReplaceAll(p.Verdict, "_", " ")
		if p.Violations > 0 {
			verdict = fmt.Sprintf("VIOLATED ×%d", p.Violations)
		}
		kv(title, output.S(fmt.Sprintf("%-13s %s", verdict, p.Detail), style))
	}
	if step, drift := time.Duration(v.ClockStepUs)*time.Microsecond, lock.ClockDrift(time.Duration(v.TTLMs)*time.Millisecond); step > drift {
		kv("clock", output.S(fmt.Sprintf("this machine's wall clock moved %s against its monotonic clock during the run, more than the %s drift allowance: a server on this machine ends leases by its wall clock, so leases could end before their local deadline whatever the lock does",
			lock.RoundDuration(step), drift), output.Warn))
	}
	if r.Safe {
		kv("verdict", output.S(fmt.Sprintf("SAFE: no violations in %d critical sections", c.Sections), output.OK))
	} else {
		kv("verdict", output.S(fmt.Sprintf("UNSAFE: %d violations", r.Violations), output.Critical))
	}
	if ov := r.WorstOverlap; ov != nil {
		t.Notes = append(t.Notes, output.S(fmt.Sprintf("worst overlap: %.1fms, worker %d (fence %s) and worker %d (fence %s):",
			ov.DurationMs, ov.A.Worker, ov.A.Fence, ov.B.Worker, ov.B.Fence), output.Warn))
		for _, e := range ov.Timeline {
			t.Notes = append(t.Notes, output.C("  "+verify.EventLine(e)))
		}
	}
	if !r.FencingChecked {
		t.Notes = append(t.Notes, output.S("note: "+v.Backend.String()+" gives no safe fencing tokens: fences were not checked, exclusion was checked by belief intervals only", output.Warn))
	}
	if v.HistoryFile != "" {
		t.Notes = append(t.Notes, output.S("history: "+v.HistoryFile, output.Dim))
	}
	if v.ReportFile != "" {
		t.Notes = append(t.Notes, output.S("report: "+v.ReportFile, output.Dim))
	}
	return t
}
