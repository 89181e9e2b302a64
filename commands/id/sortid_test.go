package id

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

type sortIDJSON struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Timestamp string `json:"timestamp"`
	UnixMs    int64  `json:"unix_ms"`
	Random    string `json:"random"`
}

const (
	specULID    = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	readmeKSUID = "0ujtsYcgvSTl8PAuAdqWYSMnLOv"
)

// ULIDs and KSUIDs are recognised by their form, as arguments and on stdin.
func TestDecodeULIDAndKSUID(t *testing.T) {
	e := mustDecode(t, "json", "", DecodeOptions{IDs: []string{specULID, readmeKSUID}})
	var got []sortIDJSON
	if err := json.Unmarshal(e.out.Bytes(), &got); err != nil || len(got) != 2 {
		t.Fatalf("%v\n%s", err, e.out)
	}
	if got[0].Kind != "ulid" || got[0].Timestamp != "2016-07-30T23:54:10.259Z" || got[1].Kind != "ksuid" ||
		got[1].Timestamp != "2017-10-10T04:00:47.000Z" || got[1].Random != "b5a1cd34b5f99d1154fb6853345c9735" {
		t.Errorf("%+v", got)
	}
	e = mustDecode(t, "jsonl", specULID+"\n"+readmeKSUID+"\n", DecodeOptions{IDs: []string{"-"}})
	if lines := strings.Split(strings.TrimSpace(e.out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"kind":"ksuid"`) {
		t.Errorf("stdin:\n%s", e.out)
	}
	// --layout forces the kind: a KSUID is not a ULID.
	if _, err := decode(t, "json", "", DecodeOptions{IDs: []string{readmeKSUID}, Layout: "ulid"}); err == nil || !strings.Contains(err.Error(), "not a ULID") {
		t.Errorf("--layout ulid on a KSUID: %v", err)
	}
	e = mustDecode(t, "", "", DecodeOptions{IDs: []string{specULID}, Layout: "ULID"})
	if !strings.Contains(e.out.String(), "2016-07-30T23:54:10.259Z") {
		t.Errorf("table:\n%s", e.out)
	}
}

func TestCheckULIDs(t *testing.T) {
	e := newEnv(t, "json")
	e.in.WriteString(specULID + "\n01ARZ3NDEKTSV4RRFFQ69G5FAW\n" + specULID + "\nnot-an-id\n")
	err := RunCheck(context.Background(), e.f, e.p, &CheckOptions{Layout: "ulid", MaxListed: 10, Now: testNow})
	var rep struct {
		Count        int  `json:"count"`
		Duplicates   int  `json:"duplicates"`
		OutOfOrder   int  `json:"out_of_order"`
		NotMonotonic int  `json:"not_monotonic"`
		Monotonic    bool `json:"monotonic"`
	}
	if jerr := json.Unmarshal(e.out.Bytes(), &rep); jerr != nil || rep.Count != 3 || rep.Duplicates != 1 || rep.OutOfOrder != 1 ||
		rep.NotMonotonic != 1 || rep.Monotonic {
		t.Fatalf("%v %+v\n%s", jerr, rep, e.out)
	}
	if err == nil || !strings.Contains(e.errOut.String(), "line 4") {
		t.Errorf("bad line: %v\n%s", err, e.errOut)
	}
}
