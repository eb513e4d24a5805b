// Package buildinfo names the release and the commit a binary was built
// from, so an operator rolling a deployment forward (or back) can tell which
// processes run which code: `worker --version`, `starter --version`, the
// first log line and the clerksync_build_info metric all read it here.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version is the release this tree is, or will be: a release commit sets
// it to its tag (v0.2.0), the commits after it to the next release with
// "-dev". Release builds may also set it with
// -ldflags "-X github.com/clerksync/clerksync/internal/buildinfo.Version=...".
// docker-compose.yml's image tag is held to it by a test.
var Version = "v0.2.0-dev"

// Commit is the commit the binary was built from, set by
// -ldflags "-X github.com/clerksync/clerksync/internal/buildinfo.Commit=$(git rev-parse HEAD)"
// (make and the Dockerfile do). Empty, it falls back on the VCS stamp the
// Go toolchain embeds when it builds inside a checkout.
var Commit = ""

// CommitOrUnknown returns Commit, the toolchain's VCS stamp (with
// "-dirty" for a modified tree), or "unknown".
func CommitOrUnknown() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "unknown"
	}
	if modified == "true" {
		revision += "-dirty"
	}
	return revision
}

// String is what --version prints: the program, the release and the commit.
func String(program string) string {
	return fmt.Sprintf("clerksync %s %s (commit %s)", program, Version, CommitOrUnknown())
}
