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
	ios := cmdutil.System()
	// Builds without -ldflags (go install) take what they can from the module's build info.
	build := versioncmd.FromBuild(cmdutil.BuildInfo{Version: version, Commit: commit, Date: date})
	f := cmdutil.New(ios, build)
	err := commands.Execute(ctx, f, commands.NewRoot(f), os.Args[1:])
	stop()
	commands.PrintError(ios.ErrOut, ios.ColorErr(), err)
	os.Exit(commands.CodeFor(err))
}
