package rtc

import (
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// H264ProfileLevelIDs are the H.264 profile-level-ids registered (all with packetization-mode=1):
// what Chrome, Firefox and Safari offer (Constrained Baseline, Baseline, Main, High, Constrained High,
// High 4:4:4).
var H264ProfileLevelIDs = []string{"42001f", "42e01f", "4d001f", "640032", "64001f", "640c1f", "f4001f"}

// Opus fmtp lines: mono (the default) and stereo (Config.OpusStereo).
const (
	opusFmtp       = "minptime=10;useinbandfec=1"
	opusStereoFmtp = "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1"
)

// Codecs returns the codecs a PeerConnection of this configuration registers, in preference order
// (the order of our own offers), each with its RTCP feedback.
func Codecs(cfg Config) []webrtc.RTPCodecParameters {
	videoFB := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack", Parameter: "pli"}}
	if !cfg.NoNACK {
		videoFB = append(videoFB, webrtc.RTCPFeedback{Type: "nack"})
	}
	var audioFB []webrtc.RTCPFeedback
	if !cfg.NoTWCC {
		videoFB = append(videoFB, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
		audioFB = append(audioFB, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
	}
	video := func(mime, fmtp string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: videoFB,
			},
			PayloadType: pt,
		}
	}
	opus := opusFmtp
	if cfg.OpusStereo {
		opus = opusStereoFmtp
	}
	out := []webrtc.RTPCodecParameters{
		{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opus, RTCPFeedback: audioFB,
			},
			PayloadType: 111,
		},
		video(webrtc.MimeTypeVP8, "", 96),
	}
	pt := webrtc.PayloadType(100)
	for _, plid := range H264ProfileLevelIDs {
		out = append(out, video(webrtc.MimeTypeH264,
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="+plid, pt))
		pt += 2
	}
	out = append(out,
		video(webrtc.MimeTypeVP9, "profile-id=0", 98),
		video(webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0", 45),
		video(webrtc.MimeTypeH265, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST", 49),
	)

	return out
}

// pcRole picks a PeerConnection's interceptors: a viewer's only sends media, so it needs none of
// those that act on received media.
type pcRole struct {
	sendOnly bool                 // no NACK generator, receiver reports or TWCC feedback (nothing is received)
	sched    *srScheduler         // sends the sender reports (nil: a goroutine per PeerConnection)
	made     func(*senderReports) // gets the PeerConnection's sender-report interceptor
}

// registerCodecs fills a fresh MediaEngine and interceptor registry for one PeerConnection.
func registerCodecs(cfg Config, me *webrtc.MediaEngine, ir *interceptor.Registry, lf pionLoggerFactory, role pcRole) error {
	for _, c := range Codecs(cfg) {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			return err
		}
	}
	exts := []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
	}
	if !cfg.NoTWCC {
		exts = append(exts,
			struct {
				uri  string
				kind webrtc.RTPCodecType
			}{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo},
			struct {
				uri  string
				kind webrtc.RTPCodecType
			}{sdp.TransportCCURI, webrtc.RTPCodecTypeAudio})
	}
	for _, e := range exts {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return err
		}
	}

	// Sender reports on the media clock (senderreport.go), not pion's last-packet mapping.
	ir.Add(senderReportFactory{sched: role.sched, made: role.made})
	if role.sendOnly {
		// Viewers' NACKs are answered by their DownTracks from the track's shared retransmission
		// history (LocalTrack.RetransmitNACK), not by pion's responder, which keeps a copy of every
		// packet per viewer.
		return nil
	}
	if !cfg.NoNACK {
		// NACKs of publishers' losses (no PeerConnection keeps copies of what it sends: see above).
		gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
		if err != nil {
			return err
		}
		ir.Add(gen)
	}
	recv, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return err
	}
	ir.Add(recv)
	if !cfg.NoTWCC {
		tw, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(lf))
		if err != nil {
			return err
		}
		ir.Add(tw)
	}

	return nil
}

