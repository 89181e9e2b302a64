package kafka

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// The audit's orchestration, shared by `dsctl kafka audit` and the TUI's Kafka pane:
// read the policy, client files and baseline once (LoadAudit, no network), then read
// the cluster and judge it as often as wanted (PreparedAudit.Run).

// Threshold is the --fail-on level: the zero value defers to the policy's fail_on,
// Never turns failing off whatever the policy says.
type Threshold struct {
	Severity Severity
	Never    bool
}

// ParseThreshold reads --fail-on: "" (the policy's), none, info, warn, error, critical.
func ParseThreshold(s string) (Threshold, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return Threshold{}, nil
	case "none", "never":
		return Threshold{Never: true}, nil
	}
	sev, err := ParseSeverity(s)
	if err != nil {
		return Threshold{}, errs.Usage("unknown severity %q", s).WithHint("use info, warn, error, critical or none")
	}
	return Threshold{Severity: sev}, nil
}

// String is the threshold as --fail-on spells it ("" for the policy's).
func (t Threshold) String() string {
	switch {
	case t.Never:
		return "none"
	case t.Severity == 0:
		return ""
	}
	return t.Severity.String()
}

// AtLeast reports whether s reaches the threshold level (never true for the zero
// Severity, which means "no threshold").
func (s Severity) AtLeast(level Severity) bool { return level != 0 && s >= level }

// FileInput is one input file: read from Path, or already read (stdin) into Data, in
// which case Path is only the name errors show.
type FileInput struct {
	Path string
	Data []byte
}

// AuditRequest is what to audit and how to judge it.
type AuditRequest struct {
	// Topics are whole-name regular expressions (none: every topic).
	Topics          []string
	ExcludeInternal bool
	// Policy is the policy file (zero: DefaultPolicy).
	Policy FileInput
	// FailOn overrides the policy's fail_on.
	FailOn Threshold
	// ProducerConfigs and ConsumerConfigs are client .properties files.
	ProducerConfigs []FileInput
	ConsumerConfigs []FileInput
	// Client is the client flavour whose keys and defaults apply ("" is auto).
	Client Flavor
	// Baseline, when set, turns its findings into accepted ones.
	Baseline FileInput
	// WriteBaseline, when set, is where each run writes its findings as a baseline.
	WriteBaseline string
	// ClientsOnly audits the client files only (Run does not contact the cluster).
	ClientsOnly bool
	// Bootstrap is the address the suggested fix commands name (--bootstrap-server);
	// empty: the first broker of the endpoint Run reads.
	Bootstrap string
	// Now is the clock for ignore expiry and baseline dates (time.Now when nil).
	Now func() time.Time
}

// PreparedAudit is a request whose inputs were read and checked: Run it once for the
// command, or again and again for a live pane.
type PreparedAudit struct {
	req      AuditRequest
	policy   *Policy
	clients  []ClientConfig
	baseline *Baseline
	patterns []*regexp.Regexp
}

// AuditReport is one run's report plus what a caller acts on.
type AuditReport struct {
	*Report
	// Threshold is the level that fails the run (the request's, else the policy's;
	// zero Severity when nothing fails it).
	Threshold Severity
	// Failing counts the findings at or above Threshold that are not baselined.
	Failing int
	// NoTopicMatched is the note (also in Notes) when Topics matched no topic.
	NoTopicMatched string
	// BaselineWritten is the number of findings written to WriteBaseline (when set).
	BaselineWritten int
	// Took is how long the run took, cluster reads included.
	Took time.Duration
	// Snapshot is the cluster as Run read it (nil when clients-only), for callers
	// that show more of it than the report does.
	Snapshot *Snapshot
}

