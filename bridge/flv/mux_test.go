package flv

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMuxRoundTrip(t *testing.T) {
	rec := []byte{1, 2, 3, 4, 5}
	data := []byte{0, 0, 0, 2, 0x65, 0x88}
	for _, tc := range []struct {
		name  string
		body  []byte
		video *VideoTag
		audio *AudioTag
	}{
		{name: "AVC sequence header", body: VideoSequenceHeader(VideoAVC, rec),
			video: &VideoTag{FrameType: FrameKey, Codec: VideoAVC, PacketType: VideoSequenceStart, Data: rec}},
		{name: "AVC keyframe with composition time", body: VideoFrame(VideoAVC, true, 80*time.Millisecond, data),
			video: &VideoTag{FrameType: FrameKey, Codec: VideoAVC, PacketType: VideoCodedFrames, CompositionTime: 80, Data: data}},
		{name: "AVC inter frame", body: VideoFrame(VideoAVC, false, 0, data),
			video: &VideoTag{FrameType: FrameInter, Codec: VideoAVC, PacketType: VideoCodedFrames, Data: data}},
		{name: "HEVC sequence start", body: VideoSequenceHeader(VideoHEVC, rec),
			video: &VideoTag{Enhanced: true, FrameType: FrameKey, Codec: VideoHEVC, PacketType: VideoSequenceStart, Data: rec}},
		{name: "HEVC coded frames", body: VideoFrame(VideoHEVC, false, -40*time.Millisecond, data),
			video: &VideoTag{Enhanced: true, FrameType: FrameInter, Codec: VideoHEVC, PacketType: VideoCodedFrames, CompositionTime: -40, Data: data}},
		{name: "AV1 coded frames", body: VideoFrame(VideoAV1, true, 0, data),
			video: &VideoTag{Enhanced: true, FrameType: FrameKey, Codec: VideoAV1, PacketType: VideoCodedFrames, Data: data}},
		{name: "AAC sequence header", body: AudioSequenceHeader(AudioAAC, []byte{0x11, 0x90}),
			audio: &AudioTag{Codec: AudioAAC, PacketType: AudioSequenceStart, SoundRate: 3, SoundSize16: true, Stereo: true, Data: []byte{0x11, 0x90}}},
		{name: "AAC raw", body: AudioFrame(AudioAAC, data),
			audio: &AudioTag{Codec: AudioAAC, PacketType: AudioCodedFrames, SoundRate: 3, SoundSize16: true, Stereo: true, Data: data}},
		{name: "Opus sequence start", body: AudioSequenceHeader(AudioOpus, rec),
			audio: &AudioTag{Enhanced: true, Codec: AudioOpus, PacketType: AudioSequenceStart, Data: rec}},
		{name: "Opus frame", body: AudioFrame(AudioOpus, data),
			audio: &AudioTag{Enhanced: true, Codec: AudioOpus, PacketType: AudioCodedFrames, Data: data}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.video != nil {
				var v VideoTag
				require.NoError(t, ParseVideoTag(tc.body, &v))
				require.Equal(t, *tc.video, v)
			} else {
				var a AudioTag
				require.NoError(t, ParseAudioTag(tc.body, &a))
				require.Equal(t, *tc.audio, a)
			}
		})
	}
}

func TestHeaderAndTag(t *testing.T) {
	require.Equal(t, []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}, Header(true, true))
	require.Equal(t, byte(1), Header(true, false)[4])
	require.Equal(t, byte(4), Header(false, true)[4])
	body := []byte{9, 8, 7}
	tag := AppendTag(nil, TagVideo, 0x01234567, body)
	require.Len(t, tag, TagHeaderSize+3+PrevTagSizeLen)
	require.Equal(t, []byte{TagVideo, 0, 0, 3, 0x23, 0x45, 0x67, 0x01, 0, 0, 0}, tag[:11])
	require.Equal(t, body, tag[11:14])
	require.Equal(t, uint32(14), binary.BigEndian.Uint32(tag[14:]))
}

func TestMetaData(t *testing.T) {
	b := MetaData{HasVideo: true, HasAudio: true, VideoCodec: VideoAVC, AudioCodec: AudioAAC, Width: 640, Height: 360, SampleRate: 48000, Channels: 2}.Body()
	require.Equal(t, byte(2), b[0])
	require.Equal(t, "onMetaData", string(b[3:13]))
	require.Equal(t, byte(8), b[13])
	require.Equal(t, uint32(8), binary.BigEndian.Uint32(b[14:]))
	require.Equal(t, []byte{0, 0, 9}, b[len(b)-3:])
	require.Contains(t, string(b), "videocodecid")
	require.Contains(t, string(b), "estuary")
}

func BenchmarkTagWriterBuild(b *testing.B) {
	tags := make([]*Tag, 32)
	for i := range tags {
		tags[i] = &Tag{Type: TagVideo, DTS: time.Duration(i) * 40 * time.Millisecond, Body: make([]byte, 4000)}
	}
	var tw tagWriter
	b.ReportAllocs()
	for b.Loop() {
		tw.build(tags, true)
	}
}
