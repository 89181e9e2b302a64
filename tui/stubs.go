package tui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/dsctl/dsctl/probes/health"
)

type overviewPane struct{ configured map[string]bool }
type overviewCounts struct{}

func newOverviewPane(c map[string]bool) *overviewPane                   { return &overviewPane{c} }
func (p *overviewPane) setHealth([]health.Result, time.Time)            {}
func (m *Model) overviewCounts() overviewCounts                         { return overviewCounts{} }
func (p *overviewPane) view(overviewCounts, int, int, time.Time) string { return "" }

type locksPane struct {
	err        string
	confirming bool
}
type lockInspectMsg struct{}
type lockBrokeMsg struct{}

func newLocksPane(bool, bool) *locksPane             { return &locksPane{} }
func (p *locksPane) setRows([]LockRow, time.Time)    {}
func (p *locksPane) setFilter(string)                {}
func (p *locksPane) action(Action, *Model) tea.Cmd   { return nil }
func (p *locksPane) key(tea.KeyMsg, *Model) tea.Cmd  { return nil }
func (p *locksPane) back() bool                      { return false }
func (p *locksPane) message(tea.Msg, *Model) tea.Cmd { return nil }
func (p *locksPane) view(int, int, time.Time) string { return "" }
