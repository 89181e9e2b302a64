package config

import (
	"github.com/dsctl/dsctl/probes/endpoint"
)

// Masked returns a copy of the file safe to print: any password that slipped into an
// address (redis://user:pass@host) is replaced by ****. Secret references (env var
// names, file paths) are not secrets and stay visible.
func (f *File) Masked() *File {
	out := &File{CurrentContext: f.CurrentContext, Contexts: map[string]*Context{}, Path: f.Path, Exists: f.Exists, Inline: f.Inline}
	for name, c := range f.Contexts {
		out.Contexts[name] = c.Masked()
	}
	return out
}

// Masked returns a copy of the context safe to print.
func (c *Context) Masked() *Context {
	m := &Context{}
	if c.Redis != nil {
		r := *c.Redis
		r.Addrs = maskAll(r.Addrs)
		m.Redis = &r
	}
	if c.ZooKeeper != nil {
		z := *c.ZooKeeper
		m.ZooKeeper = &z
	}
	if c.Kafka != nil {
		k := *c.Kafka
		k.Brokers = maskAll(k.Brokers)
		m.Kafka = &k
	}
	if c.SQL != nil {
		s := *c.SQL
		m.SQL = &s
	}
	return m
}

func maskAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = endpoint.MaskURL(s)
	}
	return out
}

// ResolvedView is what `config view --resolved` prints: the endpoints a command would
// use now, where each came from, and whether each secret can be read — never a secret.
type ResolvedView struct {
	ConfigPath string       `json:"config_path"`
	ConfigFile bool         `json:"config_file_exists"`
	Context    string       `json:"context"`
	Redis      ResolvedItem `json:"redis"`
	ZooKeeper  ResolvedItem `json:"zookeeper"`
	Kafka      ResolvedItem `json:"kafka"`
	SQL        ResolvedItem `json:"sql"`
}

// ResolvedItem is one backend's resolved endpoint.
type ResolvedItem struct {
	Endpoints []string `json:"endpoints"`
	Source    Source   `json:"source"`
	Auth      string   `json:"auth,omitempty"`
	TLS       bool     `json:"tls"`
	Secret    string   `json:"secret,omitempty"`
}

// View describes resolved endpoints with every secret masked. dialer resolves the SQL
// target so the database's address can be shown without its password.
func (e Endpoints) View(path string, exists bool, dialer endpoint.Dialer) ResolvedView {
	v := ResolvedView{ConfigPath: path, ConfigFile: exists, Context: e.Context}
	v.Redis = ResolvedItem{Endpoints: maskAll(e.Redis.Addrs), Source: e.RedisSource, TLS: e.Redis.TLS.On()}
	if e.Redis.Username != "" || !e.Redis.Password.IsZero() {
		v.Redis.Auth = "user " + orDefault(e.Redis.Username, "default")
		v.Redis.Secret = secretState(e.Redis.Password, dialer)
	}
	v.ZooKeeper = ResolvedItem{Endpoints: e.ZooKeeper.Servers, Source: e.ZKSource}
	if e.ZooKeeper.DigestUser != "" {
		v.ZooKeeper.Auth = "digest " + e.ZooKeeper.DigestUser
		v.ZooKeeper.Secret = secretState(e.ZooKeeper.DigestPassword, dialer)
	}
	v.Kafka = ResolvedItem{Endpoints: maskAll(e.Kafka.Brokers), Source: e.KafkaSource, TLS: e.Kafka.TLS.On()}
	if e.Kafka.SASL != nil && e.Kafka.SASL.Mechanism != "" {
		v.Kafka.Auth = e.Kafka.SASL.Mechanism + " " + e.Kafka.SASL.Username
		v.Kafka.Secret = secretState(e.Kafka.SASL.Password, dialer)
	}
	v.SQL = ResolvedItem{Source: e.SQLSource}
	if e.SQL.HasDSN() {
		if t, err := dialer.SQLTarget(e.SQL); err == nil {
			v.SQL.Endpoints = []string{t.Driver + " " + t.Name}
			v.SQL.Secret = "dsn " + endpoint.Masked
		} else {
			v.SQL.Secret = "unreadable: " + err.Error()
		}
	}
	return v
}

func secretState(s endpoint.Secret, d endpoint.Dialer) string {
	if s.IsZero() {
		return "none"
	}
	if _, err := s.Resolve("secret", d.Warn); err != nil {
		return s.Source() + " (unreadable: " + err.Error() + ")"
	}
	return s.Source() + " " + endpoint.Masked
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