// ParseFmtp splits an a=fmtp parameter string ("a=1;b=2") into lower-case keys and their values.
func ParseFmtp(s string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}

	return out
}

// Supported reports whether an offered codec is one we register, with the fmtp rules pion uses to
// match it (H.264: packetization-mode=1 and a registered profile (first two bytes of
// profile-level-id); VP9: profile-id 0; AV1: profile 0).
func Supported(c webrtc.RTPCodecCapability) bool {
	switch {
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus):
		return c.ClockRate == 48000
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8):
		return c.ClockRate == 90000
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeH265):
		p := ParseFmtp(c.SDPFmtpLine)

		return c.ClockRate == 90000 && orDefault(p["profile-id"], "1") == "1" &&
			orDefault(p["tier-flag"], "0") == "0" && strings.EqualFold(orDefault(p["tx-mode"], "SRST"), "SRST")
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeVP9):
		p := ParseFmtp(c.SDPFmtpLine)
		id, ok := p["profile-id"]

		return c.ClockRate == 90000 && (!ok || id == "0")
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeAV1):
		p := ParseFmtp(c.SDPFmtpLine)
		prof, ok := p["profile"]

		return c.ClockRate == 90000 && (!ok || prof == "0")
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeH264):
		p := ParseFmtp(c.SDPFmtpLine)
		if c.ClockRate != 90000 || p["packetization-mode"] != "1" {
			return false
		}
		plid := strings.ToLower(p["profile-level-id"])
		if len(plid) != 6 {
			return false
		}
		for _, ours := range H264ProfileLevelIDs {
			if ours[:4] == plid[:4] {
				return true
			}
		}
	}

	return false
}

// MatchCodec picks, from the codecs negotiated for a transceiver, the one an sfu track of codec
// want is sent as: the same mime type; for H.264 the same profile-level-id if offered, else the same
// profile, else any packetization-mode=1 entry; for VP9 the same profile-id; for the others the first.
func MatchCodec(negotiated []webrtc.RTPCodecParameters, want sfu.Codec) (webrtc.RTPCodecParameters, bool) {
	var best webrtc.RTPCodecParameters
	bestScore := -1
	wantF := ParseFmtp(want.Fmtp)
	for _, c := range negotiated {
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		score := 0
		f := ParseFmtp(c.SDPFmtpLine)
		switch {
		case strings.EqualFold(want.MimeType, webrtc.MimeTypeH264):
			if f["packetization-mode"] != "1" {
				continue
			}
			have, wplid := strings.ToLower(f["profile-level-id"]), strings.ToLower(wantF["profile-level-id"])
			switch {
			case have != "" && have == wplid:
				score = 2
			case len(have) == 6 && len(wplid) == 6 && have[:4] == wplid[:4]:
				score = 1
			}
		case strings.EqualFold(want.MimeType, webrtc.MimeTypeVP9):
			if orDefault(f["profile-id"], "0") != orDefault(wantF["profile-id"], "0") {
				continue
			}
		}
		if score > bestScore {
			best, bestScore = c, score
		}
	}

	return best, bestScore >= 0
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}

	return s
}

// CodecToSFU converts a negotiated codec into the sfu's codec description.
func CodecToSFU(c webrtc.RTPCodecCapability) sfu.Codec {
	return sfu.Codec{MimeType: canonicalMime(c.MimeType), ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.SDPFmtpLine}
}

// canonicalMime spells a mime type as pion's constants do ("video/H264", "audio/opus").
func canonicalMime(m string) string {
	for _, known := range []string{
		webrtc.MimeTypeH264, webrtc.MimeTypeH265, webrtc.MimeTypeVP8, webrtc.MimeTypeVP9,
		webrtc.MimeTypeAV1, webrtc.MimeTypeOpus,
	} {
		if strings.EqualFold(m, known) {
			return known
		}
	}

	return m
}
