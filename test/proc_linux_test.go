package test

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill a server when the test process dies,
// e.g. on a go test -timeout panic, so that no server outlives its test.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
