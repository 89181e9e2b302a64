//go:build race

package ring

// raceEnabled shrinks the key counts of the large statistical tests under -race, where
// every memory access is instrumented; tolerances are computed from the key count.
const raceEnabled = true
