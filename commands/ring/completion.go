package ring

import (
	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	hashring "github.com/dsctl/dsctl/probes/ring"
)

// algoDesc describes each --algo value for shells that show descriptions.
var algoDesc = map[hashring.Algo]string{
	hashring.AlgoModulo:     "hash mod N",
	hashring.AlgoRing:       "consistent-hash ring with virtual nodes",
	hashring.AlgoJump:       "jump consistent hash",
	hashring.AlgoRendezvous: "highest random weight",
	hashring.AlgoMaglev:     "Maglev lookup table",
	hashring.AlgoBounded:    "ring with bounded loads",
	hashring.AlgoGroupcache: "golang/groupcache consistenthash",
	hashring.AlgoStathat:    "stathat/consistent",
	hashring.AlgoKetama:     "libketama",
}

func algoValues(algos []hashring.Algo) []string {
	out := make([]string, 0, len(algos))
	for _, a := range algos {
		out = append(out, cobra.CompletionWithDesc(string(a), algoDesc[a]))
	}
	return out
}

// registerCompletions completes the flags simulate and locate share with sweep.
func registerCompletions(cmd *cobra.Command, sweep bool) {
	cmdutil.RegisterFlag(cmd, "hash", cmdutil.Fixed(hashring.HashNames()...))
	if sweep {
		cmdutil.RegisterFlag(cmd, "algo", cmdutil.Fixed(algoValues([]hashring.Algo{hashring.AlgoRing, hashring.AlgoBounded})...))
		cmdutil.RegisterFlag(cmd, "compat", cmdutil.Fixed(algoValues([]hashring.Algo{hashring.AlgoGroupcache, hashring.AlgoStathat})...))
		cmdutil.RegisterFlag(cmd, "plot", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return []cobra.Completion{"svg", "png"}, cobra.ShellCompDirectiveFilterFileExt
		})
	} else {
		algos := append(algoValues(hashring.AllAlgos()), cobra.CompletionWithDesc("all", "the six native algorithms"))
		cmdutil.RegisterFlag(cmd, "algo", cmdutil.CommaList(append(algos, algoValues(hashring.CompatModes())...)...))
		cmdutil.RegisterFlag(cmd, "compat", cmdutil.Fixed(algoValues(hashring.CompatModes())...))
	}
	if cmd.Flags().Lookup("dist") != nil {
		cmdutil.RegisterFlag(cmd, "dist", cmdutil.Fixed("uniform\teach key once", "zipf:1.1\thot keys repeat (zipf:S, S > 1)"))
	}
}
