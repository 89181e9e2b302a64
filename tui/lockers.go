package tui

import (
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/redislock"
)

// OpenLockers opens one lock.Locker per configured lock backend. This is the one place
// that knows the backends: today Redis (one address: single server; several: a
// quorum); when probes/lock/backends.Open lands, it replaces the body.
func OpenLockers(d endpoint.Dialer, e config.Endpoints, configured []string) ([]lock.Locker, error) {
	var out []lock.Locker
	for _, b := range configured {
		if b != "redis" {
			continue
		}
		l, err := redislock.New(d, e.Redis)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
