package cascade

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// pliInterval rate-limits the keyframe requests a relay sends upstream, per track.
const pliInterval = 300 * time.Millisecond

// trackList fetches GET {relayURL}: the stream's tracks on its origin.
func (p *Puller) trackList(relayURL, key string) ([]sfu.TrackInfo, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ConnectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, relayURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRelay, err)
	}
	p.auth(req)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRelay, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTrackList+1))
	if err != nil {
		return nil, fmt.Errorf("%w: track list: %w", ErrRelay, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s: %s", ErrRelay, relayURL, resp.Status, strings.TrimSpace(string(body)))
	}
	k, _, infos, err := DecodeTrackList(body)
	if err != nil {
		return nil, err
	}
	if k != key {
		return nil, fmt.Errorf("%w: track list of %q for %q", ErrInvalidTrackList, k, key)
	}

	return infos, nil
}

func (p *Puller) auth(req *http.Request) {
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
}

// connect sets one relay up from tg into the hub: track list, offer (one recvonly transceiver per
// track), answer, publish, then ICE and DTLS (bounded by ConnectTimeout).
func (p *Puller) connect(key string, tg target) (*relaySource, error) {
	infos, err := p.trackList(tg.url, key)
	if err != nil {
		return nil, err
	}
	pc, release, err := newRelayPC(infos, p.cfg.ListenIP)
	if err != nil {
		return nil, err
	}
	src := &relaySource{
		p: p, key: key, nodeID: tg.nodeID, relayURL: tg.url, pc: pc, release: release, id: sfu.NewClientID(), started: time.Now(),
		dead: make(chan struct{}), connected: make(chan struct{}),
	}
	if u, err := url.Parse(tg.url); err == nil {
		src.remote = u.Host
	}
	fail := func(err error) (*relaySource, error) {
		src.die()
		src.shutdown()

		return nil, err
	}
	for _, in := range infos {
		kind := webrtc.RTPCodecTypeAudio
		if in.Kind == sfu.KindVideo {
			kind = webrtc.RTPCodecTypeVideo
		}
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(fmt.Errorf("%w: transceiver: %w", ErrRelay, err))
		}
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			src.connectedOnce.Do(func() { close(src.connected) })
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			src.die()
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { src.onTrack(remote) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: offer: %w", ErrRelay, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(fmt.Errorf("%w: offer: %w", ErrRelay, err))
	}
	timer := time.NewTimer(p.cfg.ConnectTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
		return fail(fmt.Errorf("%w: ICE gathering timed out", ErrRelay))
	case <-p.ctx.Done():
		return fail(ErrClosed)
	}
	answer, location, err := p.postOffer(tg.url, pc.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	src.location = location
	hub := p.getHub()
	if hub == nil {
		return fail(ErrClosed)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ConnectTimeout)
	pub, err := hub.Publish(ctx, key, src, infos)
	cancel()
	if err != nil {
		return fail(fmt.Errorf("%w: publish: %w", ErrRelay, err))
	}
	src.pub.Store(pub)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fail(fmt.Errorf("%w: answer: %w", ErrRelay, err))
	}
	select {
	case <-src.connected:
	case <-src.dead:
		return fail(fmt.Errorf("%w: the relay session closed while connecting", ErrRelay))
	case <-timer.C:
		return fail(fmt.Errorf("%w: ICE/DTLS did not connect within %s", ErrRelay, p.cfg.ConnectTimeout))
	case <-p.ctx.Done():
		return fail(ErrClosed)
	}

	return src, nil
}

// postOffer sends the offer; it returns the answer SDP and the session's Location.
func (p *Puller) postOffer(relayURL, offer string) (answer, location string, err error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ConnectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, relayURL, strings.NewReader(offer))
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrRelay, err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	p.auth(req)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrRelay, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOfferBytes+1))
	if err != nil {
		return "", "", fmt.Errorf("%w: answer: %w", ErrRelay, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("%w: POST %s: %s: %s", ErrRelay, relayURL, resp.Status, strings.TrimSpace(string(body)))
	}
	if len(body) > maxOfferBytes || !bytes.HasPrefix(body, []byte("v=0")) {
		return "", "", fmt.Errorf("%w: POST %s: the answer is not SDP", ErrRelay, relayURL)
	}
	loc := resp.Header.Get("Location")
	if u, err := url.Parse(relayURL); err == nil && strings.HasPrefix(loc, "/") {
		loc = u.Scheme + "://" + u.Host + loc
	} else {
		loc = ""
	}

	return string(body), loc, nil
}

