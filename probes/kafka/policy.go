package kafka

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/dsctl/dsctl/probes/errs"
)

// Default thresholds, used when no policy file sets them.
const (
	DefaultMinReplicationFactor = 3
	DefaultMinInsyncReplicas    = 2
	DefaultMinRetries           = 10
	DefaultMinDeliveryTimeoutMs = 30000
)

// Thresholds are the numbers rules compare against.
type Thresholds struct {
	MinReplicationFactor int   `json:"min_replication_factor"`
	MinInsyncReplicas    int   `json:"min_insync_replicas"`
	MinRetries           int   `json:"min_retries"`
	MinDeliveryTimeoutMs int64 `json:"min_delivery_timeout_ms"`
}

// TopicOverride changes thresholds and severities for topics matching a pattern.
type TopicOverride struct {
	Pattern    *regexp.Regexp
	Thresholds Thresholds
	Severity   map[string]Severity // 0 means off
	Line       int
}

// Ignore silences one rule (optionally for matching topics) until it expires.
type Ignore struct {
	Rule    string         `json:"rule"`
	Topic   *regexp.Regexp `json:"-"`
	Pattern string         `json:"topic,omitempty"`
	Reason  string         `json:"reason"`
	Expires time.Time      `json:"expires"`
	Line    int            `json:"line"`
}

// Policy is a parsed policy file (or the defaults).
type Policy struct {
	File       string
	FailOn     Severity // 0: never fail
	FailOnSet  bool
	Thresholds Thresholds
	Severity   map[string]Severity // rule -> severity; 0 means off
	Topics     []TopicOverride
	Ignores    []Ignore
}

// DefaultPolicy is the policy without a file.
func DefaultPolicy() *Policy {
	return &Policy{Thresholds: Thresholds{
		MinReplicationFactor: DefaultMinReplicationFactor,
		MinInsyncReplicas:    DefaultMinInsyncReplicas,
		MinRetries:           DefaultMinRetries,
		MinDeliveryTimeoutMs: DefaultMinDeliveryTimeoutMs,
	}, Severity: map[string]Severity{}}
}

// thresholds returns the thresholds for a topic: the first matching override wins.
func (p *Policy) thresholds(topic string) Thresholds {
	for _, o := range p.Topics {
		if o.Pattern.MatchString(topic) {
			return o.Thresholds
		}
	}
	return p.Thresholds
}

// severityFor applies the policy's severity overrides; ok is false when the rule is off.
func (p *Policy) severityFor(f *Finding) (Severity, bool) {
	if f.Topic != "" {
		for _, o := range p.Topics {
			if o.Pattern.MatchString(f.Topic) {
				if s, set := o.Severity[f.Rule]; set {
					return s, s != 0
				}
				break
			}
		}
	}
	if s, set := p.Severity[f.Rule]; set {
		return s, s != 0
	}
	return f.Severity, true
}

// ignoreFor returns the ignore entry that silences f now, if any.
func (p *Policy) ignoreFor(f *Finding, now time.Time) *Ignore {
	for i := range p.Ignores {
		ig := &p.Ignores[i]
		if ig.Rule != f.Rule || !now.Before(ig.Expires) {
			continue
		}
		if ig.Topic != nil && !ig.Topic.MatchString(f.Topic) {
			continue
		}
		return ig
	}
	return nil
}

// Expired lists ignores whose date has passed, for a warning.
func (p *Policy) Expired(now time.Time) []Ignore {
	var out []Ignore
	for _, ig := range p.Ignores {
		if !now.Before(ig.Expires) {
			out = append(out, ig)
		}
	}
	return out
}

// ---- parsing ----

// at is a YAML value with the line it was on.
type at[T any] struct {
	V    T
	Line int
	Set  bool
}

func (a *at[T]) UnmarshalYAML(node ast.Node) error {
	a.Line, a.Set = node.GetToken().Position.Line, true
	return yaml.NodeToValue(node, &a.V)
}

type rawThresholds struct {
	MinReplicationFactor at[int] `yaml:"min_replication_factor"`
	MinInsyncReplicas    at[int] `yaml:"min_insync_replicas"`
	Producer             struct {
		MinRetries           at[int]   `yaml:"min_retries"`
		MinDeliveryTimeoutMs at[int64] `yaml:"min_delivery_timeout_ms"`
	} `yaml:"producer"`
}

