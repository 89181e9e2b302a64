package sqllock_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
)

// The session-lock names are an interface (other programs take the same lock with
// plain SQL): pinned here. In SQL:
//
//	PostgreSQL: ('x' || substr(encode(sha256(('dsctl:' || name)::bytea), 'hex'), 1, 16))::bit(64)::bigint
//	MySQL:      IF(CHAR_LENGTH(name) <= 64, name, CONCAT('dsctl-', LEFT(SHA2(name, 256), 58)))
func TestSessionLockNamesArePinned(t *testing.T) {
	if got := sqllock.AdvisoryKey("deploy-prod"); got != -864240318355708175 {
		t.Fatalf("AdvisoryKey(deploy-prod) = %d", got)
	}
	if got := sqllock.UserLockName("deploy-prod"); got != "deploy-prod" {
		t.Fatalf("UserLockName(short) = %q", got)
	}
	long := strings.Repeat("x", 70)
	if got := sqllock.UserLockName(long); got != "dsctl-c71bd109227e23434ecf71fd0a344a209136c79ae5a0bda2b5ca442d69" || len(got) != 64 {
		t.Fatalf("UserLockName(70 x) = %q (%d)", got, len(got))
	}
	if got := sqllock.UserLockName(strings.Repeat("é", 64)); got != strings.Repeat("é", 64) {
		t.Fatal("64 characters (128 bytes) fit a MySQL user-lock name")
	}
}

func TestValidateTable(t *testing.T) {
	for _, ok := range []string{"dsctl_locks", "shedlock", "app.method_lock", "_x", "T1"} {
		if err := sqllock.ValidateTable(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "a-b", "a.b.c", "a;drop", "`x`", `"x"`, "a b", strings.Repeat("a", 64), "a."} {
		if err := sqllock.ValidateTable(bad); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

var safeTable = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$`)

// Whatever --table says, a name that passes cannot break out of its quotes.
func FuzzValidateTable(f *testing.F) {
	for _, s := range []string{"dsctl_locks", "a.b", "x`; DROP TABLE y; --", `a"b`, "ü", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sqllock.ValidateTable(s) == nil && !safeTable.MatchString(s) {
			t.Fatalf("accepted %q", s)
		}
	})
}