// relaySource is one relay pulled: the local hub's publisher of the stream (protocol "relay").
type relaySource struct {
	p        *Puller
	key      string
	nodeID   string
	relayURL string
	location string
	remote   string
	id       string
	started  time.Time
	pc       *webrtc.PeerConnection
	release  func() // the PeerConnection's UDP socket
	pub      atomic.Pointer[sfu.Publication]

	mu      sync.Mutex
	remotes []remoteTrack // guarded by mu

	readers       sync.WaitGroup
	dead          chan struct{}
	deadOnce      sync.Once
	connected     chan struct{}
	connectedOnce sync.Once
	shutOnce      sync.Once
}

// remoteTrack is a received track: its SSRC (for PLIs) and when a keyframe was last asked.
type remoteTrack struct {
	id      string
	ssrc    uint32
	lastPLI *atomic.Int64
}

var _ sfu.Publisher = (*relaySource)(nil)

func (s *relaySource) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: s.id, Protocol: RelayProtocol, RemoteAddr: s.remote, Started: s.started}
}

// Close is called by the hub (shutdown, takeover): the relay comes down.
func (s *relaySource) Close() error {
	s.die()

	return nil
}

// RequestKeyframe sends a PLI upstream for the track, at most one per pliInterval.
func (s *relaySource) RequestKeyframe(trackID string) {
	s.mu.Lock()
	var rt remoteTrack
	for _, r := range s.remotes {
		if r.id == trackID {
			rt = r
		}
	}
	s.mu.Unlock()
	if rt.lastPLI == nil {
		return
	}
	now := time.Now().UnixNano()
	last := rt.lastPLI.Load()
	if now-last < int64(pliInterval) || !rt.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: rt.ssrc}})
}

// onTrack feeds a received track into the publication's track of the same ID.
func (s *relaySource) onTrack(remote *webrtc.TrackRemote) {
	pub := s.pub.Load()
	if pub == nil {
		return
	}
	t := pub.Track(remote.ID())
	if t == nil {
		for _, c := range pub.Tracks() { // an origin that names tracks otherwise: match the codec
			if strings.EqualFold(c.Codec().MimeType, remote.Codec().MimeType) {
				t = c

				break
			}
		}
	}
	if t == nil {
		s.p.log.Warn("relay track matches no published track", "stream", s.key, "track_id", remote.ID(), "codec", remote.Codec().MimeType)

		return
	}
	s.mu.Lock()
	s.remotes = append(s.remotes, remoteTrack{id: t.ID(), ssrc: uint32(remote.SSRC()), lastPLI: new(atomic.Int64)})
	s.mu.Unlock()
	if t.Kind() == sfu.KindVideo && t.Writers() > 0 {
		s.RequestKeyframe(t.ID())
	}
	s.readers.Add(1)
	go func() {
		defer s.readers.Done()
		_ = rtc.ReadTrack(remote, t)
	}()
}

// die marks the relay dead (non-blocking, idempotent); the pull's loop then shuts it down.
func (s *relaySource) die() {
	s.deadOnce.Do(func() { close(s.dead) })
}

// shutdown ends the publication (the stream enters its grace period), closes the PeerConnection,
// waits for the readers and tells the origin (best effort). Idempotent.
func (s *relaySource) shutdown() {
	s.shutOnce.Do(func() {
		if pub := s.pub.Load(); pub != nil {
			pub.Close()
		}
		_ = s.pc.Close()
		s.release()
		s.readers.Wait()
		if s.location == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
		if err != nil {
			return
		}
		s.p.auth(req)
		if resp, err := s.p.client.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	})
}
