package signaling

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

// vp8Publisher publishes path over WHIP: VP8 keyframes (every packet one, so a viewer's replay is one
// packet) of size bytes, each with its index in its payload, every interval, until the test ends.
func vp8Publisher(t testing.TB, e *env, path string, size int, interval time.Duration) {
	pc, err := e.engine.NewClientPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	require.NoError(t, err)
	sender, err := pc.AddTrack(track)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // RTCP must be read
		defer wg.Done()
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	negotiateWHIPOrWHEP(t, e, path, pc)
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		payload := make([]byte, size)
		copy(payload, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a})
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			payload[5], payload[6], payload[7] = byte(n), byte(n>>8), byte(n>>16)
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: n%3 == 0, SequenceNumber: uint16(n),
				Timestamp: uint32(n * 3000)}, Payload: payload})
		}
	}()
	t.Cleanup(func() {
		close(stop)
		_ = pc.Close()
		wg.Wait()
	})
}

// dropper is a viewer-side interceptor, below pion's NACK generator: it drops the first arrival of
// chosen video packets (so the generator NACKs them) and checks what comes again.
type dropper struct {
	interceptor.NoOp
	every, skip int // drop sequence numbers sn%every == 0 after the first skip packets,
	limit       int // up to limit packets

	mu      sync.Mutex
	seen    int
	dropped map[uint16]rtp.Packet // first arrival of each dropped packet
	again   int                   // arrivals of dropped packets after the first (retransmissions)
	diff    []string              // retransmissions that differ from the dropped packet
}

func (d *dropper) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropper) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	if !strings.HasPrefix(info.MimeType, "video/") {
		return r
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attr, err := r.Read(b, a)
			if err != nil {
				return n, attr, err
			}
			var p rtp.Packet
			if p.Unmarshal(b[:n]) != nil {
				return n, attr, nil
			}
			d.mu.Lock()
			d.seen++
			first, was := d.dropped[p.SequenceNumber]
			drop := !was && d.seen > d.skip && int(p.SequenceNumber)%d.every == 0 && len(d.dropped) < d.limit
			if drop {
				p.Payload = append([]byte(nil), p.Payload...)
				d.dropped[p.SequenceNumber] = p
			} else if was {
				d.again++
				if first.SSRC != p.SSRC || first.PayloadType != p.PayloadType || first.Timestamp != p.Timestamp ||
					first.Marker != p.Marker || !bytes.Equal(first.Payload, p.Payload) {
					d.diff = append(d.diff, itoa(int(p.SequenceNumber)))
				}
			}
			d.mu.Unlock()
			if !drop {
				return n, attr, nil
			}
		}
	})
}

func (d *dropper) counts() (dropped, again int, diff []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dropped), d.again, append([]string(nil), d.diff...)
}

// newDroppingViewerPC is a viewer PeerConnection (pion's default codecs and interceptors: its NACK
// generator asks for what d drops) with SRTP replay protection off, so every retransmission is seen.
func newDroppingViewerPC(t testing.TB, d *dropper) *webrtc.PeerConnection {
	if d == nil {
		return newViewerPCWith(t, nil, true)
	}
	return newViewerPCWith(t, nil, true, d) // first: innermost, below the NACK generator
}

// playVideo makes pc a WHEP viewer of path (video only) that reads what arrives.
func playVideo(t testing.TB, e *env, path string, pc *webrtc.PeerConnection, got *atomic.Int64) {
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1600)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			got.Add(1)
		}
	})
	_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	negotiateWHIPOrWHEP(t, e, path, pc)
}
