package snowflake

import (
	"bufio"
	"errors"
	"io"

	"github.com/dsctl/dsctl/probes/errs"
)

// Format is a bulk output format.
type Format int

const (
	// CSV writes a header line, then one record per ID.
	CSV Format = iota
	// JSONL writes one JSON object per line.
	JSONL
)

// StreamStats counts what a stream held.
type StreamStats struct {
	Lines  int // lines read, blank ones included
	Good   int // IDs parsed (and, for DecodeStream, written)
	Failed int // lines that were not IDs
}

// BadLine is called for a line that is not an ID: its 1-based number, its text (only
// valid during the call) and an errs.Usage error naming the input. A command layer can
// print it to stderr, or try the text as a UUID.
type BadLine func(line int, text []byte, err error)

// maxLine is the longest line ReadIDs accepts; longer ones are bad lines.
const maxLine = 64 << 10

// ErrLongLine is wrapped by the error BadLine gets for a line longer than 64 KiB; its text
// is then only the first 64 bytes of the line.
var ErrLongLine = errors.New("line longer than 64 KiB")

// ReadIDs reads one ID per line from r (decimal or 0x-hex; blank lines are skipped) and
// calls fn for each. It holds one buffer, not the input. Lines that fail go to bad (may
// be nil). It returns the counts and the first read error; it stops early if fn returns
// an error, and returns that error.
func ReadIDs(r io.Reader, fn func(line int, id uint64) error, bad BadLine) (StreamStats, error) {
	return ReadIDsIdle(r, fn, bad, nil)
}

// ReadIDsIdle is ReadIDs with an idle hook: idle (may be nil) runs whenever the input read
// so far is used up, ending at a line end, so the next read may wait for more. A caller that
// buffers output flushes it there, so a live stream (tail -f) is answered line by line
// while a file is still written in big blocks (idle then runs at most once per 64 KiB read).
// An error from idle stops the read and is returned.
func ReadIDsIdle(r io.Reader, fn func(line int, id uint64) error, bad BadLine, idle func() error) (StreamStats, error) {
	var st StreamStats
	br := bufio.NewReaderSize(r, maxLine)
	for {
		if idle != nil && br.Buffered() == 0 && st.Lines > 0 {
			if err := idle(); err != nil {
				return st, err
			}
		}
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			st.Lines++
			st.Failed++
			if bad != nil {
				bad(st.Lines, b[:64], errs.Usage("line %d: longer than %d bytes; not an ID", st.Lines, maxLine).Wrap(ErrLongLine))
			}
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return st, nil
			}
			if err != nil {
				return st, err
			}
			continue
		}
		if len(b) > 0 {
			st.Lines++
			t := trimSpace(b)
			if len(t) > 0 {
				id, perr := ParseIDBytes(t)
				if perr != nil {
					st.Failed++
					if bad != nil {
						bad(st.Lines, t, perr)
					}
				} else {
					st.Good++
					if ferr := fn(st.Lines, id); ferr != nil {
						return st, ferr
					}
				}
			}
		}
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

// flushAt is the output buffer size at which DecodeStream writes.
const flushAt = 60 << 10

// DecodeStream decodes one ID per line from r and writes a record per good line to w in
// format f (CSV starts with a header). Memory stays at two buffers whatever the input
// size. Bad lines go to bad and decoding goes on; the caller turns Failed > 0 into an
// exit code (errs.Partial). The error is a read or write error.
//
// Output is written in blocks of about 60 KiB, and also whenever the input runs dry, so
// records of a live stream appear as their lines arrive. If w has a Flush() error method
// (a bufio.Writer), it is flushed then too.
func DecodeStream(r io.Reader, w io.Writer, d *Decoder, f Format, bad BadLine) (StreamStats, error) {
	buf := make([]byte, 0, flushAt+4096)
	if f == CSV {
		buf = d.AppendCSVHeader(buf)
	}
	flusher, _ := w.(interface{ Flush() error })
	idle := func() error {
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if flusher != nil {
			return flusher.Flush()
		}
		return nil
	}
	var v Decoded
	st, err := ReadIDsIdle(r, func(_ int, id uint64) error {
		d.DecodeInto(id, &v)
		if f == CSV {
			buf = d.AppendCSV(buf, &v)
		} else {
			buf = d.AppendJSON(buf, &v)
		}
		if len(buf) >= flushAt {
			if _, werr := w.Write(buf); werr != nil {
				return werr
			}
			buf = buf[:0]
		}
		return nil
	}, bad, idle)
	if len(buf) > 0 {
		if _, werr := w.Write(buf); werr != nil && err == nil {
			err = werr
		}
	}
	return st, err
}
