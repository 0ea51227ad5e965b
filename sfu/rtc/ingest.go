package rtc

import (
	"errors"
	"io"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// MaxPacketSize is the read buffer of ReadTrack: larger than any RTP packet over UDP with a 1500 MTU.
const MaxPacketSize = 1500

// ReadTrack feeds a publisher's remote track into an sfu track (a *sfu.Track) until the remote track
// ends. It reads into one reused buffer and unmarshals into one reused rtp.Packet (no allocation of
// its own per packet); packets that do not parse are skipped, and the track's write errors (a closed
// publication) do not stop the read, so pion's buffers keep draining until the PeerConnection closes.
// It returns nil at the end of the track, else the read error.
func ReadTrack(remote *webrtc.TrackRemote, track sfu.TrackWriter) error {
	buf := make([]byte, MaxPacketSize)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}

			return err
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		_ = track.WriteRTP(&pkt)
	}
}
