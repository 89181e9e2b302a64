package lock_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/lock"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"deploy", "jobs/nightly", "a:b@c.d-e_f", strings.Repeat("x", lock.MaxNameLen), "ünïcode"} {
		if err := lock.ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", lock.MaxNameLen+1), "a b", "tab\there", "new\nline", "{tag}", "x}", "\xff\xfe"} {
		err := lock.ValidateName(bad)
		if errs.KindOf(err) != errs.KindUsage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	if err := lock.ValidateName(strings.Repeat("x", 300)); !strings.Contains(err.Error(), "300 bytes") {
		t.Errorf("long name message: %v", err)
	}
}

func TestValidateTTL(t *testing.T) {
	for _, ok := range []time.Duration{lock.MinTTL, time.Second, 30 * time.Second, lock.MaxTTL} {
		if err := lock.ValidateTTL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []time.Duration{0, -time.Second, 99 * time.Millisecond, lock.MaxTTL + time.Millisecond, 1500*time.Millisecond + 1} {
		if err := lock.ValidateTTL(bad); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("%s: %v, want a usage error", bad, err)
		}
	}
}

func TestParseWait(t *testing.T) {
	cases := map[string]string{"0": "0", "": "0", "30s": "30s", "1m30s": "1m30s", "forever": "forever", "FOREVER": "forever", "0s": "0"}
	for in, want := range cases {
		w, err := lock.ParseWait(in)
		if err != nil || w.String() != want {
			t.Errorf("ParseWait(%q) = %v, %v; want %s", in, w, err, want)
		}
	}
	for _, bad := range []string{"soon", "-1s", "10", "1y"} {
		if _, err := lock.ParseWait(bad); errs.KindOf(err) != errs.KindUsage {
			t.Errorf("ParseWait(%q): %v, want a usage error", bad, err)
		}
	}
	if w, _ := lock.ParseWait("forever"); !w.Forever() || !w.Deadline(time.Now()).IsZero() || w.Zero() {
		t.Error("forever")
	}
	if w, _ := lock.ParseWait("0"); !w.Zero() {
		t.Error("0 is not zero")
	}
}

func TestFencingTokenIsAStringInJSON(t *testing.T) {
	b, _ := json.Marshal(struct {
		F lock.FencingToken `json:"f"`
	}{1764086400123456789})
	if string(b) != `{"f":"1764086400123456789"}` {
		t.Fatalf("json = %s", b)
	}
	var back struct {
		F lock.FencingToken `json:"f"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.F != 1764086400123456789 {
		t.Fatalf("round trip: %v %v", back.F, err)
	}
}

func TestHolderAndOwnerStrings(t *testing.T) {
	h := &lock.Holder{Token: "0123456789abcdef", Fence: 42, Owner: &lock.Owner{User: "ops", Host: "box", PID: 7, Command: "./deploy.sh"}}
	h.SetTTLLeft(1500 * time.Millisecond)
	if got := h.String(); got != `ops@box pid 7 "./deploy.sh", fence 42, 1.5s left` {
		t.Fatalf("holder = %s", got)
	}
	if got := (*lock.Holder)(nil).String(); got != "unknown holder" {
		t.Fatal(got)
	}
	if got := lock.QuoteCommand([]string{"sh", "-c", "echo 'hi' && ls"}); got != `sh -c 'echo '\''hi'\'' && ls'` {
		t.Fatalf("quote = %s", got)
	}
}

func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"0", "30s", "forever", "-1s", "1h2m", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := lock.ParseWait(s)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("%q: non-usage error %v", s, err)
			}
			return
		}
		if !w.Forever() && w.Max() < 0 {
			t.Fatalf("%q: negative wait", s)
		}
		again, err := lock.ParseWait(w.String())
		if err != nil || again != w {
			t.Fatalf("%q: String %q does not parse back: %v", s, w.String(), err)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"deploy", "", "a b", "{x}", strings.Repeat("y", 250)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := lock.ValidateName(s)
		if err == nil && (s == "" || len(s) > lock.MaxNameLen || !utf8.ValidString(s) || strings.ContainsAny(s, "{} \t\n")) {
			t.Fatalf("%q accepted", s)
		}
		if err != nil && errs.KindOf(err) != errs.KindUsage {
			t.Fatalf("%q: non-usage error %v", s, err)
		}
	})
}
