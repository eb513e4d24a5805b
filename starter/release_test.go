package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clerksync/clerksync/internal/buildinfo"
)

// TestReleaseBuildLeavesOutToken: the image's starter (built with -tags
// release, as the Dockerfile does) has no token command, which only make
// run's local Clerk stand-in can answer; a development build has it.
func TestReleaseBuildLeavesOutToken(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "starter")
	out, err := exec.Command("go", "build", "-tags", "release", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "build: %s", out)
	help, err := exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", help)
	require.Contains(t, string(help), "backfill")
	require.NotContains(t, string(help), "\n  token ")
	out, err = exec.Command(bin, "token", "user_x").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `unknown command "token"`)

	var dev strings.Builder
	printUsage(&dev)
	require.Contains(t, dev.String(), "\n  token ", "a development build lists it")
}

// TestReleaseBuild_SaysItsVersionAndCommit: both binaries, built with the
// Dockerfile's -ldflags, print the release and the commit they were given
// (a misspelt -X symbol is silently ignored by the linker, so only running
// them shows it took).
func TestReleaseBuild_SaysItsVersionAndCommit(t *testing.T) {
	t.Parallel()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	for _, program := range []string{"worker", "starter"} {
		bin := filepath.Join(t.TempDir(), program)
		out, err := exec.Command("go", "build", "-tags", "release",
			"-ldflags", "-X github.com/clerksync/clerksync/internal/buildinfo.Commit="+commit,
			"-o", bin, "github.com/clerksync/clerksync/"+program).CombinedOutput()
		require.NoError(t, err, "build: %s", out)
		version, err := exec.Command(bin, "--version").Output()
		require.NoError(t, err)
		require.Equal(t, "clerksync "+program+" "+buildinfo.Version+" (commit "+commit+")\n", string(version))
	}
}
