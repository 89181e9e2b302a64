package kafka

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// Summary counts findings by severity (baselined ones apart).
type Summary struct {
	Critical  int `json:"critical"`
	Error     int `json:"error"`
	Warn      int `json:"warn"`
	Info      int `json:"info"`
	Baselined int `json:"baselined"`
	Ignored   int `json:"ignored"`
}

func (s *Summary) add(sev Severity) {
	switch sev {
	case Critical:
		s.Critical++
	case Error:
		s.Error++
	case Warn:
		s.Warn++
	case Info:
		s.Info++
	}
}

// Total is the number of findings that count (not baselined, not ignored).
func (s Summary) Total() int { return s.Critical + s.Error + s.Warn + s.Info }

// ClusterSummary is the shape of what was audited.
type ClusterSummary struct {
	Bootstrap       string   `json:"bootstrap"`
	Brokers         []Broker `json:"brokers"`
	TopicsInCluster int      `json:"topics_in_cluster"`
	TopicsAudited   int      `json:"topics_audited"`
	Partitions      int      `json:"partitions"`
}

// IgnoredFinding is a finding silenced by a policy ignore.
type IgnoredFinding struct {
	Finding
	Reason  string `json:"reason"`
	Expires string `json:"expires"`
	// PolicyLine is the line of the ignore entry in the policy file.
	PolicyLine int `json:"policy_line"`
}

// Requests counts what dsctl sent.
type Requests struct {
	Total int            `json:"total"`
	ByAPI map[string]int `json:"by_api"`
}

// Report is the audit's result.
type Report struct {
	Cluster         *ClusterSummary  `json:"cluster,omitempty"`
	Summary         Summary          `json:"summary"`
	Findings        []Finding        `json:"findings"`
	Ignored         []IgnoredFinding `json:"ignored"`
	WhatIf          []WhatIf         `json:"what_if"`
	AssumedDefaults []AssumedDefault `json:"assumed_defaults"`
	Requests        *Requests        `json:"requests,omitempty"`
	FailOn          string           `json:"fail_on,omitempty"`
	Failed          bool             `json:"failed"`
	Notes           []string         `json:"notes"`
}

// AuditInput is everything an audit judges.
type AuditInput struct {
	// Snapshot is nil when only client files are audited.
	Snapshot  *Snapshot
	Bootstrap string
	Policy    *Policy
	Clients   []ClientConfig
	Baseline  *Baseline
	// FailOn overrides the policy's fail_on when set.
	FailOn Severity
	Now    time.Time
}

// Audit applies every rule, the policy (severities, ignores) and the baseline.
func Audit(in AuditInput) (*Report, error) {
	p := in.Policy
	if p == nil {
		p = DefaultPolicy()
	}
	r := &Report{Findings: []Finding{}, Ignored: []IgnoredFinding{}, WhatIf: []WhatIf{}, AssumedDefaults: []AssumedDefault{}, Notes: []string{}}
	var raw []Finding
	if s := in.Snapshot; s != nil {
		f, w := EvaluateCluster(s, p, in.Bootstrap)
		raw, r.WhatIf = append(raw, f...), w
		cs := &ClusterSummary{Bootstrap: in.Bootstrap, Brokers: s.Brokers, TopicsInCluster: s.TopicsInCluster, TopicsAudited: len(s.Topics)}
		for _, t := range s.Topics {
			cs.Partitions += len(t.Partitions)
		}
		r.Cluster = cs
	}
	for _, c := range in.Clients {
		f, assumed, err := EvaluateClient(c, p.Thresholds)
		if err != nil {
			return nil, err
		}
		raw = append(raw, f...)
		r.AssumedDefaults = append(r.AssumedDefaults, assumed...)
	}
	for _, f := range raw {
		sev, on := p.severityFor(&f)
		if !on {
			continue
		}
		f.Severity = sev
		if ig := p.ignoreFor(&f, in.Now); ig != nil {
			r.Ignored = append(r.Ignored, IgnoredFinding{Finding: f, Reason: ig.Reason, Expires: ig.Expires.AddDate(0, 0, -1).Format("2006-01-02"), PolicyLine: ig.Line})
			r.Summary.Ignored++
			continue
		}
		if in.Baseline != nil && in.Baseline.Has(&f) {
			f.Baselined = true
			r.Summary.Baselined++
		} else {
			r.Summary.add(f.Severity)
		}
		r.Findings = append(r.Findings, f)
	}
	for _, ig := range p.Expired(in.Now) {
		r.Notes = append(r.Notes, fmt.Sprintf("policy %s:%d: the ignore of %s expired on %s; its findings count again",
			p.File, ig.Line, ig.Rule, ig.Expires.AddDate(0, 0, -1).Format("2006-01-02")))
	}
	SortFindings(r.Findings)
	failOn := p.FailOn
	if in.FailOn != 0 {
		failOn = in.FailOn
	}
	if failOn != 0 {
		r.FailOn = failOn.String()
		for _, f := range r.Findings {
			if !f.Baselined && f.Severity >= failOn {
				r.Failed = true
				break
			}
		}
	}
	return r, nil
}

