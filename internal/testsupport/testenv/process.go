package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Process is a clerksync binary a test runs, and may kill.
type Process struct{ cmd *exec.Cmd }

// StartProcess runs bin with args and exactly env, its output in
// logDir/<name>.log (ReadLogs reads them all). At the test's end it is sent
// SIGTERM and waited for; if the test failed, the end of its log is shown.
func StartProcess(t testing.TB, logDir, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	logFile, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("%s log (last 4 KiB):\n%s", name, tail(b, 4096))
		}
	})
	return &Process{cmd: cmd}
}

// Stop asks the process to stop (SIGTERM), waits for it, and returns how it
// ended: nil for a clean exit.
func (p *Process) Stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.cmd.Wait()
}

// PID is the process's ID, for reading its CPU time.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