// LoadAudit reads and checks every input of the request: policy, client files,
// baseline, topic patterns. It does not touch the network.
func LoadAudit(req AuditRequest) (*PreparedAudit, error) {
	a := &PreparedAudit{req: req, policy: DefaultPolicy()}
	if req.Now == nil {
		a.req.Now = time.Now
	}
	var err error
	switch {
	case req.Policy.Data != nil:
		a.policy, err = ParsePolicy(req.Policy.Path, req.Policy.Data)
	case req.Policy.Path != "":
		a.policy, err = LoadPolicy(req.Policy.Path)
	}
	if err != nil {
		return nil, err
	}
	if req.FailOn.Never {
		a.policy.FailOn = 0
	}
	flavor := req.Client
	if flavor == "" {
		flavor = FlavorAuto
	}
	for _, files := range []struct {
		role   Role
		inputs []FileInput
	}{{Producer, req.ProducerConfigs}, {Consumer, req.ConsumerConfigs}} {
		for _, in := range files.inputs {
			var props *Properties
			if in.Data != nil {
				props, err = ParseProperties(in.Path, in.Data)
			} else {
				props, err = LoadProperties(in.Path)
			}
			if err != nil {
				return nil, err
			}
			a.clients = append(a.clients, NewClientConfig(props, files.role, flavor))
		}
	}
	if req.ClientsOnly && len(a.clients) == 0 {
		return nil, errs.Usage("--clients-only needs --producer-config or --consumer-config")
	}
	switch {
	case req.Baseline.Data != nil:
		a.baseline, err = ParseBaseline(req.Baseline.Path, req.Baseline.Data)
	case req.Baseline.Path != "":
		a.baseline, err = LoadBaseline(req.Baseline.Path)
	}
	if err != nil {
		return nil, err
	}
	if a.patterns, err = CompileTopicPatterns(req.Topics); err != nil {
		return nil, err
	}
	return a, nil
}

// ClientsOnly reports whether Run leaves the cluster alone.
func (a *PreparedAudit) ClientsOnly() bool { return a.req.ClientsOnly }

// Run reads the cluster at ep (unless the request is clients-only), judges it and the
// client files, writes the baseline when asked, and counts the failing findings.
func (a *PreparedAudit) Run(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka) (*AuditReport, error) {
	start := time.Now()
	in := AuditInput{Now: a.req.Now(), Policy: a.policy, Clients: a.clients, Baseline: a.baseline, FailOn: a.req.FailOn.Severity}
	patterns := a.patterns
	counter := &endpoint.RequestCounter{}
	if !a.req.ClientsOnly {
		snap, err := Collect(ctx, d, ep, CollectOptions{
			Topics: patterns, ExcludeInternal: a.req.ExcludeInternal,
			TopicConfigs: AuditTopicConfigs, BrokerConfigs: BrokerKeyConfigs, Counter: counter,
		})
		if err != nil {
			return nil, err
		}
		in.Snapshot, in.Bootstrap = snap, a.req.Bootstrap
		if in.Bootstrap == "" {
			in.Bootstrap = endpoint.KafkaBrokers(ep)[0]
		}
	}
	rep, err := Audit(in)
	if err != nil {
		return nil, err
	}
	out := &AuditReport{Report: rep, Snapshot: in.Snapshot}
	if !a.req.ClientsOnly {
		rep.Requests = &Requests{Total: counter.Total(), ByAPI: counter.ByAPI()}
		if len(patterns) > 0 && len(in.Snapshot.Topics) == 0 {
			out.NoTopicMatched = fmt.Sprintf("no topic matches --topic %s (the cluster has %d topics)", strings.Join(quoteAll(a.req.Topics), " --topic "), in.Snapshot.TopicsInCluster)
			rep.Notes = append(rep.Notes, out.NoTopicMatched)
		}
	}
	for _, c := range in.Clients {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s (%s): judged as %s, %s", c.Props.File, c.Role, c.Flavor, c.FlavorReason))
	}
	if a.req.WriteBaseline != "" {
		if err := WriteBaseline(a.req.WriteBaseline, NewBaseline(rep.Findings, in.Now)); err != nil {
			return nil, err
		}
		out.BaselineWritten = len(rep.Findings)
	}
	if rep.FailOn != "" {
		out.Threshold, _ = ParseSeverity(rep.FailOn)
	}
	out.Failing = FailingCount(rep.Findings, out.Threshold)
	out.Took = time.Since(start)
	return out, nil
}

// RunAudit is LoadAudit then Run, for a single audit.
func RunAudit(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, req AuditRequest) (*AuditReport, error) {
	a, err := LoadAudit(req)
	if err != nil {
		return nil, err
	}
	return a.Run(ctx, d, ep)
}

// FailingCount is the number of findings at or above level that are not baselined.
func FailingCount(fs []Finding, level Severity) int {
	n := 0
	for _, f := range fs {
		if !f.Baselined && f.Severity.AtLeast(level) {
			n++
		}
	}
	return n
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
