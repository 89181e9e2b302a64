//go:build !linux

package supervisor

import "time"

// bootOffset is not available here: a suspend of the machine is then noticed by the
// next renewal (which finds the lease gone), not by the clock.
func bootOffset() (time.Duration, bool) { return 0, false }
