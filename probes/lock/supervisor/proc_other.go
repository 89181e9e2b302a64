//go:build !unix

package supervisor

import (
	"os"
	"os/exec"
)

// Without process groups or SIGTERM (Windows), a lost lease kills the child.
var termSignal os.Signal = os.Kill

func shellArgv(script string) []string { return []string{"cmd", "/C", script} }

func prepare(*exec.Cmd, bool) {}

func signalChild(p *os.Process, sig os.Signal, _ bool) error {
	if sig == os.Interrupt {
		return nil // cannot be sent to another process here; the console delivers ctrl-C itself
	}
	return p.Kill()
}

func isInterrupt(sig os.Signal) bool { return sig == os.Interrupt }

func exitInfo(st *os.ProcessState, waitErr error) (int, string) {
	if st == nil {
		if waitErr != nil {
			return 1, ""
		}
		return 0, ""
	}
	return st.ExitCode(), ""
}
