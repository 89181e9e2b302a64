//go:build linux

package supervisor

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoRef anchors the monotonic readings bootOffset compares CLOCK_BOOTTIME with.
var monoRef = time.Now()

// bootOffset is CLOCK_BOOTTIME minus Go's monotonic clock (CLOCK_MONOTONIC). Both
// tick at the same rate, but only CLOCK_BOOTTIME runs while the machine is suspended
// (laptop lid, VM suspend): a growth of the offset is time this machine was asleep,
// time the lease ran on the server while Go's timers stood still.
func bootOffset() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()) - time.Since(monoRef), true
}
