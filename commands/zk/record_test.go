package zk_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	zkcmd "github.com/dsctl/dsctl/commands/zk"
	zkprobe "github.com/dsctl/dsctl/probes/zk"
)

// A long value is cut for the table on a character boundary: a multi-byte character
// straddling the cut is dropped whole, never split into invalid UTF-8.
func TestRecordCutsDataOnARuneBoundary(t *testing.T) {
	for pad := 0; pad < 4; pad++ {
		data := strings.Repeat("a", 115+pad) + strings.Repeat("é€😀", 20)
		r := zkcmd.Record(zkprobe.Event{Type: zkprobe.EventDataChanged, Path: "/x", Data: []byte(data)}, zkprobe.RenderText)
		i := strings.Index(detail(r), " data: ")
		if i < 0 {
			t.Fatalf("no data in %q", detail(r))
		}
		shown := detail(r)[i+len(" data: "):]
		if !utf8.ValidString(shown) || !strings.HasSuffix(shown, "...") || len(shown) > 120 || !strings.HasPrefix(data, strings.TrimSuffix(shown, "...")) {
			t.Errorf("pad %d: shown %q (%d bytes)", pad, shown, len(shown))
		}
	}
}

// Gaps for changes whose node was deleted before the re-read say "at least" in words.
func TestRecordGapOfDeletedNode(t *testing.T) {
	msg := "created and deleted before it could be read: at least 2 changes (the node is gone, so how many more is unknowable)"
	r := zkcmd.Record(zkprobe.Event{Type: zkprobe.EventGap, Path: "/x", Change: zkprobe.EventCreated, Missed: 2, Message: msg}, zkprobe.RenderText)
	if want := "2 changes not observed: " + msg; detail(r) != want {
		t.Errorf("detail %q, want %q", detail(r), want)
	}
	if r.Change != "created" || r.Missed != 2 || r.Version != nil {
		t.Errorf("record %+v", r)
	}
}

func detail(r zkcmd.EventRecord) string { return r.Row()[3].Text }
