package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gortmp "github.com/yutopp/go-rtmp"

	"github.com/estuary-media/estuary/sfu"
)

// Config configures the RTMP server. The zero value is valid: every field documents its default.
type Config struct {
	// ChunkSize is the chunk size of what the server sends (play; used by a later issue). Default 4096.
	ChunkSize int
	// MaxMessageSize bounds a message a client may send (rtmp.max_message_size). Default 8 MiB.
	MaxMessageSize int
	// MaxChunkStreams bounds the chunk streams a client may open. Default 32.
	MaxChunkStreams int
	// NoMediaTimeout closes a publisher that sent no media for this long, and any connection that sent
	// nothing at all for this long. Default 10s.
	NoMediaTimeout time.Duration
	// HeaderWait is how long a publish waits for the second kind of sequence header (audio or video)
	// once the first arrived, unless onMetaData said that kind is absent. Default 1s.
	HeaderWait time.Duration
	// NodeID is this node's ID (for logs and later for play URLs).
	NodeID string
	// BFrames is webrtc.bframes for H.264: "keep" (default here; WebRTC viewers get B-frames as they
	// are) or "drop": the publication also has a "video-webrtc" track (sfu.TrackInfo.Variant
	// "webrtc", declared before "video", its own SSRC) with every B slice dropped and the SPS
	// rewritten to announce no reordering (Chromium then plays at the rate of the I and P pictures,
	// where with B-frames it decodes about one picture per second). WebRTC viewers take the variant;
	// FLV/HLS, RTMP play and relays keep the original "video" track with its B-frames.
	BFrames string
	// Takeover mirrors sfu.takeover: when set, a publish of a live key is not refused up front (the hub
	// decides).
	Takeover bool
}

func (c *Config) norm() {
	if c.ChunkSize <= 0 {
		c.ChunkSize = 4096
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 8 << 20
	}
	c.MaxMessageSize = min(c.MaxMessageSize, 0xffffff)
	if c.MaxChunkStreams <= 0 {
		c.MaxChunkStreams = 32
	}
	if c.NoMediaTimeout <= 0 {
		c.NoMediaTimeout = 10 * time.Second
	}
	if c.HeaderWait <= 0 {
		c.HeaderWait = time.Second
	}
	if c.BFrames == "" {
		c.BFrames = "keep"
	}
}

// Deps are the server's collaborators.
type Deps struct {
	// Hub receives the publications (required).
	Hub *sfu.Hub
	// Logger; nil discards.
	Logger *slog.Logger
	// Admit, when set, is asked after each connect whether the connection may stay (e.g.
	// limits.max_connections.rtmp); release is called once when the admitted connection closes. An
	// error refuses it: an error onStatus (NetConnection.Connect.Rejected) carries err's text as the
	// description, then the connection closes. Nil admits all.
	Admit func() (release func(), err error)
	// Transcode, when set, is called after a publication with an AAC track starts; it makes the Opus
	// "audio" track's packets (bridge/audio.AttachOpus) and returns a stop function called when the
	// publication ends. Nil: no Opus track is declared for AAC streams.
	Transcode func(pub *sfu.Publication) (stop func())
	// Play, when set, serves RTMP play: it subscribes a viewer (bridge/flv.Server.Subscribe) to key
	// for a player at remoteAddr; an error wrapping sfu.ErrStreamNotFound answers
	// NetStream.Play.StreamNotFound. Nil: play is refused.
	Play func(ctx context.Context, key, remoteAddr string) (Viewer, error)
	// Authorizer, when set, decides each publish and play (token from `?token=` in the stream name
	// or tcUrl); a refusal answers an error onStatus with the reason and closes. Nil allows all.
	Authorizer sfu.Authorizer
}

// Server accepts RTMP connections and publishes their streams into the hub.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	ctx    context.Context // canceled by Shutdown
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool                  // guarded by mu
	servers  []*gortmp.Server      // guarded by mu
	sessions map[*session]struct{} // guarded by mu
	wg       sync.WaitGroup        // one per connection
	conns    atomic.Int64
}

// New makes a server.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Hub == nil {
		return nil, ErrNoHub
	}
	if cfg.BFrames != "" && cfg.BFrames != "keep" && cfg.BFrames != "drop" {
		return nil, fmt.Errorf("rtmp: bframes %q: want keep or drop", cfg.BFrames)
	}
	cfg.norm()
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:      cfg,
		deps:     deps,
		log:      log.With("component", "rtmp"),
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[*session]struct{}),
	}, nil
}

