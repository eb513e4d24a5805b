package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// LogBuffer collects a process's log lines for CheckLogs; safe for
// concurrent writes and reads.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *LogBuffer) String() string { return string(b.Bytes()) }

var (
	emailAddress = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	// sessionToken matches a JWT: a base64url JSON header, a payload and a
	// signature.
	sessionToken = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
)

// Forbidden is what a test knows must not appear in a log beyond any email
// address and session token: its secrets and the names it sent.
type Forbidden struct {
	Literals []string
	// Patterns match many values at once (a scenario's generated names).
	Patterns []*regexp.Regexp
}

// CheckLogs fails t if logs (named name in the failure) hold any of
// forbidden, an email address or a session token: what clerksync must never
// write to a log.
func CheckLogs(t testing.TB, name string, logs []byte, forbidden Forbidden) {
	t.Helper()
	if len(logs) == 0 {
		t.Errorf("%s: no log lines captured, so nothing was checked", name)
	}
	found := 0
	report := func(format string, args ...any) {
		t.Helper()
		if found++; found <= 5 { // the first few say enough
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if found > 5 {
			t.Errorf("%s: %d more log lines with secrets or personal data", name, found-5)
		}
	}()
	for _, line := range strings.Split(string(logs), "\n") {
		for _, f := range forbidden.Literals {
			if f != "" && strings.Contains(line, f) {
				report("%s: a log line holds %q: %s", name, f, line)
			}
		}
		for _, p := range forbidden.Patterns {
			if m := p.FindString(line); m != "" {
				report("%s: a log line holds %q: %s", name, m, line)
			}
		}
		if m := emailAddress.FindString(line); m != "" {
			report("%s: a log line holds the email address %q: %s", name, m, line)
		}
		if sessionToken.MatchString(line) {
			report("%s: a log line holds a session token: %s", name, line)
		}
	}
}

// Build compiles clerksync's binaries (worker, starter) once into a
// temporary directory and returns it.
func Build(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, pkg := range []string{"worker", "starter"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "github.com/clerksync/clerksync/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v: %s", pkg, err, out)
		}
	}
	return dir
}

// ReadLogs returns the contents of every *.log file in dir, for CheckLogs.
func ReadLogs(t testing.TB, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
