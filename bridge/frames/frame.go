// Package frames turns a stream's RTP tracks into access units (frames) once per stream, for every
// frame-based output (HTTP-FLV, RTMP play, HLS). A Source subscribes to the hub as one sfu.Subscriber
// (ClientInfo.Protocol "mux", not a viewer), depacketizes each track (H.264, H.265, AV1, AAC, Opus),
// recovers DTS from the bitstream, keeps output timestamps continuous across a change of source, keeps
// the last GOP, and hands frames to listeners, each with its own bounded queue.
package frames

import (
	"encoding/binary"
	"time"
)

// Codec is a frame codec.
type Codec uint8

// Codecs handled.
const (
	CodecH264 Codec = iota + 1
	CodecH265
	CodecAV1
	CodecAAC
	CodecOpus
)

func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "H264"
	case CodecH265:
		return "H265"
	case CodecAV1:
		return "AV1"
	case CodecAAC:
		return "AAC"
	case CodecOpus:
		return "Opus"
	}
	return "unknown"
}

// Video reports whether c is a video codec.
func (c Codec) Video() bool { return c == CodecH264 || c == CodecH265 || c == CodecAV1 }

// CodecConfig is a track's decoder configuration at some point of the stream. It is immutable: a change
// (new SPS, another source) makes a new *CodecConfig, so consumers compare pointers.
type CodecConfig struct {
	Codec Codec
	// Record is the codec's configuration record as FLV/MP4 carry it: AVCDecoderConfigurationRecord,
	// HEVCDecoderConfigurationRecord, AV1CodecConfigurationRecord, AudioSpecificConfig, OpusHead.
	Record []byte
	// Parameter sets (H.264: SPS, PPS; H.265: VPS, SPS, PPS), without start codes.
	VPS, SPS, PPS [][]byte
	// Video size when known.
	Width, Height int
	// Audio.
	SampleRate int
	Channels   int
}

// Frame is one access unit. It is shared by every listener and must not be modified.
type Frame struct {
	// TrackID is the sfu track ID ("video", "audio", "aac").
	TrackID string
	Codec   Codec
	// PTS and DTS are on the source's output timeline (continuous across a change of publisher). DTS
	// equals PTS except for video with B-frames.
	PTS, DTS time.Duration
	// Key marks a video random access point (IDR/IRAP/AV1 key frame). Audio frames are all Key.
	Key bool
	// Data: H.264/H.265: NAL units each with a 4-byte big-endian length (AVCC); AV1: a temporal unit of
	// OBUs with size fields (low-overhead bitstream format, temporal delimiters dropped); AAC: one raw
	// access unit; Opus: one Opus packet.
	Data []byte
	// Config is the decoder configuration this frame needs.
	Config *CodecConfig
}

// Video reports whether f is a video frame.
func (f *Frame) Video() bool { return f.Codec.Video() }

// NALUs calls fn for each NAL unit of an H.264/H.265 frame (slices of f.Data).
func (f *Frame) NALUs(fn func(nalu []byte)) {
	b := f.Data
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-4 {
			return
		}
		fn(b[4 : 4+n])
		b = b[4+n:]
	}
}
