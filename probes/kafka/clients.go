package kafka

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// Role is what a client properties file configures.
type Role string

// Roles.
const (
	Producer Role = "producer"
	Consumer Role = "consumer"
)

// Flavor is the client library whose keys and defaults apply.
type Flavor string

// Flavors. FlavorAuto picks librdkafka when the file uses a librdkafka-only key.
const (
	FlavorAuto       Flavor = "auto"
	FlavorJava       Flavor = "java"
	FlavorLibrdkafka Flavor = "librdkafka"
)

// ParseFlavor reads auto, java or librdkafka.
func ParseFlavor(s string) (Flavor, error) {
	switch Flavor(strings.ToLower(strings.TrimSpace(s))) {
	case "", FlavorAuto:
		return FlavorAuto, nil
	case FlavorJava:
		return FlavorJava, nil
	case FlavorLibrdkafka, "rdkafka", "confluent-kafka":
		return FlavorLibrdkafka, nil
	}
	return "", errs.Usage("unknown client flavor %q", s).WithHint("use auto, java or librdkafka")
}

// librdkafkaOnly are keys only librdkafka understands; one of them in a file means
// the file is for librdkafka (or a client built on it).
var librdkafkaOnly = []string{
	"request.required.acks", "message.send.max.retries", "message.timeout.ms", "max.in.flight",
	"queue.buffering.max.ms", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
	"batch.num.messages", "enable.auto.offset.store", "enable.partition.eof", "statistics.interval.ms",
	"sasl.mechanisms", "api.version.request", "socket.keepalive.enable", "topic.metadata.refresh.interval.ms",
}

// ClientConfig is one properties file and what it configures.
type ClientConfig struct {
	Props  *Properties
	Role   Role
	Flavor Flavor // resolved: java or librdkafka
	// FlavorReason says why that flavor was chosen.
	FlavorReason string
}

// NewClientConfig resolves the flavor of a parsed file.
func NewClientConfig(p *Properties, role Role, flavor Flavor) ClientConfig {
	c := ClientConfig{Props: p, Role: role, Flavor: flavor}
	switch flavor {
	case FlavorJava, FlavorLibrdkafka:
		c.FlavorReason = "--client " + string(flavor)
	default:
		c.Flavor, c.FlavorReason = FlavorJava, "no librdkafka-only key in the file"
		for _, k := range librdkafkaOnly {
			if prop, ok := p.Get(k); ok {
				c.Flavor = FlavorLibrdkafka
				c.FlavorReason = fmt.Sprintf("librdkafka key %s on line %d", k, prop.Line)
				break
			}
		}
	}
	return c
}

// clientDefaults are the defaults of current clients: the Java client 3.0+ (acks=all
// and idempotence on) and librdkafka 2.x (acks=all, idempotence off).
var clientDefaults = map[Flavor]map[string]string{
	FlavorJava: {
		"acks": "all", "enable.idempotence": "true", "retries": "2147483647",
		"max.in.flight.requests.per.connection": "5", "delivery.timeout.ms": "120000",
		"enable.auto.commit": "true",
	},
	FlavorLibrdkafka: {
		"acks": "all", "enable.idempotence": "false", "retries": "2147483647",
		"max.in.flight.requests.per.connection": "1000000", "delivery.timeout.ms": "300000",
		"enable.auto.commit": "true", "enable.auto.offset.store": "true",
	},
}

// flavorName says whose defaults were assumed.
func flavorName(f Flavor) string {
	if f == FlavorLibrdkafka {
		return "librdkafka 2.x"
	}
	return "Java client 3.0+"
}

// aliases are librdkafka's other names for the same setting (canonical first).
var aliases = map[string][]string{
	"acks":                                  {"acks", "request.required.acks"},
	"retries":                               {"retries", "message.send.max.retries"},
	"max.in.flight.requests.per.connection": {"max.in.flight.requests.per.connection", "max.in.flight"},
	"delivery.timeout.ms":                   {"delivery.timeout.ms", "message.timeout.ms"},
}

// AssumedDefault records a default dsctl judged an unset key by.
type AssumedDefault struct {
	File   string `json:"file"`
	Client string `json:"client"`
	Key    string `json:"key"`
	Value  string `json:"value"`
}

