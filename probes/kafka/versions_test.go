package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

// The versions each request goes out with, at the edges of every step.
func TestRequestVersion(t *testing.T) {
	cases := []struct {
		name  string
		steps []versionStep
		want  map[sarama.KafkaVersion]int16
	}{
		{"DescribeConfigs", describeConfigsVersions, map[sarama.KafkaVersion]int16{
			sarama.V0_11_0_0: 0, sarama.V1_1_0_0: 1, sarama.V2_0_0_0: 2, sarama.V2_5_0_0: 2, sarama.V2_6_0_0: 3, sarama.V2_8_0_0: 4, sarama.V3_9_0_0: 4}},
		{"ListGroups", listGroupsVersions, map[sarama.KafkaVersion]int16{
			sarama.V0_10_2_0: 0, sarama.V0_11_0_0: 1, sarama.V2_0_0_0: 2, sarama.V2_4_0_0: 3, sarama.V2_6_0_0: 4, sarama.V3_7_0_0: 4, sarama.V3_8_0_0: 5}},
		{"DescribeGroups", describeGroupsVersions, map[sarama.KafkaVersion]int16{
			sarama.V1_0_0_0: 0, sarama.V1_1_0_0: 1, sarama.V2_0_0_0: 2, sarama.V2_3_0_0: 3, sarama.V2_4_0_0: 5, sarama.V3_8_0_0: 5}},
		{"FindCoordinator", findCoordinatorVersions, map[sarama.KafkaVersion]int16{
			sarama.V0_10_2_0: 0, sarama.V0_11_0_0: 1, sarama.V1_1_0_0: 1, sarama.V2_0_0_0: 2, sarama.V3_8_0_0: 2}},
	}
	for _, c := range cases {
		for v, want := range c.want {
			if got := requestVersion(c.steps, v); got != want {
				t.Errorf("%s at Kafka %s: version %d, want %d", c.name, v, got, want)
			}
		}
	}
}
