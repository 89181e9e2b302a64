package sortid

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDecodeVectors(t *testing.T) {
	// The ULID spec's example, and segmentio/ksuid's README example.
	u, err := Decode("01ARZ3NDEKTSV4RRFFQ69G5FAV", "", now)
	if err != nil || u.Kind != KindULID || u.Timestamp != "2016-07-30T23:54:10.259Z" || u.UnixMs != 1469922850259 || len(u.Random) != 20 {
		t.Errorf("ulid: %+v %v", u, err)
	}
	k, err := Decode("0ujtsYcgvSTl8PAuAdqWYSMnLOv", "", now)
	if err != nil || k.Kind != KindKSUID || k.Timestamp != "2017-10-10T04:00:47.000Z" || k.TimePrecision != "1s" ||
		!strings.EqualFold(k.Random, "B5A1CD34B5F99D1154FB6853345C9735") {
		t.Errorf("ksuid: %+v %v", k, err)
	}
	// Lower case ULIDs are the same ID.
	if l, err := Decode("01arz3ndektsv4rrffq69g5fav", "", now); err != nil || l.ID != u.ID {
		t.Errorf("lower case: %+v %v", l, err)
	}
}

func TestDetect(t *testing.T) {
	cases := map[string]string{
		"01ARZ3NDEKTSV4RRFFQ69G5FAV":           KindULID,
		"0ujtsYcgvSTl8PAuAdqWYSMnLOv":          KindKSUID,
		"175928847299117063":                   "",
		"81ARZ3NDEKTSV4RRFFQ69G5FAV":           "", // first character above 7: overflows 128 bits
		"01ARZ3NDEKTSV4RRFFQ69G5FAU":           "", // U is not Crockford base32
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f": "",
		"12345678901234567890123456":           "", // digits only: a (too large) number
	}
	for in, want := range cases {
		if got := Detect(in); got != want {
			t.Errorf("Detect(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeRejectsWithKindNamed(t *testing.T) {
	if _, err := Decode("01ARZ3NDEKTSV4RRFFQ69G5FA", KindULID, now); err == nil || !strings.Contains(err.Error(), "not a ULID") {
		t.Errorf("short ULID: %v", err)
	}
	if _, err := Decode("0ujtsYcgvSTl8PAuAdqWYSMnLO!", KindKSUID, now); err == nil || !strings.Contains(err.Error(), "not a KSUID") {
		t.Errorf("bad KSUID: %v", err)
	}
}

func TestCheckMonotonicULIDs(t *testing.T) {
	entropy := ulid.Monotonic(rand.New(rand.NewSource(1)), 0)
	ms := ulid.Timestamp(now)
	var ids []string
	for i := range 50 {
		id := ulid.MustNew(ms+uint64(i/10), entropy) // ten per millisecond
		ids = append(ids, id.String())
	}
	c := NewChecker(KindULID, 10)
	for i, id := range ids {
		if err := c.Add(id, i+1); err != nil {
			t.Fatal(err)
		}
	}
	r := c.Report()
	if r.Count != 50 || r.Distinct != 50 || r.OutOfOrder != 0 || r.SameTimePairs != 45 || !r.Monotonic || r.SpanMs != 4 {
		t.Fatalf("monotonic stream: %+v", r)
	}

	// Swap two of the same millisecond and repeat one: not monotonic, out of order, a duplicate.
	ids[3], ids[4] = ids[4], ids[3]
	ids = append(ids, ids[49])
	c = NewChecker(KindULID, 10)
	for i, id := range ids {
		if err := c.Add(id, i+1); err != nil {
			t.Fatal(err)
		}
	}
	r = c.Report()
	if r.Monotonic || r.OutOfOrder != 1 || r.Duplicates != 1 || r.NotMonotonic != 2 || len(r.Problems) < 2 {
		t.Fatalf("broken stream: %+v", r)
	}
	if err := c.Add("not-a-ulid", 99); err == nil {
		t.Fatal("accepted a bad line")
	}
}

// FuzzDecode: no input panics; an ID that decodes prints back as itself (ULIDs upper-cased).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"01ARZ3NDEKTSV4RRFFQ69G5FAV", "0ujtsYcgvSTl8PAuAdqWYSMnLOv", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "aYcgvSTl8PAuAdqWYSMnLOv0ujt", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := Decode(s, "", now)
		if err != nil {
			return
		}
		if !strings.EqualFold(info.ID, strings.TrimSpace(s)) {
			t.Fatalf("%q decoded as %q", s, info.ID)
		}
	})
}
