package signaling

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// whepSession is a session as an sfu.Subscriber.
type whepSession struct{ *session }

var _ sfu.Subscriber = whepSession{}

// outTrack is one sfu track sent to a viewer.
type outTrack struct {
	track  *sfu.Track
	local  *rtc.LocalTrack
	down   *sfu.DownTrack
	sender *webrtc.RTPSender
}

// AddTrack takes a track the viewer's offer can receive: it attaches an rtc.LocalTrack to the
// viewer's matching recvonly transceiver, restricted to the matching codec, fed by an sfu.DownTrack.
// AAC and codecs the viewer did not offer are skipped.
func (w whepSession) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	info := t.Info()
	if w.answered || !rtc.WebRTCCapable(info.Codec) || info.Variant == "" && w.hasVariant(info.Kind) {
		return nil, sfu.ErrTrackSkipped
	}
	kind := webrtc.RTPCodecTypeAudio
	if info.Kind == sfu.KindVideo {
		kind = webrtc.RTPCodecTypeVideo
	}
	var (
		tr    *webrtc.RTPTransceiver
		codec webrtc.RTPCodecParameters
	)
	for _, cand := range w.pc.GetTransceivers() {
		if cand.Kind() != kind || cand.Sender() != nil {
			continue
		}
		m := w.offer.byMid(cand.Mid())
		if m == nil || (m.direction != "recvonly" && m.direction != "sendrecv") {
			continue
		}
		if c, ok := rtc.MatchCodec(m.codecs, info.Codec); ok {
			tr, codec = cand, c

			break
		}
	}
	if tr == nil {
		w.log.Info("track skipped: the viewer offered no matching codec", "track_id", info.ID, "codec", info.Codec.MimeType)

		return nil, sfu.ErrTrackSkipped
	}
	local := rtc.NewLocalTrack(info, rtc.LocalTrackOptions{
		StreamID: msid(w.key), BindWait: w.srv.cfg.BindWait, Batch: w.batch,
	})
	sender, err := w.pc.AddTrack(local)
	if err != nil {
		return nil, fmt.Errorf("add track %s: %w", info.ID, err)
	}
	if tr.Sender() != sender {
		_ = w.pc.RemoveTrack(sender)

		return nil, sfu.ErrTrackSkipped
	}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{codec}); err != nil {
		_ = w.pc.RemoveTrack(sender)

		return nil, sfu.ErrTrackSkipped
	}
	down := sfu.NewDownTrack(t, local, sfu.DownTrackOptions{Pool: w.srv.pool})
	w.outs = append(w.outs, &outTrack{track: t, local: local, down: down, sender: sender})

	return down, nil
}

// hasVariant reports whether the viewer's stream has a "webrtc" variant track of kind: the viewer
// then takes the variant (e.g. H.264 without B-frames) instead of the originals of that kind.
func (w whepSession) hasVariant(kind sfu.Kind) bool {
	st := w.srv.hub.Stream(w.key)
	if st == nil {
		return false
	}
	for _, t := range st.Tracks() {
		if i := t.Info(); i.Kind == kind && i.Variant == "webrtc" {
			return true
		}
	}
	return false
}

// stereoOpus reports whether key's stream has a stereo Opus track (stereo=1 in its fmtp: RTP Opus
// always declares two channels), so the viewer's answer says stereo=1.
func (s *Server) stereoOpus(key string) bool {
	st := s.hub.Stream(key)
	if st == nil {
		return false
	}
	for _, t := range st.Tracks() {
		c := t.Codec()
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) && strings.Contains(c.Fmtp, "stereo=1") {
			return true
		}
	}
	return false
}

// msid makes an msid stream id of a key ("/" is not a token character).
func msid(key string) string { return strings.ReplaceAll(key, "/", "_") }

// play negotiates a viewer's offer (WHEP, SRS play) and subscribes it to key. It returns the
// registered session and the answer SDP.
func (s *Server) play(ctx context.Context, key, offerSDP, remoteAddr string) (*session, string, error) {
	if err := s.admit(); err != nil {
		return nil, "", err
	}
	o, err := parseOffer(offerSDP)
	if err != nil {
		return nil, "", err
	}
	pc, batch, err := s.engine.NewViewerPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	ss := s.newSession("whep", key, remoteAddr, pc)
	ss.offer = o
	ss.batch = batch
	ss.opusStereo = s.stereoOpus(key)
	fail := func(err error) (*session, string, error) {
		ss.teardown()

		return nil, "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadSDP, err))
	}
	unsub, err := s.hub.Subscribe(ctx, key, whepSession{ss})
	if err != nil {
		if errors.Is(err, sfu.ErrStreamNotFound) {
			return fail(fmt.Errorf("%w: %s", err, key))
		}

		return fail(fmt.Errorf("play %s: %w", key, err))
	}
	ss.unsub = unsub
	ss.outMu.Lock()
	ss.answered = true
	ss.offer = nil // AddTrack is done with it: not kept for the session's life
	outs := ss.outs
	ss.outMu.Unlock()
	if len(outs) == 0 {
		return fail(fmt.Errorf("%w: none of the stream's tracks can be sent with the codecs offered", ErrNoCodec))
	}
	for _, o := range outs {
		ss.goTracked(func() { s.readSenderRTCP(o) })
	}
	ss.negMu.Lock()
	answer, err := ss.answer(ctx)
	ss.negMu.Unlock()
	if err != nil {
		return fail(err)
	}
	if err := s.add(ss); err != nil {
		return fail(err)
	}
	names := make([]string, 0, len(outs))
	for _, o := range outs {
		names = append(names, o.track.ID()+"="+o.track.Codec().MimeType)
	}
	ss.log.Info("viewer accepted", "tracks", strings.Join(names, " "))

	return ss, answer, nil
}

// readSenderRTCP reads a viewer's RTCP for one track (reports need it read) and turns PLI and FIR
// into keyframe requests; it counts the packets NACKs ask for (Server.NACKs) and answers them from
// the track's shared retransmission history (rtc.LocalTrack.RetransmitNACK).
func (s *Server) readSenderRTCP(o *outTrack) {
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
				s.nacks.Add(nackedPackets(p))
				o.local.RetransmitNACK(o.down, p)
			}
		}
	}
}

// nackedPackets is how many packets a NACK asks for (each pair: its packet ID and the bitmask's ones).
func nackedPackets(n *rtcp.TransportLayerNack) uint64 {
	var k uint64
	for _, pair := range n.Nacks {
		k += 1 + uint64(bits.OnesCount16(uint16(pair.LostPackets)))
	}
	return k
}

// NACKs is the number of lost packets WHEP viewers have asked for by RTCP NACK since start.
func (s *Server) NACKs() uint64 { return s.nacks.Load() }
