package rtmp

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/sfu"
)

// testPublisher is a go-rtmp client publishing tags the test makes.
type testPublisher struct {
	client *gortmp.ClientConn
	stream *gortmp.Stream
}

func dialPublisher(t *testing.T, base, app, name string) *testPublisher {
	return dialPublisherB(t, base, app, name)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func dialPublisherB(t testing.TB, base, app, name string) *testPublisher {
	t.Helper()
	addr := strings.TrimPrefix(base, "rtmp://")
	client, err := gortmp.Dial("rtmp", addr, &gortmp.ConnConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Connect(&message.NetConnectionConnect{Command: message.NetConnectionConnectCommand{App: app, TCURL: base + "/" + app}}))
	stream, err := client.CreateStream(nil, 4096)
	require.NoError(t, err)
	require.NoError(t, stream.Publish(&message.NetStreamPublish{PublishingName: name, PublishingType: "live"}))
	return &testPublisher{client: client, stream: stream}
}

func (p *testPublisher) video(t *testing.T, ts uint32, body []byte) {
	t.Helper()
	require.NoError(t, p.stream.Write(6, ts, &message.VideoMessage{Payload: bytes.NewReader(body)}))
}

func (p *testPublisher) audio(t *testing.T, ts uint32, body []byte) {
	t.Helper()
	require.NoError(t, p.stream.Write(4, ts, &message.AudioMessage{Payload: bytes.NewReader(body)}))
}

// hevcAccessUnits splits an Annex-B H.265 file into access units (one picture per VCL NAL unit with
// first_slice_segment_in_pic_flag; the parameter sets and SEI before it belong to it).
func hevcAccessUnits(t *testing.T, path string) (aus [][][]byte) {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var nalus h264.AnnexB
	require.NoError(t, nalus.Unmarshal(b))
	var cur [][]byte
	for _, n := range nalus {
		typ := codec.H265NALType(n)
		cur = append(cur, n)
		if typ < 32 && len(n) > 2 && n[2]&0x80 != 0 {
			aus = append(aus, cur)
			cur = nil
		}
	}
	return aus
}

func lengthPrefixed(nalus [][]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestIngestEnhancedHEVCOpus(t *testing.T) {
	_, hub, base := startServer(t, Config{}, sfu.Config{Grace: time.Second}, nil)
	aus := hevcAccessUnits(t, "testdata/main.h265")
	require.GreaterOrEqual(t, len(aus), 10)
	var vps, sps, pps []byte
	for _, n := range aus[0] {
		switch codec.H265NALType(n) {
		case codec.H265NALVPS:
			vps = n
		case codec.H265NALSPS:
			sps = n
		case codec.H265NALPPS:
			pps = n
		}
	}
	hvcc := (&codec.HEVCConfig{Profile: 1, Level: 60, NALLengthSize: 4, VPS: [][]byte{vps}, SPS: [][]byte{sps}, PPS: [][]byte{pps}}).Marshal()

	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: 48000, Channels: 2, Application: gopus.ApplicationAudio})
	require.NoError(t, err)

	pub := dialPublisher(t, base, "live", "enhanced?token=1")
	pub.video(t, 0, append([]byte{0x90, 'h', 'v', 'c', '1'}, hvcc...))
	pub.audio(t, 0, append([]byte{0x90, 'O', 'p', 'u', 's'}, codec.BuildOpusHead(2, 48000)...))
	sub, _ := subscribeWhenLive(t, hub, "live/enhanced", 3*time.Second)

	// 10 pictures at 25 fps and 20 ms Opus frames of a 440 Hz tone.
	pcm := make([]float32, 960*2)
	out := make([]byte, 1500)
	var opusFrames [][]byte
	sample := 0
	for i := range 20 {
		for j := range 960 {
			v := float32(0.3 * math.Sin(2*math.Pi*440*float64(sample)/48000))
			pcm[2*j], pcm[2*j+1] = v, v
			sample++
		}
		n, err := enc.Encode(pcm, out)
		require.NoError(t, err)
		frame := append([]byte(nil), out[:n]...)
		opusFrames = append(opusFrames, frame)
		pub.audio(t, uint32(i*20), append([]byte{0x91, 'O', 'p', 'u', 's'}, frame...))
		if i%2 == 0 {
			au := aus[i/2]
			ft := byte(0x20)
			if i == 0 {
				ft = 0x10
			}
			// Alternate CodedFrames (with composition time 0) and CodedFramesX.
			hdr := []byte{0x80 | ft | 3, 'h', 'v', 'c', '1'}
			if i%4 == 0 {
				hdr = []byte{0x80 | ft | 1, 'h', 'v', 'c', '1', 0, 0, 0}
			}
			pub.video(t, uint32(i*20), append(hdr, lengthPrefixed(au)...))
		}
	}
	require.Eventually(t, func() bool { return sub.count("audio") >= 20 && sub.count("video") >= 10 }, 3*time.Second, 20*time.Millisecond,
		"audio %d video %d", sub.count("audio"), sub.count("video"))

	st := hub.Stream("live/enhanced")
	vt, at := st.Track("video"), st.Track("audio")
	require.Equal(t, "video/H265", vt.Codec().MimeType)
	require.Equal(t, "audio/opus", at.Codec().MimeType)
	require.Equal(t, uint32(48000), at.Codec().ClockRate)
	require.Contains(t, at.Codec().Fmtp, "stereo=1")
	require.Nil(t, st.Track("aac"))
	d := vt.Details()
	require.Equal(t, 352, d.Width)
	require.Equal(t, "Main", d.Profile)

	// Opus passes through: same frames, 48 kHz timestamps 960 apart.
	apkts := sub.packets("audio")
	for i, p := range apkts[:20] {
		require.Equal(t, opusFrames[i], p.pkt.Payload)
		if i > 0 {
			require.Equal(t, uint32(960), p.pkt.Timestamp-apkts[i-1].pkt.Timestamp)
		}
	}
	// HEVC: the depacketized pictures decode.
	var d265 codecs.H265Depacketizer
	var annexB []byte
	for _, p := range sub.packets("video") {
		b, err := d265.Unmarshal(p.pkt.Payload)
		require.NoError(t, err)
		annexB = append(annexB, b...)
	}
	require.Equal(t, 10, probeCount(t, "hevc", annexB))
}

