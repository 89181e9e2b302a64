//go:build linux

package ring

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the calling thread's CPU time. Benchmarks lock their goroutine to a
// thread and report CPU time per op beside wall time: on a shared, busy machine wall
// time counts the time other processes ran, CPU time does not.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
