package signaling

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// Config configures a Server. The zero value is valid: every field documents its default.
type Config struct {
	// NodeID is this node's ID, the {node_id} of session URLs (/n/{node_id}/whip/{id}). Default: the
	// host name.
	NodeID string
	// ICEServers are announced to WHIP/WHEP clients in Link headers. Default: the engine's
	// ICEServers (Deps.ICEServers, when set, overrides both per request).
	ICEServers []webrtc.ICEServer
	// CORS is the Access-Control-Allow-Origin value. Default "*".
	CORS string
	// NoCORS turns CORS headers off (http.cors: "" — e.g. behind a proxy that adds its own).
	NoCORS bool
	// MaxSDP bounds request bodies (SDP, sdpfrag, SRS JSON). Default 64 KiB.
	MaxSDP int64
	// GatherTimeout bounds the wait for ICE gathering before answering. Default 3s.
	GatherTimeout time.Duration
	// MaxSessions bounds the live WebRTC sessions (limits.max_connections.webrtc); more answer 503.
	// Default 0: unlimited.
	MaxSessions int
	// ConnectTimeout closes a session whose PeerConnection has not connected this long after the
	// answer (a client that never sets the answer or cannot reach us). Default 20s.
	ConnectTimeout time.Duration
	// BindWait is how long a viewer's track waits for DTLS before it starts dropping (so the cached
	// GOP is not lost while the connection comes up). Default 10s.
	BindWait time.Duration
}

// Deps are the Server's collaborators. Hub and Engine are required.
type Deps struct {
	Hub    *sfu.Hub
	Engine *rtc.Engine
	Logger *slog.Logger
	// ICEServers, when set, returns the ICE servers for one request (time-limited TURN credentials).
	ICEServers func(r *http.Request) []webrtc.ICEServer
	// Authorizer, when set, decides each WHIP/WHEP/SRS publish and play (Bearer token, or the
	// SRS streamurl's ?token=); refusals answer 401/403 (SRS: an error code). Nil allows all.
	Authorizer sfu.Authorizer
	// Writers, when set, drains viewers' DownTracks once their tracks are up (sfu.WriterPool),
	// instead of a goroutine per track. The caller closes it after the Server.
	Writers *sfu.WriterPool
}

// Server serves WHIP, WHEP, their session resources and the SRS RTC API.
type Server struct {
	cfg    Config
	hub    *sfu.Hub
	engine *rtc.Engine
	log    *slog.Logger
	ice    func(r *http.Request) []webrtc.ICEServer
	auth   sfu.Authorizer
	pool   *sfu.WriterPool

	mu       sync.Mutex
	closed   bool                // guarded by mu
	sessions map[string]*session // by resource ID; guarded by mu
	wg       sync.WaitGroup      // teardown goroutines (see spawn)
	nacks    atomic.Uint64       // packets asked for by viewers' NACKs (NACKs)
}

// New makes a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Hub == nil || deps.Engine == nil {
		return nil, errors.New("signaling: Deps.Hub and Deps.Engine are required")
	}
	if cfg.NodeID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "estuary"
		}
		cfg.NodeID = h
	}
	if cfg.CORS == "" {
		cfg.CORS = "*"
	}
	if cfg.MaxSDP <= 0 {
		cfg.MaxSDP = 64 << 10
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 3 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	if cfg.BindWait <= 0 {
		cfg.BindWait = 10 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, hub: deps.Hub, engine: deps.Engine, log: log.With("component", "signaling"),
		ice: deps.ICEServers, sessions: map[string]*session{}, auth: deps.Authorizer, pool: deps.Writers,
	}
	if s.ice == nil {
		servers := cfg.ICEServers
		if servers == nil {
			servers = deps.Engine.ICEServers()
		}
		s.ice = func(*http.Request) []webrtc.ICEServer { return servers }
	}

	return s, nil
}

// Register adds the server's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /whip/{app}/{stream}", s.handleWHIP)
	mux.HandleFunc("POST /whep/{app}/{stream}", s.handleWHEP)
	mux.HandleFunc("OPTIONS /whip/{app}/{stream}", s.handleOptionsPost)
	mux.HandleFunc("OPTIONS /whep/{app}/{stream}", s.handleOptionsPost)
	for _, kind := range []string{"whip", "whep"} {
		p := "/n/{node}/" + kind + "/{id}"
		mux.HandleFunc("PATCH "+p, s.handlePatch)
		mux.HandleFunc("DELETE "+p, s.handleDelete)
		mux.HandleFunc("OPTIONS "+p, s.handleOptionsResource)
	}
	// SRS 5's WHIP endpoints (its players and pages use them): the key comes from ?app=&stream=.
	mux.HandleFunc("POST /rtc/v1/whip/{$}", s.handleSRSWHIP)
	mux.HandleFunc("POST /rtc/v1/whip-play/{$}", s.handleSRSWHEP)
	mux.HandleFunc("OPTIONS /rtc/v1/whip/{$}", s.handleOptionsPost)
	mux.HandleFunc("OPTIONS /rtc/v1/whip-play/{$}", s.handleOptionsPost)
	for _, p := range []string{"/rtc/v1/publish/", "/rtc/v1/play/"} {
		mux.HandleFunc("POST "+p+"{$}", s.handleSRS)
		mux.HandleFunc("POST "+strings.TrimSuffix(p, "/"), s.handleSRS)
		mux.HandleFunc("OPTIONS "+p+"{$}", s.handleOptionsSRS)
		mux.HandleFunc("OPTIONS "+strings.TrimSuffix(p, "/"), s.handleOptionsSRS)
	}
}