// av1TemporalUnits splits a low-overhead OBU stream (every OBU with a size field) at its temporal
// delimiters; it also returns the first sequence header OBU.
func av1TemporalUnits(t *testing.T, b []byte) (tus [][]byte, seqHdr []byte) {
	t.Helper()
	var cur []byte
	for len(b) > 0 {
		require.NotZero(t, b[0]&0x02, "OBU without size field")
		hdr := 1
		if b[0]&0x04 != 0 {
			hdr = 2
		}
		size, n := uint64(0), 0
		for i := 0; i < 8; i++ {
			size |= uint64(b[hdr+i]&0x7f) << (7 * i)
			if b[hdr+i]&0x80 == 0 {
				n = i + 1
				break
			}
		}
		end := hdr + n + int(size)
		obu := b[:end]
		typ := b[0] >> 3 & 0xf
		if typ == 2 && cur != nil {
			tus = append(tus, cur)
			cur = nil
		}
		if typ == 1 && seqHdr == nil {
			seqHdr = obu
		}
		cur = append(cur, obu...)
		b = b[end:]
	}
	return append(tus, cur), seqHdr
}

func TestIngestEnhancedAV1(t *testing.T) {
	_, hub, base := startServer(t, Config{}, sfu.Config{Grace: time.Second}, nil)
	raw, err := os.ReadFile("testdata/testsrc.obu") // ffmpeg libaom-av1 320x240, 10 frames, GOP 5
	require.NoError(t, err)
	tus, seqHdr := av1TemporalUnits(t, raw)
	require.Len(t, tus, 10)
	av1C := append([]byte{0x81, 0x00, 0x0c, 0x00}, seqHdr...)

	pub := dialPublisher(t, base, "live", "av1")
	pub.video(t, 0, append([]byte{0x90, 'a', 'v', '0', '1'}, av1C...))
	send := func(from uint32, units [][]byte) {
		for i, tu := range units {
			ft := byte(0x20)
			if i%5 == 0 {
				ft = 0x10
			}
			pub.video(t, from+uint32(i*40), append([]byte{0x80 | ft | 1, 'a', 'v', '0', '1'}, tu...))
		}
	}
	// Video only and no onMetaData: the publication starts HeaderWait (1 s) after the header, with
	// the next tag; what came before is held and sent then.
	send(0, tus)
	time.Sleep(1100 * time.Millisecond)
	send(400, tus[:5])
	sub, _ := subscribeWhenLive(t, hub, "live/av1", 3*time.Second)
	send(600, tus[:5])
	lastTS := uint32((600 + 4*40) * 90)
	require.Eventually(t, func() bool {
		p := sub.packets("video")
		return len(p) > 0 && p[len(p)-1].pkt.Timestamp == lastTS && p[len(p)-1].pkt.Marker
	}, 3*time.Second, 20*time.Millisecond)
	st := hub.Stream("live/av1")
	require.Equal(t, "video/AV1", st.Track("video").Codec().MimeType)

	// Depacketize (pion) and decode with ffprobe: a temporal delimiter before each temporal unit.
	var d codecs.AV1Depacketizer
	var obus []byte
	pkts := sub.packets("video")
	units := 0
	for i, p := range pkts {
		out, err := d.Unmarshal(p.pkt.Payload)
		require.NoError(t, err)
		if i == 0 || pkts[i-1].pkt.Marker {
			obus = append(obus, 0x12, 0x00)
			units++
		}
		obus = append(obus, out...)
	}
	got := probeCount(t, "obu", obus)
	t.Logf("AV1: %d packets, %d temporal units depacketized, %d frames decoded", len(pkts), units, got)
	require.Equal(t, units, got)
	require.GreaterOrEqual(t, got, 10)
}
