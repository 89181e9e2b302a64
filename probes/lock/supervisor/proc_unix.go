//go:build unix

package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

var termSignal os.Signal = syscall.SIGTERM

func shellArgv(script string) []string { return []string{"/bin/sh", "-c", script} }

// prepare puts the child in its own process group when asked, so that signals and a
// kill after a lost lease reach every process it started (a shell's children too).
func prepare(cmd *exec.Cmd, ownGroup bool) {
	if ownGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
}

// signalChild signals the child's process group (or only the child).
func signalChild(p *os.Process, sig os.Signal, group bool) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return p.Signal(sig)
	}
	if group {
		if err := syscall.Kill(-p.Pid, s); err == nil || !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return p.Signal(sig)
}

func isInterrupt(sig os.Signal) bool { return sig == os.Interrupt }

// exitInfo is the child's exit code, 128+N when signal N ended it (as shells report).
func exitInfo(st *os.ProcessState, waitErr error) (int, string) {
	if st == nil {
		if waitErr != nil {
			return 1, ""
		}
		return 0, ""
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), signalName(ws.Signal())
	}
	return st.ExitCode(), ""
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}