// Close ends every session (closing its PeerConnection) and waits for them. Later requests get 503.
// Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	for _, ss := range list {
		ss.teardown()
	}
	s.wg.Wait()
}

// Sessions is the number of live sessions (WHIP, WHEP and SRS API).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()

	return len(s.sessions)
}

// spawn runs f on a goroutine Close waits for; false (f not run) once the server is closed.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()

	return true
}

// admit refuses a new session when the server is closed or full.
func (s *Server) admit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.cfg.MaxSessions > 0 && len(s.sessions) >= s.cfg.MaxSessions {
		return fmt.Errorf("%w: %d sessions", ErrTooManySessions, len(s.sessions))
	}

	return nil
}

func (s *Server) add(ss *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.sessions[ss.id] = ss

	return nil
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
}

func (s *Server) lookup(node, id string) (*session, error) {
	if node != s.cfg.NodeID {
		return nil, fmt.Errorf("%w: node %q is not this node", ErrSessionNotFound, node)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[id]
	if ss == nil {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}

	return ss, nil
}

// newResourceID returns an unguessable session resource ID (the session URL is its capability).
func newResourceID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])

	return hex.EncodeToString(b[:])
}

// checkContentType returns ErrContentType unless the request's media type is want.
func checkContentType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, want) {
		return fmt.Errorf("%w: %q, want %s", ErrContentType, r.Header.Get("Content-Type"), want)
	}

	return nil
}

// readBody reads the request body, at most Config.MaxSDP bytes (ErrTooLarge beyond).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxSDP))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, mbe.Limit)
		}

		return nil, fmt.Errorf("%w: reading body: %w", ErrBadRequest, err)
	}

	return body, nil
}

// cors sets the CORS response headers.
func (s *Server) cors(w http.ResponseWriter) {
	if s.cfg.NoCORS {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", s.cfg.CORS)
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Accept-Post")
}

func (s *Server) corsPreflight(w http.ResponseWriter, methods string) {
	if s.cfg.NoCORS {
		return
	}
	s.cors(w)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
	h.Set("Access-Control-Max-Age", "86400")
}

// writeError answers err with StatusFor(err) and the error text as the reason.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusFor(err)
	lvl := slog.LevelInfo
	if code >= 500 {
		lvl = slog.LevelWarn
	}
	s.log.LogAttrs(r.Context(), lvl, "request refused", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", code), slog.String("remote_addr", r.RemoteAddr),
		slog.String("err", err.Error()))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, err.Error()+"\n")
}

// linkHeaders adds one Link: <url>; rel="ice-server" per ICE server URL (RFC 9725 section 4.6).
func (s *Server) linkHeaders(w http.ResponseWriter, r *http.Request) {
	for _, v := range iceLinks(s.ice(r)) {
		w.Header().Add("Link", v)
	}
}

// iceLinks renders ICE servers as Link header values.
func iceLinks(servers []webrtc.ICEServer) []string {
	var out []string
	for _, srv := range servers {
		for _, u := range srv.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				if srv.Username != "" {
					v += `; username="` + quoteEscape(srv.Username) + `"`
				}
				if c, ok := srv.Credential.(string); ok && c != "" {
					v += `; credential="` + quoteEscape(c) + `"; credential-type="password"`
				}
			}
			out = append(out, v)
		}
	}

	return out
}

func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

func (s *Server) handleOptionsPost(w http.ResponseWriter, r *http.Request) {
	s.corsPreflight(w, "POST, OPTIONS")
	w.Header().Set("Accept-Post", "application/sdp")
	s.linkHeaders(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleOptionsResource(w http.ResponseWriter, r *http.Request) {
	s.corsPreflight(w, "PATCH, DELETE, OPTIONS")
	w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleOptionsSRS(w http.ResponseWriter, _ *http.Request) {
	s.corsPreflight(w, "POST, OPTIONS")
	w.WriteHeader(http.StatusNoContent)
}

// streamKey builds and checks "{app}/{stream}".
func streamKey(app, stream string) (string, error) {
	key := app + "/" + stream
	if !sfu.ValidKey(key) {
		return "", fmt.Errorf("%w: %q (want {app}/{stream}, each [A-Za-z0-9_.-]+, no \"..\")", sfu.ErrInvalidKey, key)
	}

	return key, nil
}
