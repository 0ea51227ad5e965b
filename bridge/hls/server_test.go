package hls

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerRefusals(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	defer reg.Close()
	srv, err := New(Config{NodeID: "n1"}, Deps{Frames: reg})
	require.NoError(t, err)
	defer srv.Close()
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /{app}/{file}", srv.ServeHTTP)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name, path string
		code       int
	}{
		{name: "unknown stream redirect", path: "/live/none.m3u8", code: http.StatusNotFound},
		{name: "bad key redirect", path: "/live/..m3u8", code: http.StatusBadRequest},
		{name: "unknown stream playlist", path: "/n/n1/hls/live/none/index.m3u8", code: http.StatusNotFound},
		{name: "bad file", path: "/n/n1/hls/live/none/index.html", code: http.StatusBadRequest},
		{name: "bad key muxer", path: "/n/n1/hls/live/a%20b/index.m3u8", code: http.StatusBadRequest},
		{name: "other node", path: "/n/n2/hls/live/none/index.m3u8", code: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(ts.URL + tc.path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
		})
	}
	require.Empty(t, srv.Streams(), "no muxer is left for refused requests")
}

func TestNewRefusesUnknownVariant(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	defer reg.Close()
	_, err := New(Config{Variant: "dash"}, Deps{Frames: reg})
	require.Error(t, err)
	_, err = New(Config{}, Deps{})
	require.Error(t, err)
}
