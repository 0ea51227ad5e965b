package flv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

var videoCases = []struct {
	name string
	in   []byte
	want VideoTag
	err  error
}{
	{name: "AVC seq header", in: []byte{0x17, 0, 0, 0, 0, 1, 0x64}, want: VideoTag{FrameType: 1, Codec: VideoAVC, PacketType: VideoSequenceStart, Data: []byte{1, 0x64}}},
	{name: "AVC keyframe cts 80", in: []byte{0x17, 1, 0, 0, 80, 0, 0, 0, 1, 0x65}, want: VideoTag{FrameType: 1, Codec: VideoAVC, PacketType: VideoCodedFrames, CompositionTime: 80, Data: []byte{0, 0, 0, 1, 0x65}}},
	{name: "AVC inter negative cts", in: []byte{0x27, 1, 0xff, 0xff, 0xd8, 9}, want: VideoTag{FrameType: 2, Codec: VideoAVC, PacketType: VideoCodedFrames, CompositionTime: -40, Data: []byte{9}}},
	{name: "AVC end", in: []byte{0x17, 2, 0, 0, 0}, want: VideoTag{FrameType: 1, Codec: VideoAVC, PacketType: VideoSequenceEnd, Data: []byte{}}},
	{name: "AVC command frame", in: []byte{0x57, 0}, want: VideoTag{FrameType: 5, Codec: VideoAVC, PacketType: VideoMetadata, Data: []byte{0}}},
	{name: "AVC short", in: []byte{0x17, 1, 0}, err: ErrShort},
	{name: "AVC bad packet type", in: []byte{0x17, 3, 0, 0, 0}, err: ErrUnsupported},
	{name: "legacy VP6", in: []byte{0x14, 0}, err: ErrUnsupported},
	{name: "empty", in: nil, err: ErrShort},
	{name: "ex hvc1 seq start", in: []byte{0x90, 'h', 'v', 'c', '1', 1, 2}, want: VideoTag{Enhanced: true, FrameType: 1, Codec: VideoHEVC, PacketType: VideoSequenceStart, Data: []byte{1, 2}}},
	{name: "ex hvc1 coded frames cts", in: []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 40, 7, 8}, want: VideoTag{Enhanced: true, FrameType: 1, Codec: VideoHEVC, PacketType: VideoCodedFrames, CompositionTime: 40, Data: []byte{7, 8}}},
	{name: "ex hvc1 coded frames X", in: []byte{0xa3, 'h', 'v', 'c', '1', 7, 8}, want: VideoTag{Enhanced: true, FrameType: 2, Codec: VideoHEVC, PacketType: VideoCodedFramesX, Data: []byte{7, 8}}},
	{name: "ex av01 coded frames", in: []byte{0x91, 'a', 'v', '0', '1', 0x12, 0}, want: VideoTag{Enhanced: true, FrameType: 1, Codec: VideoAV1, PacketType: VideoCodedFrames, Data: []byte{0x12, 0}}},
	{name: "ex vp09 seq end", in: []byte{0x92, 'v', 'p', '0', '9'}, want: VideoTag{Enhanced: true, FrameType: 1, Codec: VideoVP9, PacketType: VideoSequenceEnd, Data: []byte{}}},
	{name: "ex avc1 coded frames", in: []byte{0xa1, 'a', 'v', 'c', '1', 0, 0, 0, 5}, want: VideoTag{Enhanced: true, FrameType: 2, Codec: VideoAVC, PacketType: VideoCodedFrames, Data: []byte{5}}},
	{name: "ex metadata", in: []byte{0x94, 'h', 'v', 'c', '1', 2}, want: VideoTag{Enhanced: true, FrameType: 1, Codec: VideoHEVC, PacketType: VideoMetadata, Data: []byte{2}}},
	{name: "ex command frame", in: []byte{0xd0, 'a', 'v', '0', '1', 1}, want: VideoTag{Enhanced: true, FrameType: 5, Codec: VideoAV1, PacketType: VideoSequenceStart, Data: []byte{1}}},
	{name: "ex unknown fourcc", in: []byte{0x90, 'v', 'p', '0', '8'}, err: ErrUnsupported},
	{name: "ex multitrack", in: []byte{0x96, 'h', 'v', 'c', '1'}, err: ErrUnsupported},
	{name: "ex modex", in: []byte{0x97}, err: ErrUnsupported},
	{name: "ex short fourcc", in: []byte{0x90, 'h', 'v'}, err: ErrShort},
	{name: "ex hvc1 no cts", in: []byte{0x91, 'h', 'v', 'c', '1', 0}, err: ErrShort},
	{name: "ex packet type 9", in: []byte{0x99, 'h', 'v', 'c', '1', 0}, err: ErrUnsupported},
}

