// Package hls serves HLS and Low-Latency HLS of the hub's streams with gohlslib: one muxer per stream,
// started by the first request and fed from the stream's shared frames source (bridge/frames), stopped
// after Config.IdleTimeout without requests or when the stream ends.
//
// URLs: GET /{app}/{stream}.m3u8 redirects (302) to /n/{node}/hls/{app}/{stream}/index.m3u8, where the
// stream's muxer serves its playlists and segments under relative URIs (one directory per stream).
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// Variant is the configured HLS variant.
type Variant string

// Variants.
const (
	// VariantMPEGTS: MPEG-TS segments for H.264 + AAC; streams with a codec MPEG-TS cannot carry here
	// (Opus, H.265, AV1) get fMP4 instead.
	VariantMPEGTS Variant = "mpegts"
	// VariantFMP4: fragmented MP4 segments.
	VariantFMP4 Variant = "fmp4"
	// VariantLowLatency: Low-Latency HLS (fMP4 parts, preload hints, blocking playlist reload).
	VariantLowLatency Variant = "lowlatency"
)

// Config configures a Server. The zero value is valid.
type Config struct {
	// NodeID is this node's ID, the {node} of /n/{node}/hls/... ("" answers any node).
	NodeID string
	// Variant: mpegts (default), fmp4 or lowlatency.
	Variant Variant
	// Segment is the minimum segment length (2 s); segments cut at the first keyframe after it.
	Segment time.Duration
	// Window is the number of segments in a playlist (7; at least 3, at least 7 for lowlatency).
	Window int
	// IdleTimeout stops a stream's muxer after this long without requests (30 s).
	IdleTimeout time.Duration
	// Part is the minimum part length of Low-Latency HLS (200 ms).
	Part time.Duration
	// FirstWait is how long a first request waits for the first segment (two segment lengths; one
	// more for the plain fMP4 variant, whose playlists gohlslib serves only once two segments exist).
	FirstWait time.Duration
	// KeyframeInterval is how often the muxer asks the publisher for a keyframe while it runs (the
	// segment length): WebRTC publishers send one only when asked.
	KeyframeInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Variant == "" {
		c.Variant = VariantMPEGTS
	}
	if c.Segment <= 0 {
		c.Segment = 2 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 7
	}
	if c.Window < 3 {
		c.Window = 3 // gohlslib's minimum
	}
	if c.Variant == VariantLowLatency && c.Window < 7 {
		c.Window = 7 // gohlslib's minimum for Low-Latency HLS
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.Part <= 0 {
		c.Part = 200 * time.Millisecond
	}
	if c.FirstWait <= 0 {
		c.FirstWait = 2 * c.Segment
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = c.Segment
	}
	return c
}

// Deps are a Server's collaborators.
type Deps struct {
	// Frames is the node's shared frames registry.
	Frames *frames.Registry
	Logger *slog.Logger
}

// Server serves HLS for every stream of the hub.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex
	streams map[string]*stream
	closed  bool
	wg      sync.WaitGroup
}

// New makes a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Frames == nil {
		return nil, errors.New("hls: Deps.Frames is required")
	}
	switch cfg.Variant {
	case "", VariantMPEGTS, VariantFMP4, VariantLowLatency:
	default:
		return nil, fmt.Errorf("hls: unknown variant %q", cfg.Variant)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg:     cfg.withDefaults(),
		deps:    deps,
		log:     log.With("component", "hls"),
		streams: make(map[string]*stream),
	}, nil
}

// Register adds GET /n/{node}/hls/{app}/{stream}/{file} (the muxers' files) to mux. The redirect
// (GET /{app}/{stream}.m3u8) is ServeHTTP, mounted by the caller's suffix router.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /n/{node}/hls/{app}/{stream}/{file}", s.serveFile)
}

// MuxerPath is the path of a stream's multivariant playlist on this node.
func (s *Server) MuxerPath(key string) string {
	return "/n/" + s.cfg.NodeID + "/hls/" + key + "/index.m3u8"
}

