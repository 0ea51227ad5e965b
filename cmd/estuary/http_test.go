package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func newTestMux(cors string) (*app, http.Handler) {
	a := &app{cfg: Defaults(), mux: http.NewServeMux(), files: &fileRoutes{}}
	a.cfg.HTTP.CORS = cors
	a.files.Handle(".flv", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("flv " + r.PathValue("app") + " " + r.PathValue("file")))
	}))
	a.files.Handle(".m3u8", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hls " + r.PathValue("app") + " " + r.PathValue("file")))
	}))
	a.files.fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/static/app.js" {
			_, _ = w.Write([]byte("page"))
			return
		}
		http.NotFound(w, r)
	})
	a.mux.Handle("GET /", a.files)
	a.mux.HandleFunc("POST /whip/{app}/{stream}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // as signaling does
		w.WriteHeader(http.StatusCreated)
	})
	a.mux.HandleFunc("OPTIONS /whip/{app}/{stream}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<stun:x>; rel=\"ice-server\"")
		w.WriteHeader(http.StatusNoContent)
	})
	return a, a.cors(a.mux)
}

func TestFileRoutes(t *testing.T) {
	_, h := newTestMux("*")
	cases := []struct {
		name, method, path string
		code               int
		body               string
	}{
		{name: "flv", method: "GET", path: "/live/test.flv", code: 200, body: "flv live test.flv"},
		{name: "hls", method: "GET", path: "/live/test.m3u8", code: 200, body: "hls live test.m3u8"},
		{name: "head", method: "HEAD", path: "/live/test.flv", code: 200},
		{name: "bare suffix", method: "GET", path: "/live/.flv", code: 404},
		{name: "three segments", method: "GET", path: "/a/b/c.flv", code: 404},
		{name: "unknown suffix to pages", method: "GET", path: "/static/app.js", code: 200, body: "page"},
		{name: "unknown", method: "GET", path: "/live/test.mp4", code: 404},
		{name: "post to file", method: "POST", path: "/live/test.flv", code: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			require.Equal(t, tc.code, rec.Code)
			if tc.body != "" {
				require.Equal(t, tc.body, rec.Body.String())
			}
		})
	}
}

func TestCORS(t *testing.T) {
	cases := []struct {
		name, cors, method, path string
		code                     int
		origin                   []string
		link                     bool
	}{
		{name: "get", cors: "*", method: "GET", path: "/live/a.flv", code: 200, origin: []string{"*"}},
		{name: "preflight without a route", cors: "*", method: "OPTIONS", path: "/api/v1/clients/x", code: 204, origin: []string{"*"}},
		{name: "preflight to the route's own OPTIONS", cors: "*", method: "OPTIONS", path: "/whip/live/a", code: 204, origin: []string{"*"}, link: true},
		{name: "handler sets it again: one header", cors: "*", method: "POST", path: "/whip/live/a", code: 201, origin: []string{"*"}},
		{name: "own origin", cors: "https://app.example", method: "GET", path: "/live/a.flv", code: 200, origin: []string{"https://app.example"}},
		{name: "off", cors: "", method: "GET", path: "/live/a.flv", code: 200, origin: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, h := newTestMux(tc.cors)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("Origin", "http://page.example")
			req.Header.Set("Access-Control-Request-Method", "POST")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code)
			require.Equal(t, tc.origin, rec.Header().Values("Access-Control-Allow-Origin"))
			require.Equal(t, tc.link, rec.Header().Get("Link") != "")
		})
	}
}

func TestReadyz(t *testing.T) {
	a := &app{}
	rec := httptest.NewRecorder()
	a.handleReady(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, 200, rec.Code)
	a.draining.Store(true)
	rec = httptest.NewRecorder()
	a.handleReady(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, 503, rec.Code)
	require.Equal(t, "draining", rec.Body.String())
}

func TestURLHost(t *testing.T) {
	require.Equal(t, "localhost:8080", urlHost(":8080"))
	require.Equal(t, "localhost:8080", urlHost("0.0.0.0:8080"))
	require.Equal(t, "127.0.0.2:1", urlHost("127.0.0.2:1"))
	require.Equal(t, "[::1]:1", urlHost("[::1]:1"))
}
