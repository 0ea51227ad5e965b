package frames_test

import (
	"context"
	"encoding/binary"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// flvTag is one tag of an FLV file.
type flvTag struct {
	typ  uint8
	ts   int64 // ms
	body []byte
}

// readFLV reads the tags of an FLV file (testdata/bf.flv: ffmpeg -f lavfi testsrc 320x180@25 + sine
// 440 Hz 48 kHz stereo, 2 s, libx264 High -bf 2 -g 25, aac 64k).
func readFLV(t testing.TB, path string) []flvTag {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "FLV", string(b[:3]))
	b = b[13:]
	var out []flvTag
	for len(b) >= 11 {
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24
		out = append(out, flvTag{typ: b[0], ts: ts, body: b[11 : 11+size]})
		b = b[11+size+4:]
	}
	return out
}

// media is the content of testdata/bf.flv as access units.
type media struct {
	sps, pps [][]byte
	asc      []byte
	video    []videoAU
	audio    []audioAU
}

type videoAU struct {
	dts, pts int64 // ms
	key      bool
	avcc     []byte
}

type audioAU struct {
	ts int64
	au []byte
}

func loadMedia(t testing.TB) *media {
	m := &media{}
	for _, tg := range readFLV(t, "testdata/bf.flv") {
		switch tg.typ {
		case flv.TagVideo:
			var v flv.VideoTag
			require.NoError(t, flv.ParseVideoTag(tg.body, &v))
			if v.PacketType == flv.VideoSequenceStart {
				c, err := codec.ParseAVCConfig(v.Data)
				require.NoError(t, err)
				m.sps, m.pps = c.SPS, c.PPS
				continue
			}
			if v.PacketType != flv.VideoCodedFrames {
				continue // ffmpeg ends the file with an AVC end of sequence
			}
			m.video = append(m.video, videoAU{dts: tg.ts, pts: tg.ts + int64(v.CompositionTime), key: v.Keyframe(), avcc: v.Data})
		case flv.TagAudio:
			var a flv.AudioTag
			require.NoError(t, flv.ParseAudioTag(tg.body, &a))
			if a.PacketType == flv.AudioSequenceStart {
				m.asc = a.Data
				continue
			}
			m.audio = append(m.audio, audioAU{ts: tg.ts, au: a.Data})
		}
	}
	return m
}

// fakePub is a publisher for tests.
type fakePub struct {
	proto string
	kf    atomic.Int32
}

func (p *fakePub) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: "pub", Protocol: p.proto, Started: time.Now()}
}
func (p *fakePub) Close() error           { return nil }
func (p *fakePub) RequestKeyframe(string) { p.kf.Add(1) }

// pusher packetizes media into a publication's tracks.
type pusher struct {
	pub   *sfu.Publication
	h264  *packetize.H264
	aac   *packetize.AAC
	vBase uint32 // RTP timestamp offsets
	aBase uint32
}

func publishMedia(t testing.TB, hub *sfu.Hub, key string, m *media, p *fakePub, ssrc uint32) *pusher {
	pub, err := hub.Publish(context.Background(), key, p, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}},
		{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 48000, Channels: 2, Fmtp: packetize.AACFmtp(m.asc)}},
	})
	require.NoError(t, err)
	ps := &pusher{pub: pub,
		h264: packetize.NewH264(pub.Track("video"), packetize.Config{SSRC: ssrc, PayloadType: 96}),
		aac:  packetize.NewAAC(pub.Track("aac"), packetize.Config{SSRC: ssrc + 1, PayloadType: 97}),
	}
	ps.h264.SetParameterSets(m.sps, m.pps)
	return ps
}

// push writes the media in FLV order, with offset ms added to every timestamp; pace sleeps between tags.
func (ps *pusher) push(t testing.TB, m *media, offset int64, pace time.Duration) {
	vi, ai := 0, 0
	for vi < len(m.video) || ai < len(m.audio) {
		if ai >= len(m.audio) || vi < len(m.video) && m.video[vi].dts <= m.audio[ai].ts {
			v := m.video[vi]
			require.NoError(t, ps.h264.WriteAVCC(v.avcc, 4, ps.vBase+uint32((v.pts+offset)*90)))
			vi++
		} else {
			a := m.audio[ai]
			require.NoError(t, ps.aac.WriteAU(a.au, ps.aBase+uint32((a.ts+offset)*48)))
			ai++
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

// collect reads frames from l until n arrive or timeout.
func collect(t testing.TB, l *frames.Listener, n int, timeout time.Duration) []*frames.Frame {
	var out []*frames.Frame
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case f := <-l.Frames():
			out = append(out, f)
		case <-deadline:
			return out
		}
	}
	return out
}

// avccOf joins NAL units with 4-byte lengths.
func avccOf(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// rtpCollector keeps deep copies of written packets.
type rtpCollector struct{ pkts []rtp.Packet }

func (c *rtpCollector) WriteRTP(p *rtp.Packet) error {
	q := *p
	q.Payload = append([]byte(nil), p.Payload...)
	c.pkts = append(c.pkts, q)
	return nil
}
