//go:build e2e

package harness

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedisStartStopRestart(t *testing.T) {
	r := StartRedis(t)
	require.NoError(t, RedisPing(r.Addr))
	require.NotZero(t, r.PID())
	require.Equal(t, "redis://"+r.Addr+"/0", r.URL())
	pid := r.PID()
	r.Restart()
	require.NoError(t, RedisPing(r.Addr))
	require.NotEqual(t, pid, r.PID())
	r.Stop()
	require.Error(t, RedisPing(r.Addr))
	require.Zero(t, r.PID())
	r.Stop() // idempotent
}
