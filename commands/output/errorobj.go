package output

import (
	"errors"
	"io"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// ErrorObject is what a failed command prints on stdout with -o json, jsonl or yaml when
// it printed nothing else, so a script that parses stdout always gets a document:
//
//	{"error": {"message": "...", "hint": "...", "exit_code": 6}}
//
// The message and hint are those of the one line on stderr; hint is "" when there is none.
type ErrorObject struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the body of an ErrorObject.
type ErrorDetail struct {
	Message  string `json:"message"`
	Hint     string `json:"hint"`
	ExitCode int    `json:"exit_code"`
}

// NewErrorObject describes err, which exits with code.
func NewErrorObject(err error, code int) ErrorObject {
	d := ErrorDetail{Message: strings.TrimSpace(err.Error()), ExitCode: code}
	var e *errs.Error
	if errors.As(err, &e) && e.Hint != "" && e.Error() == err.Error() {
		d.Message = strings.TrimSpace(strings.TrimSuffix(err.Error(), " ("+e.Hint+")"))
		d.Hint = e.Hint
	}
	return ErrorObject{Error: d}
}

// WriteErrorObject prints err as an ErrorObject in format (json, jsonl or yaml; nothing
// for other formats), for a command that failed before printing anything on stdout.
// Records already streamed are not followed by it (that would make two documents), nor
// is a child's exit status passed through (lock run), nor a partial failure whose bad
// items were reported one by one.
func WriteErrorObject(w io.Writer, format string, err error, code int) error {
	var st *errs.ExitStatus
	var partial *errs.Partial
	if err == nil || errors.As(err, &st) || errors.As(err, &partial) {
		return nil
	}
	switch f := Format(strings.ToLower(strings.TrimSpace(format))); f {
	case JSON, JSONL, YAML:
		p := &Printer{Format: f, Out: w}
		return p.Print(NewErrorObject(err, code))
	}
	return nil
}

// CountingWriter counts the bytes written through it (so main can tell whether a
// command printed anything on stdout).
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(b []byte) (int, error) {
	n, err := c.W.Write(b)
	c.N += int64(n)
	return n, err
}
