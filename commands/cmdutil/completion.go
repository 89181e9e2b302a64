package cmdutil

// Shell completion: fixed values for enum flags, -o from each command's own formats,
// context names from the config file, and dynamic names read from servers (topics,
// locks, znodes). A completion runs on every TAB, so a dynamic one waits at most
// MaxCompletionWait (or --timeout, if shorter), prints nothing but suggestions, and
// suggests nothing when anything goes wrong: the shell falls back to no completion
// rather than hanging or showing an error mid-line.

import (
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// MaxCompletionWait bounds every server call a completion makes.
const MaxCompletionWait = time.Second

// maxSuggestions caps what a dynamic completion prints (a cluster with 50,000 topics
// must not flood the shell).
const maxSuggestions = 1000

// CompletionWait is how long a dynamic completion may wait: --timeout, at most
// MaxCompletionWait.
func (f *Factory) CompletionWait() time.Duration {
	return min(f.Timeout(), MaxCompletionWait)
}

// CompletionDialer is a dialer bounded by CompletionWait that warns and traces nowhere:
// a completion's output is read by the shell.
func (f *Factory) CompletionDialer() endpoint.Dialer {
	return endpoint.Dialer{Timeout: f.CompletionWait()}
}

// Lookup reads the names a dynamic completion offers for the word typed so far. It may
// return more than match: the caller keeps those starting with toComplete.
type Lookup func(ctx context.Context, toComplete string) ([]string, error)

// Dynamic turns a lookup into a completion function: the lookup runs within
// CompletionWait (the function returns then even if the lookup ignores its context),
// its result is filtered by the typed prefix, and an error, a panic, a timeout or
// --sandbox (which would start servers on every TAB) gives no suggestion. directive is
// added to ShellCompDirectiveNoFileComp.
func (f *Factory) Dynamic(lookup Lookup, directive cobra.ShellCompDirective) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		directive |= cobra.ShellCompDirectiveNoFileComp
		if f.Global.Sandbox {
			return nil, directive
		}
		names := f.runLookup(cmd, lookup, toComplete)
		return filterPrefix(names, toComplete), directive
	}
}

func (f *Factory) runLookup(cmd *cobra.Command, lookup Lookup, toComplete string) []string {
	ctx, cancel := context.WithTimeout(Context(cmd), f.CompletionWait())
	defer cancel()
	done := make(chan []string, 1)
	go func() {
		defer func() {
			if recover() != nil {
				done <- nil
			}
		}()
		names, err := lookup(ctx, toComplete)
		if err != nil {
			names = nil
		}
		done <- names
	}()
	select {
	case names := <-done:
		return names
	case <-ctx.Done():
		return nil
	}
}

// Unique drops repeated values, keeping the first of each. Completion lookups read
// list flags through it: cobra's __complete parses the command line twice, so a
// --redis A given once reads as [A A] (which Redis would refuse as a quorum of one
// master listed twice).
func Unique(values []string) []string {
	var out []string
	for _, v := range values {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// filterPrefix keeps the suggestions that start with prefix (descriptions after a tab
// are not matched), sorted, without duplicates, at most maxSuggestions.
func filterPrefix(values []string, prefix string) []cobra.Completion {
	out := keepPrefix(values, prefix)
	slices.SortFunc(out, func(a, b string) int {
		an, _, _ := strings.Cut(a, "\t")
		bn, _, _ := strings.Cut(b, "\t")
		return strings.Compare(an, bn)
	})
	return out
}

// keepPrefix is filterPrefix in the given order.
func keepPrefix(values []string, prefix string) []cobra.Completion {
	out := make([]cobra.Completion, 0, len(values))
	seen := map[string]bool{}
	for _, v := range values {
		name, _, _ := strings.Cut(v, "\t")
		if name == "" || seen[name] || !strings.HasPrefix(name, prefix) {
			continue
		}
		seen[name] = true
		out = append(out, v)
	}
	if len(out) > maxSuggestions {
		out = out[:maxSuggestions]
	}
	return out
}

// Fixed completes a flag or argument from a fixed set of values, in the order given
// (severities lowest first, not alphabetically), each optionally followed by a tab and
// a description (shown by zsh and fish).
func Fixed(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return keepPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// ShortDesc cuts a description to its first clause, at most 60 characters, for a
// completion menu.
func ShortDesc(s string) string {
	if i := strings.Index(s, ": "); i > 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return s
}

// CommaList completes a comma-separated list of values (--algo ring,jump): the items
// already typed are kept and the last one is completed, without a trailing space so
// another ",item" can follow.
func CommaList(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		head, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			head, last = toComplete[:i+1], toComplete[i+1:]
		}
		done := map[string]bool{}
		for _, v := range strings.Split(head, ",") {
			done[strings.TrimSpace(v)] = true
		}
		var out []string
		for _, v := range values {
			name, _, _ := strings.Cut(v, "\t")
			if done[name] {
				continue
			}
			if head != "" {
				// No descriptions after a comma: cobra's bash script compares the
				// %q-escaped word ("ring\,jump") with the typed one when there are
				// descriptions, and nothing would match.
				v = name
			}
			out = append(out, head+v)
		}
		return keepPrefix(out, head+last), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveKeepOrder
	}
}

// FirstArg applies fn to a command's first positional argument only; later ones get
// no suggestion.
func FirstArg(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fn(cmd, args, toComplete)
	}
}

