package rtmp

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// TestAdmitRefusal: with Deps.Admit allowing one connection, a second ffmpeg push is refused after
// connect with the reason in an error onStatus (ffmpeg prints it), the first keeps publishing, and the
// admission is released when a connection closes.
func TestAdmitRefusal(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{Grace: time.Second}, sfu.Deps{})
	var open, refused atomic.Int64
	const max = 1
	srv, err := New(Config{}, Deps{Hub: hub, Logger: testLogger(t), Admit: func() (func(), error) {
		if open.Add(1) > max {
			open.Add(-1)
			refused.Add(1)
			return nil, errors.New("connection limit reached (1)")
		}
		return func() { open.Add(-1) }, nil
	}})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-errc, ErrServerClosed)
		hub.Close()
	}()
	base := "rtmp://" + ln.Addr().String()
	opts := []string{"-profile:v", "baseline", "-g", "25"}

	tests := []struct {
		name string
		args []string
	}{
		{name: "publish", args: pushArgs(base+"/live/two", "320x240", 3, opts, false)},
		{name: "play", args: []string{"-rw_timeout", "3000000", "-i", base + "/live/one", "-t", "1", "-f", "null", "-"}},
	}
	first := startFFmpeg(t, pushArgs(base+"/live/one", "320x240", 10, opts, false)...)
	sub, unsub := subscribeWhenLive(t, hub, "live/one", 5*time.Second)
	defer unsub()
	require.Equal(t, int64(1), open.Load())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := refused.Load()
			ff := startFFmpeg(t, tc.args...)
			require.Error(t, ff.wait(t, 10*time.Second), "over the limit")
			out := strings.TrimSpace(ff.stderr.String())
			t.Logf("refused ffmpeg: %s", out)
			require.Contains(t, out, "connection limit reached (1)")
			require.Equal(t, before+1, refused.Load())
			require.Equal(t, int64(1), open.Load(), "a refused connection holds no admission")
		})
	}
	n := sub.count("video")
	require.Eventually(t, func() bool { return sub.count("video") > n }, 5*time.Second, 20*time.Millisecond, "the admitted publisher keeps going")
	first.stop()
	require.Eventually(t, func() bool { return open.Load() == 0 }, 5*time.Second, 10*time.Millisecond, "released on close")
}
