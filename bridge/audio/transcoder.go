package audio

import (
	"fmt"
	"math"
	"time"

	"github.com/thesyncim/gopus"
)

// AACToOpus turns AAC-LC access units into 20 ms Opus frames at 48 kHz: decode (go-aac), resample
// (Resampler), regroup into 960-sample frames and encode (gopus). It keeps the timing: each Opus
// frame's 48 kHz timestamp is derived from the AAC timestamps (AAC clock = its sample rate) as
//
//	opusTS = aacTS × 48000 / rate − opus lookahead
//
// for the first sample of the frame, so the same AAC time always maps to the same Opus time (the
// decoded Opus sample at a timestamp is the source sample of that time: the resampler's delay is
// discarded and the Opus encoder's lookahead is subtracted). The sample count is what advances the
// output: a timestamp that disagrees with the samples received by less than half a frame is jitter
// (ignored); a jump forward of half a frame up to one second is a gap, filled with silence; an AU
// from half a frame to one second in the past is dropped; a larger jump either way restarts the
// timeline at the new timestamp. The output never slips against the input timestamps.
//
// An AACToOpus is not safe for concurrent use. After the first few calls it allocates nothing.
type AACToOpus struct {
	conf      AudioConfig
	dec       *aacDecoder
	rs        *Resampler
	enc       *gopus.Encoder
	lookahead int64

	rsOut []float32 // resampler output of one call
	fifo  []float32 // 48 kHz interleaved samples not yet encoded
	zeros []float32 // one AAC frame of silence
	pkt   []byte    // encoded Opus frame

	started  bool
	lastExt  int64  // extended timestamp of the last AU
	lastTS   uint32 // its RTP timestamp
	runIn0   int64  // extended AAC timestamp of input sample 0 of the current run
	runOut0  int64  // 48 kHz timestamp of output sample 0 of the current run
	inCount  int64  // input samples (per channel) fed in this run
	skip     int    // output samples still to discard (resampler delay)
	fifoTime int64  // output index (in the run) of fifo[0]

	stats TranscoderStats
}

// TranscoderStats are an AACToOpus's counters.
type TranscoderStats struct {
	AUs            uint64 // access units decoded
	CorruptAUs     uint64 // access units that failed to decode (each becomes a gap)
	DroppedAUs     uint64 // access units dropped because they were in the past
	GapSamples     uint64 // silence inserted for gaps, in input samples per channel
	Restarts       uint64 // timeline restarts (jumps of more than a second)
	OpusFrames     uint64 // Opus frames emitted
	OpusBytes      uint64
	EncodeFailures uint64
}

// EmitFunc receives one encoded 20 ms Opus frame and its 48 kHz RTP timestamp. frame is only valid
// during the call.
type EmitFunc func(frame []byte, ts uint32)

// NewAACToOpus makes a transcoder for the AAC stream described by asc (an AudioSpecificConfig).
// An ASC it cannot decode (HE-AAC, more than two channels, ...) returns an error wrapping
// ErrUnsupported; a malformed one, ErrInvalidConfig.
func NewAACToOpus(asc []byte, cfg Config) (*AACToOpus, error) {
	conf, err := ParseASC(asc)
	if err != nil {
		return nil, err
	}
	dec, err := newAACDecoder(asc, conf)
	if err != nil {
		return nil, fmt.Errorf("AAC decoder: %w", err)
	}
	rs, err := NewResampler(conf.SampleRate, OpusClockRate, conf.Channels)
	if err != nil {
		return nil, err
	}
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: OpusClockRate, Channels: conf.Channels, Application: gopus.ApplicationAudio})
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	if err := enc.SetBitrate(cfg.bitrate()); err != nil {
		return nil, fmt.Errorf("opus bitrate %d: %w", cfg.bitrate(), err)
	}
	if err := enc.SetComplexity(cfg.complexity()); err != nil {
		return nil, fmt.Errorf("opus complexity: %w", err)
	}
	ch := conf.Channels
	t := &AACToOpus{
		conf:      conf,
		dec:       dec,
		rs:        rs,
		enc:       enc,
		lookahead: int64(enc.Lookahead()),
		rsOut:     make([]float32, 0, (rs.OutputLen(AACFrameSamples)+8)*ch),
		fifo:      make([]float32, 0, (rs.OutputLen(AACFrameSamples)+OpusFrameSamples+8)*ch),
		zeros:     make([]float32, AACFrameSamples*ch),
		pkt:       make([]byte, 4000),
	}
	return t, nil
}

