package audio

import "errors"

var (
	// ErrUnsupported: the AAC stream is well formed but cannot be decoded here (HE-AAC/SBR/PS, an object
	// type other than AAC-LC, more than two channels, 960-sample frames). The stream's Opus track then
	// stays silent and the AAC track's Details.Problem says why.
	ErrUnsupported = errors.New("unsupported AAC stream")
	// ErrInvalidConfig: the AudioSpecificConfig (or ADTS header) is malformed or truncated.
	ErrInvalidConfig = errors.New("invalid AAC configuration")
	// ErrCorruptFrame: one AAC access unit could not be decoded; the transcoder skips it (a gap) and goes on.
	ErrCorruptFrame = errors.New("corrupt AAC frame")
	// ErrInvalidRate: a resampler was asked for a sample rate outside 1 Hz..384 kHz or a channel count
	// outside 1..2.
	ErrInvalidRate = errors.New("invalid sample rate or channel count")
)
