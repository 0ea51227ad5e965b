package calls

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Config configures a Server. The zero value is valid: every field documents its default.
type Config struct {
	// Mode is calls.mode: "" or "p2p" (media peer to peer). "sfu" is refused with ErrMode (not built).
	Mode string
	// HeartbeatTimeout drops a connection silent this long (no message, no pong); pings go out every
	// third of it. Default 30s.
	HeartbeatTimeout time.Duration
	// MaxMessage bounds one websocket message in bytes; a larger one closes the connection (1009).
	// Default 65536.
	MaxMessage int
	// RateLimit is the sustained rate of client messages per second (token bucket). Default 20.
	RateLimit float64
	// RateBurst is the bucket size (a browser sends its ICE candidates in a burst). Default 100.
	RateBurst int
	// WriteTimeout bounds each socket write. Default 2s.
	WriteTimeout time.Duration
	// MaxConnections bounds the open websockets (limits.max_connections.websocket); more get 503.
	// Default 0: unlimited.
	MaxConnections int
	// Origin is the allowed Origin of the upgrade request: "" means same host only (gorilla's
	// check), "*" any origin, otherwise that exact origin (e.g. "https://app.example.com").
	Origin string
}

// Deps are the Server's collaborators, all optional.
type Deps struct {
	Logger *slog.Logger
	// ICEServers returns the ICE servers for one client (TURN credentials made for user, the client's
	// id); they go out in "joined". Nil: none.
	ICEServers func(r *http.Request, user string) []ICEServer
}

// Server serves the websocket signaling. Create it with New, mount it with Register, end it with Close.
type Server struct {
	cfg      Config
	log      *slog.Logger
	ice      func(r *http.Request, user string) []ICEServer
	upgrader websocket.Upgrader

	mu     sync.Mutex
	closed bool               // guarded by mu
	conns  map[*conn]struct{} // guarded by mu
	active int                // admitted handlers (upgrading or connected); guarded by mu
	rooms  map[string]*room   // guarded by mu
	wg     sync.WaitGroup     // admitted handlers
}

// room is up to two peers; it exists while it has one.
type room struct {
	name  string
	peers []*conn // guarded by Server.mu; join order
}

// maxRoomPeers is the size of a call.
const maxRoomPeers = 2

// New makes a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Mode != "" && cfg.Mode != "p2p" {
		return nil, fmt.Errorf("%w: %q (only p2p is built)", ErrMode, cfg.Mode)
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 30 * time.Second
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 65536
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 20
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 100
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, log: log.With("component", "calls"), ice: deps.ICEServers,
		conns: map[*conn]struct{}{}, rooms: map[string]*room{},
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		CheckOrigin:      s.checkOrigin,
	}
	return s, nil
}

// Register adds GET /ws/call to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /ws/call", s.handleWS)
}

// Close ends every connection (close frame 1001 "server shutting down") and waits for their
// goroutines. Later upgrades get 503. Idempotent. It is the websocket shutdown hook: http.Server's
// Shutdown does not track hijacked connections.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	list := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		c.stop(websocket.CloseGoingAway, "server shutting down")
	}
	s.wg.Wait()
}

// Rooms is the number of rooms with at least one peer.
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Conns is the number of websockets admitted and not yet fully closed.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	switch {
	case origin == "" || s.cfg.Origin == "*":
		return true
	case s.cfg.Origin != "":
		return strings.EqualFold(origin, s.cfg.Origin)
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// ValidRoom reports whether name is a room name: 1 to 64 characters of [A-Za-z0-9_.-].
func ValidRoom(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	roomName := r.URL.Query().Get("room")
	if !ValidRoom(roomName) {
		http.Error(w, ErrBadRoom.Error(), http.StatusBadRequest)
		return
	}
	if err := s.admit(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.release()
	ws, err := s.upgrader.Upgrade(w, r, nil) // answers the HTTP error itself
	if err != nil {
		s.log.Debug("upgrade", "remote_addr", r.RemoteAddr, "err", err)
		return
	}
	c := newConn(s, ws, roomName, r)
	if !s.track(c) {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "server shutting down"), time.Now().Add(s.cfg.WriteTimeout))
		_ = ws.Close()
		return
	}
	defer s.untrack(c)
	c.run(r)
}

// admit reserves a connection slot (refused when the server is closed or full); release frees it.
// Close waits for every admitted handler.
func (s *Server) admit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.cfg.MaxConnections > 0 && s.active >= s.cfg.MaxConnections {
		return fmt.Errorf("too many websocket connections (%d)", s.active)
	}
	s.active++
	s.wg.Add(1)
	return nil
}

func (s *Server) release() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.wg.Done()
}

// track makes c visible to Close; false when the server closed meanwhile.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// join puts c into its room and queues "joined" to c and "peer-joined" to the peer already there,
// all under s.mu so every peer sees the room's events in one order. ErrRoomFull when it holds two.
func (s *Server) join(c *conn, ice []ICEServer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[c.room]
	if r == nil {
		r = &room{name: c.room}
		s.rooms[c.room] = r
	}
	if len(r.peers) >= maxRoomPeers {
		return fmt.Errorf("%w: room %q already has %d peers", ErrRoomFull, c.room, len(r.peers))
	}
	peers := make([]Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, Peer{ID: p.id, Name: p.name})
	}
	r.peers = append(r.peers, c)
	c.send(Encode(Message{Type: TypeJoined, ID: c.id, Peers: &peers, ICEServers: ice}))
	note := Encode(Message{Type: TypePeerJoined, Peer: &Peer{ID: c.id, Name: c.name}})
	for _, p := range r.peers[:len(r.peers)-1] {
		p.send(note)
	}
	return nil
}

// leave takes c out of its room (if it joined), tells the other peer "peer-left" and removes the
// room when it is empty.
func (s *Server) leave(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[c.room]
	if r == nil {
		return
	}
	i := -1
	for k, p := range r.peers {
		if p == c {
			i = k
		}
	}
	if i < 0 {
		return
	}
	r.peers = append(r.peers[:i], r.peers[i+1:]...)
	if len(r.peers) == 0 {
		delete(s.rooms, c.room)
		return
	}
	note := Encode(Message{Type: TypePeerLeft, ID: c.id})
	for _, p := range r.peers {
		p.send(note)
	}
}

// relay queues frame to the other peers of c's room; false when c is alone.
func (s *Server) relay(c *conn, frame []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[c.room]
	if r == nil {
		return false
	}
	sent := false
	for _, p := range r.peers {
		if p != c {
			p.send(frame)
			sent = true
		}
	}
	return sent
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