// setting is a resolved client setting.
type setting struct {
	key   string // the key as written (or the canonical key when unset)
	value string
	line  int
	set   bool
}

type clientEval struct {
	c       ClientConfig
	th      Thresholds
	assumed []AssumedDefault
}

func (e *clientEval) get(canonical string) setting {
	names := aliases[canonical]
	if names == nil {
		names = []string{canonical}
	}
	var best setting
	for _, n := range names {
		if e.c.Flavor == FlavorJava && n != canonical {
			continue
		}
		if p, ok := e.c.Props.Get(n); ok && (!best.set || p.Line > best.line) {
			best = setting{key: n, value: strings.TrimSpace(p.Value), line: p.Line, set: true}
		}
	}
	if best.set {
		return best
	}
	def := clientDefaults[e.c.Flavor][canonical]
	e.assumed = append(e.assumed, AssumedDefault{File: e.c.Props.File, Client: flavorName(e.c.Flavor), Key: canonical, Value: def})
	return setting{key: canonical, value: def}
}

func (e *clientEval) bad(s setting, what string) error {
	return errs.Usage("%s:%d: %s=%s: %s", e.c.Props.File, s.line, s.key, s.value, what)
}

func (e *clientEval) boolean(s setting) (bool, error) {
	switch strings.ToLower(s.value) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, e.bad(s, "not a boolean (use true or false)")
}

func (e *clientEval) integer(s setting, lo int64) (int64, error) {
	v, err := strconv.ParseInt(s.value, 10, 64)
	if err != nil || v < lo {
		return 0, e.bad(s, fmt.Sprintf("not an integer >= %d", lo))
	}
	return v, nil
}

func (e *clientEval) finding(id string, sev Severity, s setting, observed, fix string) Finding {
	f := newFinding(id, sev)
	f.File, f.Line, f.Config, f.Observed, f.Fix = e.c.Props.File, s.line, s.key, observed, fix
	if s.set {
		f.Source, f.SourceDetail = SourceFile, fmt.Sprintf("%s:%d", e.c.Props.File, s.line)
	} else {
		f.Source, f.SourceDetail = SourceClientDefault, "default of the "+flavorName(e.c.Flavor)
	}
	return f
}

func describe(s setting) string {
	if s.set {
		return s.key + "=" + s.value
	}
	return s.key + " unset (default " + s.value + ")"
}

// EvaluateClient applies the client rules to one file. Values that cannot be read are
// errors naming the file and line.
func EvaluateClient(c ClientConfig, th Thresholds) ([]Finding, []AssumedDefault, error) {
	e := &clientEval{c: c, th: th}
	var out []Finding
	var err error
	if c.Role == Consumer {
		out, err = e.consumer()
	} else {
		out, err = e.producer()
	}
	return out, e.assumed, err
}

func (e *clientEval) setFix(key, value string) string {
	return fmt.Sprintf("set %s=%s in %s", key, value, e.c.Props.File)
}

