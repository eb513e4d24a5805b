//go:build !linux

package testenv

import "os/exec"

// dieWithTest does nothing where the kernel offers no parent-death signal:
// a test killed from outside leaves its processes to be stopped by hand.
func dieWithTest(*exec.Cmd) {}