type rawPolicy struct {
	Version  at[int]               `yaml:"version"`
	FailOn   at[string]            `yaml:"fail_on"`
	Limits   rawThresholds         `yaml:",inline"`
	Severity map[string]at[string] `yaml:"severity"`
	Topics   []struct {
		Pattern  at[string]            `yaml:"pattern"`
		Limits   rawThresholds         `yaml:",inline"`
		Severity map[string]at[string] `yaml:"severity"`
	} `yaml:"topics"`
	Ignore []struct {
		Rule    at[string] `yaml:"rule"`
		Topic   at[string] `yaml:"topic"`
		Reason  at[string] `yaml:"reason"`
		Expires at[string] `yaml:"expires"`
	} `yaml:"ignore"`
}

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Usage("policy: cannot read %s: %v", path, rootErr(err))
	}
	return ParsePolicy(path, b)
}

// PolicyError is a problem in a policy file, at a line.
func policyErr(file string, line int, format string, args ...any) error {
	where := file
	if line > 0 {
		where = fmt.Sprintf("%s:%d", file, line)
	}
	return errs.Usage("policy %s: %s", where, fmt.Sprintf(format, args...)).
		WithHint("see 'dsctl kafka audit --help' for the policy format")
}

// ParsePolicy parses policy YAML; errors name the file and line.
func ParsePolicy(file string, data []byte) (*Policy, error) {
	var raw rawPolicy
	if err := yaml.UnmarshalWithOptions(data, &raw, yaml.Strict()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && te.Token != nil {
			want := "a value of another type"
			switch te.DstType.Kind() {
			case reflect.Int, reflect.Int64:
				want = "a whole number"
			case reflect.String:
				want = "text"
			case reflect.Map, reflect.Struct:
				want = "a mapping (key: value lines)"
			case reflect.Slice:
				want = "a list (- item lines)"
			}
			return nil, policyErr(file, te.Token.Position.Line, "%q is not %s", te.Token.Value, want)
		}
		var ye yaml.Error
		if errors.As(err, &ye) {
			line := 0
			if tk := ye.GetToken(); tk != nil {
				line = tk.Position.Line
			}
			return nil, policyErr(file, line, "%s", ye.GetMessage())
		}
		return nil, policyErr(file, 0, "%v", err)
	}
	p := DefaultPolicy()
	p.File = file
	if raw.Version.Set && raw.Version.V != 1 {
		return nil, policyErr(file, raw.Version.Line, "unsupported version %d (this dsctl reads version 1)", raw.Version.V)
	}
	if raw.FailOn.Set {
		if strings.EqualFold(raw.FailOn.V, "none") || strings.EqualFold(raw.FailOn.V, "never") {
			p.FailOnSet = true
		} else {
			s, err := ParseSeverity(raw.FailOn.V)
			if err != nil {
				return nil, policyErr(file, raw.FailOn.Line, "fail_on: unknown severity %q (use info, warn, error, critical or none)", raw.FailOn.V)
			}
			p.FailOn, p.FailOnSet = s, true
		}
	}
	var err error
	if p.Thresholds, err = raw.Limits.apply(file, p.Thresholds); err != nil {
		return nil, err
	}
	if p.Severity, err = parseSeverities(file, raw.Severity); err != nil {
		return nil, err
	}
	for _, rt := range raw.Topics {
		if !rt.Pattern.Set || rt.Pattern.V == "" {
			return nil, policyErr(file, firstLine(rt.Limits.MinReplicationFactor.Line, rt.Limits.MinInsyncReplicas.Line), "topics: each entry needs a pattern")
		}
		re, err := regexp.Compile("^(?:" + rt.Pattern.V + ")$")
		if err != nil {
			return nil, policyErr(file, rt.Pattern.Line, "topics: pattern %q is not a valid regular expression: %v", rt.Pattern.V, err)
		}
		o := TopicOverride{Pattern: re, Line: rt.Pattern.Line}
		if o.Thresholds, err = rt.Limits.apply(file, p.Thresholds); err != nil {
			return nil, err
		}
		if o.Severity, err = parseSeverities(file, rt.Severity); err != nil {
			return nil, err
		}
		p.Topics = append(p.Topics, o)
	}
	for _, ri := range raw.Ignore {
		line := firstLine(ri.Rule.Line, ri.Topic.Line, ri.Reason.Line, ri.Expires.Line)
		if !ri.Rule.Set || RuleByID(ri.Rule.V) == nil {
			if !ri.Rule.Set {
				return nil, policyErr(file, line, "ignore: each entry needs a rule")
			}
			return nil, policyErr(file, ri.Rule.Line, "ignore: unknown rule %q%s", ri.Rule.V, suggestRule(ri.Rule.V))
		}
		ig := Ignore{Rule: ri.Rule.V, Line: line}
		if ri.Topic.Set {
			re, err := regexp.Compile("^(?:" + ri.Topic.V + ")$")
			if err != nil {
				return nil, policyErr(file, ri.Topic.Line, "ignore: topic %q is not a valid regular expression: %v", ri.Topic.V, err)
			}
			ig.Topic, ig.Pattern = re, ri.Topic.V
		}
		if strings.TrimSpace(ri.Reason.V) == "" {
			return nil, policyErr(file, line, "ignore: rule %s needs a reason (why is this acceptable?)", ig.Rule)
		}
		ig.Reason = ri.Reason.V
		if !ri.Expires.Set {
			return nil, policyErr(file, line, "ignore: rule %s needs an expiry date (expires: YYYY-MM-DD)", ig.Rule)
		}
		exp, err := time.Parse("2006-01-02", strings.TrimSpace(ri.Expires.V))
		if err != nil {
			return nil, policyErr(file, ri.Expires.Line, "ignore: expires %q is not a date (use YYYY-MM-DD)", ri.Expires.V)
		}
		ig.Expires = exp.AddDate(0, 0, 1) // valid through the whole day
		p.Ignores = append(p.Ignores, ig)
	}
	return p, nil
}

