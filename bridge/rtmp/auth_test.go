package rtmp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/sfu"
)

// rtmpFakeAuth allows token "good" on live/a, answers ErrForbidden for "good" elsewhere, else
// ErrUnauthorized; it records requests and notifications.
type rtmpFakeAuth struct {
	mu       sync.Mutex
	asked    []sfu.AuthRequest
	notified []sfu.AuthRequest
}

func (f *rtmpFakeAuth) Authorize(_ context.Context, r sfu.AuthRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, r)
	switch {
	case r.Token == "good" && r.Key == "live/a":
		return nil
	case r.Token == "good":
		return fmt.Errorf("%w: token for another stream", sfu.ErrForbidden)
	}
	return fmt.Errorf("%w: token required", sfu.ErrUnauthorized)
}

func (f *rtmpFakeAuth) Notify(r sfu.AuthRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notified = append(f.notified, r)
}

func (f *rtmpFakeAuth) snapshot() (asked, notified []sfu.AuthRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sfu.AuthRequest(nil), f.asked...), append([]sfu.AuthRequest(nil), f.notified...)
}

func TestAuthorizerPublish(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{Grace: time.Second}, sfu.Deps{})
	fa := &rtmpFakeAuth{}
	srv, err := New(Config{}, Deps{Hub: hub, Logger: testLogger(t), Authorizer: fa})
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
		name   string
		url    string
		reason string // "" = accepted
	}{
		{"no token", base + "/live/a", "token required"},
		{"other stream", base + "/live/b?token=good", "token for another stream"},
		{"valid in stream name", base + "/live/a?token=good", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ff := startFFmpeg(t, pushArgs(tc.url, "320x240", 2, opts, false)...)
			if tc.reason != "" {
				require.Error(t, ff.wait(t, 10*time.Second))
				t.Logf("ffmpeg: %s", strings.TrimSpace(ff.stderr.String()))
				require.Contains(t, ff.stderr.String(), tc.reason)
				return
			}
			subscribeWhenLive(t, hub, "live/a", 5*time.Second)
			_ = ff.wait(t, 15*time.Second)
		})
	}
	// The token on the tcUrl works too (a go-rtmp client: connect app "live" with tcUrl ...?token=).
	client, err := gortmp.Dial("rtmp", strings.TrimPrefix(base, "rtmp://"), &gortmp.ConnConfig{})
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, client.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{
		App: "live", TCURL: base + "/live?token=good"}}))
	stream, err := client.CreateStream(nil, 4096)
	require.NoError(t, err)
	require.NoError(t, stream.Publish(&message.NetStreamPublish{PublishingName: "a", PublishingType: "live"}))

	asked, _ := fa.snapshot()
	last := asked[len(asked)-1]
	require.Equal(t, sfu.AuthRequest{Action: sfu.ActionPublish, Key: "live/a", Token: "good", Protocol: "rtmp",
		ClientID: last.ClientID, ClientIP: "127.0.0.1", Param: "?token=good"}, last)
	require.NotEmpty(t, last.ClientID)
	require.NoError(t, client.Close())
	// Authorized publishers that left are notified (on_unpublish).
	require.Eventually(t, func() bool {
		_, n := fa.snapshot()
		return len(n) >= 2
	}, 5*time.Second, 20*time.Millisecond)
	_, n := fa.snapshot()
	require.Equal(t, sfu.ActionUnpub, n[0].Action)
}
