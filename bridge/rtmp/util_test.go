package rtmp

import (
	"errors"
	"log/slog"
	"os"
	"testing"
)

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testLogger logs at Info into the test log (Debug with ESTUARY_TEST_DEBUG=1).
func testLogger(t *testing.T) *slog.Logger {
	lvl := slog.LevelInfo
	if os.Getenv("ESTUARY_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
