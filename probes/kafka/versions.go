package kafka

import "github.com/IBM/sarama"

// The version of each request dsctl sends itself, picked from the cluster's Kafka
// version the way sarama's admin picks them: the newest step the cluster is at least.

// versionStep is one step: from Kafka version since on, the request's version.
type versionStep struct {
	since   sarama.KafkaVersion
	version int16
}

var (
	describeConfigsVersions = []versionStep{{sarama.V2_8_0_0, 4}, {sarama.V2_6_0_0, 3}, {sarama.V2_0_0_0, 2}, {sarama.V1_1_0_0, 1}}
	listGroupsVersions      = []versionStep{{sarama.V3_8_0_0, 5}, {sarama.V2_6_0_0, 4}, {sarama.V2_4_0_0, 3}, {sarama.V2_0_0_0, 2}, {sarama.V0_11_0_0, 1}}
	describeGroupsVersions  = []versionStep{{sarama.V2_4_0_0, 5}, {sarama.V2_3_0_0, 3}, {sarama.V2_0_0_0, 2}, {sarama.V1_1_0_0, 1}}
	findCoordinatorVersions = []versionStep{{sarama.V2_0_0_0, 2}, {sarama.V0_11_0_0, 1}}
)

// requestVersion is the request version for a cluster at Kafka version v: the first
// of steps (newest first) that v is at least, else 0.
func requestVersion(steps []versionStep, v sarama.KafkaVersion) int16 {
	for _, s := range steps {
		if v.IsAtLeast(s.since) {
			return s.version
		}
	}
	return 0
}
