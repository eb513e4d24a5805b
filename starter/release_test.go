package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
