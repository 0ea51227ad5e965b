package codec

import "fmt"

// MPEG-4 audio object types.
const (
	AACMain = 1
	AACLC   = 2
	AACSBR  = 5  // HE-AAC (v1)
	AACPS   = 29 // HE-AAC v2
)

var aacRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// AudioSpecificConfig is the part of ISO/IEC 14496-3 1.6.2.1 ingest needs.
type AudioSpecificConfig struct {
	ObjectType    int // the core's audio object type (2 for AAC-LC, also under HE-AAC)
	SampleRate    int // the core's sampling rate (the RTP clock and 1024 samples per frame)
	RateIndex     int // samplingFrequencyIndex, 15 when explicit
	Channels      int // channelConfiguration (0: defined in a PCE)
	SBR           bool
	PS            bool
	ExtensionRate int // the SBR output rate, when SBR
}

// HE reports whether the stream needs an HE-AAC decoder (SBR or PS).
func (c *AudioSpecificConfig) HE() bool { return c.SBR || c.PS }

// Profile names the configuration for the API ("LC", "HE-AAC", "HE-AACv2", "Main").
func (c *AudioSpecificConfig) Profile() string {
	switch {
	case c.PS:
		return "HE-AACv2"
	case c.SBR:
		return "HE-AAC"
	case c.ObjectType == AACLC:
		return "LC"
	case c.ObjectType == AACMain:
		return "Main"
	}
	return fmt.Sprintf("AOT %d", c.ObjectType)
}

// ParseAudioSpecificConfig parses an AudioSpecificConfig, recognising HE-AAC signalled explicitly
// (object type 5/29) or backward compatibly (sync extension 0x2b7).
func ParseAudioSpecificConfig(b []byte) (*AudioSpecificConfig, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %w", ErrASC, ErrShort)
	}
	r := &rawBits{b: b}
	c := &AudioSpecificConfig{}
	c.ObjectType = r.aot()
	c.SampleRate, c.RateIndex = r.rate()
	c.Channels = int(r.bits(4))
	if c.ObjectType == AACSBR || c.ObjectType == AACPS {
		c.SBR = true
		c.PS = c.ObjectType == AACPS
		c.ExtensionRate, _ = r.rate()
		c.ObjectType = r.aot()
	}
	if r.err {
		return nil, fmt.Errorf("%w: %w", ErrASC, ErrShort)
	}
	if c.SampleRate <= 0 || c.SampleRate > 192000 {
		return nil, fmt.Errorf("%w: sampling frequency index %d", ErrASC, c.RateIndex)
	}
	if c.ObjectType == AACLC || c.ObjectType == AACMain {
		// GASpecificConfig: frameLengthFlag, dependsOnCoreCoder (+14 bits), extensionFlag.
		if r.bits(1) == 1 {
			return nil, fmt.Errorf("%w: 960-sample frames", ErrASC)
		}
		if r.bits(1) == 1 {
			r.bits(14)
		}
		r.bits(1)
		if c.Channels != 0 && !c.SBR && r.left() >= 16 && r.bits(11) == 0x2b7 {
			if r.aot() == AACSBR && r.bits(1) == 1 {
				c.SBR = true
				c.ExtensionRate, _ = r.rate()
				if r.left() >= 12 && r.bits(11) == 0x548 && r.bits(1) == 1 {
					c.PS = true
				}
			}
		}
	}
	return c, nil
}

// rawBits is a big-endian bit reader over plain bytes.
type rawBits struct {
	b   []byte
	pos int // bit position
	err bool
}

func (r *rawBits) left() int { return len(r.b)*8 - r.pos }

func (r *rawBits) bits(n int) uint32 {
	if r.left() < n {
		r.err = true
		r.pos = len(r.b) * 8
		return 0
	}
	var v uint32
	for range n {
		v = v<<1 | uint32(r.b[r.pos>>3]>>(7-r.pos&7))&1
		r.pos++
	}
	return v
}

func (r *rawBits) aot() int {
	t := int(r.bits(5))
	if t == 31 {
		t = 32 + int(r.bits(6))
	}
	return t
}

func (r *rawBits) rate() (rate, idx int) {
	idx = int(r.bits(4))
	if idx == 15 {
		return int(r.bits(24)), idx
	}
	if idx < len(aacRates) {
		return aacRates[idx], idx
	}
	return 0, idx
}

// BuildAudioSpecificConfig makes a 2-byte AAC-LC AudioSpecificConfig (for tests and muxers).
func BuildAudioSpecificConfig(objectType, rateIndex, channels int) []byte {
	return []byte{byte(objectType<<3 | rateIndex>>1), byte(rateIndex<<7 | channels<<3)}
}
