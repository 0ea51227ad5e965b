package cascade

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testLogger writes the component's logs into the test output (shown with -v or on failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRedisLoggerRateLimits(t *testing.T) {
	var buf syncBuffer
	l := &redisLogger{log: slog.New(slog.NewTextHandler(&buf, nil)), every: time.Hour}
	for i := range 5 {
		l.Printf(context.Background(), "dial failed %d", i)
	}
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "dial failed"), out)
	require.Contains(t, out, "dial failed 0")
	l.mu.Lock()
	require.Equal(t, 4, l.suppressed)
	l.last = time.Now().Add(-2 * time.Hour)
	l.mu.Unlock()
	l.Printf(context.Background(), "dial failed again")
	require.Contains(t, buf.String(), "suppressed=4")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.String()
}
