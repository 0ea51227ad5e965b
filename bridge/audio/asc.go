package audio

import "fmt"

// MPEG-4 audio object types this package names.
const (
	ObjectTypeAACLC = 2  // AAC-LC: the only one decoded
	ObjectTypeSBR   = 5  // HE-AAC (SBR)
	ObjectTypePS    = 29 // HE-AAC v2 (SBR + PS)
)

// sampleRates is the MPEG-4 sampling frequency table (ISO/IEC 14496-3 1.6.3.4); the index is the 4-bit
// samplingFrequencyIndex.
var sampleRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// AudioConfig is what an AudioSpecificConfig says about a stream.
type AudioConfig struct {
	ObjectType int // ObjectTypeAACLC, ...
	SampleRate int // Hz
	Channels   int // channelConfiguration (0: defined by a PCE)
	// FrameLength960 is the GASpecificConfig frameLengthFlag (960-sample frames).
	FrameLength960 bool
}

// bitReader reads MSB-first bits; reading past the end sets bad and yields zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	bad bool
}

func (r *bitReader) read(n int) int {
	v := 0
	for range n {
		if r.pos >= 8*len(r.b) {
			r.bad = true
			v <<= 1
			continue
		}
		bit := int(r.b[r.pos>>3]>>(7-uint(r.pos&7))) & 1
		v = v<<1 | bit
		r.pos++
	}
	return v
}

// ParseASC parses an MPEG-4 AudioSpecificConfig and checks that this package can decode it: AAC-LC,
// a standard sample rate (8 to 96 kHz), one or two channels, 1024-sample frames. A config it cannot
// decode returns the parsed fields and an error wrapping ErrUnsupported; a truncated or malformed one
// wraps ErrInvalidConfig.
func ParseASC(asc []byte) (AudioConfig, error) {
	var c AudioConfig
	r := &bitReader{b: asc}
	c.ObjectType = r.read(5)
	if c.ObjectType == 31 {
		c.ObjectType = 32 + r.read(6)
	}
	idx := r.read(4)
	if idx == 0xf {
		c.SampleRate = r.read(24)
	} else if idx < len(sampleRates) {
		c.SampleRate = sampleRates[idx]
	}
	c.Channels = r.read(4)
	if r.bad {
		return c, fmt.Errorf("%w: AudioSpecificConfig truncated (%d bytes)", ErrInvalidConfig, len(asc))
	}
	switch c.ObjectType {
	case ObjectTypeAACLC:
	case ObjectTypeSBR:
		return c, fmt.Errorf("%w: HE-AAC (SBR) cannot be decoded, only AAC-LC", ErrUnsupported)
	case ObjectTypePS:
		return c, fmt.Errorf("%w: HE-AAC v2 (PS) cannot be decoded, only AAC-LC", ErrUnsupported)
	default:
		return c, fmt.Errorf("%w: audio object type %d cannot be decoded, only AAC-LC (2)", ErrUnsupported, c.ObjectType)
	}
	if idx >= len(sampleRates) {
		if idx == 0xf {
			return c, fmt.Errorf("%w: explicit sample rate %d Hz (only the standard rates 7.35 to 96 kHz)", ErrUnsupported, c.SampleRate)
		}
		return c, fmt.Errorf("%w: reserved sampling frequency index %d", ErrInvalidConfig, idx)
	}
	if c.Channels == 0 || c.Channels > 2 {
		return c, fmt.Errorf("%w: channel configuration %d (only mono and stereo)", ErrUnsupported, c.Channels)
	}
	c.FrameLength960 = r.read(1) == 1
	if r.bad {
		return c, fmt.Errorf("%w: AudioSpecificConfig truncated (%d bytes)", ErrInvalidConfig, len(asc))
	}
	if c.FrameLength960 {
		return c, fmt.Errorf("%w: 960-sample AAC frames", ErrUnsupported)
	}
	return c, nil
}

// Marshal returns the two-byte AudioSpecificConfig of c (standard sample rates only; an other rate
// is written with the explicit 24-bit form). GASpecificConfig flags are zero except frameLengthFlag.
func (c AudioConfig) Marshal() []byte {
	idx := 0xf
	for i, r := range sampleRates {
		if r == c.SampleRate {
			idx = i
			break
		}
	}
	var w bitWriter
	if c.ObjectType >= 31 {
		w.write(31, 5)
		w.write(uint32(c.ObjectType-32), 6)
	} else {
		w.write(uint32(c.ObjectType), 5)
	}
	w.write(uint32(idx), 4)
	if idx == 0xf {
		w.write(uint32(c.SampleRate), 24)
	}
	w.write(uint32(c.Channels), 4)
	fl := uint32(0)
	if c.FrameLength960 {
		fl = 1
	}
	w.write(fl, 1) // frameLengthFlag
	w.write(0, 1)  // dependsOnCoreCoder
	w.write(0, 1)  // extensionFlag
	return w.bytes()
}

type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) write(v uint32, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n&7 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[len(w.b)-1] |= 0x80 >> uint(w.n&7)
		}
		w.n++
	}
}

func (w *bitWriter) bytes() []byte { return w.b }

// ADTSHeader is a parsed ADTS frame header.
type ADTSHeader struct {
	Config    AudioConfig // ObjectType is profile+1
	HeaderLen int         // 7, or 9 with a CRC
	FrameLen  int         // header + payload
	RawBlocks int         // number_of_raw_data_blocks_in_frame + 1
}

// ParseADTSHeader parses the ADTS header at the start of b (for tests and tools that read ADTS
// streams; RTMP and RTP carry raw access units).
func ParseADTSHeader(b []byte) (ADTSHeader, error) {
	var h ADTSHeader
	if len(b) < 7 {
		return h, fmt.Errorf("%w: ADTS header truncated", ErrInvalidConfig)
	}
	if b[0] != 0xff || b[1]&0xf0 != 0xf0 {
		return h, fmt.Errorf("%w: no ADTS syncword", ErrInvalidConfig)
	}
	h.HeaderLen = 7
	if b[1]&1 == 0 {
		h.HeaderLen = 9
	}
	h.Config.ObjectType = int(b[2]>>6) + 1
	idx := int(b[2]>>2) & 0xf
	if idx >= len(sampleRates) {
		return h, fmt.Errorf("%w: ADTS sampling frequency index %d", ErrInvalidConfig, idx)
	}
	h.Config.SampleRate = sampleRates[idx]
	h.Config.Channels = int(b[2]&1)<<2 | int(b[3]>>6)
	h.FrameLen = int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
	h.RawBlocks = int(b[6]&3) + 1
	if h.FrameLen < h.HeaderLen {
		return h, fmt.Errorf("%w: ADTS frame length %d", ErrInvalidConfig, h.FrameLen)
	}
	return h, nil
}
