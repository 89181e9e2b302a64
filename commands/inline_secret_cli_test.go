package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An inline password in the config: every command that would use the file exits 2 naming
// the file, line and key (never the value); config view still prints the file, masked.
func TestInlineSecretInConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	text := "current_context: prod\ncontexts:\n  prod:\n    kafka:\n      brokers: [127.0.0.1:1]\n      sasl:\n" +
		"        mechanism: PLAIN\n        username: alice\n        password: hunter2\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ping", "kafka"}, {"kafka", "audit"}, {"config", "view", "--resolved"}} {
		r := dsctlIn(t, "", append([]string{"--config", cfg}, args...)...)
		if r.code != 2 || !strings.Contains(r.errOut, cfg) || !strings.Contains(r.errOut, "line 9") ||
			!strings.Contains(r.errOut, "contexts.prod.kafka.sasl.password") {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.errOut)
		}
		if strings.Contains(r.out+r.errOut, "hunter2") {
			t.Errorf("%v shows the password:\n%s%s", args, r.out, r.errOut)
		}
	}
	for _, format := range []string{"yaml", "json"} {
		r := dsctlIn(t, "", "--config", cfg, "config", "view", "-o", format)
		if r.code != 0 || strings.Contains(r.out+r.errOut, "hunter2") || !strings.Contains(r.out, `"****"`) ||
			!strings.Contains(r.out, "alice") || !strings.Contains(r.errOut, "line 9") {
			t.Errorf("config view -o %s: exit %d\n%s%s", format, r.code, r.out, r.errOut)
		}
	}
}
