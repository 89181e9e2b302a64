package id

import (
	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/sortid"
)

// layoutCompletion completes --layout (and `id layout NAME`): the presets with their
// notes, plus auto and ulid/ksuid where the command takes them. A custom spec
// (time:41:1ms,...) is typed, not completed.
func layoutCompletion(auto, sortIDs bool) cobra.CompletionFunc {
	var values []string
	if auto {
		values = append(values, cobra.CompletionWithDesc(autoLayout, "rank every preset"))
	}
	for _, l := range snowflake.Presets() {
		values = append(values, cobra.CompletionWithDesc(l.Name(), cmdutil.ShortDesc(l.Note())))
	}
	if sortIDs {
		values = append(values, cobra.CompletionWithDesc(sortid.KindULID, "ULID: 48-bit ms time + 80 random bits"),
			cobra.CompletionWithDesc(sortid.KindKSUID, "KSUID: 32-bit s time + 128 random bits"))
	}
	return cmdutil.Fixed(values...)
}
