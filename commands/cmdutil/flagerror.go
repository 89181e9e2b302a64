package cmdutil

import (
	"errors"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dsctl/dsctl/probes/errs"
)

// flagValueWants says what a value of each built-in flag type looks like.
var flagValueWants = map[string]string{
	"int": "a whole number", "int8": "a whole number", "int16": "a whole number", "int32": "a whole number", "int64": "a whole number",
	"uint": "a whole number, 0 or more", "uint8": "a whole number, 0 or more", "uint16": "a whole number, 0 or more",
	"uint32": "a whole number, 0 or more", "uint64": "a whole number, 0 or more", "count": "a whole number",
	"float32": "a number", "float64": "a number",
	"bool":     "true or false",
	"duration": "a duration such as 500ms, 30s, 5m or 1h30m",
	"intSlice": "whole numbers separated by commas", "int32Slice": "whole numbers separated by commas",
	"int64Slice": "whole numbers separated by commas", "uintSlice": "whole numbers separated by commas",
	"durationSlice": "durations separated by commas, such as 1s,5s",
}

// FlagError is the usage error for a flag the parser refused: a value of the wrong
// kind is named with what the flag takes, in dsctl's words rather than the Go
// library's ("strconv.ParseInt: parsing ...").
func FlagError(cmd *cobra.Command, err error) error {
	hint := "see '" + cmd.CommandPath() + " --help'"
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		if want, ok := flagValueWants[iv.GetFlag().Value.Type()]; ok {
			what := "is not " + want
			if errors.Is(err, strconv.ErrRange) {
				what = "is out of range"
			}
			return errs.Usage("--%s %q %s", iv.GetFlag().Name, iv.GetValue(), what).WithHint("%s", hint)
		}
	}
	return errs.Usage("%v", err).WithHint("%s", hint)
}
