package rtc

import (
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// RetransmitNACK answers a viewer's RTCP NACK for this track: the packets asked for are queued again
// on d, the DownTrack feeding the track, from the sfu track's retransmission history that all its
// DownTracks share (sfu.DownTrack.Retransmit), instead of pion's per-viewer NACK responder. It does
// nothing unless the track is bound, the NACK names its SSRC and NACK was negotiated for its codec
// (a "nack" RTCP feedback: off with Config.NoNACK). It returns the number of packets queued.
func (l *LocalTrack) RetransmitNACK(d *sfu.DownTrack, n *rtcp.TransportLayerNack) int {
	b := l.binding.Load()
	if b == nil || d == nil || n.MediaSSRC != b.ssrc || !hasNACK(b.codec.RTCPFeedback) {
		return 0
	}
	var sns [17]uint16
	queued := 0
	for _, pair := range n.Nacks {
		sns[0] = pair.PacketID
		k := 1
		for i := range 16 {
			if pair.LostPackets&(1<<i) != 0 {
				sns[k] = pair.PacketID + uint16(i) + 1
				k++
			}
		}
		queued += d.Retransmit(sns[:k]...)
	}

	return queued
}

// hasNACK reports a generic NACK ("nack" without a parameter; "nack pli" is a keyframe request).
func hasNACK(fb []webrtc.RTCPFeedback) bool {
	for _, f := range fb {
		if f.Type == webrtc.TypeRTCPFBNACK && f.Parameter == "" {
			return true
		}
	}

	return false
}
