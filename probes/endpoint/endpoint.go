// Package endpoint describes how to reach each backend dsctl talks to (Redis, ZooKeeper,
// Kafka, SQL) and is the one place that turns such a description into a connected client,
// with the timeout, TLS and authentication applied. Connection failures come back as
// errs.KindUnreachable errors that name the endpoint and say what to check.
package endpoint

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Secret says where a secret comes from: an environment variable or a file. Secrets are
// never stored inline in the config file nor taken from flags.
type Secret struct {
	Env  string `json:"env,omitempty" yaml:"env,omitempty"`
	File string `json:"file,omitempty" yaml:"file,omitempty"`
}

// IsZero reports whether no source is set.
func (s Secret) IsZero() bool { return s.Env == "" && s.File == "" }

// Source describes where the secret comes from, for messages (never the value).
func (s Secret) Source() string {
	switch {
	case s.Env != "":
		return "env " + s.Env
	case s.File != "":
		return "file " + s.File
	}
	return "none"
}

// Resolve reads the secret. warn receives a message when a secret file is readable by
// group or others. An env var that is unset, or a file that is missing, is an error that
// names it.
func (s Secret) Resolve(what string, warn func(string)) (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", what, s.Env)
		}
		return v, nil
	case s.File != "":
		path := ExpandHome(s.File)
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read secret file %s: %w", what, path, err)
		}
		if info.Mode().Perm()&0o077 != 0 && warn != nil {
			warn(fmt.Sprintf("%s: secret file %s is readable by group or others (mode %04o); run: chmod 600 %s",
				what, path, info.Mode().Perm(), path))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read secret file %s: %w", what, path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

// ExpandHome replaces a leading ~/ with the user's home directory.
func ExpandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

// TLS configures TLS for a backend. The zero value means plaintext.
type TLS struct {
	Enabled            bool   `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	CA                 string `json:"ca,omitempty" yaml:"ca,omitempty"`
	Cert               string `json:"cert,omitempty" yaml:"cert,omitempty"`
	Key                string `json:"key,omitempty" yaml:"key,omitempty"`
	ServerName         string `json:"server_name,omitempty" yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// On reports whether TLS is requested (explicitly or by giving any TLS file).
func (t *TLS) On() bool {
	return t != nil && (t.Enabled || t.CA != "" || t.Cert != "" || t.Key != "")
}

// Duration is a time.Duration written as text ("10s") in YAML and JSON.
type Duration time.Duration

// MarshalText writes the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration text such as 500ms or 10s.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (use e.g. 500ms, 10s, 1m)", string(b))
	}
	if v < 0 {
		return fmt.Errorf("bad duration %q: must not be negative", string(b))
	}
	*d = Duration(v)
	return nil
}

// Redis describes one Redis server, or several independent masters for quorum locks.
type Redis struct {
	// Addrs are host:port pairs or redis:// / rediss:// URLs.
	Addrs    []string `json:"addrs,omitempty" yaml:"addrs,omitempty"`
	DB       int      `json:"db,omitempty" yaml:"db,omitempty"`
	Username string   `json:"username,omitempty" yaml:"username,omitempty"`
	Password Secret   `json:"password,omitzero" yaml:"password,omitempty"`
	TLS      *TLS     `json:"tls,omitempty" yaml:"tls,omitempty"`
}

// ZooKeeper describes a ZooKeeper ensemble.
type ZooKeeper struct {
	Servers        []string `json:"servers,omitempty" yaml:"servers,omitempty"`
	SessionTimeout Duration `json:"session_timeout,omitempty" yaml:"session_timeout,omitempty"`
	// DigestUser and DigestPassword enable `digest` authentication (addauth digest user:pass).
	DigestUser     string `json:"digest_user,omitempty" yaml:"digest_user,omitempty"`
	DigestPassword Secret `json:"digest_password,omitzero" yaml:"digest_password,omitempty"`
}

// Kafka describes a Kafka cluster.
type Kafka struct {
	Brokers []string `json:"brokers,omitempty" yaml:"brokers,omitempty"`
	// Version caps the protocol version dsctl speaks (e.g. 3.9.0); empty means
	// dsctl's default, which is negotiated down with the broker's ApiVersions.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	TLS     *TLS   `json:"tls,omitempty" yaml:"tls,omitempty"`
	SASL    *SASL  `json:"sasl,omitempty" yaml:"sasl,omitempty"`
}

// SASL configures Kafka SASL authentication.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `json:"mechanism,omitempty" yaml:"mechanism,omitempty"`
	Username  string `json:"username,omitempty" yaml:"username,omitempty"`
	Password  Secret `json:"password,omitzero" yaml:"password,omitempty"`
}

// SQL describes a MySQL/MariaDB or PostgreSQL database. The DSN carries a password,
// so it comes from an environment variable or a file.
type SQL struct {
	// Driver is mysql or postgres; empty means inferred from the DSN.
	Driver string `json:"driver,omitempty" yaml:"driver,omitempty"`
	DSN    Secret `json:"dsn,omitzero" yaml:"dsn,omitempty"`
	// dsnValue is a DSN given directly through DSCTL_SQL_DSN (already a secret source).
	dsnValue string
}

// WithDSNValue returns a copy whose DSN is the given value (from DSCTL_SQL_DSN).
func (s SQL) WithDSNValue(dsn string) SQL {
	s.dsnValue = dsn
	return s
}

// HasDSN reports whether a DSN source is set.
func (s SQL) HasDSN() bool { return s.dsnValue != "" || !s.DSN.IsZero() }

// String renders the duration as Go duration text.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts {env: VAR} or {file: PATH} and refuses an inline secret with
// a message that says what to write instead.
func (s *Secret) UnmarshalYAML(decode func(any) error) error {
	var text string
	if err := decode(&text); err == nil {
		return fmt.Errorf("secrets are never stored inline: use {env: VAR} or {file: PATH}")
	}
	type plain Secret
	var p plain
	if err := decode(&p); err != nil {
		return err
	}
	if p.Env != "" && p.File != "" {
		return fmt.Errorf("a secret comes from env or file, not both")
	}
	*s = Secret(p)
	return nil
}
