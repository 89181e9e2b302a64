package zklock

import (
	"strings"
	"testing"

	"github.com/dsctl/dsctl/probes/lock"
)

// Node names of the other libraries' recipes, as they create them (seen against the
// real ensemble in interop_curator_test.go and interop_kazoo_test.go).
func TestForeignNodeNames(t *testing.T) {
	for _, tc := range []struct {
		node   string
		format lock.Format
		token  string
		seq    int64
		reader bool
	}{
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-__WRIT__0000000007", FormatCuratorRW, "3275e120-4d3c-4fea-80d6-69f30c3589bd", 7, false},
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-__READ__0000000012", FormatCuratorRW, "3275e120-4d3c-4fea-80d6-69f30c3589bd", 12, true},
		{"a9e54f336a0b48949f3f773954e14331__rlock__0000000003", FormatKazooRead, "a9e54f336a0b48949f3f773954e14331", 3, true},
		// Not read-write lock nodes: the mutex's (locker.go), leases, junk.
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-lock-0000000000", "", "", 0, false},
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-lease-0000000000", "", "", 0, false},
		{"a9e54f336a0b48949f3f773954e14331__lock__0000000003", "", "", 0, false},
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-__WRIT__000000000x", "", "", 0, false},
		{"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-__WRIT__00000000001", "", "", 0, false},
		{"_c_3275e120x4d3c-4fea-80d6-69f30c3589bd-__READ__0000000012", "", "", 0, false},
		{"A9E54F336A0B48949F3F773954E14331__rlock__0000000003", "", "", 0, false},
		{"__rlock__0000000003", "", "", 0, false},
		{"leases", "", "", 0, false},
		{"", "", "", 0, false},
	} {
		m, ok := parseForeignMember(tc.node)
		if ok != (tc.format != "") || ok && (m.format != tc.format || m.token != tc.token || m.seq != tc.seq || m.name != tc.node || isReader(m) != tc.reader) {
			t.Errorf("parseForeignMember(%q) = %+v, %v; want format %q token %q seq %d reader %v", tc.node, m, ok, tc.format, tc.token, tc.seq, tc.reader)
		}
	}
	lease, ok := parseProtected("_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-lease-0000000004", "lease-")
	if !ok || lease.seq != 4 || lease.token != "3275e120-4d3c-4fea-80d6-69f30c3589bd" {
		t.Errorf("lease node: %+v %v", lease, ok)
	}
}

func TestForeignQueueOrderAndNotes(t *testing.T) {
	w, _ := parseForeignMember("_c_11111111-1111-1111-1111-111111111111-__WRIT__0000000005")
	r1, _ := parseForeignMember("_c_22222222-2222-2222-2222-222222222222-__READ__0000000003")
	r2, _ := parseForeignMember("_c_33333333-3333-3333-3333-333333333333-__READ__0000000004")
	dsctl, _ := parseMember("_c_44444444-4444-4444-4444-444444444444-lock-0000000006")
	ms, rest := foreignMembers([]member{dsctl}, []string{w.name, "junk", r2.name, r1.name})
	if len(rest) != 1 || rest[0] != "junk" || len(ms) != 4 || ms[0].seq != 3 || ms[1].seq != 4 || ms[2].seq != 5 || ms[3].seq != 6 {
		t.Fatalf("queue %+v, others %v", ms, rest)
	}
	notes := foreignNotes(ms)
	if len(notes) != 1 || !strings.Contains(notes[0], "read lock is held by 2 reader(s): "+r1.name+", "+r2.name) {
		t.Fatalf("notes %q", notes)
	}
	if n := foreignNotes(ms[2:]); len(n) != 1 || !strings.Contains(n[0], "write lock is held by "+w.name) {
		t.Fatalf("notes with the writer first %q", n)
	}
	if n := foreignNotes(ms[3:]); n != nil {
		t.Fatalf("notes of a plain mutex queue %q", n)
	}
	k, _ := parseForeignMember("a9e54f336a0b48949f3f773954e14331__rlock__0000000003")
	if n := foreignNotes([]member{k}); len(n) != 1 || !strings.HasPrefix(n[0], "kazoo read-write lock: the read lock is held by 1 reader(s)") {
		t.Fatalf("kazoo reader notes %q", n)
	}
}

func TestForeignOwner(t *testing.T) {
	for _, tc := range []struct {
		f    lock.Format
		raw  string
		want *lock.Owner
	}{
		{FormatCurator, "10.1.2.3", &lock.Owner{Host: "10.1.2.3", Tool: "Apache Curator"}},
		{FormatSemaphore, "::1", &lock.Owner{Host: "::1", Tool: "Apache Curator"}},
		{FormatCuratorRW, "billing job", &lock.Owner{Label: "billing job", Tool: "Apache Curator"}},
		{FormatKazoo, "worker-7", &lock.Owner{Label: "worker-7", Tool: "kazoo"}},
		{FormatKazooRead, " r ", &lock.Owner{Label: "r", Tool: "kazoo"}},
		{FormatKazoo, "", nil},
		{FormatCurator, "\x00\x01binary", nil},
		{FormatCurator, strings.Repeat("x", 300), nil},
		{FormatGoZK, "10.1.2.3", nil},
	} {
		got := foreignOwner(tc.f, []byte(tc.raw))
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("foreignOwner(%s, %q) = %+v, want %+v", tc.f, tc.raw, got, tc.want)
		}
	}
}

// Node names come from the server: whatever they are, the parsers neither panic nor
// accept a name they cannot give back.
func FuzzForeignNodeNames(f *testing.F) {
	for _, s := range []string{
		"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-__WRIT__0000000007",
		"a9e54f336a0b48949f3f773954e14331__rlock__0000000003",
		"_c_3275e120-4d3c-4fea-80d6-69f30c3589bd-lease-0000000004",
		"leases", "", "__rlock__", "_c_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if m, ok := parseForeignMember(s); ok {
			if m.name != s || m.seq < 0 || !strings.Contains(s, m.token) || !isForeignNode(s) {
				t.Fatalf("parseForeignMember(%q) = %+v", s, m)
			}
		}
		if m, ok := parseProtected(s, "lease-"); ok && (m.name != s || m.seq < 0) {
			t.Fatalf("parseProtected(%q) = %+v", s, m)
		}
		_ = foreignOwner(FormatCurator, []byte(s))
	})
}
