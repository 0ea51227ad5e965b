package cascade

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// RelayConfig configures the relay egress (NewRelay). The zero value is valid.
type RelayConfig struct {
	// NodeID is this node's node_id (named in track lists).
	NodeID string
	// Token is cluster.token: requests must carry "Authorization: Bearer {Token}", else 401. Default
	// "": no authentication (a trusted network only).
	Token string
	// ListenIP is the address the relay's ICE candidates use (webrtc.listen_ip); "" = every interface.
	ListenIP string
	// AnswerTimeout bounds the answer's ICE gathering. Default 5s.
	AnswerTimeout time.Duration
}

// RelayDeps are the relay egress's collaborators. Hub is required.
type RelayDeps struct {
	Hub    *sfu.Hub
	Logger *slog.Logger
}

// Relay is the relay egress: other nodes pull the streams published on this node with
// POST /relay/v1/{app}/{stream} (a WHEP-like SDP offer with one recvonly transceiver per track, as
// listed by GET /relay/v1/{app}/{stream}); the answer sends every track as it is on this node (AAC as
// audio/mpeg4-generic included). Only streams with a live non-relay publisher here are served (404
// otherwise), so relays never loop.
type Relay struct {
	cfg RelayConfig
	hub *sfu.Hub
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*relaySession // by client id; guarded by mu
	closed   bool                     // guarded by mu
	wg       sync.WaitGroup
}

// maxOfferBytes bounds a relay offer.
const maxOfferBytes = 64 << 10

// NewRelay makes the relay egress. deps.Hub is required.
func NewRelay(cfg RelayConfig, deps RelayDeps) (*Relay, error) {
	if deps.Hub == nil {
		return nil, fmt.Errorf("%w: relay needs a hub", ErrInvalidConfig)
	}
	if cfg.AnswerTimeout <= 0 {
		cfg.AnswerTimeout = 5 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	return &Relay{cfg: cfg, hub: deps.Hub, log: log.With("component", "relay"), sessions: map[string]*relaySession{}}, nil
}

// Register adds the relay's routes to mux.
func (r *Relay) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /relay/v1/{app}/{stream}", r.handleTracks)
	mux.HandleFunc("POST /relay/v1/{app}/{stream}", r.handleOffer)
	mux.HandleFunc("DELETE /relay/v1/{app}/{stream}/{id}", r.handleDelete)
}

// RelayServed is what the API shows of the relays this node serves.
type RelayServed struct {
	Key    string `json:"key"`
	Relays int    `json:"relays"`
}

// Served returns, per stream, the number of relay sessions served, sorted by key.
func (r *Relay) Served() []RelayServed {
	r.mu.Lock()
	n := map[string]int{}
	for _, s := range r.sessions {
		n[s.key]++
	}
	r.mu.Unlock()
	out := make([]RelayServed, 0, len(n))
	for k, c := range n {
		out = append(out, RelayServed{Key: k, Relays: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })

	return out
}

// Close ends every relay session and waits for their goroutines. Idempotent.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	ss := make([]*relaySession, 0, len(r.sessions))
	for _, s := range r.sessions {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	for _, s := range ss {
		s.end()
	}
	r.wg.Wait()
}

func (r *Relay) authorized(req *http.Request) bool {
	if r.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")

	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(r.cfg.Token)) == 1
}

// localTracks returns the tracks of key when a non-relay publisher publishes it on this node.
func (r *Relay) localTracks(key string) ([]*sfu.Track, bool) {
	st := r.hub.Stream(key)
	if st == nil {
		return nil, false
	}
	pub := st.Publisher()
	if pub == nil || pub.Info().Protocol == RelayProtocol {
		return nil, false
	}
	ts := st.Tracks()

	return ts, len(ts) > 0
}

