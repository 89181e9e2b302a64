package sqllock

// ForceUTCSession makes l run its ShedLock statements after SET time_zone = '+00:00',
// as it does for a MySQL session time zone with daylight saving time (the shared test
// server has no time zone tables, so no named zone can be set there).
func ForceUTCSession(l *Locker) {
	l.mu.Lock()
	l.shedChecked = true
	l.mu.Unlock()
	l.utcSession.Store(true)
}
