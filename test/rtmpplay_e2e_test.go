//go:build e2e

package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// rtmpPictTypes decodes the video of input (ffprobe arguments, the input last) and counts its
// pictures by type.
func rtmpPictTypes(t *testing.T, args ...string) map[string]int {
	t.Helper()
	out := harness.FFprobe(t, append([]string{"-select_streams", "v:0", "-show_entries", "frame=pict_type", "-of", "csv=p=0"}, args...)...)
	n := map[string]int{}
	for _, f := range strings.Fields(out) {
		n[strings.Trim(f, ",")]++
	}
	return n
}

// TestRTMPPlay: ffmpeg pushes H.264 High (-bf 2) + AAC with the default config (webrtc.bframes drop);
// RTMP play from the binary, read by ffprobe and ffmpeg -c copy, has both streams, monotonic DTS,
// audio and video starting together, the B-frames, and 10 s of copy lasting 10 s.
func TestRTMPPlay(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/rtmpplay"
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Profile: "high", BFrames: 2})
	flvWaitLive(t, node.HTTPURL+"/"+key+".flv", 15*time.Second)
	url := node.RTMPURL(key)

	t.Run("ffprobe", func(t *testing.T) {
		v0, a0 := flvProbeURL(t, url, 6, 5, "h264", "aac")
		t.Logf("RTMP play: first video DTS %.3f s, first audio DTS %.3f s", v0, a0)
		require.InDelta(t, v0, a0, 0.1, "audio and video start together")
	})

	t.Run("B-frames kept", func(t *testing.T) {
		types := rtmpPictTypes(t, "-read_intervals", "%+3", url)
		t.Logf("RTMP play pictures over 3 s: %v", types)
		require.Positive(t, types["B"], "RTMP play keeps the publisher's B-frames")
	})

	t.Run("copy 10s", func(t *testing.T) {
		file := t.TempDir() + "/copy.flv"
		p := harness.FFmpegRun(t, "-i", url, "-t", "10", "-c", "copy", "-y", file)
		require.NoError(t, p.Wait(t, 25*time.Second), p.Stderr())
		out := harness.FFprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", file)
		d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		require.NoError(t, err)
		t.Logf("RTMP play, ffmpeg -c copy -t 10: %.3f s", d)
		require.InDelta(t, 10, d, 0.5)
	})

	t.Run("unknown stream", func(t *testing.T) {
		p := harness.FFmpegRun(t, "-rw_timeout", "5000000", "-i", node.RTMPURL("live/nobody"), "-t", "1", "-f", "null", "-")
		require.Error(t, p.Wait(t, 10*time.Second))
		t.Logf("ffmpeg: %s", strings.TrimSpace(p.Stderr()))
		require.Contains(t, p.Stderr(), "not published")
	})
}
