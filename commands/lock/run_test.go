//go:build unix

package lock_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --grace must leave the renewals time: under half the TTL, refused before anything
// is taken.
func TestRunRefusesGraceOfHalfTheTTL(t *testing.T) {
	m := miniredisT(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--ttl", "2s", "--grace", "1s"}, []string{"--grace 1s is too long for --ttl 2s", "less than half the TTL", "use a --grace under 1s (the default for --ttl 2s is 500ms)"}},
		{[]string{"--grace", "20s"}, []string{"--grace 20s is too long for --ttl 30s"}},
		{[]string{"--grace", "0"}, []string{"--grace must be positive"}},
		{[]string{"--grace", "-1s"}, []string{"--grace must be positive"}},
	} {
		args := append(append([]string{"lock", "run", "g", "--redis", m.Addr()}, c.args...), "--", "true")
		r := dsctl(t, nil, args...)
		if r.code != 2 {
			t.Fatalf("%v: exit %d, want 2: %q", c.args, r.code, r.errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(r.errOut, w) {
				t.Fatalf("%v: message lacks %q: %q", c.args, w, r.errOut)
			}
		}
		if len(m.Keys()) != 0 {
			t.Fatalf("%v: keys %v left behind", c.args, m.Keys())
		}
	}
	// The default grace fits a short TTL.
	if r := dsctl(t, nil, "lock", "run", "g", "--redis", m.Addr(), "--ttl", "200ms", "--", "true"); r.code != 0 {
		t.Fatalf("default grace with --ttl 200ms: exit %d %q", r.code, r.errOut)
	}
}

// flock -E: dsctl's own 3, 4 and 6 can be moved out of the child's way; the child's
// own 3 still comes back as 3.
func TestRunExitCodeFlags(t *testing.T) {
	m := miniredisT(t)
	if r := dsctl(t, nil, "lock", "acquire", "busy", "--redis", m.Addr(), "--ttl", "30s"); r.code != 0 {
		t.Fatal(r.errOut)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	r := dsctl(t, nil, "lock", "run", "busy", "--redis", m.Addr(), "--conflict-exit-code", "75", "--", "touch", marker)
	if r.code != 75 || !strings.Contains(r.errOut, `lock "busy" is held by`) {
		t.Fatalf("conflict: exit %d %q, want 75 and the message", r.code, r.errOut)
	}
	r = dsctl(t, nil, "lock", "run", "busy", "--redis", m.Addr(), "--conflict-exit-code", "0", "--", "touch", marker)
	if r.code != 0 || r.errOut != "" {
		t.Fatalf("conflict with 0: exit %d %q, want 0 and quiet (not a terminal)", r.code, r.errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran although the lock was busy")
	}
	r = dsctl(t, nil, "-v", "lock", "run", "busy", "--redis", m.Addr(), "--conflict-exit-code", "0", "--", "touch", marker)
	if r.code != 0 || !strings.Contains(r.errOut, "not run: lock \"busy\" is held by") {
		t.Fatalf("conflict with 0 and -v: exit %d %q", r.code, r.errOut)
	}

	r = dsctl(t, nil, "lock", "run", "free", "--redis", m.Addr(), "--conflict-exit-code", "75", "--lost-exit-code", "76", "--", "sh", "-c", "exit 3")
	if r.code != 3 || r.errOut != "" {
		t.Fatalf("child's own 3: exit %d %q", r.code, r.errOut)
	}

	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for !m.Exists("dsctl:lock:{victim}") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		dsctl(t, nil, "lock", "break", "victim", "--force", "--redis", m.Addr())
	}()
	r = dsctl(t, nil, "lock", "run", "victim", "--redis", m.Addr(), "--ttl", "1s", "--lost-exit-code", "76", "--on-lost", "kill", "--", "sleep", "30")
	if r.code != 76 || !strings.Contains(r.errOut, `error: lock "victim" lost at`) {
		t.Fatalf("lost: exit %d %q, want 76 and the message", r.code, r.errOut)
	}

	r = dsctl(t, nil, "lock", "run", "x", "--redis", "127.0.0.1:1", "--timeout", "1s", "--unreachable-exit-code", "77", "--", "touch", marker)
	if r.code != 77 || !strings.Contains(r.errOut, "cannot reach 127.0.0.1:1") {
		t.Fatalf("unreachable: exit %d %q, want 77 and the message", r.code, r.errOut)
	}

	for _, bad := range [][]string{
		{"--conflict-exit-code", "256"}, {"--conflict-exit-code", "-1"}, {"--lost-exit-code", "0"}, {"--unreachable-exit-code", "0"},
	} {
		args := append(append([]string{"lock", "run", "x", "--redis", m.Addr()}, bad...), "--", "touch", marker)
		r := dsctl(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.errOut, bad[0]+" "+bad[1]+" is out of range") {
			t.Fatalf("%v: exit %d %q", bad, r.code, r.errOut)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran")
	}
}
