package flv

import (
	"encoding/binary"
	"fmt"
)

// VideoCodec identifies a video codec, legacy CodecID or Enhanced RTMP FourCC.
type VideoCodec uint32

// Video codecs: legacy FLV CodecIDs use their own small values; Enhanced RTMP codecs use the FourCC.
const (
	VideoAVC  VideoCodec = 7
	VideoHEVC VideoCodec = 'h'<<24 | 'v'<<16 | 'c'<<8 | '1'
	VideoAV1  VideoCodec = 'a'<<24 | 'v'<<16 | '0'<<8 | '1'
	VideoVP9  VideoCodec = 'v'<<24 | 'p'<<16 | '0'<<8 | '9'
	fourCCAVC uint32     = 'a'<<24 | 'v'<<16 | 'c'<<8 | '1'
)

func (c VideoCodec) String() string {
	switch c {
	case VideoAVC:
		return "H264"
	case VideoHEVC:
		return "H265"
	case VideoAV1:
		return "AV1"
	case VideoVP9:
		return "VP9"
	}
	return fmt.Sprintf("codec 0x%x", uint32(c))
}

// VideoPacketType is what a video tag carries (legacy AVCPacketType mapped onto Enhanced RTMP's).
type VideoPacketType uint8

const (
	VideoSequenceStart   VideoPacketType = 0 // decoder configuration record
	VideoCodedFrames     VideoPacketType = 1 // NAL units / OBUs / frame with composition time
	VideoSequenceEnd     VideoPacketType = 2
	VideoCodedFramesX    VideoPacketType = 3 // as CodedFrames, composition time 0
	VideoMetadata        VideoPacketType = 4 // AMF metadata (HDR colour info)
	VideoMPEG2TSSeqStart VideoPacketType = 5
	videoMultitrack      VideoPacketType = 6
	videoModEx           VideoPacketType = 7
)

// Video frame types.
const (
	FrameKey        = 1
	FrameInter      = 2
	FrameDisposable = 3
	FrameGenerated  = 4
	FrameCommand    = 5 // video info/command frame: no media
)

// VideoTag is a parsed video tag body. Data is a slice of the body.
type VideoTag struct {
	Enhanced        bool
	FrameType       uint8
	Codec           VideoCodec
	PacketType      VideoPacketType
	CompositionTime int32 // ms (PTS - DTS)
	Data            []byte
}

// Keyframe reports whether the tag is a keyframe's coded frames.
func (t *VideoTag) Keyframe() bool { return t.FrameType == FrameKey }

// ParseVideoTag parses a video tag body into t (no allocation).
func ParseVideoTag(b []byte, t *VideoTag) error {
	*t = VideoTag{}
	if len(b) < 1 {
		return fmt.Errorf("video: %w", ErrShort)
	}
	if b[0]&0x80 != 0 {
		return parseExVideo(b, t)
	}
	t.FrameType = b[0] >> 4 & 0x0f
	codec := b[0] & 0x0f
	if codec != 7 {
		return fmt.Errorf("video: legacy codec id %d: %w", codec, ErrUnsupported)
	}
	t.Codec = VideoAVC
	if t.FrameType == FrameCommand {
		t.PacketType = VideoMetadata
		t.Data = b[1:]
		return nil
	}
	if len(b) < 5 {
		return fmt.Errorf("video: AVC header: %w", ErrShort)
	}
	switch b[1] {
	case 0:
		t.PacketType = VideoSequenceStart
	case 1:
		t.PacketType = VideoCodedFrames
	case 2:
		t.PacketType = VideoSequenceEnd
	default:
		return fmt.Errorf("video: AVCPacketType %d: %w", b[1], ErrUnsupported)
	}
	t.CompositionTime = si24(b[2:])
	t.Data = b[5:]
	return nil
}

