package flv

import (
	"encoding/binary"
	"math"
	"sync/atomic"
	"time"
)

// FLV tag types.
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// TagHeaderSize is the size of an FLV tag header; PrevTagSizeLen the size of the PreviousTagSize field.
const (
	TagHeaderSize  = 11
	PrevTagSizeLen = 4
)

// Tag is one FLV tag whose body is made once per stream and shared by every viewer: Body must not be
// modified. Each viewer writes its own header (with its own timestamp).
type Tag struct {
	Type uint8
	DTS  time.Duration // on the stream's timeline
	Key  bool          // a video keyframe (a viewer may start here)
	Seq  bool          // a sequence header (decoder configuration)
	Body []byte

	shared atomic.Pointer[sharedBytes] // see Shared
}

type sharedBytes struct {
	key uint64
	b   []byte
}

// Shared returns mk(t.Body, key): bytes derived from the body (an RTMP play's chunked body for its
// chunk size and chunk stream), made once per tag by its first caller and shared by every later one
// with the same key (another key gets its own, not kept). The result must not be modified.
func (t *Tag) Shared(key uint64, mk func(body []byte, key uint64) []byte) []byte {
	if sb := t.shared.Load(); sb != nil {
		if sb.key == key {
			return sb.b
		}
		return mk(t.Body, key)
	}
	sb := &sharedBytes{key: key, b: mk(t.Body, key)}
	if t.shared.CompareAndSwap(nil, sb) {
		return sb.b
	}
	return t.Shared(key, mk)
}

// Header returns the 9-byte FLV file header followed by PreviousTagSize0.
func Header(hasVideo, hasAudio bool) []byte {
	var flags byte
	if hasAudio {
		flags |= 4
	}
	if hasVideo {
		flags |= 1
	}
	return []byte{'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0}
}

// PutTagHeader writes an 11-byte tag header into b for a body of size bytes at ts milliseconds.
func PutTagHeader(b []byte, typ uint8, size int, ts uint32) {
	_ = b[10]
	b[0] = typ
	b[1], b[2], b[3] = byte(size>>16), byte(size>>8), byte(size)
	b[4], b[5], b[6], b[7] = byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24)
	b[8], b[9], b[10] = 0, 0, 0
}

// AppendTag appends a whole tag (header, body, PreviousTagSize) to dst.
func AppendTag(dst []byte, typ uint8, ts uint32, body []byte) []byte {
	var h [TagHeaderSize]byte
	PutTagHeader(h[:], typ, len(body), ts)
	dst = append(dst, h[:]...)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(TagHeaderSize+len(body)))
}

// ms converts a duration to an FLV millisecond timestamp, rounding down.
func ms(d time.Duration) int32 { return int32(d / time.Millisecond) }

// putSI24 writes a signed 24-bit composition time.
func putSI24(b []byte, v int32) {
	b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v)
}

// VideoSequenceHeader makes the body of a video sequence header tag: an AVC sequence header for
// VideoAVC, an Enhanced RTMP SequenceStart for VideoHEVC and VideoAV1. record is the codec's
// configuration record.
func VideoSequenceHeader(c VideoCodec, record []byte) []byte {
	if c == VideoAVC {
		b := make([]byte, 5, 5+len(record))
		b[0] = FrameKey<<4 | 7
		return append(b, record...)
	}
	b := make([]byte, 5, 5+len(record))
	b[0] = 0x80 | FrameKey<<4 | byte(VideoSequenceStart)
	binary.BigEndian.PutUint32(b[1:], uint32(c))
	return append(b, record...)
}

// VideoFrame makes the body of a coded video frame tag. cts is PTS - DTS (AVC and HEVC only).
func VideoFrame(c VideoCodec, key bool, cts time.Duration, data []byte) []byte {
	ft := byte(FrameInter)
	if key {
		ft = FrameKey
	}
	switch c {
	case VideoAVC:
		b := make([]byte, 5, 5+len(data))
		b[0], b[1] = ft<<4|7, 1
		putSI24(b[2:], ms(cts))
		return append(b, data...)
	case VideoHEVC:
		b := make([]byte, 8, 8+len(data))
		b[0] = 0x80 | ft<<4 | byte(VideoCodedFrames)
		binary.BigEndian.PutUint32(b[1:], uint32(c))
		putSI24(b[5:], ms(cts))
		return append(b, data...)
	default: // AV1, VP9: no composition time
		b := make([]byte, 5, 5+len(data))
		b[0] = 0x80 | ft<<4 | byte(VideoCodedFrames)
		binary.BigEndian.PutUint32(b[1:], uint32(c))
		return append(b, data...)
	}
}

// aacFlags is the legacy AAC audio tag header byte: SoundFormat 10, 44 kHz, 16-bit, stereo (fixed values
// for AAC: the AudioSpecificConfig rules).
const aacFlags = 10<<4 | 3<<2 | 1<<1 | 1

// AudioSequenceHeader makes the body of an audio sequence header tag: AAC with its AudioSpecificConfig,
// or Enhanced RTMP Opus with its OpusHead.
func AudioSequenceHeader(c AudioCodec, record []byte) []byte {
	if c == AudioAAC {
		return append([]byte{aacFlags, 0}, record...)
	}
	b := make([]byte, 5, 5+len(record))
	b[0] = 9<<4 | byte(AudioSequenceStart)
	binary.BigEndian.PutUint32(b[1:], uint32(c))
	return append(b, record...)
}

// AudioFrame makes the body of a coded audio frame tag.
func AudioFrame(c AudioCodec, data []byte) []byte {
	if c == AudioAAC {
		b := make([]byte, 2, 2+len(data))
		b[0], b[1] = aacFlags, 1
		return append(b, data...)
	}
	b := make([]byte, 5, 5+len(data))
	b[0] = 9<<4 | byte(AudioCodedFrames)
	binary.BigEndian.PutUint32(b[1:], uint32(c))
	return append(b, data...)
}

// MetaData describes a stream in its onMetaData script tag.
type MetaData struct {
	HasVideo, HasAudio bool
	VideoCodec         VideoCodec
	AudioCodec         AudioCodec
	Width, Height      int
	SampleRate         int
	Channels           int
}

// Body makes the onMetaData script tag body (AMF0: "onMetaData", ECMA array).
func (m MetaData) Body() []byte {
	b := amfString(nil, "onMetaData")
	type kv struct {
		k string
		v any
	}
	var props []kv
	props = append(props, kv{"duration", 0.0})
	if m.HasVideo {
		props = append(props, kv{"width", float64(m.Width)}, kv{"height", float64(m.Height)},
			kv{"videocodecid", float64(m.VideoCodec)})
	}
	if m.HasAudio {
		props = append(props, kv{"audiocodecid", float64(m.AudioCodec)},
			kv{"audiosamplerate", float64(m.SampleRate)}, kv{"stereo", m.Channels == 2})
	}
	props = append(props, kv{"encoder", "estuary"})
	b = append(b, 0x08)
	b = binary.BigEndian.AppendUint32(b, uint32(len(props)))
	for _, p := range props {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.k)))
		b = append(b, p.k...)
		switch v := p.v.(type) {
		case float64:
			b = append(b, 0x00)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		case bool:
			x := byte(0)
			if v {
				x = 1
			}
			b = append(b, 0x01, x)
		case string:
			b = amfString(b, v)
		}
	}
	return append(b, 0, 0, 9)
}

func amfString(b []byte, s string) []byte {
	b = append(b, 0x02)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
