package snowflake

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// chunkReader hands out one chunk per Read, like a pipe fed a line at a time.
type chunkReader struct {
	chunks []string
	reads  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	r.reads++
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// The idle hook runs when every line received so far is handled, before the next read:
// after each whole chunk here, not in the middle of one.
func TestReadIDsIdle(t *testing.T) {
	r := &chunkReader{chunks: []string{"1\n2\n", "3\n", "4\n5", "\n6\n"}}
	var events []string
	st, err := ReadIDsIdle(r, func(line int, id uint64) error {
		events = append(events, "id")
		return nil
	}, nil, func() error {
		events = append(events, "idle")
		return nil
	})
	if err != nil || st.Good != 6 {
		t.Fatalf("%+v %v", st, err)
	}
	// "4\n5" ends inside a line: no idle until that line is complete.
	if got := strings.Join(events, " "); got != "id id idle id idle id id id idle" {
		t.Errorf("events %q", got)
	}
	stop := errors.New("stop")
	_, err = ReadIDsIdle(&chunkReader{chunks: []string{"1\n", "2\n"}}, func(int, uint64) error { return nil }, nil,
		func() error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("idle error not returned: %v", err)
	}
}

// DecodeStream writes a live stream's records as their lines arrive (and flushes a
// bufio.Writer), instead of waiting for 60 KiB of output.
func TestDecodeStreamAnswersLiveInput(t *testing.T) {
	inR, inW := io.Pipe()
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	d := NewDecoder(mustPreset(t, "discord"), testNow)
	done := make(chan error, 1)
	go func() {
		_, err := DecodeStream(inR, bw, d, JSONL, nil)
		done <- err
	}()
	inW.Write([]byte("175928847299117063\n"))
	// The second write only returns once the reader took it, so the first line has been
	// decoded and, the input having run dry, flushed through bw by then.
	inW.Write([]byte("1"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"id":"175928847299117063"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no record while the input stays open: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLongLineIsMarked(t *testing.T) {
	var got error
	ReadIDs(strings.NewReader(strings.Repeat("7", maxLine+10)+"\n1\n"), func(int, uint64) error { return nil },
		func(line int, text []byte, err error) { got = err })
	if !errors.Is(got, ErrLongLine) || !strings.Contains(got.Error(), "line 1: longer than") {
		t.Errorf("long line error %v", got)
	}
}

func TestAppendFieldsJSON(t *testing.T) {
	d := NewDecoder(mustPreset(t, "discord"), testNow)
	v := d.Decode(175928847299117063)
	if got := string(d.AppendFieldsJSON(nil, &v)); got != `{"worker":1,"process":0,"increment":7}` {
		t.Errorf("fields %s", got)
	}
	big, err := ParseSpec("time:8:1h,payload:55", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	bd := NewDecoder(big, testNow)
	bv := bd.Decode(1<<54 | 5)
	if got := string(bd.AppendFieldsJSON(nil, &bv)); got != `{"payload":"18014398509481989"}` {
		t.Errorf("a field above 53 bits must be a string: %s", got)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = d.AppendFieldsJSON(buf[:0], &v) }); n != 0 {
		t.Errorf("%v allocs", n)
	}
}
