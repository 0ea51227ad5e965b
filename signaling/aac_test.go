package signaling

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// rtpPublisher publishes straight into the hub (like the RTMP bridge): H.264, AAC and Opus tracks.
type rtpPublisher struct {
	keyframes chan string
	stop      chan struct{}
	wg        sync.WaitGroup
}

func (p *rtpPublisher) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: "rtp-test", Protocol: "rtmp", Started: time.Now()}
}
func (p *rtpPublisher) Close() error { return nil }
func (p *rtpPublisher) RequestKeyframe(id string) {
	select {
	case p.keyframes <- id:
	default:
	}
}

func (p *rtpPublisher) run(pub *sfu.Publication) {
	defer p.wg.Done()
	pay := &codecs.H264Payloader{}
	var pkt rtp.Packet
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	seqV, seqA, seqO := uint16(0), uint16(0), uint16(0)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		payloads := pay.Payload(1200, h264AUs[i%len(h264AUs)])
		for j, pl := range payloads {
			pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seqV, Timestamp: uint32(i * 3000),
				SSRC: 1, Marker: j == len(payloads)-1}, Payload: pl}
			seqV++
			_ = pub.Track("video").WriteRTP(&pkt)
		}
		pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 97, SequenceNumber: seqA, Timestamp: uint32(i * 1470), SSRC: 2, Marker: true},
			Payload: []byte{0x00, 0x10, 0x00, 0x20, 0x21, 0x10, 0x04}}
		seqA++
		_ = pub.Track("aac").WriteRTP(&pkt)
		pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seqO, Timestamp: uint32(i * 1600), SSRC: 3},
			Payload: []byte{0xf8, 0xff, 0xfe}}
		seqO++
		_ = pub.Track("audio").WriteRTP(&pkt)
	}
}

// TestWHEPSkipsAAC: a stream with H.264, AAC and Opus tracks (as from RTMP) plays over WHEP with video
// and the Opus track; the AAC track is not offered to the viewer.
func TestWHEPSkipsAAC(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	p := &rtpPublisher{keyframes: make(chan string, 8), stop: make(chan struct{})}
	pub, err := e.hub.Publish(context.Background(), "live/rtmp", p, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000,
			Fmtp: "packetization-mode=1;profile-level-id=42e01f"}},
		{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100, Channels: 2,
			Fmtp: "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210"}},
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	p.wg.Add(1)
	go p.run(pub)
	defer func() {
		close(p.stop)
		p.wg.Wait()
		pub.Close()
	}()

	v := startWHEP(t, e, "/whep/live/rtmp")
	took := v.waitPackets(t, 0, 0, 30, 10*time.Second)
	t.Logf("30 video packets after %v", took.Round(time.Millisecond))
	vs, as := v.snapshot("video"), v.snapshot("audio")
	require.Equal(t, "video/H264", vs.mime)
	require.Equal(t, "audio/opus", as.mime)
	require.True(t, sfu.IsKeyframe(vs.mime, vs.first))
	require.NotContains(t, v.res.body, "mpeg4-generic")
	require.Len(t, v.pc.GetReceivers(), 2)
	require.Equal(t, 1, pub.Stream().Tracks()[0].Writers())
	require.Zero(t, pub.Track("aac").Writers(), "the AAC track must not be taken by a WebRTC viewer")
	r := do(t, http.MethodDelete, e.url+v.res.header.Get("Location"), "", nil)
	require.Equal(t, http.StatusOK, r.status)
}
