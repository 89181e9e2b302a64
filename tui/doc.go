// Package tui will hold the bubbletea models of `dsctl tui`. It composes probes and
// never imports commands.
package tui