// Config returns the parsed AudioSpecificConfig.
func (t *AACToOpus) Config() AudioConfig { return t.conf }

// Channels is the number of channels of both the AAC input and the Opus output.
func (t *AACToOpus) Channels() int { return t.conf.Channels }

// Stats returns the transcoder's counters.
func (t *AACToOpus) Stats() TranscoderStats { return t.stats }

// Transcode decodes one AAC access unit whose RTP timestamp (AAC clock) is ts, and calls emit for
// every Opus frame that is complete. A corrupt access unit returns an error wrapping
// ErrCorruptFrame (skip it and go on: it becomes a gap); HE-AAC content returns ErrUnsupported
// (stop: the stream cannot be transcoded).
func (t *AACToOpus) Transcode(au []byte, ts uint32, emit EmitFunc) error {
	defer since(&transcodeNanos[0], time.Now())
	var ext int64
	if !t.started {
		ext = int64(ts)
	} else {
		ext = t.lastExt + int64(int32(ts-t.lastTS))
	}
	t.lastExt, t.lastTS = ext, ts
	rate := int64(t.conf.SampleRate)
	gap := int64(0)
	if !t.started {
		t.startRun(ext)
	} else {
		d := ext - t.runIn0 - t.inCount
		switch {
		case d > rate || d < -rate:
			t.stats.Restarts++
			t.startRun(ext)
		case d >= AACFrameSamples/2:
			gap = d
		case d <= -AACFrameSamples/2:
			t.stats.DroppedAUs++
			return nil
		}
	}
	pcm, err := t.dec.decode(au)
	if err != nil {
		t.stats.CorruptAUs++
		return err
	}
	t.stats.AUs++
	for gap > 0 {
		n := min(gap, AACFrameSamples)
		t.feed(t.zeros[:int(n)*t.conf.Channels], emit)
		t.stats.GapSamples += uint64(n)
		gap -= n
	}
	t.feed(pcm, emit)
	return nil
}

func (t *AACToOpus) startRun(ext int64) {
	t.started = true
	t.runIn0 = ext
	t.runOut0 = floorDiv(ext*OpusClockRate, int64(t.conf.SampleRate))
	t.inCount = 0
	t.rs.Reset()
	t.skip = int(math.Round(t.rs.Delay()))
	t.fifo = t.fifo[:0]
	t.fifoTime = 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// feed resamples interleaved input samples and encodes every complete 20 ms frame.
func (t *AACToOpus) feed(in []float32, emit EmitFunc) {
	ch := t.conf.Channels
	t.inCount += int64(len(in) / ch)
	t.rsOut = t.rs.Process(t.rsOut[:0], in)
	out := t.rsOut
	if t.skip > 0 {
		n := min(t.skip, len(out)/ch)
		out = out[n*ch:]
		t.skip -= n
	}
	t.fifo = append(t.fifo, out...)
	frame := OpusFrameSamples * ch
	off := 0
	for len(t.fifo)-off >= frame {
		n, err := t.enc.Encode(t.fifo[off:off+frame], t.pkt)
		if err != nil {
			t.stats.EncodeFailures++
		} else if n > 0 {
			t.stats.OpusFrames++
			t.stats.OpusBytes += uint64(n)
			if emit != nil {
				emit(t.pkt[:n], uint32(t.runOut0+t.fifoTime-t.lookahead))
			}
		}
		off += frame
		t.fifoTime += OpusFrameSamples
	}
	if off > 0 {
		m := copy(t.fifo, t.fifo[off:])
		t.fifo = t.fifo[:m]
	}
}
