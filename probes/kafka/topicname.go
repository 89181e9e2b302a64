package kafka

import (
	"fmt"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/dsctl/dsctl/probes/errs"
)

// MaxTopicNameLength is Kafka's limit on a topic name (org.apache.kafka.common.internals.Topic).
const MaxTopicNameLength = 249

// ValidateTopicName checks a topic name the way Kafka's Topic.validate does: not empty,
// not "." or "..", at most 249 characters, and only ASCII letters, digits, '.', '_'
// and '-'. The error is a usage error (exit 2) that names the input.
func ValidateTopicName(name string) error {
	if reason := topicNameProblem(name); reason != "" {
		return errs.Usage("kafka: invalid topic name %q: %s", name, reason).
			WithHint("topic names are 1-%d characters of a-z, A-Z, 0-9, '.', '_' and '-'", MaxTopicNameLength)
	}
	return nil
}

func topicNameProblem(name string) string {
	switch {
	case name == "":
		return "the name is empty"
	case name == "." || name == "..":
		return fmt.Sprintf("%q alone is not allowed", name)
	case utf8.RuneCountInString(name) > MaxTopicNameLength:
		return fmt.Sprintf("%d characters, longer than the maximum of %d", utf8.RuneCountInString(name), MaxTopicNameLength)
	}
	for _, r := range name {
		if !validTopicRune(r) {
			return fmt.Sprintf("character %q is not allowed", r)
		}
	}
	return ""
}

func validTopicRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// literalPattern returns the one string a --topic pattern can match, when the pattern
// is a plain literal (no metacharacters that widen it), so that it can be checked as
// a topic name.
func literalPattern(expr string) (string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	switch {
	case re.Op == syntax.OpEmptyMatch:
		return "", true
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		return string(re.Rune), true
	}
	return "", false
}
