package sqllock

import (
	"context"
	"fmt"

	"github.com/dsctl/dsctl/probes/lock"
)

// Purge deletes a free throwaway lock's row (lock bench, lock verify), its fencing
// counter with it: rows are otherwise kept forever, one per name ever used. A row held
// by a live lease is left alone (by the database's clock), as is anything in a table
// that is not dsctl's. Do not purge a name whose tokens a storage checks: its next
// fence restarts from 1.
func (l *Locker) Purge(ctx context.Context, name string) error {
	if err := lock.ValidateName(name); err != nil {
		return err
	}
	if l.format != lock.FormatDsctl {
		return nil
	}
	d := l.dialect
	q := fmt.Sprintf("DELETE FROM %s WHERE name = %s AND (token IS NULL OR expires_at <= %s)", l.qtable, d.ph(1), d.now())
	_, err := l.exec(ctx, false, "purge", q, name)
	return err
}
