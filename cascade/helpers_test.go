package cascade

import (
	"log/slog"
	"testing"
)

// testLogger writes the component's logs into the test output (shown with -v or on failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
