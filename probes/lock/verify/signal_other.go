//go:build !unix

package verify

import (
	"errors"
	"os"
)

var errNoStop = errors.New("pausing a process (SIGSTOP) is not supported on this system")

// stopProcess cannot pause a process here: --processes runs without the pause fault.
func stopProcess(*os.Process) error     { return errNoStop }
func continueProcess(*os.Process) error { return errNoStop }