// SortFindings orders by scope (brokers, then topics by name, then files), then
// severity (worst first), rule, partition.
func SortFindings(fs []Finding) {
	rank := func(f *Finding) int {
		switch {
		case f.Topic == "" && f.File == "":
			return 0
		case f.Topic != "":
			return 1
		}
		return 2
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if sa, sb := a.Scope(), b.Scope(); sa != sb {
			if a.Broker != nil && b.Broker != nil && a.Topic == "" && b.Topic == "" {
				return *a.Broker < *b.Broker
			}
			return sa < sb
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Partition != nil && b.Partition != nil {
			return *a.Partition < *b.Partition
		}
		return false
	})
}

// ---- baseline ----

// Baseline is a set of accepted findings: an audit with --baseline fails only on
// findings that are not in it.
type Baseline struct {
	Version   int             `json:"version"`
	CreatedAt string          `json:"created_at"`
	Findings  []BaselineEntry `json:"findings"`
	keys      map[string]bool
}

// BaselineEntry identifies one accepted finding (rule and where, not values).
type BaselineEntry struct {
	Rule      string `json:"rule"`
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Broker    *int32 `json:"broker,omitempty"`
	File      string `json:"file,omitempty"`
	// Severity and Observed are for people reading the file; matching ignores them.
	Severity Severity `json:"severity"`
	Observed string   `json:"observed,omitempty"`
}

func (b BaselineEntry) key() string {
	f := Finding{Rule: b.Rule, Topic: b.Topic, Partition: b.Partition, Broker: b.Broker, File: b.File}
	return f.Key()
}

// Has reports whether the finding is in the baseline.
func (b *Baseline) Has(f *Finding) bool { return b.keys[f.Key()] }

// NewBaseline makes a baseline of the findings.
func NewBaseline(fs []Finding, now time.Time) *Baseline {
	b := &Baseline{Version: 1, CreatedAt: now.UTC().Format(time.RFC3339), Findings: []BaselineEntry{}}
	for _, f := range fs {
		b.Findings = append(b.Findings, BaselineEntry{Rule: f.Rule, Topic: f.Topic, Partition: f.Partition, Broker: f.Broker,
			File: f.File, Severity: f.Severity, Observed: f.Observed})
	}
	return b
}

// WriteBaseline writes the baseline as JSON.
func WriteBaseline(path string, b *Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return errs.Usage("cannot write baseline %s: %v", path, rootErr(err))
	}
	return nil
}

// LoadBaseline reads a baseline written by --write-baseline.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Usage("cannot read baseline %s: %v", path, rootErr(err))
	}
	return ParseBaseline(path, data)
}

// ParseBaseline parses baseline JSON.
func ParseBaseline(path string, data []byte) (*Baseline, error) {
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		line := 0
		if se, ok := err.(*json.SyntaxError); ok {
			line = lineOf(data, se.Offset)
		}
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			line = lineOf(data, te.Offset)
		}
		if line > 0 {
			return nil, errs.Usage("baseline %s:%d: %v", path, line, err).WithHint("write one with --write-baseline")
		}
		return nil, errs.Usage("baseline %s: %v", path, err).WithHint("write one with --write-baseline")
	}
	if b.Version != 1 {
		return nil, errs.Usage("baseline %s: unsupported version %d", path, b.Version).WithHint("write one with --write-baseline")
	}
	b.keys = map[string]bool{}
	for i, e := range b.Findings {
		if RuleByID(e.Rule) == nil {
			return nil, errs.Usage("baseline %s: finding %d has unknown rule %q", path, i+1, e.Rule)
		}
		b.keys[e.key()] = true
	}
	return &b, nil
}

func lineOf(data []byte, offset int64) int {
	line := 1
	for i := int64(0); i < offset && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
		}
	}
	return line
}
