package kafka

import (
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/errs"
)

// The same rules as Kafka's org.apache.kafka.common.internals.Topic.validate.
func TestValidateTopicName(t *testing.T) {
	valid := []string{"orders", "a", "__consumer_offsets", "a.b-c_D9", "...", strings.Repeat("x", 249)}
	for _, name := range valid {
		if err := ValidateTopicName(name); err != nil {
			t.Errorf("%q: %v, want valid", name, err)
		}
	}
	invalid := map[string]string{
		"":                       "empty",
		".":                      `"." alone`,
		"..":                     `".." alone`,
		"bad name":               "character ' '",
		"ü🔒":                     "character 'ü'",
		"a/b":                    "character '/'",
		strings.Repeat("x", 250): "250 characters",
	}
	for name, want := range invalid {
		err := ValidateTopicName(name)
		if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want a usage error saying %q", name, err, want)
		}
	}
}

func FuzzValidateTopicName(f *testing.F) {
	for _, s := range []string{"orders", "", ".", "bad name", "ü🔒"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateTopicName(name)
		ok := name != "" && name != "." && name != ".." && len(name) <= 249 &&
			strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
		if (err == nil) != ok {
			t.Fatalf("%q: %v, want valid=%v", name, err, ok)
		}
	})
}

// A --topic pattern that is a plain literal must be a topic name; regexes are not judged.
func TestTopicPatternLiteralMustBeAValidName(t *testing.T) {
	for _, e := range []string{"bad name", "", "ü", `a\ b`} {
		if _, err := CompileTopicPatterns([]string{e}); errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), "can never match") {
			t.Errorf("--topic %q: %v, want a usage error", e, err)
		}
	}
	for _, e := range []string{"orders", "orders.*", "a|b c", "(?i)ORDERS", "bad.name"} {
		if _, err := CompileTopicPatterns([]string{e}); err != nil {
			t.Errorf("--topic %q: %v, want accepted", e, err)
		}
	}
}

// A topic-level error in the Metadata response is an error, never an empty description.
func TestTopicMetadataErrorIsAnError(t *testing.T) {
	ep := endpoint.Kafka{Brokers: []string{"127.0.0.1:19092"}}
	if err := topicMetadataError(Topic{Name: "ok"}, ep); err != nil {
		t.Fatalf("no error: %v", err)
	}
	err := topicMetadataError(Topic{Name: "x y", Error: sarama.ErrInvalidTopic.Error(), ErrorCode: sarama.ErrInvalidTopic}, ep)
	if errs.KindOf(err) != errs.KindUsage || !strings.Contains(err.Error(), `rejected topic name "x y"`) {
		t.Fatalf("invalid topic: %v, want a usage error", err)
	}
	err = topicMetadataError(Topic{Name: "t", Error: sarama.ErrLeaderNotAvailable.Error(), ErrorCode: sarama.ErrLeaderNotAvailable}, ep)
	if err == nil || errs.KindOf(err) != errs.KindRuntime || !strings.Contains(err.Error(), "127.0.0.1:19092") {
		t.Fatalf("leader not available: %v, want a runtime error naming the brokers", err)
	}
}
