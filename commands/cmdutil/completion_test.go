package cmdutil

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// names is the suggestions as strings (cobra.Completion is a string).
func names(comps []cobra.Completion) []string { return comps }

func TestFixedKeepsOrderAndFiltersByPrefix(t *testing.T) {
	fn := Fixed("info", "warn", "error", "critical", "none\tnever fail")
	got, d := fn(nil, nil, "")
	if !slices.Equal(names(got), []string{"info", "warn", "error", "critical", "none\tnever fail"}) {
		t.Errorf("Fixed(\"\") = %q", got)
	}
	if d&cobra.ShellCompDirectiveNoFileComp == 0 || d&cobra.ShellCompDirectiveKeepOrder == 0 {
		t.Errorf("directive %d: want no files, kept order", d)
	}
	if got, _ := fn(nil, nil, "n"); !slices.Equal(names(got), []string{"none\tnever fail"}) {
		t.Errorf("Fixed(\"n\") = %q (descriptions are not matched)", got)
	}
	if got, _ := fn(nil, nil, "never"); len(got) != 0 {
		t.Errorf("a description matched: %q", got)
	}
}

func TestCommaListCompletesTheLastItem(t *testing.T) {
	fn := CommaList("latency", "blackhole", "reset", "pause")
	cases := map[string][]string{
		"":                               {"latency", "blackhole", "reset", "pause"},
		"b":                              {"blackhole"},
		"latency,":                       {"latency,blackhole", "latency,reset", "latency,pause"},
		"latency,reset,p":                {"latency,reset,pause"},
		"latency,reset,x":                nil,
		"latency,blackhole,reset,pause,": nil,
	}
	for in, want := range cases {
		got, d := fn(nil, nil, in)
		if !slices.Equal(names(got), want) {
			t.Errorf("CommaList(%q) = %q, want %q", in, got, want)
		}
		if d&cobra.ShellCompDirectiveNoSpace == 0 {
			t.Errorf("CommaList(%q): a space would end the list", in)
		}
	}
}

// After a comma, suggestions carry no description: cobra's bash script would compare
// the %q-escaped "ring\,jump" with the typed "ring,ju" and drop every one.
func TestCommaListDescribesOnlyTheFirstItem(t *testing.T) {
	fn := CommaList("ring\tconsistent hash", "jump\tjump hash")
	if got, _ := fn(nil, nil, "r"); !slices.Equal(got, []string{"ring\tconsistent hash"}) {
		t.Errorf("first item: %q", got)
	}
	if got, _ := fn(nil, nil, "ring,"); !slices.Equal(got, []string{"ring,jump"}) {
		t.Errorf("after a comma: %q", got)
	}
}

func TestUnique(t *testing.T) {
	if got := Unique([]string{"a", "b", "a", "c", "b"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Unique = %q", got)
	}
}

func TestShortDesc(t *testing.T) {
	if got := ShortDesc("github.com/bwmarrin/snowflake defaults: Twitter epoch"); got != "github.com/bwmarrin/snowflake defaults" {
		t.Errorf("ShortDesc = %q", got)
	}
	long := "a description without any colon that goes on and on well past sixty characters"
	if got := []rune(ShortDesc(long)); len(got) != 60 || got[59] != '…' {
		t.Errorf("ShortDesc(long) = %q", string(got))
	}
}

func newTestFactory(timeout time.Duration) *Factory {
	f := New(&IOStreams{}, BuildInfo{})
	f.Global.Timeout = timeout
	return f
}

func TestDynamicFiltersSortsAndCaps(t *testing.T) {
	f := newTestFactory(5 * time.Second)
	var seen string
	fn := f.Dynamic(func(_ context.Context, toComplete string) ([]string, error) {
		seen = toComplete
		return []string{"orders-b", "payments", "orders-a", "orders-a"}, nil
	}, cobra.ShellCompDirectiveNoSpace)
	got, d := fn(&cobra.Command{}, nil, "orders")
	if seen != "orders" || !slices.Equal(names(got), []string{"orders-a", "orders-b"}) {
		t.Errorf("got %q (lookup saw %q)", got, seen)
	}
	if d != cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace {
		t.Errorf("directive %d", d)
	}
	many := make([]string, 3*maxSuggestions)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + time.Duration(i).String()
	}
	big := f.Dynamic(func(context.Context, string) ([]string, error) { return many, nil }, 0)
	if got, _ := big(&cobra.Command{}, nil, ""); len(got) != maxSuggestions {
		t.Errorf("%d suggestions, want the cap %d", len(got), maxSuggestions)
	}
}

func TestDynamicGivesNothingOnFailure(t *testing.T) {
	f := newTestFactory(5 * time.Second)
	failing := map[string]Lookup{
		"error": func(context.Context, string) ([]string, error) { return []string{"partial"}, errors.New("boom") },
		"panic": func(context.Context, string) ([]string, error) { panic("bug") },
	}
	for what, lookup := range failing {
		got, d := f.Dynamic(lookup, 0)(&cobra.Command{}, nil, "")
		if len(got) != 0 || d != cobra.ShellCompDirectiveNoFileComp {
			t.Errorf("%s: got %q, directive %d", what, got, d)
		}
	}
}

// A lookup that ignores its context (a client library that blocks) still cannot hold
// the shell: Dynamic returns when the wait is over.
func TestDynamicReturnsWhenTheWaitIsOverEvenIfTheLookupBlocks(t *testing.T) {
	f := newTestFactory(100 * time.Millisecond) // --timeout below the cap is kept
	if f.CompletionWait() != 100*time.Millisecond {
		t.Fatalf("CompletionWait = %s", f.CompletionWait())
	}
	release := make(chan struct{})
	defer close(release)
	got, _ := f.Dynamic(func(context.Context, string) ([]string, error) {
		<-release
		return []string{"late"}, nil
	}, 0)(&cobra.Command{}, nil, "")
	if len(got) != 0 {
		t.Errorf("got %q from a lookup that never finished", got)
	}
	if w := newTestFactory(time.Minute).CompletionWait(); w != MaxCompletionWait {
		t.Errorf("--timeout 1m: CompletionWait = %s, want the cap %s", w, MaxCompletionWait)
	}
}

func TestDynamicSkipsTheSandbox(t *testing.T) {
	f := newTestFactory(5 * time.Second)
	f.Global.Sandbox = true
	called := false
	got, _ := f.Dynamic(func(context.Context, string) ([]string, error) {
		called = true
		return []string{"x"}, nil
	}, 0)(&cobra.Command{}, nil, "")
	if called || len(got) != 0 {
		t.Errorf("--sandbox would start servers on every TAB: called %v, got %q", called, got)
	}
}

func TestOutputFormats(t *testing.T) {
	leaf := &cobra.Command{Use: "leaf", Run: func(*cobra.Command, []string) {}}
	if got := OutputFormats(leaf); !slices.Equal(got, []string{"table", "json", "yaml"}) {
		t.Errorf("default = %q", got)
	}
	SetOutputFormats(leaf, nil)
	if got := OutputFormats(leaf); len(got) != 0 {
		t.Errorf("prints no data: %q", got)
	}
	group := &cobra.Command{Use: "group"}
	group.AddCommand(&cobra.Command{Use: "x", Run: func(*cobra.Command, []string) {}})
	if got := OutputFormats(group); len(got) != 0 {
		t.Errorf("a group prints nothing itself: %q", got)
	}
}
