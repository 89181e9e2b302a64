package kafka

import (
	"context"
	"time"

	"github.com/dsctl/dsctl/probes/endpoint"
)

// AuditUpdate is one refresh of a live audit: the report, or why there is none.
type AuditUpdate struct {
	At     time.Time
	Report *AuditReport
	Err    error
	// Skipped counts the ticks and manual refreshes dropped since the last update
	// because a run was still going.
	Skipped int
}

// MinRefreshInterval is the floor of the refresh interval: an audit reads every
// topic's configuration, so a pane must not hammer the cluster.
const MinRefreshInterval = time.Second

// Refresh runs the audit at once, then every interval (at least MinRefreshInterval),
// and whenever now receives (a manual refresh; may be nil; send on it without blocking
// the UI, e.g. in a select with default), sending each outcome. A
// tick or a manual refresh that comes while a run is going is skipped, never queued:
// runs do not overlap. A slow reader delays nothing but its own updates (the latest
// one waits). The channel is closed when ctx ends.
func (a *PreparedAudit) Refresh(ctx context.Context, d endpoint.Dialer, ep endpoint.Kafka, interval time.Duration, now <-chan struct{}) <-chan AuditUpdate {
	interval = max(interval, MinRefreshInterval)
	out := make(chan AuditUpdate, 1)
	done := make(chan AuditUpdate)
	running := false // only the loop below touches it
	start := func() {
		running = true
		go func() {
			at := time.Now()
			rep, err := a.Run(ctx, d, ep)
			select {
			case done <- AuditUpdate{At: at, Report: rep, Err: err}:
			case <-ctx.Done():
			}
		}()
	}
	go func() {
		defer close(out)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		skipped := 0
		trigger := func() {
			if running {
				skipped++
				return
			}
			start()
		}
		start()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				trigger()
			case <-now:
				trigger()
			case u := <-done:
				u.Skipped, skipped = skipped, 0
				if ctx.Err() != nil && u.Err != nil {
					return
				}
				select {
				case out <- u:
				case <-ctx.Done():
					return
				}
				running = false
			}
		}
	}()
	return out
}
