package snowflake

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/errs"
)

// Run: go test ./probes/snowflake -run '^$' -fuzz FuzzParseID -fuzztime 20s

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"175928847299117063", "0x2710000000000007", "18446744073709551616", "-5", "12a", "", " 42\r",
		"0x", "0X00000000000000000000ff", "99999999999999999999x", "c232ab00-9414-11ec-b3c8-9f6bdeced846"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseID(s)
		vb, errb := ParseIDBytes([]byte(s))
		if (err == nil) != (errb == nil) || v != vb {
			t.Fatalf("string and bytes disagree: %d %v / %d %v", v, err, vb, errb)
		}
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage || !strings.HasPrefix(err.Error(), "id ") {
				t.Fatalf("error %q is not a usage error naming the id", err)
			}
			if u, perr := strconv.ParseUint(asciiTrim(s), 10, 64); perr == nil && !strings.HasPrefix(asciiTrim(s), "+") {
				t.Fatalf("rejected %q that strconv reads as %d: %v", s, u, err)
			}
			return
		}
		t2 := asciiTrim(s)
		if strings.HasPrefix(t2, "0x") || strings.HasPrefix(t2, "0X") {
			if u, perr := strconv.ParseUint(t2[2:], 16, 64); perr != nil || u != v {
				t.Fatalf("%q: got %d, strconv %d %v", s, v, u, perr)
			}
		} else if u, perr := strconv.ParseUint(t2, 10, 64); perr != nil || u != v {
			t.Fatalf("%q: got %d, strconv %d %v", s, v, u, perr)
		}
	})
}

// asciiTrim trims what ParseID trims: ASCII white space (not Unicode spaces).
func asciiTrim(s string) string { return strings.Trim(s, " \t\r\n\v\f") }

// FuzzParseSpec feeds arbitrary specs and epochs; valid layouts must decode and print any
// ID without panicking, as valid JSON.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"time:41:1ms,datacenter:5,worker:5,sequence:12", "time:64:1ms", "ts:48,counter:16",
		"worker:10,t:41:1s,step:12", "time:32:1h,a:31", "time:41:1ms,,x:1", "a:1:1ms," + strings.Repeat("b:1,", 20),
		"time:1:1ms,x:62", "x:62,time:1:1h"} {
		f.Add(s, "2020-01-01T00:00:00Z", uint64(1<<63|12345))
	}
	f.Add("time:41:1ms,worker:22", "0", uint64(0))
	f.Add("time:41:1ms,worker:22", "1e9", uint64(1))
	f.Fuzz(func(t *testing.T, spec, epoch string, id uint64) {
		e, err := ParseEpoch(epoch)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage {
				t.Fatalf("epoch error kind: %v", err)
			}
			e = time.UnixMilli(0)
		}
		l, err := ParseSpec(spec, e)
		if err != nil {
			if errs.KindOf(err) != errs.KindUsage || !strings.HasPrefix(err.Error(), "layout ") {
				t.Fatalf("error %q is not a usage error naming the layout", err)
			}
			return
		}
		if l.TotalBits() != 63 && l.TotalBits() != 64 {
			t.Fatalf("accepted %d bits", l.TotalBits())
		}
		for _, now := range []time.Time{time.Unix(0, 0), time.Now()} {
			d := NewDecoder(l, now)
			for _, x := range []uint64{id, 0, ^uint64(0), 1 << 63} {
				v := d.Decode(x)
				_ = d.AppendCSV(nil, &v)
				js := d.AppendJSON(nil, &v)
				if !json.Valid(js) {
					t.Fatalf("invalid JSON %s", js)
				}
			}
			_ = Rank(id, now, []*Layout{l})
			_ = l.Info(now)
		}
	})
}
