package hls

import (
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/frames"
)

func TestTimeline(t *testing.T) {
	ms := time.Millisecond
	type in struct {
		video    bool
		dts, pts time.Duration
	}
	type out struct {
		pts time.Duration
		ok  bool
	}
	tests := []struct {
		name string
		in   []in
		want []out
	}{
		{name: "starts at zero", in: []in{{true, 5000 * ms, 5000 * ms}, {true, 5040 * ms, 5120 * ms}},
			want: []out{{0, true}, {120 * ms, true}}},
		{name: "audio before video keeps its offset", in: []in{{false, 1000 * ms, 1000 * ms}, {true, 1010 * ms, 1010 * ms}},
			want: []out{{0, true}, {10 * ms, true}}},
		{name: "small step back dropped", in: []in{{true, 0, 0}, {true, 40 * ms, 40 * ms}, {true, 30 * ms, 30 * ms}, {true, 80 * ms, 80 * ms}},
			want: []out{{0, true}, {40 * ms, true}, {0, false}, {80 * ms, true}}},
		{name: "jump forward rebased", in: []in{{true, 0, 0}, {true, 40 * ms, 40 * ms}, {true, 60 * time.Second, 60 * time.Second}, {true, 60*time.Second + 40*ms, 60*time.Second + 40*ms}},
			want: []out{{0, true}, {40 * ms, true}, {60 * ms, true}, {100 * ms, true}}},
		{name: "jump back rebased", in: []in{{false, 10 * time.Second, 10 * time.Second}, {false, 10*time.Second + 20*ms, 10*time.Second + 20*ms}, {false, 0, 0}},
			want: []out{{0, true}, {20 * ms, true}, {40 * ms, true}}},
		{name: "rebase applies to the other track", in: []in{{true, 0, 0}, {false, 0, 0}, {true, 30 * time.Second, 30 * time.Second}, {false, 30 * time.Second, 30 * time.Second}},
			want: []out{{0, true}, {0, true}, {20 * ms, true}, {20 * ms, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tl timeline
			for i, x := range tc.in {
				pts, ok := tl.place("", x.video, x.dts, x.pts)
				require.Equal(t, tc.want[i].ok, ok, "frame %d ok", i)
				if ok {
					require.Equal(t, tc.want[i].pts, pts, "frame %d pts", i)
				}
			}
		})
	}
}

func TestChooseVariant(t *testing.T) {
	tests := []struct {
		name         string
		v            Variant
		video, audio frames.Codec
		want         gohlslib.MuxerVariant
	}{
		{name: "h264 aac mpegts", v: VariantMPEGTS, video: frames.CodecH264, audio: frames.CodecAAC, want: gohlslib.MuxerVariantMPEGTS},
		{name: "h264 only", v: VariantMPEGTS, video: frames.CodecH264, want: gohlslib.MuxerVariantMPEGTS},
		{name: "aac only", v: VariantMPEGTS, audio: frames.CodecAAC, want: gohlslib.MuxerVariantMPEGTS},
		{name: "opus needs fmp4", v: VariantMPEGTS, video: frames.CodecH264, audio: frames.CodecOpus, want: gohlslib.MuxerVariantFMP4},
		{name: "hevc needs fmp4", v: VariantMPEGTS, video: frames.CodecH265, audio: frames.CodecAAC, want: gohlslib.MuxerVariantFMP4},
		{name: "av1 needs fmp4", v: VariantMPEGTS, video: frames.CodecAV1, want: gohlslib.MuxerVariantFMP4},
		{name: "fmp4 asked", v: VariantFMP4, video: frames.CodecH264, audio: frames.CodecAAC, want: gohlslib.MuxerVariantFMP4},
		{name: "lowlatency asked", v: VariantLowLatency, video: frames.CodecH264, audio: frames.CodecOpus, want: gohlslib.MuxerVariantLowLatency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, chooseVariant(tc.v, tc.video, tc.audio))
		})
	}
}

func TestTicks(t *testing.T) {
	require.Equal(t, int64(90000), ticks(time.Second, 90000))
	require.Equal(t, int64(48000*3+24000), ticks(3500*time.Millisecond, 48000))
	require.Equal(t, int64(441), ticks(10*time.Millisecond, 44100))
}
