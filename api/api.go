// Package api serves Estuary's HTTP API under /api/v1/, shaped like SRS's HTTP API where SRS has the
// same thing (so SRS dashboards and scripts work), plus Estuary's own fields.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// Config configures the API. The zero value is valid.
type Config struct {
	// NodeID is reported as "server" in every answer. Default "estuary".
	NodeID string
	// Role is reported by /api/v1/cluster ("standalone", "origin", "edge"). Default "standalone".
	Role string
	// Token, when set, protects every /api/ route: "Authorization: Bearer <Token>".
	Token string
	// Advertise is this node's HTTP URL, reported by /api/v1/cluster. Optional.
	Advertise string
	// SampleInterval is the byte-counter sampling period for kbps. Default 1s.
	SampleInterval time.Duration
	// Window is the kbps averaging window (SRS's "30s"). Default 30s.
	Window time.Duration
	// Version is reported by /api/v1/summaries.
	Version string
	// HiddenProtocols are subscriber protocols that are not viewers (internal subscribers such as the
	// shared FLV/HLS muxer source): they are neither listed nor counted. Default none.
	HiddenProtocols []string
}

// Deps are the API's collaborators. Hub is required.
type Deps struct {
	Hub    *sfu.Hub
	Logger *slog.Logger
	// Cluster, when set, answers /api/v1/cluster (nodes, leases, relays) in place of the standalone
	// answer (this node only). Its value is put under "cluster".
	Cluster func(ctx context.Context) (any, error)
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
	// Viewers, when set, lists the viewers served outside the hub's subscribers (HTTP-FLV, RTMP play).
	// It is called per request, so it may read components wired after the API.
	Viewers func() []Viewer
}

// API is the HTTP API. Close stops its background sampler.
type API struct {
	cfg     Config
	hub     *sfu.Hub
	log     *slog.Logger
	cluster func(ctx context.Context) (any, error)
	viewers func() []Viewer
	now     func() time.Time
	started time.Time

	mu      sync.Mutex              // guards rates and cpu
	rates   map[string]*streamRates // by stream key; guarded by mu
	cpu     cpuSample               // guarded by mu
	closeCh chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// New makes the API and starts its sampler (one goroutine, stopped by Close).
func New(cfg Config, deps Deps) *API {
	if cfg.NodeID == "" {
		cfg.NodeID = "estuary"
	}
	if cfg.Role == "" {
		cfg.Role = "standalone"
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = time.Second
	}
	if cfg.Window <= 0 {
		cfg.Window = 30 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	a := &API{
		cfg:     cfg,
		hub:     deps.Hub,
		log:     log.With("component", "api"),
		cluster: deps.Cluster,
		viewers: deps.Viewers,
		now:     now,
		started: now(),
		rates:   map[string]*streamRates{},
		closeCh: make(chan struct{}),
	}
	a.sample()
	a.wg.Add(1)
	go a.sampler()
	return a
}

// Close stops the sampler and waits for it. Idempotent.
func (a *API) Close() {
	a.once.Do(func() { close(a.closeCh) })
	a.wg.Wait()
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/streams", a.auth(a.handleStreams))
	mux.Handle("GET /api/v1/streams/{id}", a.auth(a.handleStreamByID))
	mux.Handle("GET /api/v1/streams/{app}/{stream}", a.auth(a.handleStream))
	mux.Handle("GET /api/v1/clients", a.auth(a.handleClients))
	mux.Handle("GET /api/v1/clients/{id}", a.auth(a.handleClient))
	mux.Handle("DELETE /api/v1/clients/{id}", a.auth(a.handleKick))
	mux.Handle("GET /api/v1/summaries", a.auth(a.handleSummaries))
	mux.Handle("GET /api/v1/cluster", a.auth(a.handleCluster))
	mux.Handle("GET /api/", a.auth(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, http.StatusNotFound, "no such API route")
	}))
}

// auth wraps h with the bearer-token check when Config.Token is set.
func (a *API) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="estuary"`)
				a.writeError(w, http.StatusUnauthorized, ErrUnauthorized.Error())
				return
			}
		}
		h(w, r)
	})
}

// errorReply is the body of every error answer.
type errorReply struct {
	Code   int    `json:"code"`
	Server string `json:"server"`
	Error  string `json:"error"`
}

func (a *API) writeError(w http.ResponseWriter, status int, msg string) {
	a.writeJSON(w, status, errorReply{Code: status, Server: a.cfg.NodeID, Error: msg})
}

func (a *API) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		a.log.Error("encode answer", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
