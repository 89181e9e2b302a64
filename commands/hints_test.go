package commands

import (
	"strings"
	"testing"
)

// Hints point at what a user has: never at a script of dsctl's own repository. (The
// sandbox embeds no SQL database; it does embed ZooKeeper.)
func TestSandboxHintsNeedNoRepository(t *testing.T) {
	for _, backend := range []string{"sql"} {
		r := dsctlIn(t, "", "ping", backend, "--sandbox", "-o", "json")
		if r.code == 0 || strings.Contains(r.out+r.errOut, "scripts/") || !strings.Contains(r.out, "drop --sandbox") {
			t.Errorf("ping %s --sandbox: exit %d\n%s%s", backend, r.code, r.out, r.errOut)
		}
	}
}