func parseExVideo(b []byte, t *VideoTag) error {
	t.Enhanced = true
	t.FrameType = b[0] >> 4 & 0x07
	t.PacketType = VideoPacketType(b[0] & 0x0f)
	if t.PacketType == videoMultitrack || t.PacketType == videoModEx {
		return fmt.Errorf("video: packet type %d: %w", t.PacketType, ErrUnsupported)
	}
	if len(b) < 5 {
		return fmt.Errorf("video: ExVideoTagHeader: %w", ErrShort)
	}
	fourCC := binary.BigEndian.Uint32(b[1:])
	switch fourCC {
	case fourCCAVC:
		t.Codec = VideoAVC
	case uint32(VideoHEVC), uint32(VideoAV1), uint32(VideoVP9):
		t.Codec = VideoCodec(fourCC)
	default:
		return fmt.Errorf("video: FourCC %q: %w", b[1:5], ErrUnsupported)
	}
	b = b[5:]
	if t.FrameType == FrameCommand {
		t.Data = b
		return nil
	}
	switch t.PacketType {
	case VideoCodedFrames:
		// AVC and HEVC carry a composition time; AV1 and VP9 do not.
		if t.Codec == VideoAVC || t.Codec == VideoHEVC {
			if len(b) < 3 {
				return fmt.Errorf("video: composition time: %w", ErrShort)
			}
			t.CompositionTime = si24(b)
			b = b[3:]
		}
	case VideoSequenceStart, VideoSequenceEnd, VideoCodedFramesX, VideoMetadata, VideoMPEG2TSSeqStart:
	default:
		return fmt.Errorf("video: packet type %d: %w", t.PacketType, ErrUnsupported)
	}
	t.Data = b
	return nil
}

// si24 reads a signed 24-bit big-endian integer.
func si24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	if v&0x800000 != 0 {
		v -= 1 << 24
	}
	return v
}

// AudioCodec identifies an audio codec, legacy SoundFormat or Enhanced RTMP FourCC.
type AudioCodec uint32

// Audio codecs.
const (
	AudioAAC  AudioCodec = 10
	AudioOpus AudioCodec = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's'
)

func (c AudioCodec) String() string {
	switch c {
	case AudioAAC:
		return "AAC"
	case AudioOpus:
		return "Opus"
	}
	return fmt.Sprintf("codec 0x%x", uint32(c))
}

// AudioPacketType is what an audio tag carries (AACPacketType mapped onto Enhanced RTMP's).
type AudioPacketType uint8

const (
	AudioSequenceStart AudioPacketType = 0 // AudioSpecificConfig / OpusHead
	AudioCodedFrames   AudioPacketType = 1
	AudioSequenceEnd   AudioPacketType = 2
	audioMultichannel  AudioPacketType = 4
	audioMultitrack    AudioPacketType = 5
	audioModEx         AudioPacketType = 7
)

// AudioTag is a parsed audio tag body. Data is a slice of the body.
type AudioTag struct {
	Enhanced   bool
	Codec      AudioCodec
	PacketType AudioPacketType
	// Legacy header fields (SoundRate index, 16-bit, stereo) for formats that use them.
	SoundRate   uint8
	SoundSize16 bool
	Stereo      bool
	Data        []byte
}

// ParseAudioTag parses an audio tag body into t (no allocation).
func ParseAudioTag(b []byte, t *AudioTag) error {
	*t = AudioTag{}
	if len(b) < 1 {
		return fmt.Errorf("audio: %w", ErrShort)
	}
	format := b[0] >> 4
	switch format {
	case 9: // ExAudioTagHeader
		t.Enhanced = true
		t.PacketType = AudioPacketType(b[0] & 0x0f)
		switch t.PacketType {
		case AudioSequenceStart, AudioCodedFrames, AudioSequenceEnd:
		case audioMultichannel:
			// Channel layout info: carried, not needed.
		default:
			return fmt.Errorf("audio: packet type %d: %w", t.PacketType, ErrUnsupported)
		}
		if len(b) < 5 {
			return fmt.Errorf("audio: ExAudioTagHeader: %w", ErrShort)
		}
		fourCC := binary.BigEndian.Uint32(b[1:])
		if AudioCodec(fourCC) != AudioOpus {
			return fmt.Errorf("audio: FourCC %q: %w", b[1:5], ErrUnsupported)
		}
		t.Codec = AudioOpus
		t.Data = b[5:]
		return nil
	case 10:
		if len(b) < 2 {
			return fmt.Errorf("audio: AAC header: %w", ErrShort)
		}
		t.Codec = AudioAAC
		t.SoundRate = b[0] >> 2 & 3
		t.SoundSize16 = b[0]&2 != 0
		t.Stereo = b[0]&1 != 0
		switch b[1] {
		case 0:
			t.PacketType = AudioSequenceStart
		case 1:
			t.PacketType = AudioCodedFrames
		default:
			return fmt.Errorf("audio: AACPacketType %d: %w", b[1], ErrUnsupported)
		}
		t.Data = b[2:]
		return nil
	}
	return fmt.Errorf("audio: sound format %d: %w", format, ErrUnsupported)
}
