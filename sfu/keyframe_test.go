package sfu

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

var keyframeCases = []struct {
	name    string
	mime    string
	payload []byte
	want    bool
}{
	{"h264 empty", "video/H264", nil, false},
	{"h264 idr", "video/H264", []byte{0x65, 0x88, 0x84}, true},
	{"h264 sps", "video/H264", []byte{0x67, 0x42, 0xc0, 0x1f}, true},
	{"h264 pps", "video/H264", []byte{0x68, 0xce}, false},
	{"h264 non-idr", "video/H264", []byte{0x41, 0x9a}, false},
	{"h264 sei", "video/H264", []byte{0x06, 0x05}, false},
	{"h264 stap-a sps pps", "video/H264", stapSPSPPS, true},
	{"h264 stap-a sei then idr", "video/H264", []byte{24, 0, 2, 0x06, 0x05, 0, 2, 0x65, 0x88}, true},
	{"h264 stap-a non-idr", "video/H264", []byte{24, 0, 2, 0x09, 0x10, 0, 2, 0x41, 0x9a}, false},
	{"h264 stap-a truncated", "video/H264", []byte{24, 0}, false},
	{"h264 stap-a zero size", "video/H264", []byte{24, 0, 0, 0, 0}, false},
	{"h264 stap-a size past end", "video/H264", []byte{24, 0, 9, 0x41}, false},
	{"h264 fu-a idr start", "video/H264", fuIDRStart, true},
	{"h264 fu-a idr middle", "video/H264", fuIDRMid, false},
	{"h264 fu-a idr end", "video/H264", fuIDREnd, false},
	{"h264 fu-a non-idr start", "video/H264", []byte{28, 0x81, 1}, false},
	{"h264 fu-a truncated", "video/H264", []byte{28}, false},
	{"h264 lower-case mime", "video/h264", []byte{0x65, 1}, true},
	{"h265 idr_w_radl", "video/H265", []byte{19 << 1, 1, 0xaf}, true},
	{"h265 cra", "video/H265", []byte{21 << 1, 1}, true},
	{"h265 vps", "video/H265", []byte{32 << 1, 1, 0x0c}, true},
	{"h265 trail_r", "video/H265", []byte{1 << 1, 1, 0xd0}, false},
	{"h265 short", "video/H265", []byte{19 << 1}, false},
	{"h265 ap vps sps", "video/H265", []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 2, 33 << 1, 1}, true},
	{"h265 ap trail", "video/H265", []byte{48 << 1, 1, 0, 2, 1 << 1, 1}, false},
	{"h265 fu idr start", "video/H265", []byte{49 << 1, 1, 0x80 | 19, 0xaa}, true},
	{"h265 fu idr middle", "video/H265", []byte{49 << 1, 1, 19, 0xaa}, false},
	{"h265 fu trail start", "video/H265", []byte{49 << 1, 1, 0x80 | 1, 0xaa}, false},
	{"h265 fu truncated", "video/H265", []byte{49 << 1, 1}, false},
	{"vp8 keyframe no ext", "video/VP8", []byte{0x10, 0x00, 0x9d}, true},
	{"vp8 interframe", "video/VP8", []byte{0x10, 0x01, 0x9d}, false},
	{"vp8 not start", "video/VP8", []byte{0x00, 0x00}, false},
	{"vp8 second partition", "video/VP8", []byte{0x11, 0x00}, false},
	{"vp8 keyframe 15-bit pid", "video/VP8", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
	{"vp8 keyframe 7-bit pid", "video/VP8", []byte{0x90, 0x80, 0x23, 0x00}, true},
	{"vp8 interframe I L T", "video/VP8", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x01}, false},
	{"vp8 keyframe I L T", "video/VP8", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x20, 0x00}, true},
	{"vp8 keyframe K only", "video/VP8", []byte{0x90, 0x10, 0x03, 0x00}, true},
	{"vp8 truncated ext", "video/VP8", []byte{0x90, 0x80, 0x81}, false},
	{"vp8 only descriptor", "video/VP8", []byte{0x10}, false},
	{"vp9 keyframe start", "video/VP9", []byte{0x88, 0x01}, true},
	{"vp9 flexible keyframe", "video/VP9", []byte{0x18}, true},
	{"vp9 inter start", "video/VP9", []byte{0xc8, 0x01}, false},
	{"vp9 keyframe middle", "video/VP9", []byte{0x80, 0x01}, false},
	{"vp9 empty", "video/VP9", []byte{}, false},
	{"av1 new sequence", "video/AV1", []byte{0x18, 0x0a}, true},
	{"av1 continuation", "video/AV1", []byte{0x10, 0x32}, false},
	{"av1 empty", "video/AV1", nil, false},
	{"opus", "audio/opus", []byte{0xfc, 0xff}, false},
	{"unknown", "video/foo", []byte{0x65}, false},
}

func TestIsKeyframe(t *testing.T) {
	for _, c := range keyframeCases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, IsKeyframe(c.mime, c.payload))
		})
	}
}

func FuzzIsKeyframe(f *testing.F) {
	mimes := []string{"video/H264", "video/H265", "video/VP8", "video/VP9", "video/AV1", "audio/opus"}
	idx := func(m string) uint8 {
		for i, x := range mimes {
			if x == m {
				return uint8(i)
			}
		}
		return 0
	}
	for _, c := range keyframeCases {
		f.Add(idx(c.mime), c.payload)
	}
	f.Fuzz(func(t *testing.T, m uint8, payload []byte) {
		mime := mimes[int(m)%len(mimes)]
		orig := append([]byte(nil), payload...)
		got := IsKeyframe(mime, payload)
		require.True(t, bytes.Equal(orig, payload), "IsKeyframe modified its input")
		require.Equal(t, got, IsKeyframe(mime, payload), "not deterministic")
		if len(payload) == 0 {
			require.False(t, got)
		}
		if mime == "audio/opus" {
			require.False(t, got)
		}
		// A keyframe start must stay one when bytes are appended (decisions look at a prefix only)
		// for the single-header codecs.
		if got && (mime == "video/VP9" || mime == "video/AV1") {
			require.True(t, IsKeyframe(mime, append(payload, 0xff)))
		}
	})
}
