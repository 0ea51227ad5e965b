package cascade

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// relayICE are the relay's ICE timeouts: a dead peer is noticed within relayICEDisconnected.
const (
	relayICEDisconnected = 2 * time.Second
	relayICEFailed       = 3 * time.Second
	relayICEKeepalive    = 500 * time.Millisecond
)

// relayCodecs are the codecs a relay PeerConnection registers: exactly the stream's, each once, with
// payload types 96.. in track order (both sides compute the same list). Video gets NACK, PLI and FIR.
func relayCodecs(infos []sfu.TrackInfo) []webrtc.RTPCodecParameters {
	videoFB := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	out := make([]webrtc.RTPCodecParameters, 0, len(infos))
	pt := webrtc.PayloadType(96)
	for _, in := range infos {
		c := webrtc.RTPCodecCapability{
			MimeType: in.Codec.MimeType, ClockRate: in.Codec.ClockRate, Channels: in.Codec.Channels, SDPFmtpLine: in.Codec.Fmtp,
		}
		if in.Kind == sfu.KindVideo {
			c.RTCPFeedback = videoFB
		}
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) && c.Channels == 0 {
			c.Channels = 2
		}
		dup := false
		for _, o := range out {
			if strings.EqualFold(o.MimeType, c.MimeType) && o.ClockRate == c.ClockRate && o.Channels == c.Channels && o.SDPFmtpLine == c.SDPFmtpLine {
				dup = true

				break
			}
		}
		if dup {
			continue
		}
		out = append(out, webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: pt})
		pt++
	}

	return out
}

// newRelayPC makes a PeerConnection for one relay (either side): the stream's codecs (AAC as
// audio/mpeg4-generic included), NACK and RTCP reports, UDP host candidates on listenIP (every
// interface when ""), loopback included, no mDNS, short ICE timeouts.
func newRelayPC(infos []sfu.TrackInfo, listenIP string) (pc *webrtc.PeerConnection, release func(), err error) {
	me := &webrtc.MediaEngine{}
	for _, c := range relayCodecs(infos) {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(strings.ToLower(c.MimeType), "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			return nil, nil, fmt.Errorf("%w: register codec %s: %w", ErrRelay, c.MimeType, err)
		}
	}
	ir := &interceptor.Registry{}
	// NACKs of the puller's losses; the relay's own sender answers NACKs from the sfu track's shared
	// retransmission history (readRelayRTCP), not with pion's per-connection responder. The codecs
	// carry the "nack" feedback (relayCodecs).
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: nack: %w", ErrRelay, err)
	}
	ir.Add(gen)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, nil, fmt.Errorf("%w: rtcp reports: %w", ErrRelay, err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(relayICEDisconnected, relayICEFailed, relayICEKeepalive)
	release = func() {}
	if ip := net.ParseIP(listenIP); ip != nil && !ip.IsUnspecified() {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			return nil, nil, fmt.Errorf("%w: udp listen on %s: %w", ErrRelay, listenIP, err)
		}
		mux := webrtc.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(mux)
		se.SetIPFilter(func(c net.IP) bool { return c.Equal(ip) })
		release = func() { _ = mux.Close() }
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err = api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		release()

		return nil, nil, fmt.Errorf("%w: new peer connection: %w", ErrRelay, err)
	}

	return pc, release, nil
}