// prelude checks the token and the key; it answers the error itself (false).
func (r *Relay) prelude(w http.ResponseWriter, req *http.Request) (string, []*sfu.Track, bool) {
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="estuary relay"`)
		http.Error(w, "relay: missing or wrong cluster token", http.StatusUnauthorized)

		return "", nil, false
	}
	key := req.PathValue("app") + "/" + req.PathValue("stream")
	if !sfu.ValidKey(key) {
		http.Error(w, "relay: invalid stream key", http.StatusBadRequest)

		return "", nil, false
	}
	tracks, ok := r.localTracks(key)
	if !ok {
		http.Error(w, "relay: stream "+key+" is not published on node "+r.cfg.NodeID, http.StatusNotFound)

		return "", nil, false
	}

	return key, tracks, true
}

func infosOf(tracks []*sfu.Track) []sfu.TrackInfo {
	out := make([]sfu.TrackInfo, 0, len(tracks))
	for _, t := range tracks {
		out = append(out, t.Info())
	}

	return out
}

// handleTracks answers GET /relay/v1/{app}/{stream}: the stream's track list.
func (r *Relay) handleTracks(w http.ResponseWriter, req *http.Request) {
	key, tracks, ok := r.prelude(w, req)
	if !ok {
		return
	}
	b, err := EncodeTrackList(key, r.cfg.NodeID, infosOf(tracks))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)

		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// handleOffer answers POST /relay/v1/{app}/{stream}: a relay session sending every track.
func (r *Relay) handleOffer(w http.ResponseWriter, req *http.Request) {
	key, tracks, ok := r.prelude(w, req)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxOfferBytes+1))
	if err != nil || len(body) == 0 || len(body) > maxOfferBytes {
		http.Error(w, "relay: missing or oversized SDP offer", http.StatusBadRequest)

		return
	}
	s, answer, err := r.open(req.Context(), key, infosOf(tracks), string(body), req.RemoteAddr)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, errBadOffer):
			code = http.StatusBadRequest
		case errors.Is(err, sfu.ErrStreamNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrClosed), errors.Is(err, sfu.ErrClosed):
			code = http.StatusServiceUnavailable
		}
		r.log.Info("relay refused", "stream", key, "remote_addr", req.RemoteAddr, "err", err)
		http.Error(w, err.Error(), code)

		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/relay/v1/"+key+"/"+s.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// handleDelete ends a relay session (the puller stops pulling).
func (r *Relay) handleDelete(w http.ResponseWriter, req *http.Request) {
	if !r.authorized(req) {
		http.Error(w, "relay: missing or wrong cluster token", http.StatusUnauthorized)

		return
	}
	r.mu.Lock()
	s := r.sessions[req.PathValue("id")]
	r.mu.Unlock()
	if s == nil || s.key != req.PathValue("app")+"/"+req.PathValue("stream") {
		http.Error(w, "relay: no such session", http.StatusNotFound)

		return
	}
	s.end()
	w.WriteHeader(http.StatusNoContent)
}

// goEnd ends s from a goroutine of its own (callers that must not block).
func (r *Relay) goEnd(s *relaySession) {
	if s.ending.Load() {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		s.end()
	}()
}

var errBadOffer = errors.New("bad relay offer")

// open negotiates a relay session and subscribes it to key.
func (r *Relay) open(ctx context.Context, key string, infos []sfu.TrackInfo, offer, remote string) (*relaySession, string, error) {
	pc, release, err := newRelayPC(infos, r.cfg.ListenIP)
	if err != nil {
		return nil, "", err
	}
	s := &relaySession{r: r, key: key, pc: pc, release: release, id: sfu.NewClientID(), remote: remote, started: time.Now(), done: make(chan struct{})}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		_ = pc.Close()
		release()

		return nil, "", fmt.Errorf("%w: %w", errBadOffer, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = pc.Close()
		release()

		return nil, "", ErrClosed
	}
	r.sessions[s.id] = s
	r.mu.Unlock()
	fail := func(err error) (*relaySession, string, error) {
		s.end()

		return nil, "", err
	}
	unsub, err := r.hub.Subscribe(ctx, key, s)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	s.unsub = unsub
	s.answered = true
	outs := s.outs
	s.mu.Unlock()
	if len(outs) == 0 {
		return fail(fmt.Errorf("%w: no track could be sent", errBadOffer))
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
			s.r.goEnd(s)
		}
	})
	for _, o := range outs {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			readRelayRTCP(o)
		}()
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", errBadOffer, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(fmt.Errorf("%w: %w", errBadOffer, err))
	}
	t := time.NewTimer(r.cfg.AnswerTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		return fail(fmt.Errorf("%w: ICE gathering timed out", ErrRelay))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	names := make([]string, 0, len(outs))
	for _, o := range outs {
		names = append(names, o.track.ID()+"="+o.track.Codec().MimeType)
	}
	r.log.Info("relay session", "stream", key, "client_id", s.id, "remote_addr", remote, "tracks", strings.Join(names, " "))

	return s, pc.LocalDescription().SDP, nil
}

// readRelayRTCP drains one sender's RTCP: PLI and FIR become keyframe requests, NACKs are answered
// from the track's shared retransmission history (rtc.LocalTrack.RetransmitNACK).
func readRelayRTCP(o *relayOut) {
	for {
		pkts, _, err := o.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				o.track.RequestKeyframe()
			case *rtcp.TransportLayerNack:
				o.local.RetransmitNACK(o.down, p)
			}
		}
	}
}

// relaySession is one relay served: an sfu.Subscriber sending every track of a stream to a puller.
type relaySession struct {
	r       *Relay
	key     string
	id      string
	remote  string
	started time.Time
	pc      *webrtc.PeerConnection
	release func() // the PeerConnection's UDP socket

	mu       sync.Mutex
	outs     []*relayOut // guarded by mu
	answered bool        // guarded by mu: no track is added after the answer
	unsub    func()      // guarded by mu
	once     sync.Once
	ending   atomic.Bool // end has begun
	done     chan struct{}
}

// relayOut is one track sent over a relay.
type relayOut struct {
	track  *sfu.Track
	local  *rtc.LocalTrack
	down   *sfu.DownTrack
	sender *webrtc.RTPSender
}

var _ sfu.Subscriber = (*relaySession)(nil)

func (s *relaySession) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: s.id, Protocol: RelayProtocol, RemoteAddr: s.remote, Started: s.started}
}

// AddTrack sends t on the next free transceiver of its kind (the puller offered them in track order).
func (s *relaySession) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answered {
		return nil, sfu.ErrTrackSkipped
	}
	info := t.Info()
	local := rtc.NewLocalTrack(info, rtc.LocalTrackOptions{StreamID: "estuary", BindWait: 2 * time.Second})
	sender, err := s.pc.AddTrack(local)
	if err != nil {
		return nil, sfu.ErrTrackSkipped
	}
	down := sfu.NewDownTrack(t, local, sfu.DownTrackOptions{Logger: s.r.log})
	s.outs = append(s.outs, &relayOut{track: t, local: local, down: down, sender: sender})

	return down, nil
}

// Close ends the session (the hub calls it when the stream ends). It does not block for long.
func (s *relaySession) Close() error {
	s.r.goEnd(s)

	return nil
}

// end tears the session down once: unsubscribe, stop the writers, close the PeerConnection.
func (s *relaySession) end() {
	s.once.Do(func() {
		s.ending.Store(true)
		s.mu.Lock()
		unsub, outs := s.unsub, s.outs
		s.answered = true
		s.mu.Unlock()
		if unsub != nil {
			unsub()
		}
		for _, o := range outs {
			o.local.Close()
			_ = o.down.Close()
		}
		_ = s.pc.Close()
		s.release()
		s.r.mu.Lock()
		delete(s.r.sessions, s.id)
		s.r.mu.Unlock()
		close(s.done)
		s.r.log.Info("relay session ended", "stream", s.key, "client_id", s.id, "remote_addr", s.remote)
	})
}