// RegisterFlag registers a flag's completion; a missing or doubly registered flag is a
// programming error and panics (the completion tests build the whole tree).
func RegisterFlag(cmd *cobra.Command, name string, fn cobra.CompletionFunc) {
	if err := cmd.RegisterFlagCompletionFunc(name, fn); err != nil {
		panic(cmd.CommandPath() + ": " + err.Error())
	}
}

// formatsAnnotation holds the -o formats a command supports, comma-separated.
const formatsAnnotation = "dsctl_output_formats"

// SetOutputFormats records the -o formats a command prints, for completion. A
// command without the record offers output.Standard; an empty list means it prints
// no data (-o has no effect) and nothing is offered.
func SetOutputFormats(cmd *cobra.Command, formats []output.Format) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	cmd.Annotations[formatsAnnotation] = strings.Join(names, ",")
}

// PrintsNoData is the annotation of a command that prints no data (-o has no effect),
// for a command built as a struct literal.
func PrintsNoData() map[string]string { return map[string]string{formatsAnnotation: ""} }

// OutputFormats are the -o values a command supports (see SetOutputFormats). A
// command that only groups others prints nothing itself.
func OutputFormats(cmd *cobra.Command) []string {
	if v, ok := cmd.Annotations[formatsAnnotation]; ok {
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	if cmd.HasAvailableSubCommands() || !cmd.Runnable() || cmd.Name() == "help" {
		return nil
	}
	names := make([]string, len(output.Standard))
	for i, f := range output.Standard {
		names[i] = string(f)
	}
	return names
}

var formatHelp = map[string]string{
	string(output.Table): "aligned columns for people",
	string(output.JSON):  "one JSON document, snake_case keys",
	string(output.YAML):  "the JSON document as YAML",
	string(output.JSONL): "one JSON object per line, as they come",
	string(output.CSV):   "comma-separated rows with a header",
	string(output.Env):   "shell assignments for eval",
}

func completeOutput(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var values []string
	for _, name := range OutputFormats(cmd) {
		values = append(values, cobra.CompletionWithDesc(name, formatHelp[name]))
	}
	return keepPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// CompleteContexts completes a context name from the config file in use (--config,
// $DSCTL_CONFIG or the default path); the current context is described as such.
func (f *Factory) CompleteContexts() cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := f.Config()
		if err != nil || cfg == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var values []string
		for _, name := range cfg.Names() {
			values = append(values, cobra.CompletionWithDesc(name, contextSummary(cfg, name)))
		}
		return filterPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// contextSummary says which backends a context sets, and whether it is current.
func contextSummary(cfg *config.File, name string) string {
	c := cfg.Contexts[name]
	var parts []string
	if name == cfg.CurrentContext {
		parts = append(parts, "current")
	}
	if c != nil {
		if c.Redis != nil && len(c.Redis.Addrs) > 0 {
			parts = append(parts, "redis")
		}
		if c.ZooKeeper != nil && len(c.ZooKeeper.Servers) > 0 {
			parts = append(parts, "zookeeper")
		}
		if c.Kafka != nil && len(c.Kafka.Brokers) > 0 {
			parts = append(parts, "kafka")
		}
		if c.SQL != nil && !c.SQL.DSN.IsZero() {
			parts = append(parts, "sql")
		}
	}
	return strings.Join(parts, ", ")
}

// EnvNames completes the name of an environment variable set in this shell (for
// flags that name the variable holding a secret; its value is never printed).
func EnvNames(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []string
	for _, kv := range os.Environ() {
		if name, _, ok := strings.Cut(kv, "="); ok && name != "" {
			names = append(names, name)
		}
	}
	return filterPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// CompleteTopics completes a Kafka topic name from the cluster's metadata (one
// Metadata request) at the brokers the command would use: *brokers (its --brokers
// flag), DSCTL_KAFKA or the context. Internal topics (__consumer_offsets) are offered
// only once the word starts with "_".
func (f *Factory) CompleteTopics(brokers *[]string) cobra.CompletionFunc {
	return f.Dynamic(func(ctx context.Context, toComplete string) ([]string, error) {
		var ov config.Overrides
		if brokers != nil {
			ov.Kafka = Unique(*brokers)
		}
		e, err := f.Endpoints(ctx, ov)
		if err != nil {
			return nil, err
		}
		snap, err := kprobe.Collect(ctx, f.CompletionDialer(), e.Kafka, kprobe.CollectOptions{
			ExcludeInternal:  !strings.HasPrefix(toComplete, "_"),
			SkipTopicConfigs: true, BrokerConfigs: []string{},
		})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(snap.Topics))
		for _, t := range snap.Topics {
			names = append(names, t.Name)
		}
		return names, nil
	}, 0)
}

// InstallCompletions finishes the tree's completion once every command is built:
// --context, -o and --config on the root; and, where a command registered nothing,
// no file names for flags that take numbers, durations or words rather than files,
// and for the arguments of commands that take none.
func InstallCompletions(root *cobra.Command, f *Factory) {
	RegisterFlag(root, "context", f.CompleteContexts())
	RegisterFlag(root, "output", completeOutput)
	RegisterFlag(root, "config", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	for _, c := range root.Commands() {
		if c.Name() == "completion" { // cobra's: prints a script, not data
			SetOutputFormats(c, nil)
			for _, sh := range c.Commands() {
				SetOutputFormats(sh, nil)
			}
		}
	}
	noFiles(root)
}

// wordFlags are string flags that take words or addresses, never files.
var wordFlags = map[string]bool{
	"redis": true, "zk": true, "brokers": true, "admin": true, "token": true, "if-token": true,
	"owner": true, "reason": true, "prefix": true, "name": true, "key": true, "node": true,
	"add": true, "remove": true, "chroot": true, "digest-user": true, "redis-username": true,
	"kafka-username": true, "kafka-version": true, "vnodes": true, "epoch": true, "wait": true,
	"field": true, "timeout": true, "pattern": true,
}

var noArgsPtr = reflect.ValueOf(cobra.NoArgs).Pointer()

func noFiles(cmd *cobra.Command) {
	visit := func(fl *pflag.Flag) {
		if _, ok := cmd.GetFlagCompletionFunc(fl.Name); ok {
			return
		}
		switch fl.Value.Type() {
		case "string", "stringSlice", "stringArray":
			if !wordFlags[fl.Name] {
				return // a file, or free text where file names do no harm
			}
		}
		_ = cmd.RegisterFlagCompletionFunc(fl.Name, cobra.NoFileCompletions)
	}
	cmd.LocalNonPersistentFlags().VisitAll(visit)
	cmd.PersistentFlags().VisitAll(visit)
	if !cmd.HasSubCommands() && cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 &&
		cmd.Args != nil && reflect.ValueOf(cmd.Args).Pointer() == noArgsPtr {
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	for _, c := range cmd.Commands() {
		noFiles(c)
	}
}
