package frames_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// A frames source takes the original track of each kind and skips "webrtc" variants (H.264 without
// B-frames), whatever their order in the stream.
func TestSourceSkipsVariants(t *testing.T) {
	h264 := sfu.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}
	for _, tc := range []struct {
		name   string
		tracks []sfu.TrackInfo
	}{
		{name: "variant first", tracks: []sfu.TrackInfo{
			{ID: "video-webrtc", Kind: sfu.KindVideo, Codec: h264, Variant: "webrtc"},
			{ID: "video", Kind: sfu.KindVideo, Codec: h264},
		}},
		{name: "variant last", tracks: []sfu.TrackInfo{
			{ID: "video", Kind: sfu.KindVideo, Codec: h264},
			{ID: "video-webrtc", Kind: sfu.KindVideo, Codec: h264, Variant: "webrtc"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
			defer hub.Close()
			pub, err := hub.Publish(context.Background(), "live/v", &fakePub{proto: "rtmp"}, tc.tracks)
			require.NoError(t, err)
			src, err := frames.NewSource(context.Background(), hub, "live/v", frames.Config{}, nil)
			require.NoError(t, err)
			defer func() { _ = src.Close(); src.Wait() }()
			require.Equal(t, 1, pub.Track("video").Writers())
			require.Zero(t, pub.Track("video-webrtc").Writers())
		})
	}
}
