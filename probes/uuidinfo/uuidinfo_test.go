package uuidinfo

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/uuid/v5"

	"github.com/dsctl/dsctl/probes/errs"
)

var now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func codes(ws []Warning) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.Code)
	}
	return strings.Join(s, ",")
}

// RFC 9562 Appendix A test vectors: all three encode 2022-02-22T19:22:22Z (Tuesday,
// February 22, 2022 2:22:22.00 PM GMT-05:00).
func TestRFC9562Vectors(t *testing.T) {
	want := time.Date(2022, 2, 22, 19, 22, 22, 0, time.UTC)
	tests := []struct {
		in        string
		version   int
		timestamp string
		clockSeq  int
		node      string
		precision string
	}{
		{"C232AB00-9414-11EC-B3C8-9F6BDECED846", 1, "2022-02-22T19:22:22.0000000Z", 0x33C8, "9f:6b:de:ce:d8:46", "100ns"},
		{"1EC9414C-232A-6B00-B3C8-9F6BDECED846", 6, "2022-02-22T19:22:22.0000000Z", 0x33C8, "9f:6b:de:ce:d8:46", "100ns"},
		{"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 7, "2022-02-22T19:22:22.000Z", -1, "", "1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in, err := Decode(tt.in, now)
			if err != nil {
				t.Fatal(err)
			}
			if in.Version != tt.version || in.Variant != "RFC 9562" || in.UUID != strings.ToLower(tt.in) {
				t.Errorf("version %d variant %q uuid %s", in.Version, in.Variant, in.UUID)
			}
			if in.Time == nil || !in.Time.Equal(want) || in.Timestamp != tt.timestamp || in.TimePrecision != tt.precision {
				t.Fatalf("time %v %q %q, want %v", in.Time, in.Timestamp, in.TimePrecision, want)
			}
			if *in.UnixMs != want.UnixMilli() {
				t.Errorf("unix_ms %d", *in.UnixMs)
			}
			if tt.clockSeq >= 0 {
				if in.ClockSequence == nil || *in.ClockSequence != tt.clockSeq || in.Node != tt.node {
					t.Errorf("clock seq %v node %q", in.ClockSequence, in.Node)
				}
				// 0x9f has the multicast bit set: the RFC's example node is random.
				if in.NodeIsMAC == nil || *in.NodeIsMAC || len(in.Warnings) != 0 {
					t.Errorf("node is MAC %v, warnings %v", in.NodeIsMAC, in.Warnings)
				}
			} else if in.ClockSequence != nil || in.Node != "" || in.NodeIsMAC != nil {
				t.Errorf("v7 has no clock sequence or node: %+v", in)
			}
		})
	}
}

func TestDecodeVersions(t *testing.T) {
	tests := []struct {
		name, in     string
		version      int
		versionName  string
		variant      string
		special      string
		hasTime      bool
		warnings     string
		noteContains string
	}{
		{"v1 with a real MAC", "c232ab00-9414-11ec-b3c8-001b638445e6", 1, "time-based (Gregorian, 100 ns)", "RFC 9562", "", true, "node_is_mac", ""},
		{"v2 DCE", "000003e8-9414-21ec-b300-001b638445e6", 2, "DCE security", "RFC 9562", "", true, "node_is_mac", ""},
		{"v3", "6fa459ea-ee8a-3ca4-894e-db77e160355e", 3, "name-based (MD5)", "RFC 9562", "", false, "", "MD5"},
		{"v4", "919108f7-52d1-4320-9bac-f847db4148a8", 4, "random", "RFC 9562", "", false, "", "random"},
		{"v5", "886313e1-3b8a-5372-9b90-0c9aee199e5d", 5, "name-based (SHA-1)", "RFC 9562", "", false, "", "SHA-1"},
		{"v8", "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", 8, "custom", "RFC 9562", "", false, "", "vendor"},
		{"v7 in the future", "0c7f22e2-79b0-7cc3-98c4-dc0c0c07398f", 7, "Unix time (ms)", "RFC 9562", "", true, "future", ""},
		{"nil", "00000000-0000-0000-0000-000000000000", 0, "nil UUID", "NCS (reserved)", "nil", false, "", "placeholder"},
		{"max", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", 0, "max UUID", "future (reserved)", "max", false, "", "sentinel"},
		{"microsoft variant", "c232ab00-9414-11ec-c3c8-9f6bdeced846", 0, "unknown", "Microsoft (reserved)", "", false, "not_rfc9562_variant", ""},
		{"version 9", "c232ab00-9414-91ec-b3c8-9f6bdeced846", 9, "unknown", "RFC 9562", "", false, "unknown_version", ""},
		{"braces", "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}", 7, "Unix time (ms)", "RFC 9562", "", true, "", ""},
		{"urn, any case", " URN:UUID:017f22e2-79b0-7cc3-98c4-dc0c0c07398f ", 7, "Unix time (ms)", "RFC 9562", "", true, "", ""},
		{"32 hex digits", "017f22e279b07cc398c4dc0c0c07398f", 7, "Unix time (ms)", "RFC 9562", "", true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Decode(tt.in, now)
			if err != nil {
				t.Fatal(err)
			}
			if in.Version != tt.version || in.VersionName != tt.versionName || in.Variant != tt.variant || in.Special != tt.special {
				t.Errorf("got v%d %q %q %q", in.Version, in.VersionName, in.Variant, in.Special)
			}
			if (in.Time != nil) != tt.hasTime {
				t.Errorf("time %v", in.Time)
			}
			if codes(in.Warnings) != tt.warnings {
				t.Errorf("warnings %q, want %q", codes(in.Warnings), tt.warnings)
			}
			if tt.noteContains != "" && !strings.Contains(strings.Join(in.Notes, " "), tt.noteContains) {
				t.Errorf("notes %q lack %q", in.Notes, tt.noteContains)
			}
			if _, err := json.Marshal(in); err != nil {
				t.Errorf("json: %v", err)
			}
		})
	}
	// v2: local ID 1000 (a uid), domain person; the node leaks a MAC.
	in, _ := Decode("000003e8-9414-21ec-b300-001b638445e6", now)
	if in.LocalID == nil || *in.LocalID != 1000 || in.Domain != "person (uid)" || in.TimePrecision != "~7min" {
		t.Errorf("v2: %+v", in)
	}
	if !strings.Contains(in.Warnings[0].Message, "00:1b:63:84:45:e6") {
		t.Errorf("MAC warning should name the node: %q", in.Warnings[0].Message)
	}
}

