package telemetry

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
)

// TestTemporalLogger_AStopIsNoWarning: the SDK's warning about a poll cut
// short by the worker's own stop is demoted to debug, through loggers the
// SDK derives with With too; every other warning stays one.
func TestTemporalLogger_AStopIsNoWarning(t *testing.T) {
	var buf bytes.Buffer
	logger, err := NewLogger(&buf, FormatText, slog.LevelInfo, "worker")
	require.NoError(t, err)
	sdk := TemporalLogger(logger)
	sdk.Warn("Failed to poll for task.", "Error", errors.New("worker stopping"))
	tlog.With(sdk, "TaskQueue", "clerksync").Warn("Failed to poll for task.", "Error", errors.New("worker stopping"))
	require.Empty(t, buf.String(), "a stop's poll is no warning")

	sdk.Warn("Failed to poll for task.", "Error", errors.New("connection refused"))
	require.Contains(t, buf.String(), "level=WARN")
	require.Contains(t, buf.String(), "process=worker")
}
