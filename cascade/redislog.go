package cascade

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedirectRedisLogs routes go-redis's own log lines (one per failed dial during an outage) into log,
// at most one line per every (default 10s when <= 0) with the count of lines suppressed meanwhile.
// go-redis's logger is process-global: the composition root (cmd/estuary) calls this once.
func RedirectRedisLogs(log *slog.Logger, every time.Duration) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = 10 * time.Second
	}
	redis.SetLogger(&redisLogger{log: log.With("component", "redis-client"), every: every})
}

// redisLogger is a rate-limited go-redis internal.Logging.
type redisLogger struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time // guarded by mu
	suppressed int       // guarded by mu
}

func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()

		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn(fmt.Sprintf(format, v...), "suppressed", n)
}