// The timestamps agree with gofrs/uuid's own readers for many generated UUIDs.
func TestAgreesWithGofrs(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456700, time.UTC)
	for i := 0; i < 200; i++ {
		ts := at.Add(time.Duration(i) * 7919 * time.Millisecond)
		for _, mk := range []func(time.Time) (uuid.UUID, error){uuid.NewV1AtTime, uuid.NewV6AtTime, uuid.NewV7AtTime} {
			u, err := mk(ts)
			if err != nil {
				t.Fatal(err)
			}
			in, err := Decode(u.String(), now)
			if err != nil {
				t.Fatal(err)
			}
			want := ts
			if in.Version == 7 {
				want = ts.Truncate(time.Millisecond)
			}
			if in.Time == nil || !in.Time.Equal(want) {
				t.Fatalf("%s (v%d): %v, want %v", u, in.Version, in.Time, want)
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct{ in, want string }{
		{"C232AB00-9414-11EC-B3C8-9F6BDECED84", "length 35"},
		{"C232AB00-9414-11EC-B3C8-9F6BDECED84G", "not hex digits"},
		{"C232AB009-414-11EC-B3C8-9F6BDECED846", "dashes not at positions"},
		{"{C232AB00-9414-11EC-B3C8-9F6BDECED846]", "unbalanced braces"},
		{"urn:uuix:C232AB00-9414-11EC-B3C8-9F6BDECED846", "bad urn:uuid: prefix"},
		{strings.Repeat("a-", 100), "(200 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Decode(tt.in, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("err %v, want usage error with %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), `uuid "`) {
				t.Errorf("error %q should name the input", err)
			}
		})
	}
}

func TestLooksLikeUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"c232ab00-9414-11ec-b3c8-9f6bdeced846":   true,
		"c232ab00-9414-11ec-b3c8-9f6bdeced84":    true, // malformed, but a UUID's shape: report it as a UUID
		"{c232ab00-9414-11ec-b3c8-9f6bdeced846}": true,
		"urn:uuid:c232ab00":                      true,
		"c232ab00941411ecb3c89f6bdeced846":       true,
		"12345678901234567890123456789012":       false, // all decimal: an (overflowing) number
		"175928847299117063":                     false,
		"0x2710000000000007":                     false,
		"-5":                                     false,
		"":                                       false,
	} {
		if got := LooksLikeUUID(s); got != want {
			t.Errorf("LooksLikeUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"C232AB00-9414-11EC-B3C8-9F6BDECED846", "1EC9414C-232A-6B00-B3C8-9F6BDECED846",
		"017F22E2-79B0-7CC3-98C4-DC0C0C07398F", "{00000000-0000-0000-0000-000000000000}", "urn:uuid:ffffffff-ffff-ffff-ffff-ffffffffffff",
		"017f22e279b07cc398c4dc0c0c07398f", "000003e8-9414-21ec-b300-001b638445e6", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := Decode(s, now)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("kind %v", errs.KindOf(err))
			}
			return
		}
		if _, err := json.Marshal(in); err != nil {
			t.Fatalf("json: %v", err)
		}
		if len(in.UUID) != 36 {
			t.Fatalf("canonical form %q", in.UUID)
		}
	})
}