// Serve accepts connections on ln until Shutdown; it then returns ErrServerClosed. It may be called for
// several listeners.
func (s *Server) Serve(ln net.Listener) error {
	gl := &listener{Listener: ln, done: make(chan struct{})}
	srv := gortmp.NewServer(&gortmp.ServerConfig{OnConnect: s.onConnect})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	s.log.Info("rtmp listening", "addr", ln.Addr().String())
	err := srv.Serve(gl)
	if errors.Is(err, gortmp.ErrClosed) {
		return ErrServerClosed
	}
	return fmt.Errorf("rtmp serve: %w", err)
}

// Shutdown stops accepting, closes every connection (ending their publications) and waits for their
// goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.servers = nil
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	s.cancel()
	for _, srv := range servers {
		_ = srv.Close()
	}
	for _, ss := range sessions {
		ss.closeConn()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connections is the number of open connections.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// onConnect runs in go-rtmp's connection goroutine, before the handshake.
func (s *Server) onConnect(nc net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
	s.wg.Add(1)
	s.conns.Add(1)
	// go-rtmp flushes its writer after every chunk: one chunk of ours (and the 3 KiB handshake) fits.
	wbuf := max(4<<10, s.cfg.ChunkSize+64)
	c := &conn{Conn: nc, idle: s.cfg.NoMediaTimeout, turn: make(chan struct{}, 1), wbuf: wbuf,
		guard: newChunkGuard(uint32(s.cfg.MaxMessageSize), s.cfg.MaxChunkStreams)}
	ss := newSession(s, c)
	c.onClose = func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		ss.releaseAdmission()
		s.conns.Add(-1)
		s.wg.Done()
	}
	s.mu.Lock()
	closed := s.closed
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	if closed {
		_ = nc.Close()
	}
	return c, &gortmp.ConnConfig{
		Handler:          ss,
		ReaderBufferSize: 16 << 10,
		WriterBufferSize: wbuf,
		ControlState: gortmp.StreamControlStateConfig{
			MaxChunkStreams:   s.cfg.MaxChunkStreams,
			MaxMessageSize:    uint32(s.cfg.MaxMessageSize),
			MaxMessageStreams: 8,
		},
		Logger: newLogrus(ss.log),
	}
}

// listener retries temporary Accept errors with a backoff (go-rtmp spins on them) and stops when closed.
type listener struct {
	net.Listener
	once sync.Once
	done chan struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		select {
		case <-l.done:
			return nil, err
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-l.done:
			t.Stop()
			return nil, err
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// conn wraps a client connection: read deadline (idle), write deadline, the chunk guard, the write
// turn and the close notification.
//
// go-rtmp's Conn.Write is not safe for concurrent use (one shared message encoder), and an RTMP play
// writes from its own goroutine: the write turn serializes them. The connection goroutine holds the
// turn from the moment a Read returns (it may answer what it read) until its next Read; other writers
// take it (takeTurn) for each message.
type conn struct {
	net.Conn
	idle     time.Duration // 0: no read deadline (players)
	turn     chan struct{}
	held     bool // the connection goroutine holds the turn
	guard    *chunkGuard
	lastArm  time.Time
	guardErr error
	onClose  func()
	once     sync.Once

	// wmu makes each socket write whole: go-rtmp's (one chunk per Write: its buffered writer, wbuf
	// bytes, is flushed after every chunk) and a player's own (writeBuffers), which interleave at
	// chunk boundaries.
	wmu  sync.Mutex
	wbuf int
}

func (c *conn) Read(b []byte) (int, error) {
	if c.held {
		c.held = false
		c.giveTurn()
	}
	if c.guardErr != nil {
		return 0, c.guardErr
	}
	now := time.Now()
	if c.idle > 0 && now.Sub(c.lastArm) > c.idle/10 {
		c.lastArm = now
		_ = c.Conn.SetReadDeadline(now.Add(c.idle))
	}
	n, err := c.Conn.Read(b)
	c.turn <- struct{}{}
	c.held = true
	if n > 0 {
		if gerr := c.guard.feed(b[:n]); gerr != nil {
			c.guardErr = gerr
			return 0, gerr
		}
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(b)
}

// writeTimeout bounds one socket write (a player that reads nothing is closed after it).
const writeTimeout = 10 * time.Second

// writeBuffers writes whole chunks (an RTMP play's batch) in one writev, between go-rtmp's chunks.
func (c *conn) writeBuffers(b *net.Buffers) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := b.WriteTo(c.Conn)
	return err
}

// takeTurn waits for the write turn (false: ctx ended first).
func (c *conn) takeTurn(ctx context.Context) bool {
	select {
	case c.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *conn) giveTurn() { <-c.turn }

// Close is called once by go-rtmp when the connection's goroutine ends.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}
