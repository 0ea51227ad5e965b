package audio

import (
	"errors"
	"fmt"

	aacpcm "github.com/tphakala/go-aac/pcm"
)

// errStarved is what auFeed returns once its access unit is consumed, so the go-aac stream decoder
// never sees io.EOF (which it would latch as the end of the stream).
var errStarved = errors.New("audio: no access unit queued")

// auFeed is the io.Reader behind the go-aac decoder: it serves one ADTS frame at a time.
type auFeed struct {
	buf []byte
	off int
}

// setADTS queues au behind a 7-byte ADTS header (AAC-LC, no CRC) built from conf.
func (f *auFeed) setADTS(conf *AudioConfig, freqIdx int, au []byte) {
	n := 7 + len(au)
	f.buf = append(f.buf[:0],
		0xff, 0xf1, // syncword, MPEG-4, layer 0, no CRC
		byte((conf.ObjectType-1)<<6|freqIdx<<2|conf.Channels>>2),
		byte((conf.Channels&3)<<6|n>>11),
		byte(n>>3),
		byte((n&7)<<5|0x1f), // buffer fullness 0x7ff (VBR)
		0xfc)                // one raw data block
	f.buf = append(f.buf, au...)
	f.off = 0
}

func (f *auFeed) Read(p []byte) (int, error) {
	if f.off >= len(f.buf) {
		return 0, errStarved
	}
	n := copy(p, f.buf[f.off:])
	f.off += n
	return n, nil
}

// aacDecoder decodes raw AAC-LC access units to interleaved float32 PCM, one access unit per call.
// go-aac only exposes a stream decoder (pcm.Decoder over an io.Reader), so each unit is framed as
// ADTS (its raw-unit framing allocates a length prefix per unit; ADTS does not) and read exactly
// once. The ASC is validated once with go-aac's raw-stream parser (which also catches implicit SBR
// signalling).
type aacDecoder struct {
	conf     AudioConfig
	freqIdx  int
	feed     auFeed
	dec      *aacpcm.Decoder
	raw      []byte    // S16LE output of one frame
	pcm      []float32 // interleaved float output of one frame
	needsRst bool
}

func newAACDecoder(asc []byte, conf AudioConfig) (*aacDecoder, error) {
	d := &aacDecoder{
		conf:    conf,
		freqIdx: -1,
		raw:     make([]byte, 2*AACFrameSamples*conf.Channels+2),
		pcm:     make([]float32, AACFrameSamples*conf.Channels),
	}
	for i, r := range sampleRates {
		if r == conf.SampleRate {
			d.freqIdx = i
		}
	}
	if d.freqIdx < 0 || conf.ObjectType != ObjectTypeAACLC || conf.Channels < 1 || conf.Channels > 2 {
		return nil, fmt.Errorf("%w: %+v", ErrUnsupported, conf)
	}
	check, err := aacpcm.NewDecoder(&d.feed, aacpcm.WithRawStream(asc))
	if err != nil {
		if errors.Is(err, aacpcm.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if info := check.Info(); info.Channels != conf.Channels || info.SampleRate != conf.SampleRate {
		return nil, fmt.Errorf("%w: decoder reports %d Hz %d channels, config %d Hz %d", ErrInvalidConfig,
			info.SampleRate, info.Channels, conf.SampleRate, conf.Channels)
	}
	return d, nil
}

func mapDecodeErr(err error) error {
	switch {
	case errors.Is(err, aacpcm.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, aacpcm.ErrCorruptStream):
		return fmt.Errorf("%w: %w", ErrCorruptFrame, err)
	}
	return fmt.Errorf("%w: %w", ErrCorruptFrame, err)
}

// maxAU is the largest access unit an ADTS frame can carry.
const maxAU = 1<<13 - 1 - 7

// decode decodes one access unit and returns its 1024 interleaved samples per channel (valid until
// the next call). A corrupt unit returns an error wrapping ErrCorruptFrame (the decoder is reset and
// the next unit decodes normally); HE-AAC content returns ErrUnsupported.
func (d *aacDecoder) decode(au []byte) ([]float32, error) {
	if len(au) == 0 || len(au) > maxAU {
		return nil, fmt.Errorf("%w: access unit of %d bytes", ErrCorruptFrame, len(au))
	}
	d.feed.setADTS(&d.conf, d.freqIdx, au)
	if d.dec == nil || d.needsRst {
		// The go-aac stream decoder latches errors, and it reads the first header at construction.
		var err error
		if d.dec == nil {
			d.dec, err = aacpcm.NewDecoder(&d.feed)
		} else {
			err = d.dec.Reset(&d.feed)
		}
		if err != nil {
			d.needsRst = d.dec != nil
			return nil, mapDecodeErr(err)
		}
		d.needsRst = false
	}
	want := 2 * AACFrameSamples * d.conf.Channels
	n, err := d.dec.Read(d.raw)
	if err != nil || n != want {
		d.needsRst = true // start afresh on the next unit
		if err == nil || errors.Is(err, errStarved) {
			return nil, fmt.Errorf("%w: decoded %d bytes of PCM, want %d", ErrCorruptFrame, n, want)
		}
		return nil, mapDecodeErr(err)
	}
	if d.feed.off != len(d.feed.buf) {
		d.needsRst = true // the decoder did not take the whole unit: resync
	}
	const scale = 1.0 / 32768
	for i := range d.pcm {
		d.pcm[i] = float32(int16(uint16(d.raw[2*i])|uint16(d.raw[2*i+1])<<8)) * scale
	}
	return d.pcm, nil
}
