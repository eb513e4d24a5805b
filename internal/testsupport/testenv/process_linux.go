package testenv

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill cmd's process when the test binary
// dies, however it dies: a test killed from outside (a timeout, pkill)
// otherwise leaves its servers running, holding their ports and
// PostgreSQL connections, and the next run fails on them.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
