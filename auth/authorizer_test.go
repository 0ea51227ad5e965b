package auth

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/sfu"
)

func TestHookAllows(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"zero", 200, "0", true},
		{"zero newline", 200, " 0\n", true},
		{"json code 0", 200, `{"code":0}`, true},
		{"json code 0 extra", 200, `{"code":0,"data":{}}`, true},
		{"json code 1", 200, `{"code":1}`, false},
		{"json code string", 200, `{"code":"0"}`, false},
		{"json array", 200, `[0]`, false},
		{"json no code", 200, `{}`, false},
		{"empty", 200, ``, false},
		{"one", 200, `1`, false},
		{"403", 403, `0`, false},
		{"500", 500, `{"code":0}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, HookAllows(tc.status, []byte(tc.body))) })
	}
}

// hookServer records the SRS-shaped bodies it receives and answers by stream name.
type hookServer struct {
	mu   sync.Mutex
	got  []HookRequest
	srv  *httptest.Server
	slow chan struct{}
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{slow: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var hr HookRequest
		if err := json.Unmarshal(b, &hr); err != nil {
			http.Error(w, "bad json", 400)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, hr)
		h.mu.Unlock()
		switch hr.Stream {
		case "denied":
			_, _ = w.Write([]byte(`{"code":403}`))
		case "slow":
			select {
			case <-h.slow:
			case <-r.Context().Done():
			}
		default:
			_, _ = w.Write([]byte(`{"code":0}`))
		}
	}))
	h.srv.Listener.Close()
	h.srv.Listener = ln
	h.srv.Start()
	t.Cleanup(func() { close(h.slow); h.srv.Close() })
	return h
}

func (h *hookServer) requests() []HookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HookRequest(nil), h.got...)
}

func TestAuthorizerHooks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
	h := newHookServer(t)
	a, err := New(Config{Publish: ModeHook, Play: ModeHook, HookTimeout: 300 * time.Millisecond, ServerID: "node1",
		Hooks: Hooks{OnPublish: []string{h.srv.URL + "/a", h.srv.URL + "/b"}, OnPlay: []string{h.srv.URL},
			OnUnpublish: []string{h.srv.URL}}}, Deps{})
	require.NoError(t, err)
	defer a.Close()
	ctx := context.Background()

	tests := []struct {
		name    string
		req     sfu.AuthRequest
		wantErr error
		calls   int
	}{
		{"publish allowed, both hooks called", sfu.AuthRequest{Action: "publish", Key: "live/test", Param: "?token=abc", ClientIP: "127.0.0.1", ClientID: "c1", Protocol: "rtmp"}, nil, 2},
		{"play allowed", sfu.AuthRequest{Action: "play", Key: "live/test", ClientIP: "127.0.0.1", ClientID: "c2"}, nil, 1},
		{"publish denied stops at first hook", sfu.AuthRequest{Action: "publish", Key: "live/denied"}, sfu.ErrForbidden, 1},
		{"play timeout denies", sfu.AuthRequest{Action: "play", Key: "live/slow"}, sfu.ErrForbidden, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.requests())
			start := time.Now()
			err := a.Authorize(ctx, tc.req)
			t.Logf("hook answer in %v", time.Since(start))
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			got := h.requests()[before:]
			require.Len(t, got, tc.calls)
			app, stream := "live", tc.req.Key[len("live/"):]
			for _, g := range got {
				require.Equal(t, "on_"+tc.req.Action, g.Action)
				require.Equal(t, app, g.App)
				require.Equal(t, stream, g.Stream)
				require.Equal(t, "__defaultVhost__", g.Vhost)
				require.Equal(t, "/"+tc.req.Key, g.StreamURL)
				require.Equal(t, "node1", g.ServerID)
				require.Equal(t, tc.req.ClientIP, g.IP)
				require.Equal(t, tc.req.ClientID, g.ClientID)
				require.Equal(t, tc.req.Param, g.Param)
			}
		})
	}
	// on_unpublish is notified in the background.
	sfu.AuthNotify(a, sfu.AuthRequest{Action: "publish", Key: "live/test"})
	require.Eventually(t, func() bool {
		r := h.requests()
		return r[len(r)-1].Action == "on_unpublish"
	}, 2*time.Second, 10*time.Millisecond)
}

func TestAuthorizerTokenModesAndReload(t *testing.T) {
	a, err := New(Config{Publish: ModeToken, Play: ModeNone, Secret: "s"}, Deps{Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	defer a.Close()
	ctx := context.Background()
	tok := mustSign(t, "s", "live/test", "publish", time.Hour)
	require.NoError(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/test", Token: tok}))
	require.ErrorIs(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/test"}), sfu.ErrUnauthorized)
	require.ErrorIs(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/x", Token: tok}), sfu.ErrForbidden)
	require.NoError(t, a.Authorize(ctx, sfu.AuthRequest{Action: "play", Key: "live/test"}))
	// Reload: a new secret applies at once; an invalid config is refused and the old one kept.
	require.Error(t, a.Reload(Config{Publish: "bogus"}))
	require.NoError(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/test", Token: tok}))
	require.NoError(t, a.Reload(Config{Publish: ModeToken, Play: ModeToken, Secret: "s2"}))
	require.ErrorIs(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/test", Token: tok}), sfu.ErrUnauthorized)
	require.ErrorIs(t, a.Authorize(ctx, sfu.AuthRequest{Action: "play", Key: "live/test"}), sfu.ErrUnauthorized)
	require.NoError(t, a.Authorize(ctx, sfu.AuthRequest{Action: "publish", Key: "live/test", Token: mustSign(t, "s2", "live/*", "*", time.Hour)}))

	_, err = New(Config{Publish: ModeToken}, Deps{})
	require.ErrorIs(t, err, ErrConfig)
	_, err = New(Config{Play: ModeHook}, Deps{})
	require.ErrorIs(t, err, ErrConfig)
}

// FuzzHookAllows: any hook answer gives a verdict without panicking; an allow needs status 200 and a
// body that is "0" or JSON whose code is 0.
func FuzzHookAllows(f *testing.F) {
	for _, b := range []string{"0", " 0\n", `{"code":0}`, `{"code":1}`, `{}`, ``, `1`, `{"code":"0"}`, `{"code":0.0}`} {
		f.Add(200, b)
	}
	f.Add(403, "0")
	f.Fuzz(func(t *testing.T, status int, body string) {
		ok := HookAllows(status, []byte(body))
		if ok {
			require.Equal(t, http.StatusOK, status)
			var v map[string]any
			trimmed := strings.TrimSpace(body)
			if trimmed != "0" {
				require.NoError(t, json.Unmarshal([]byte(trimmed), &v))
				require.EqualValues(t, 0, v["code"])
			}
		}
		_ = TokenFromQuery(body)
		_ = TokenFromBearer(body)
	})
}
