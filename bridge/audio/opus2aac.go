package audio

import (
	"errors"
	"fmt"
	"time"

	"github.com/thesyncim/gopus"
	aac "github.com/tphakala/go-aac"
)

// DefaultAACBitrate is the AAC bitrate of OpusToAAC when none is given (audio.aac_bitrate).
const DefaultAACBitrate = 128000

// ErrCorruptOpus: one Opus packet could not be decoded; OpusToAAC skips it and goes on.
var ErrCorruptOpus = errors.New("corrupt Opus packet")

// opusMaxSamples is the most samples per channel one Opus packet decodes to (120 ms at 48 kHz).
const opusMaxSamples = 5760

// OpusToAAC turns Opus packets (48 kHz, one or two channels) into AAC-LC access units at 48 kHz, for
// outputs that cannot carry Opus (FLV, MPEG-TS). One per stream; not safe for concurrent use.
//
// Timing: the first packet's time is the base; each access unit's time is the base plus its first
// sample's position, less the encoder's one-frame priming. A gap or jump of more than 100 ms in the
// input moves the base (the sample count goes on, so the encoder keeps its state).
type OpusToAAC struct {
	dec      *gopus.Decoder
	enc      *aac.Encoder
	channels int
	pcm      []float32   // interleaved decode buffer
	planar   [][]float32 // one AAC frame being filled, per channel
	fill     int
	base     time.Duration
	started  bool
	fed      int64 // samples per channel decoded so far
	encoded  int64 // access units emitted
	out      []byte
	asc      []byte
}

// NewOpusToAAC makes a transcoder for Opus with the given channel count (1 or 2) to AAC-LC at bitrate
// bits per second (0: DefaultAACBitrate).
func NewOpusToAAC(channels, bitrate int) (*OpusToAAC, error) {
	if channels < 1 || channels > 2 {
		return nil, fmt.Errorf("opus to aac: %d channels: %w", channels, ErrInvalidRate)
	}
	if bitrate <= 0 {
		bitrate = DefaultAACBitrate
	}
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(OpusClockRate, channels))
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	enc, err := aac.NewEncoder(aac.EncoderConfig{SampleRate: OpusClockRate, Channels: channels, Bitrate: bitrate})
	if err != nil {
		return nil, fmt.Errorf("aac encoder: %w", err)
	}
	t := &OpusToAAC{dec: dec, enc: enc, channels: channels, pcm: make([]float32, opusMaxSamples*channels),
		planar: make([][]float32, channels), asc: enc.AudioSpecificConfig()}
	for i := range t.planar {
		t.planar[i] = make([]float32, AACFrameSamples)
	}
	return t, nil
}

// AudioSpecificConfig is the AAC configuration of the output (AAC-LC, 48 kHz, the input's channels).
func (t *OpusToAAC) AudioSpecificConfig() []byte { return t.asc }

// SampleRate is the output sample rate (48000).
func (t *OpusToAAC) SampleRate() int { return OpusClockRate }

// Channels is the output channel count.
func (t *OpusToAAC) Channels() int { return t.channels }

// maxDrift is the input timing error taken as a gap (the base moves).
const maxDrift = 100 * time.Millisecond

func samplesDur(n int64) time.Duration {
	return time.Duration(n * int64(time.Second) / OpusClockRate)
}

// Transcode decodes one Opus packet with presentation time pts and calls emit for each AAC access
// unit completed (au is valid only during the call). A packet that does not decode returns
// ErrCorruptOpus (wrapped) and is skipped.
func (t *OpusToAAC) Transcode(pkt []byte, pts time.Duration, emit func(au []byte, pts time.Duration)) error {
	defer since(&transcodeNanos[1], time.Now())
	if !t.started {
		t.started, t.base = true, pts
	} else if exp := t.base + samplesDur(t.fed); pts-exp > maxDrift || exp-pts > maxDrift {
		t.base = pts - samplesDur(t.fed)
	}
	n, err := t.dec.Decode(pkt, t.pcm)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptOpus, err)
	}
	t.fed += int64(n)
	ch := t.channels
	for i := 0; i < n; {
		k := min(n-i, AACFrameSamples-t.fill)
		for c := 0; c < ch; c++ {
			dst := t.planar[c][t.fill : t.fill+k]
			for j := range dst {
				v := t.pcm[(i+j)*ch+c]
				if v != v { // NaN never reaches the encoder
					v = 0
				}
				dst[j] = min(max(v, -1), 1)
			}
		}
		t.fill += k
		i += k
		if t.fill == AACFrameSamples {
			t.fill = 0
			out, err := t.enc.EncodeFrame(t.out[:0], t.planar)
			if err != nil {
				return fmt.Errorf("aac encode: %w", err)
			}
			t.out = out
			if len(out) > 0 {
				at := t.base + samplesDur(t.encoded*AACFrameSamples-int64(t.enc.Delay()))
				t.encoded++
				emit(out, at)
			}
		}
	}
	return nil
}
