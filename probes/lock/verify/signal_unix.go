//go:build unix

package verify

import (
	"os"
	"syscall"
)

// stopProcess and continueProcess pause and resume a worker process, as the OS does
// to a process under a debugger, a GC storm or a suspended VM.
func stopProcess(p *os.Process) error     { return p.Signal(syscall.SIGSTOP) }
func continueProcess(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