func (r rawThresholds) apply(file string, base Thresholds) (Thresholds, error) {
	t := base
	if r.MinReplicationFactor.Set {
		if r.MinReplicationFactor.V < 1 {
			return t, policyErr(file, r.MinReplicationFactor.Line, "min_replication_factor must be at least 1, got %d", r.MinReplicationFactor.V)
		}
		t.MinReplicationFactor = r.MinReplicationFactor.V
	}
	if r.MinInsyncReplicas.Set {
		if r.MinInsyncReplicas.V < 1 {
			return t, policyErr(file, r.MinInsyncReplicas.Line, "min_insync_replicas must be at least 1, got %d", r.MinInsyncReplicas.V)
		}
		t.MinInsyncReplicas = r.MinInsyncReplicas.V
	}
	if r.Producer.MinRetries.Set {
		if r.Producer.MinRetries.V < 0 {
			return t, policyErr(file, r.Producer.MinRetries.Line, "producer.min_retries must not be negative")
		}
		t.MinRetries = r.Producer.MinRetries.V
	}
	if r.Producer.MinDeliveryTimeoutMs.Set {
		if r.Producer.MinDeliveryTimeoutMs.V < 0 {
			return t, policyErr(file, r.Producer.MinDeliveryTimeoutMs.Line, "producer.min_delivery_timeout_ms must not be negative")
		}
		t.MinDeliveryTimeoutMs = r.Producer.MinDeliveryTimeoutMs.V
	}
	return t, nil
}

func parseSeverities(file string, m map[string]at[string]) (map[string]Severity, error) {
	out := map[string]Severity{}
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := m[id]
		if RuleByID(id) == nil {
			return nil, policyErr(file, v.Line, "severity: unknown rule %q%s", id, suggestRule(id))
		}
		if strings.EqualFold(v.V, "off") {
			out[id] = 0
			continue
		}
		s, err := ParseSeverity(v.V)
		if err != nil {
			return nil, policyErr(file, v.Line, "severity of %s: unknown value %q (use info, warn, error, critical or off)", id, v.V)
		}
		out[id] = s
	}
	return out, nil
}

func suggestRule(id string) string {
	var close []string
	for _, r := range Rules {
		if strings.Contains(r.ID, id) || strings.Contains(id, r.ID) || commonPrefix(r.ID, id) >= 8 {
			close = append(close, r.ID)
		}
	}
	if len(close) == 0 {
		return " (see 'dsctl kafka audit --list-rules')"
	}
	return " (did you mean " + strings.Join(close, " or ") + "?)"
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func firstLine(lines ...int) int {
	best := 0
	for _, l := range lines {
		if l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	return best
}

func rootErr(err error) error {
	for errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return err
}