func TestParseVideoTag(t *testing.T) {
	for _, c := range videoCases {
		t.Run(c.name, func(t *testing.T) {
			var got VideoTag
			err := ParseVideoTag(c.in, &got)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			require.Equal(t, c.want.FrameType == FrameKey, got.Keyframe())
		})
	}
	require.Equal(t, "H265", VideoHEVC.String())
	require.Equal(t, "AV1", VideoAV1.String())
}

var audioCases = []struct {
	name string
	in   []byte
	want AudioTag
	err  error
}{
	{name: "AAC config", in: []byte{0xaf, 0, 0x12, 0x10}, want: AudioTag{Codec: AudioAAC, PacketType: AudioSequenceStart, SoundRate: 3, SoundSize16: true, Stereo: true, Data: []byte{0x12, 0x10}}},
	{name: "AAC raw mono", in: []byte{0xae, 1, 0x21}, want: AudioTag{Codec: AudioAAC, PacketType: AudioCodedFrames, SoundRate: 3, SoundSize16: true, Data: []byte{0x21}}},
	{name: "AAC short", in: []byte{0xaf}, err: ErrShort},
	{name: "AAC packet type 2", in: []byte{0xaf, 2}, err: ErrUnsupported},
	{name: "MP3", in: []byte{0x2f, 0}, err: ErrUnsupported},
	{name: "empty", in: nil, err: ErrShort},
	{name: "ex Opus head", in: []byte{0x90, 'O', 'p', 'u', 's', 'O'}, want: AudioTag{Enhanced: true, Codec: AudioOpus, PacketType: AudioSequenceStart, Data: []byte{'O'}}},
	{name: "ex Opus frame", in: []byte{0x91, 'O', 'p', 'u', 's', 0xfc, 1}, want: AudioTag{Enhanced: true, Codec: AudioOpus, PacketType: AudioCodedFrames, Data: []byte{0xfc, 1}}},
	{name: "ex Opus end", in: []byte{0x92, 'O', 'p', 'u', 's'}, want: AudioTag{Enhanced: true, Codec: AudioOpus, PacketType: AudioSequenceEnd, Data: []byte{}}},
	{name: "ex fLaC", in: []byte{0x91, 'f', 'L', 'a', 'C'}, err: ErrUnsupported},
	{name: "ex multitrack", in: []byte{0x95, 'O', 'p', 'u', 's'}, err: ErrUnsupported},
	{name: "ex short", in: []byte{0x91, 'O'}, err: ErrShort},
}

func TestParseAudioTag(t *testing.T) {
	for _, c := range audioCases {
		t.Run(c.name, func(t *testing.T) {
			var got AudioTag
			err := ParseAudioTag(c.in, &got)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
	require.Equal(t, "Opus", AudioOpus.String())
}

func TestParseAllocs(t *testing.T) {
	in := []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 40, 7, 8}
	var v VideoTag
	var a AudioTag
	au := []byte{0xaf, 1, 0x21}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		_ = ParseVideoTag(in, &v)
		_ = ParseAudioTag(au, &a)
	}))
}

// within reports whether d is a subslice of b (or empty).
func within(b, d []byte) bool {
	if len(d) == 0 {
		return true
	}
	return cap(d) <= cap(b) && &b[len(b)-1] == &d[len(d)-1]
}

func FuzzParseVideoTag(f *testing.F) {
	for _, c := range videoCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v VideoTag
		if err := ParseVideoTag(b, &v); err != nil {
			return
		}
		require.True(t, within(b, v.Data), "Data must be the body's tail")
		require.NotZero(t, v.Codec)
	})
}

func FuzzParseAudioTag(f *testing.F) {
	for _, c := range audioCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a AudioTag
		if err := ParseAudioTag(b, &a); err != nil {
			return
		}
		require.True(t, within(b, a.Data), "Data must be the body's tail")
		require.NotZero(t, a.Codec)
	})
}
