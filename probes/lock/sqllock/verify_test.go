package sqllock_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/lock/locktest"
	"github.com/dsctl/dsctl/probes/lock/sqllock"
	"github.com/dsctl/dsctl/probes/lock/verify"
)

// `lock verify` (workers behind fault proxies: latency, blackhole, reset, pause past
// the TTL) finds no violation on either database in either mode, and leaves no lock
// held. In session mode a reset connection ends the session and frees its session lock
// on the server at once: dsctl reports such a lease lost at its next renewal, before
// its local deadline, while dsctl waiters still wait for the row's lease, so nobody
// else holds it before that deadline. The backend says so (EndsWithConnection) and
// verify counts such early losses as expected, not as lease_deadline violations.
func TestVerifyWithFaults(t *testing.T) {
	forEachDB(t, func(t *testing.T, dsn string) {
		for _, run := range []struct {
			name   string
			mode   sqllock.Mode
			faults []string
		}{
			{"lease", sqllock.ModeLease, verify.AllFaults},
			{"session", sqllock.ModeSession, verify.AllFaults},
			{"session-resets", sqllock.ModeSession, []string{verify.FaultReset}},
		} {
			mode := run.mode
			t.Run(run.name, func(t *testing.T) {
				newLocker(t, dsn, sqllock.Options{}) // the table
				name := locktest.Name(t, "verify")
				out, err := verify.Run(context.Background(), verify.Options{
					Workers: 5, Duration: 4 * time.Second, TTL: 400 * time.Millisecond, Faults: run.faults,
					Name: name, Targets: []string{dsnAddr(t, dsn)}, Tool: "dsctl test",
					NewLocker: func(_ int, addrs []string) (lock.Locker, error) {
						return sqllock.New(context.Background(), endpoint.Dialer{Timeout: time.Second},
							endpoint.SQL{}.WithDSNValue(dsnWith(t, dsn, addrs[0], "", "")), sqllock.Options{Mode: mode, Table: table("locks")})
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				rep := out.Report
				for _, p := range rep.Properties {
					t.Logf("%s: %s (%d violations, %d checked) %s", p.Name, p.Verdict, p.Violations, p.Checked, p.Detail)
				}
				t.Logf("faults %v; the wall clock moved %s against the monotonic clock", out.Faults, out.ClockStep)
				for _, p := range rep.Properties {
					if p.Violations > 0 || p.Verdict == verify.VerdictViolated {
						if clockBlamed(p.Name, out.ClockStep, 400*time.Millisecond) {
							// The database judges expiry by the wall clock: a step beyond the
							// drift allowance ends leases early whatever the lock does.
							t.Logf("%s violated with the wall clock stepped %s (more than the %s drift allowance): not the lock's doing: %s",
								p.Name, out.ClockStep, lock.ClockDrift(400*time.Millisecond), p.Detail)
							continue
						}
						t.Errorf("%s violated (wall clock moved %s): %s", p.Name, out.ClockStep, p.Detail)
					}
				}
				l := newLocker(t, dsn, sqllock.Options{})
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					info, err := l.Inspect(context.Background(), name)
					if err != nil {
						t.Fatal(err)
					}
					if !info.Held {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("left behind: %s", info.Holder)
					}
				}
			})
		}
	})
}

// clockBlamed reports whether a violated property is one that a wall-clock step
// larger than the drift allowance produces by itself (a lease ending on the server
// before its holder's local deadline), and the run saw such a step.
func clockBlamed(prop string, step, ttl time.Duration) bool {
	return (prop == verify.PropRunStopsInTime || prop == verify.PropLeaseDeadline) && step > lock.ClockDrift(ttl)
}
