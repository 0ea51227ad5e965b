package rtmp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// checkVideo depacketizes the subscriber's video, decodes it with ffprobe and checks the 90 kHz clock
// against wall time. It returns the decoded frames' widths.
func checkVideo(t *testing.T, sub *testSub) []int { return checkTrack(t, sub, "video") }

func checkTrack(t *testing.T, sub *testSub, id string) []int {
	t.Helper()
	pkts := sub.packets(id)
	require.NotEmpty(t, pkts, "no video received")
	widths := ffprobeFrames(t, h264AnnexB(t, pkts))
	require.NotEmpty(t, widths, "ffprobe decoded no frame")

	// Marker packets close access units: the least-squares slope of their RTP time over arrival time
	// (the push runs with -re), over the widest window that leaves out the first second (x264's
	// lookahead delay, the GOP cache replay burst) and the last 15 frames (x264 flushes its lookahead,
	// 10 frames at preset veryfast, in a burst when ffmpeg ends).
	var markers []recvPacket
	for _, p := range pkts {
		if p.pkt.Marker && p.at.Sub(pkts[0].at) > time.Second {
			markers = append(markers, p)
		}
	}
	require.Greater(t, len(markers), 40)
	fit := markers[:len(markers)-15]
	var sx, sy, sxx, sxy float64
	for _, p := range fit {
		x := p.at.Sub(fit[0].at).Seconds()
		y := float64(int32(p.pkt.Timestamp-fit[0].pkt.Timestamp)) / 90000
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(fit))
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	wall := fit[len(fit)-1].at.Sub(fit[0].at).Seconds()
	t.Logf("video: %d packets, %d frames decoded, 90 kHz clock over %.2fs of wall time: slope %.3f", len(pkts), len(widths), wall, slope)
	require.Greater(t, wall, 1.5)
	require.InDelta(t, 1.0, slope, 0.10, "90 kHz timestamps must advance at wall-clock rate")
	return widths
}

func TestIngestFFmpeg(t *testing.T) {
	cases := []struct {
		name      string
		video     []string
		audio     bool
		profile   string
		bframes   bool
		wantAudio bool
		drop      bool
	}{
		{name: "baseline with aac", video: []string{"-profile:v", "baseline", "-g", "50"}, audio: true, profile: "Constrained Baseline", wantAudio: true},
		{name: "high with b-frames", video: []string{"-profile:v", "high", "-bf", "2", "-g", "50"}, audio: true, profile: "High", bframes: true, wantAudio: true},
		{name: "video only", video: []string{"-profile:v", "main", "-g", "25"}, profile: "Main", bframes: true},
		{name: "high with b-frames dropped", video: []string{"-profile:v", "high", "-bf", "2", "-g", "50"}, profile: "High", bframes: true, drop: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{}
			if c.drop {
				cfg.BFrames = "drop"
			}
			_, hub, base := startServer(t, cfg, sfu.Config{Grace: time.Second}, nil)
			ff := startFFmpeg(t, pushArgs(base+"/live/test?token=abc", "320x240", 6, c.video, c.audio)...)
			sub, _ := subscribeWhenLive(t, hub, "live/test", 5*time.Second)
			require.NoError(t, ff.wait(t, 15*time.Second), ff.stderr.String())

			st := hub.Stream("live/test")
			require.NotNil(t, st)
			vt := st.Track("video")
			require.NotNil(t, vt)
			require.Equal(t, "video/H264", vt.Codec().MimeType)
			require.Contains(t, vt.Codec().Fmtp, "packetization-mode=1;profile-level-id=")
			d := vt.Details()
			require.Equal(t, 320, d.Width)
			require.Equal(t, 240, d.Height)
			require.Equal(t, c.profile, d.Profile)
			require.Equal(t, c.bframes, d.BFrames)

			widths := checkVideo(t, sub)
			require.Equal(t, 320, widths[0])
			require.Len(t, widths, 150, "the original track keeps every frame")
			require.Equal(t, "", vt.Info().Variant)
			wt := st.Track("video-webrtc")
			if c.drop {
				// The WebRTC variant is declared first, with its own SSRC, and has every B picture
				// dropped: 6 s at 25 fps with -bf 2 leaves about a third of the frames.
				require.NotNil(t, wt)
				require.Equal(t, "video-webrtc", st.Tracks()[0].ID())
				require.Equal(t, "webrtc", wt.Info().Variant)
				require.Equal(t, vt.Codec(), wt.Codec())
				require.False(t, wt.Details().BFrames)
				wwidths := checkTrack(t, sub, "video-webrtc")
				require.Less(t, len(wwidths), 100)
				require.Greater(t, len(wwidths), 30)
				require.NotEqual(t, sub.packets("video")[0].pkt.SSRC, sub.packets("video-webrtc")[0].pkt.SSRC)
			} else {
				require.Nil(t, wt, "no variant with bframes keep")
			}

			aac := st.Track("aac")
			if !c.wantAudio {
				require.Nil(t, aac)
				return
			}
			require.NotNil(t, aac)
			require.Equal(t, "audio/mpeg4-generic", aac.Codec().MimeType)
			require.Equal(t, uint32(44100), aac.Codec().ClockRate)
			require.Contains(t, aac.Codec().Fmtp, "mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=")
			require.Nil(t, st.Track("audio"), "no Opus track without Deps.Transcode")
			ad := aac.Details()
			require.Equal(t, 44100, ad.SampleRate)
			require.Equal(t, "LC", ad.Profile)
			apkts := sub.packets("aac")
			require.Greater(t, len(apkts), 100)
			// Continuous AAC timestamps: every step is exactly 1024 samples.
			for i := 1; i < len(apkts); i++ {
				require.Equal(t, uint32(1024), apkts[i].pkt.Timestamp-apkts[i-1].pkt.Timestamp, "packet %d", i)
			}
		})
	}
}