func (e *clientEval) producer() ([]Finding, error) {
	var out []Finding
	acks := e.get("acks")
	ackAll := false
	switch strings.ToLower(acks.value) {
	case "all", "-1":
		ackAll = true
	case "0", "1":
	default:
		n, err := strconv.Atoi(acks.value)
		if e.c.Flavor != FlavorLibrdkafka || err != nil || n < -1 || n > 1000 {
			return nil, e.bad(acks, "acks must be all, -1, 0 or 1")
		}
	}
	idemSet := e.get("enable.idempotence")
	idem, err := e.boolean(idemSet)
	if err != nil {
		return nil, err
	}
	retriesSet := e.get("retries")
	retries, err := e.integer(retriesSet, 0)
	if err != nil {
		return nil, err
	}
	inflightSet := e.get("max.in.flight.requests.per.connection")
	inflight, err := e.integer(inflightSet, 1)
	if err != nil {
		return nil, err
	}
	deliverySet := e.get("delivery.timeout.ms")
	delivery, err := e.integer(deliverySet, 0)
	if err != nil {
		return nil, err
	}

	if !ackAll {
		out = append(out, e.finding(RuleProducerAcks, 0, acks, describe(acks), e.setFix(acks.key, "all")))
	}
	// Java 3.2+: idempotence that was only defaulted on is turned off silently by
	// settings it cannot work with.
	idemNote := ""
	if e.c.Flavor == FlavorJava && idem && !idemSet.set {
		switch {
		case !ackAll:
			idem, idemNote = false, ", and "+describe(acks)+" turns the default off"
		case retries == 0:
			idem, idemNote = false, ", and retries=0 turns the default off"
		case inflight > 5:
			idem, idemNote = false, fmt.Sprintf(", and max.in.flight.requests.per.connection=%d turns the default off", inflight)
		}
	}
	if !idem {
		f := e.finding(RuleProducerIdempotence, 0, idemSet, describe(idemSet)+idemNote, e.setFix("enable.idempotence", "true")+" (it needs acks=all, retries > 0 and max.in.flight.requests.per.connection <= 5)")
		out = append(out, f)
	}
	switch {
	case retries == 0:
		out = append(out, e.finding(RuleProducerRetries, Error, retriesSet, describe(retriesSet)+": every transient error drops the message",
			fmt.Sprintf("remove %s from %s (the default retries until delivery.timeout.ms), or set it to at least %d", retriesSet.key, e.c.Props.File, e.th.MinRetries)))
	case retries < int64(e.th.MinRetries):
		out = append(out, e.finding(RuleProducerRetries, 0, retriesSet, fmt.Sprintf("%s (policy minimum %d)", describe(retriesSet), e.th.MinRetries),
			fmt.Sprintf("remove %s from %s (the default retries until delivery.timeout.ms), or set it to at least %d", retriesSet.key, e.c.Props.File, e.th.MinRetries)))
	}
	switch {
	case idem && inflight > 5:
		out = append(out, e.finding(RuleProducerInFlight, Error, inflightSet,
			describe(inflightSet)+" with idempotence on: the client refuses this configuration (or, in old clients, reorders)",
			e.setFix(inflightSet.key, "5")))
	case !idem && inflight > 1 && retries > 0:
		out = append(out, e.finding(RuleProducerInFlight, 0, inflightSet,
			describe(inflightSet)+" without idempotence: a retried batch can overtake a later one",
			e.setFix("enable.idempotence", "true")+fmt.Sprintf(" (keeps order with up to 5 in flight), or set %s=1", inflightSet.key)))
	}
	if delivery < e.th.MinDeliveryTimeoutMs {
		out = append(out, e.finding(RuleProducerDelivery, 0, deliverySet,
			fmt.Sprintf("%s (policy minimum %d ms)", describe(deliverySet), e.th.MinDeliveryTimeoutMs),
			e.setFix(deliverySet.key, strconv.FormatInt(max(e.th.MinDeliveryTimeoutMs, 120000), 10))))
	}
	return out, nil
}

func (e *clientEval) consumer() ([]Finding, error) {
	autoSet := e.get("enable.auto.commit")
	auto, err := e.boolean(autoSet)
	if err != nil || !auto {
		return nil, err
	}
	if e.c.Flavor == FlavorLibrdkafka {
		storeSet := e.get("enable.auto.offset.store")
		store, err := e.boolean(storeSet)
		if err != nil {
			return nil, err
		}
		if !store { // the application stores offsets after processing: safe
			return nil, nil
		}
		return []Finding{e.finding(RuleConsumerAutoCommit, 0, autoSet,
			describe(autoSet)+", "+describe(storeSet)+": offsets are stored when a message is handed to the application, before it is processed",
			fmt.Sprintf("set enable.auto.offset.store=false in %s and call StoreOffsets after processing each message (auto-commit then commits only processed offsets)", e.c.Props.File))}, nil
	}
	return []Finding{e.finding(RuleConsumerAutoCommit, 0, autoSet,
		describe(autoSet)+": offsets are committed every auto.commit.interval.ms, whether or not the records were processed",
		fmt.Sprintf("set enable.auto.commit=false in %s and commit (commitSync) after processing", e.c.Props.File))}, nil
}
