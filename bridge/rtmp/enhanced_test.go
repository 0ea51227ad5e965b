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
