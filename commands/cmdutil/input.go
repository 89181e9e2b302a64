package cmdutil

import (
	"io"
	"os"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// StdinName is how an input read from "-" is named in messages ("stdin:3: ...").
const StdinName = "stdin"

// Inputs reads the files a command was given, where "-" means standard input. Standard
// input can be read once: a second "-" is a usage error naming both places.
type Inputs struct {
	IO        *IOStreams
	stdinUsed string // the flag that took stdin
}

// Read returns the contents of path ("-": standard input) and the name to use for it in
// messages. what names the flag or argument, for errors ("--policy").
func (in *Inputs) Read(what, path string) (data []byte, name string, err error) {
	if path != "-" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, path, errs.Usage("%s %s: cannot read: %v", what, path, describeReadErr(err)).
				WithHint("give a readable file, or - for standard input")
		}
		return b, path, nil
	}
	if in.stdinUsed != "" {
		return nil, StdinName, errs.Usage("%s -: standard input is already read by %s", what, in.stdinUsed).
			WithHint("only one input can be -; give the others as files")
	}
	in.stdinUsed = what
	b, err := io.ReadAll(in.IO.In)
	if err != nil {
		return nil, StdinName, errs.New(errs.KindRuntime, "%s -: reading standard input: %v", what, err).Wrap(err)
	}
	return b, StdinName, nil
}

func describeReadErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return strings.TrimSpace(pe.Err.Error())
	}
	return err.Error()
}
