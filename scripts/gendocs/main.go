// Command gendocs writes dsctl's man pages, markdown reference and shell completions
// from the cobra command tree. The release runs it (see .goreleaser.yaml):
//
//	go run ./scripts/gendocs -out build
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/dsctl/dsctl/commands"
	"github.com/dsctl/dsctl/commands/cmdutil"
)

func main() {
	out := flag.String("out", "build", "output folder: man/, markdown/ and completions/ are created in it")
	flag.Parse()
	if err := generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func generate(out string) error {
	ios, _, _, _ := cmdutil.Test()
	f := cmdutil.New(ios, cmdutil.BuildInfo{Version: "release"})
	root := commands.NewRoot(f)
	root.DisableAutoGenTag = true // reproducible output

	man := filepath.Join(out, "man")
	md := filepath.Join(out, "markdown")
	comp := filepath.Join(out, "completions")
	for _, d := range []string{man, md, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := doc.GenManTree(root, &doc.GenManHeader{Title: "DSCTL", Section: "1", Source: "dsctl"}, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	if err := doc.GenMarkdownTree(root, md); err != nil {
		return fmt.Errorf("markdown: %w", err)
	}
	return completions(root, comp)
}

func completions(root *cobra.Command, dir string) error {
	gens := map[string]func(string) error{
		"dsctl.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"_dsctl":     root.GenZshCompletionFile,
		"dsctl.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
		"dsctl.ps1":  root.GenPowerShellCompletionFile,
	}
	for name, gen := range gens {
		if err := gen(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}
