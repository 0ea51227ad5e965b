package codec

import "fmt"

// AV1Config is an AV1CodecConfigurationRecord (AV1-ISOBMFF 2.3.3).
type AV1Config struct {
	Profile      uint8 // seq_profile
	Level        uint8 // seq_level_idx_0
	Tier         uint8 // seq_tier_0
	HighBitdepth bool
	TwelveBit    bool
	Monochrome   bool
	ConfigOBUs   []byte // usually the sequence header OBU (copy)
}

// ParseAV1Config parses an AV1CodecConfigurationRecord.
func ParseAV1Config(b []byte) (*AV1Config, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("av1C: %w", ErrShort)
	}
	if b[0] != 0x81 {
		return nil, fmt.Errorf("av1C marker/version 0x%02x: %w", b[0], ErrVersion)
	}
	c := &AV1Config{
		Profile:      b[1] >> 5,
		Level:        b[1] & 0x1f,
		Tier:         b[2] >> 7,
		HighBitdepth: b[2]&0x40 != 0,
		TwelveBit:    b[2]&0x20 != 0,
		Monochrome:   b[2]&0x10 != 0,
		ConfigOBUs:   append([]byte{}, b[4:]...),
	}
	if c.Profile > 2 {
		return nil, fmt.Errorf("%w: seq_profile %d", ErrAV1Config, c.Profile)
	}
	return c, nil
}

// ProfileName names seq_profile.
func (c *AV1Config) ProfileName() string {
	switch c.Profile {
	case 0:
		return "Main"
	case 1:
		return "High"
	}
	return "Professional"
}

// LevelName is the level as "X.Y" (seq_level_idx = (X-2)*4 + Y).
func (c *AV1Config) LevelName() string {
	if c.Level == 31 {
		return "max"
	}
	return fmt.Sprintf("%d.%d", 2+c.Level/4, c.Level%4)
}
