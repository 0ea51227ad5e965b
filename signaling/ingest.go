package signaling

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// whipSession is a session as an sfu.Publisher.
type whipSession struct{ *session }

var _ sfu.Publisher = whipSession{}

// RequestKeyframe queues a PLI for the track's remote SSRC. Never blocks.
func (w whipSession) RequestKeyframe(trackID string) {
	select {
	case w.kf <- trackID:
	default:
	}
}

// publishWriter guards the publication's track: once the session stops, its late packets are not
// written (a returning publisher owns the same *sfu.Track).
type publishWriter struct {
	ss *session
	t  *sfu.Track
}

func (p publishWriter) WriteRTP(pkt *rtp.Packet) error {
	if p.ss.stopped.Load() {
		return sfu.ErrClosed
	}

	return p.t.WriteRTP(pkt)
}

// publish negotiates a publisher's offer (WHIP, SRS publish) and makes it the publisher of key. It
// returns the registered session and the answer SDP.
func (s *Server) publish(ctx context.Context, key, offerSDP, remoteAddr string) (*session, string, error) {
	if err := s.admit(); err != nil {
		return nil, "", err
	}
	o, err := parseOffer(offerSDP)
	if err != nil {
		return nil, "", err
	}
	chosen := map[string]webrtc.RTPCodecParameters{} // mid -> codec
	trackOf := map[string]string{}                   // mid -> track ID
	var tracks []sfu.TrackInfo
	var offered []string
	have := map[string]bool{}
	for i := range o.media {
		m := &o.media[i]
		if (m.kind != "audio" && m.kind != "video") || m.direction == "recvonly" || m.direction == "inactive" {
			continue
		}
		id, kind := "audio", sfu.KindAudio
		if m.kind == "video" {
			id, kind = "video", sfu.KindVideo
		}
		for _, c := range m.codecs {
			offered = append(offered, c.MimeType)
		}
		if have[id] {
			continue
		}
		c, ok := m.firstSupported()
		if !ok {
			continue
		}
		chosen[m.mid] = c
		trackOf[m.mid] = id
		have[id] = true
		tracks = append(tracks, sfu.TrackInfo{ID: id, Kind: kind, Codec: rtc.CodecToSFU(c.RTPCodecCapability)})
	}
	if len(tracks) == 0 {
		return nil, "", fmt.Errorf("%w: offered %s; supported: H264 (packetization-mode=1), VP8, VP9, AV1, H265, opus",
			ErrNoCodec, strings.Join(offered, ", "))
	}

	pc, err := s.engine.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	ss := s.newSession("whip", key, remoteAddr, pc)
	ss.trackOf = trackOf
	ss.kf = make(chan string, 4)
	fail := func(err error) (*session, string, error) {
		ss.teardown()

		return nil, "", err
	}
	pc.OnTrack(ss.onTrack)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadSDP, err))
	}
	for _, tr := range pc.GetTransceivers() {
		if c, ok := chosen[tr.Mid()]; ok {
			if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c}); err != nil {
				return fail(fmt.Errorf("%w: %s: %w", ErrNoCodec, c.MimeType, err))
			}
		}
	}
	pub, err := s.hub.Publish(ctx, key, whipSession{ss}, tracks)
	if err != nil {
		return fail(fmt.Errorf("publish %s: %w", key, err))
	}
	ss.pub = pub
	ss.goTracked(ss.keyframeLoop)
	ss.negMu.Lock()
	answer, err := ss.answer(ctx)
	ss.negMu.Unlock()
	if err != nil {
		return fail(err)
	}
	if err := s.add(ss); err != nil {
		return fail(err)
	}
	codecs := make([]string, 0, len(tracks))
	for _, t := range tracks {
		codecs = append(codecs, t.ID+"="+t.Codec.MimeType)
	}
	ss.log.Info("publisher accepted", "tracks", strings.Join(codecs, " "))

	return ss, answer, nil
}

// onTrack runs (on pion's goroutine) for each remote track: it feeds the publication's track until
// the track ends.
func (ss *session) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	var id string
	for _, tr := range ss.pc.GetTransceivers() {
		if tr.Receiver() == recv {
			id = ss.trackOf[tr.Mid()]
		}
	}
	if id == "" {
		return // a section we did not declare (a second video, say): pion's buffer drops its packets
	}
	t := ss.pub.Track(id)
	if t == nil || !ss.enter() {
		return
	}
	defer ss.wg.Done()
	ss.ssrcs.Store(id, uint32(remote.SSRC()))
	ss.goTracked(func() { drainRTCP(recv) })
	ss.log.Debug("publisher track", "track_id", id, "codec", remote.Codec().MimeType, "ssrc", uint32(remote.SSRC()))
	if err := rtc.ReadTrack(remote, publishWriter{ss: ss, t: t}); err != nil {
		ss.log.Debug("publisher track ended", "track_id", id, "err", err)
	}
}

// drainRTCP reads a receiver's RTCP (sender reports) so the interceptors see it.
func drainRTCP(recv *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := recv.Read(buf); err != nil {
			return
		}
	}
}

// keyframeLoop sends the PLIs RequestKeyframe queues (the hub rate-limits them).
func (ss *session) keyframeLoop() {
	for {
		select {
		case <-ss.done:
			return
		case id := <-ss.kf:
			v, ok := ss.ssrcs.Load(id)
			if !ok {
				continue
			}
			ssrc, _ := v.(uint32)
			if err := ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
				ss.log.Debug("PLI not sent", "track_id", id, "err", err)
			}
		}
	}
}
