// Command dsctl is the entry point: it builds the root command, runs it, and maps the
// outcome to an exit code. Nothing else lives here.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dsctl/dsctl/commands"
	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	versioncmd "github.com/dsctl/dsctl/commands/version"
)

// Set with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Builds without -ldflags (go install) take what they can from the module's build info.
	build := versioncmd.FromBuild(cmdutil.BuildInfo{Version: version, Commit: commit, Date: date})
	code := run(ctx, cmdutil.System(), build, os.Args[1:], stop)
	os.Exit(code)
}

// run executes one command line and returns the exit code. A failure is one line on
// stderr; with -o json, jsonl or yaml it is also an error object on stdout when the
// command printed nothing there (output.ErrorObject).
func run(ctx context.Context, ios *cmdutil.IOStreams, build cmdutil.BuildInfo, args []string, stop func()) int {
	stdout := &output.CountingWriter{W: ios.Out}
	ios.Out = stdout
	f := cmdutil.New(ios, build)
	err := commands.Execute(ctx, f, commands.NewRoot(f), args)
	stop()
	code := commands.CodeFor(err)
	commands.PrintError(ios.ErrOut, ios.ColorErr(), err)
	if err != nil && stdout.N == 0 {
		_ = output.WriteErrorObject(stdout, f.Global.Output, err, code)
	}
	return code
}
