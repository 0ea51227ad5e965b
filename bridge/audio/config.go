package audio

// Config configures the AAC to Opus transcoder. The zero value is valid.
type Config struct {
	// OpusBitrate is the Opus target bitrate in bits per second (audio.opus_bitrate). Default 96000.
	OpusBitrate int
	// OpusComplexity is the Opus encoder complexity, 0..10 (higher: better quality, more CPU).
	// Default (0) means DefaultOpusComplexity; set a negative value for complexity 0.
	OpusComplexity int
}

const (
	// DefaultOpusBitrate is Config.OpusBitrate's default.
	DefaultOpusBitrate = 96000
	// DefaultOpusComplexity is Config.OpusComplexity's default.
	DefaultOpusComplexity = 5
	// OpusClockRate is the RTP clock rate (and sample rate) of the Opus output.
	OpusClockRate = 48000
	// OpusFrameSamples is the number of samples per channel in one 20 ms Opus frame at 48 kHz.
	OpusFrameSamples = 960
	// OpusPayloadType is the RTP payload type of the Opus packets AttachOpus writes.
	OpusPayloadType = 111
	// AACFrameSamples is the number of samples per channel in one AAC-LC access unit.
	AACFrameSamples = 1024
)

func (c Config) bitrate() int {
	if c.OpusBitrate <= 0 {
		return DefaultOpusBitrate
	}
	return c.OpusBitrate
}

func (c Config) complexity() int {
	switch {
	case c.OpusComplexity < 0:
		return 0
	case c.OpusComplexity == 0:
		return DefaultOpusComplexity
	case c.OpusComplexity > 10:
		return 10
	}
	return c.OpusComplexity
}
