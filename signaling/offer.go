package signaling

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu/rtc"
)

// offer is what we read of an SDP offer before pion sees it.
type offer struct {
	media []offerMedia
}

// offerMedia is one m= section of an offer.
type offerMedia struct {
	kind      string // "audio", "video", or another media type (ignored)
	mid       string
	direction string                      // "sendrecv" (default), "sendonly", "recvonly", "inactive"
	codecs    []webrtc.RTPCodecParameters // in the m= line's format order, dynamic and described ones
}

// maxMedia bounds the m= sections of an offer we accept.
const maxMedia = 16

// parseOffer checks that raw is an SDP offer we can negotiate: it parses, it has between one and
// maxMedia audio/video sections, each with a mid, ICE credentials and a DTLS fingerprint (at the
// section or session level). It lists each section's codecs.
func parseOffer(raw string) (*offer, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w: empty body", ErrBadSDP)
	}
	if !strings.HasPrefix(raw, "v=0") {
		return nil, fmt.Errorf("%w: does not start with v=0", ErrBadSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media sections", ErrBadSDP)
	}
	if len(sd.MediaDescriptions) > maxMedia {
		return nil, fmt.Errorf("%w: %d media sections (at most %d)", ErrBadSDP, len(sd.MediaDescriptions), maxMedia)
	}
	_, sessUfrag := sd.Attribute("ice-ufrag")
	_, sessPwd := sd.Attribute("ice-pwd")
	_, sessFP := sd.Attribute("fingerprint")
	o := &offer{}
	av := 0
	for i, md := range sd.MediaDescriptions {
		m := offerMedia{kind: md.MediaName.Media, direction: "sendrecv"}
		for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if _, ok := md.Attribute(d); ok {
				m.direction = d
			}
		}
		if m.kind != "audio" && m.kind != "video" {
			o.media = append(o.media, m)

			continue
		}
		av++
		mid, ok := md.Attribute("mid")
		if !ok || mid == "" {
			return nil, fmt.Errorf("%w: media section %d has no a=mid", ErrBadSDP, i)
		}
		m.mid = mid
		if _, ok := md.Attribute("ice-ufrag"); !ok && !sessUfrag {
			return nil, fmt.Errorf("%w: media section %d has no a=ice-ufrag", ErrBadSDP, i)
		}
		if _, ok := md.Attribute("ice-pwd"); !ok && !sessPwd {
			return nil, fmt.Errorf("%w: media section %d has no a=ice-pwd", ErrBadSDP, i)
		}
		if _, ok := md.Attribute("fingerprint"); !ok && !sessFP {
			return nil, fmt.Errorf("%w: media section %d has no a=fingerprint", ErrBadSDP, i)
		}
		codecs, err := mediaCodecs(md)
		if err != nil {
			return nil, fmt.Errorf("%w: media section %d: %w", ErrBadSDP, i, err)
		}
		m.codecs = codecs
		o.media = append(o.media, m)
	}
	if av == 0 {
		return nil, fmt.Errorf("%w: no audio or video section", ErrBadSDP)
	}

	return o, nil
}

// mediaCodecs lists the codecs of one m= section, in format order. Formats without an a=rtpmap
// (static payload types) are left out.
func mediaCodecs(md *sdp.MediaDescription) ([]webrtc.RTPCodecParameters, error) {
	type desc struct {
		name     string
		clock    uint32
		channels uint16
		fmtp     string
		fb       []webrtc.RTCPFeedback
		mapped   bool
	}
	descs := map[uint8]*desc{}
	get := func(pt uint8) *desc {
		d := descs[pt]
		if d == nil {
			d = &desc{}
			descs[pt] = d
		}

		return d
	}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap", "fmtp", "rtcp-fb":
		default:
			continue
		}
		ptStr, rest, _ := strings.Cut(a.Value, " ")
		if ptStr == "*" && a.Key == "rtcp-fb" {
			continue
		}
		pt, err := parsePT(ptStr)
		if err != nil {
			return nil, fmt.Errorf("a=%s:%s: %w", a.Key, a.Value, err)
		}
		d := get(pt)
		switch a.Key {
		case "rtpmap":
			parts := strings.Split(rest, "/")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
				return nil, fmt.Errorf("a=rtpmap:%s: want name/clockrate[/channels]", a.Value)
			}
			clock, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil || clock == 0 {
				return nil, fmt.Errorf("a=rtpmap:%s: bad clock rate", a.Value)
			}
			d.name, d.clock, d.mapped = parts[0], uint32(clock), true
			if len(parts) == 3 {
				ch, err := strconv.ParseUint(parts[2], 10, 16)
				if err != nil {
					return nil, fmt.Errorf("a=rtpmap:%s: bad channel count", a.Value)
				}
				d.channels = uint16(ch)
			}
		case "fmtp":
			d.fmtp = rest
		case "rtcp-fb":
			typ, param, _ := strings.Cut(rest, " ")
			d.fb = append(d.fb, webrtc.RTCPFeedback{Type: typ, Parameter: param})
		}
	}
	var out []webrtc.RTPCodecParameters
	for _, f := range md.MediaName.Formats {
		pt, err := parsePT(f)
		if err != nil {
			return nil, fmt.Errorf("format %q: %w", f, err)
		}
		d := descs[pt]
		if d == nil || !d.mapped {
			continue
		}
		out = append(out, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     md.MediaName.Media + "/" + d.name,
				ClockRate:    d.clock,
				Channels:     d.channels,
				SDPFmtpLine:  d.fmtp,
				RTCPFeedback: d.fb,
			},
			PayloadType: webrtc.PayloadType(pt),
		})
	}

	return out, nil
}

func parsePT(s string) (uint8, error) {
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil || v > 127 {
		return 0, fmt.Errorf("payload type %q is not 0-127", s)
	}

	return uint8(v), nil
}

// firstSupported returns the first codec of a section that we support (rtc.Supported).
func (m *offerMedia) firstSupported() (webrtc.RTPCodecParameters, bool) {
	for _, c := range m.codecs {
		if rtc.Supported(c.RTPCodecCapability) {
			return c, true
		}
	}

	return webrtc.RTPCodecParameters{}, false
}

// byMid finds a section by its mid.
func (o *offer) byMid(mid string) *offerMedia {
	for i := range o.media {
		if o.media[i].mid == mid && mid != "" {
			return &o.media[i]
		}
	}

	return nil
}
