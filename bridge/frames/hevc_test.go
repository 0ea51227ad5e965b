package frames_test

import (
	"context"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// hevcUnits splits testdata/nob.h265 (ffmpeg testsrc 320x180@25, 1 s, libx265 bframes=0 keyint=25,
// Annex B) into access units of NAL units.
func hevcUnits(t testing.TB) [][][]byte {
	b, err := os.ReadFile("testdata/nob.h265")
	require.NoError(t, err)
	var nalus h264.AnnexB // start-code splitting is the same for H.265
	require.NoError(t, nalus.Unmarshal(b))
	var aus [][][]byte
	var cur [][]byte
	vcl := false
	for _, n := range nalus {
		typ := codec.H265NALType(n)
		isVCL := typ < 32
		if vcl && (!isVCL || len(n) > 2 && n[2]&0x80 != 0) {
			aus = append(aus, cur)
			cur, vcl = nil, false
		}
		cur = append(cur, n)
		vcl = vcl || isVCL
	}
	return append(aus, cur)
}

func TestSourceH265(t *testing.T) {
	aus := hevcUnits(t)
	require.Len(t, aus, 25)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	pub, err := hub.Publish(context.Background(), "live/h", &fakePub{proto: "rtmp"}, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H265", ClockRate: 90000}},
	})
	require.NoError(t, err)
	src, err := frames.NewSource(context.Background(), hub, "live/h", frames.Config{}, nil)
	require.NoError(t, err)
	defer func() { _ = src.Close(); src.Wait() }()
	l, err := src.Listen(0)
	require.NoError(t, err)
	p := packetize.NewH265(pub.Track("video"), packetize.Config{SSRC: 3, MaxPayload: 500})
	var vps, sps, pps [][]byte
	for _, n := range aus[0] {
		switch codec.H265NALType(n) {
		case codec.H265NALVPS:
			vps = append(vps, n)
		case codec.H265NALSPS:
			sps = append(sps, n)
		case codec.H265NALPPS:
			pps = append(pps, n)
		}
	}
	p.SetParameterSets(vps, sps, pps)
	for i, au := range aus {
		var avcc []byte
		for _, n := range au {
			avcc = binary.BigEndian.AppendUint32(avcc, uint32(len(n)))
			avcc = append(avcc, n...)
		}
		require.NoError(t, p.WriteAVCC(avcc, 4, uint32(i*3600)))
	}
	got := collect(t, l, len(aus), 3*time.Second)
	require.Len(t, got, len(aus))
	require.True(t, got[0].Key)
	require.Equal(t, frames.CodecH265, got[0].Codec)
	rec, err := codec.ParseHEVCConfig(got[0].Config.Record)
	require.NoError(t, err)
	require.Equal(t, sps[0], rec.SPS[0])
	require.Equal(t, 320, got[0].Config.Width)
	for i, f := range got {
		require.Equal(t, i == 0, f.Key, "frame %d", i)
		require.Equal(t, f.PTS, f.DTS, "no B-frames: DTS = PTS")
		require.InDelta(t, time.Duration(i)*40*time.Millisecond, f.PTS-got[0].PTS, float64(time.Millisecond))
	}
}
