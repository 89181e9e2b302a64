// Package config reads and writes dsctl's config file (named contexts of endpoints) and
// resolves the endpoints a command uses: command flag > environment > current context >
// built-in default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// Environment variables dsctl reads.
const (
	EnvConfig    = "DSCTL_CONFIG"
	EnvContext   = "DSCTL_CONTEXT"
	EnvRedis     = "DSCTL_REDIS"
	EnvZooKeeper = "DSCTL_ZK"
	EnvKafka     = "DSCTL_KAFKA"
	EnvSQLDSN    = "DSCTL_SQL_DSN"
	EnvSQLDriver = "DSCTL_SQL_DRIVER"
)

// File is the config file: named contexts and the one in use.
type File struct {
	CurrentContext string              `json:"current_context,omitempty" yaml:"current_context,omitempty"`
	Contexts       map[string]*Context `json:"contexts" yaml:"contexts"`

	// Path is where the file was read from or will be written to.
	Path string `json:"-" yaml:"-"`
	// Exists reports whether the file was found on disk.
	Exists bool `json:"-" yaml:"-"`
	// Inline lists secrets written into the file as text (an error for every command
	// but `config view`, which shows them masked). Their values are not kept.
	Inline []InlineSecret `json:"-" yaml:"-"`
}

// Context holds the endpoints of one environment (e.g. local, staging, prod).
type Context struct {
	Redis     *endpoint.Redis     `json:"redis,omitempty" yaml:"redis,omitempty"`
	ZooKeeper *endpoint.ZooKeeper `json:"zookeeper,omitempty" yaml:"zookeeper,omitempty"`
	Kafka     *endpoint.Kafka     `json:"kafka,omitempty" yaml:"kafka,omitempty"`
	SQL       *endpoint.SQL       `json:"sql,omitempty" yaml:"sql,omitempty"`
}

// DefaultPath returns the config path when --config is not given:
// $DSCTL_CONFIG, else $XDG_CONFIG_HOME/dsctl/config.yaml, else ~/.config/dsctl/config.yaml.
func DefaultPath(getenv func(string) string) string {
	if p := getenv(EnvConfig); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "dsctl", "config.yaml")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "dsctl", "config.yaml")
}

// Load reads the config at path. A missing file is an empty config unless mustExist
// (the user named the file explicitly with --config).
func Load(path string, mustExist bool) (*File, error) {
	f := &File{Path: path, Contexts: map[string]*Context{}}
	b, err := os.ReadFile(endpoint.ExpandHome(path))
	if errors.Is(err, fs.ErrNotExist) {
		if mustExist {
			return nil, errs.Usage("config file %s does not exist", path).
				WithHint("create it with: dsctl config set-context NAME --redis HOST:PORT --config %s", path)
		}
		return f, nil
	}
	if err != nil {
		return nil, errs.Usage("cannot read config file %s: %v", path, err)
	}
	if err := Parse(b, f); err != nil {
		var inline *InlineSecretsError
		if errors.As(err, &inline) {
			// The file was read: return it with the error, so `config view` can show it masked.
			f.Path, f.Exists = path, true
			return f, errs.Usage("config file %s: %v", path, err).Wrap(err).WithHint("%s", inline.Hint())
		}
		return nil, errs.Usage("config file %s: %v", path, err)
	}
	f.Path, f.Exists = path, true
	if f.Contexts == nil {
		f.Contexts = map[string]*Context{}
	}
	return f, nil
}

// Parse decodes YAML config text strictly: unknown keys are errors with line numbers.
func Parse(b []byte, f *File) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	tree, inline := stripInlineSecrets(b)
	if tree != nil {
		// Decode without the inline secrets (never kept), then report them below.
		for _, doc := range tree.Docs {
			if err := yaml.NodeToValue(doc.Body, f, yaml.Strict()); err != nil {
				return errors.New(friendlyYAMLError(err, b))
			}
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict())
		if err := dec.Decode(f); err != nil {
			return errors.New(friendlyYAMLError(err, b))
		}
	}
	for name, c := range f.Contexts {
		if err := ValidateContextName(name); err != nil {
			return err
		}
		if c == nil {
			f.Contexts[name] = &Context{}
		}
	}
	if f.CurrentContext != "" {
		if _, ok := f.Contexts[f.CurrentContext]; !ok {
			return fmt.Errorf("current_context %q is not one of the contexts (%s)", f.CurrentContext, strings.Join(f.Names(), ", "))
		}
	}
	if len(inline) > 0 {
		f.Inline = inline
		return &InlineSecretsError{Secrets: inline}
	}
	return nil
}

var inlineSecret = regexp.MustCompile(`^\s*(password|digest_password|dsn):\s*[^{\s#]`)

// friendlyYAMLError renders a decode error with its line and column. Errors raised by
// our own unmarshalers carry no position, so the offending line is found by its shape.
func friendlyYAMLError(err error, src []byte) string {
	return maskInlineSecrets(friendlyYAMLError1(err, src))
}

// secretValue matches a secret key followed by text (not an {env|file} mapping), in
// block or flow style, as the YAML library's error context quotes the file.
var secretValue = regexp.MustCompile(`((?:password|digest_password|dsn)["']?\s*:[ \t]*)([^{\s,}#][^,}\n]*)`)

// maskInlineSecrets replaces inline secret values in an error message (which quotes
// lines of the file around the error) with ****.
func maskInlineSecrets(msg string) string {
	return secretValue.ReplaceAllString(msg, "${1}****")
}

func friendlyYAMLError1(err error, src []byte) string {
	msg := yaml.FormatError(err, false, true)
	if strings.HasPrefix(msg, "[") {
		return msg
	}
	for i, line := range strings.Split(string(src), "\n") {
		if inlineSecret.MatchString(line) {
			return fmt.Sprintf("line %d: %s\n  %s", i+1, msg, strings.TrimSpace(line))
		}
	}
	return msg
}

// ValidateContextName rejects names that would be awkward in YAML or shells.
func ValidateContextName(name string) error {
	if name == "" {
		return errs.Usage("context name must not be empty")
	}
	if len(name) > 64 {
		return errs.Usage("context name %q is longer than 64 characters", name)
	}
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errs.Usage("context name %q: use letters, digits, '-', '_' and '.' only", name)
		}
	}
	return nil
}

// Names lists the contexts in name order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Context returns the named context, the current one when name is empty, or an empty
// context when the file has none at all. An unknown name is a usage error.
func (f *File) Context(name string) (*Context, string, error) {
	if name == "" {
		name = f.CurrentContext
	}
	if name == "" {
		return &Context{}, "", nil
	}
	c, ok := f.Contexts[name]
	if !ok {
		known := "none are defined"
		if len(f.Contexts) > 0 {
			known = "known: " + strings.Join(f.Names(), ", ")
		}
		return nil, "", errs.Usage("context %q not found in %s (%s)", name, f.Path, known).
			WithHint("see dsctl config get-contexts")
	}
	return c, name, nil
}

// Marshal renders the file as YAML.
func (f *File) Marshal() ([]byte, error) {
	return yaml.MarshalWithOptions(f, yaml.Indent(2), yaml.IndentSequence(true))
}

// Save writes the file atomically with mode 0600 (it may name secret files and env vars),
// creating its directory with mode 0700.
func (f *File) Save() error {
	b, err := f.Marshal()
	if err != nil {
		return err
	}
	path := endpoint.ExpandHome(f.Path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	f.Exists = true
	return nil
}
