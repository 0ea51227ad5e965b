package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/auth"
)

func TestHTTPAuthMiddleware(t *testing.T) {
	az, err := auth.New(auth.Config{Play: auth.ModeToken, Secret: "s"}, auth.Deps{})
	require.NoError(t, err)
	defer az.Close()
	g := &httpAuth{az: az, cors: "*", ok: map[string]time.Time{}}
	h := g.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	sign := func(sub, act string, ttl time.Duration) string {
		tok, err := auth.Sign([]byte("s"), sub, act, time.Now(), ttl)
		require.NoError(t, err)
		return tok
	}
	good := sign("live/test", "play", time.Hour)
	tests := []struct {
		name string
		path string
		code int
	}{
		{"flv no token", "/live/test.flv", 401},
		{"flv valid", "/live/test.flv?token=" + good, 418},
		{"flv other stream", "/live/other.flv?token=" + good, 403},
		{"flv expired", "/live/test.flv?token=" + sign("live/test", "play", -time.Minute), 401},
		{"flv publish token", "/live/test.flv?token=" + sign("live/test", "publish", time.Hour), 403},
		{"hls redirect valid", "/live/test.m3u8?token=" + good, 418},
		{"hls redirect none", "/live/test.m3u8", 401},
		{"hls muxer valid", "/n/node1/hls/live/test/index.m3u8?token=" + good, 418},
		{"hls muxer segment none", "/n/node1/hls/live/test/seg1.ts", 401},
		{"ws call valid", "/ws/call?room=r1&token=" + sign("call/r1", "*", time.Hour), 418},
		{"ws call other room", "/ws/call?room=r2&token=" + sign("call/r1", "*", time.Hour), 403},
		{"ws call none", "/ws/call?room=r1", 401},
		{"unguarded api", "/api/v1/streams", 418},
		{"unguarded page", "/index.html", 418},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
		})
	}
}