// ServeHTTP answers GET /{app}/{stream}.m3u8 (path values "app" and "file" set by the caller's router):
// it starts the stream's muxer and redirects (302) to the muxer's playlist; 400 for a bad key, 404 (with
// the reason) for a stream nobody publishes or without a track HLS can carry.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := PlayKey(r.PathValue("app"), r.PathValue("file"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := s.stream(r.Context(), key); err != nil {
		s.fail(w, key, err)
		return
	}
	loc := s.MuxerPath(key)
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery // a token travels on (gohlslib repeats the query in its URIs)
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.Redirect(w, r, loc, http.StatusFound)
}

// serveFile serves one file of a stream's muxer.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	key, file, err := MuxerFile(r.PathValue("app"), r.PathValue("stream"), r.PathValue("file"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.cfg.NodeID != "" && node != s.cfg.NodeID {
		http.Error(w, fmt.Sprintf("stream %s is not served by node %q here (this is node %q)", key, node, s.cfg.NodeID), http.StatusNotFound)
		return
	}
	st, err := s.stream(r.Context(), key)
	if err != nil {
		s.fail(w, key, err)
		return
	}
	st.active.Add(1)
	defer func() {
		st.touch()
		st.active.Add(-1)
	}()
	st.touch()
	m, err := st.wait(r.Context(), s.cfg.FirstWait, s.cfg.Segment)
	if err != nil {
		s.fail(w, key, err)
		return
	}
	rw := &fileWriter{ResponseWriter: w, playlist: isPlaylist(file)}
	m.Handle(rw, r)
	if !rw.wrote {
		http.Error(w, fmt.Sprintf("%s: no file %q (segments leave the window after %d)", key, file, s.cfg.Window), http.StatusNotFound)
	}
}

// fail answers a request that got no muxer.
func (s *Server) fail(w http.ResponseWriter, key string, err error) {
	switch {
	case errors.Is(err, sfu.ErrInvalidKey):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, sfu.ErrStreamNotFound), errors.Is(err, frames.ErrNoTracks), errors.Is(err, frames.ErrClosed):
		http.Error(w, fmt.Sprintf("stream %s not found: nobody publishes it", key), http.StatusNotFound)
	case errors.Is(err, ErrNoMedia), errors.Is(err, ErrClosed):
		http.Error(w, fmt.Sprintf("stream %s: %v", key, err), http.StatusNotFound)
	case errors.Is(err, ErrNotReady):
		secs := int(math.Ceil(s.cfg.Segment.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		http.Error(w, fmt.Sprintf("stream %s: %v", key, err), http.StatusServiceUnavailable)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "request ended", http.StatusServiceUnavailable)
	default:
		http.Error(w, fmt.Sprintf("stream %s: %v", key, err), http.StatusServiceUnavailable)
	}
}

// stream returns the running muxer of key, starting it if needed.
func (s *Server) stream(ctx context.Context, key string) (*stream, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if st := s.streams[key]; st != nil {
		s.mu.Unlock()
		select {
		case <-st.started:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if st.startErr != nil {
			return nil, st.startErr
		}
		return st, nil
	}
	st := newStream(s, key)
	s.streams[key] = st
	s.wg.Add(1)
	s.mu.Unlock()
	err := st.start(ctx)
	if err != nil {
		s.forget(st)
		s.wg.Done()
		return nil, err
	}
	return st, nil
}

// forget removes st from the map (a later request starts a new muxer).
func (s *Server) forget(st *stream) {
	s.mu.Lock()
	if s.streams[st.key] == st {
		delete(s.streams, st.key)
	}
	s.mu.Unlock()
}

// Streams lists the keys of the running muxers.
func (s *Server) Streams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.streams))
	for k := range s.streams {
		keys = append(keys, k)
	}
	return keys
}

// Close stops every muxer and waits for them. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	sts := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		sts = append(sts, st)
	}
	s.mu.Unlock()
	for _, st := range sts {
		st.halt()
	}
	s.wg.Wait()
}

// fileWriter rewrites gohlslib's Cache-Control for playlists (they change every part or segment:
// no-cache) and notes whether anything was written (gohlslib answers nothing for an unknown file).
type fileWriter struct {
	http.ResponseWriter
	playlist bool
	wrote    bool
}

func (w *fileWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if w.playlist && code == http.StatusOK {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fileWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *fileWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
