package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
)

// ExitCode is one row of dsctl's exit-code table: the only place codes are defined.
type ExitCode struct {
	Code    int
	Kind    errs.Kind
	Meaning string
}

// ExitCodes is the table printed in `dsctl --help` and the README.
var ExitCodes = []ExitCode{
	{0, -1, "ok"},
	{1, errs.KindRuntime, "runtime error"},
	{2, errs.KindUsage, "usage or bad input"},
	{3, errs.KindLockNotAcquired, "lock not acquired"},
	{4, errs.KindLockLost, "lock lost while held"},
	{5, errs.KindAuditFailed, "audit found problems at or above --fail-on"},
	{6, errs.KindUnreachable, "backend unreachable or timed out, or another kind of server answered at its address"},
	{130, errs.KindInterrupted, "interrupted (ctrl-C / SIGTERM)"},
}

// CodeFor maps an error to its exit code. `lock run` passes its child's own exit code
// through (errs.ExitStatus).
func CodeFor(err error) int {
	if err == nil {
		return 0
	}
	var st *errs.ExitStatus
	if errors.As(err, &st) {
		return st.Code
	}
	kind := errs.KindOf(err)
	if kind == errs.KindRuntime && errors.Is(err, context.Canceled) {
		kind = errs.KindInterrupted
	}
	for _, c := range ExitCodes {
		if c.Kind == kind {
			return c.Code
		}
	}
	return 1
}

// ExitCodesHelp renders the table for help text.
func ExitCodesHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, c := range ExitCodes {
		fmt.Fprintf(&b, "  %-4d %s\n", c.Code, c.Meaning)
	}
	b.WriteString("  `lock run` passes the child's own exit code through when it ran to completion.\n")
	return b.String()
}
