package audio

import (
	"errors"
	"fmt"

	aacpcm "github.com/tphakala/go-aac/pcm"
)

// errStarved is what auFeed returns once its access unit is consumed, so the go-aac stream decoder
// never sees io.EOF (which it would latch as the end of the stream).
var errStarved = errors.New("audio: no access unit queued")

// auFeed is the io.Reader behind the go-aac decoder: it serves one length-prefixed access unit at a time.
type auFeed struct {
	buf []byte
	off int
}

func (f *auFeed) set(au []byte) {
	f.buf = append(f.buf[:0], byte(len(au)>>8), byte(len(au)))
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
// go-aac only exposes a stream decoder (pcm.Decoder over an io.Reader of length-prefixed units), so
// it is fed one unit at a time and read exactly once per unit.
type aacDecoder struct {
	asc      []byte
	channels int
	feed     auFeed
	dec      *aacpcm.Decoder
	raw      []byte    // S16LE output of one frame
	pcm      []float32 // interleaved float output of one frame
	needsRst bool
}

func newAACDecoder(asc []byte, channels int) (*aacDecoder, error) {
	d := &aacDecoder{
		asc:      append([]byte(nil), asc...),
		channels: channels,
		raw:      make([]byte, 2*AACFrameSamples*channels+2),
		pcm:      make([]float32, AACFrameSamples*channels),
	}
	dec, err := aacpcm.NewDecoder(&d.feed, aacpcm.WithRawStream(d.asc))
	if err != nil {
		return nil, mapDecodeErr(err)
	}
	if info := dec.Info(); info.Channels != channels {
		return nil, fmt.Errorf("%w: decoder reports %d channels, config %d", ErrInvalidConfig, info.Channels, channels)
	}
	d.dec = dec
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

// decode decodes one access unit and returns its 1024 interleaved samples per channel (valid until
// the next call). A corrupt unit returns an error wrapping ErrCorruptFrame (the decoder is reset and
// the next unit decodes normally); HE-AAC content returns ErrUnsupported.
func (d *aacDecoder) decode(au []byte) ([]float32, error) {
	if len(au) == 0 || len(au) > 0xffff {
		return nil, fmt.Errorf("%w: access unit of %d bytes", ErrCorruptFrame, len(au))
	}
	if d.needsRst {
		d.feed.set(nil)
		d.feed.off = len(d.feed.buf)
		if err := d.dec.Reset(&d.feed, aacpcm.WithRawStream(d.asc)); err != nil {
			return nil, mapDecodeErr(err)
		}
		d.needsRst = false
	}
	d.feed.set(au)
	want := 2 * AACFrameSamples * d.channels
	n, err := d.dec.Read(d.raw)
	if err != nil || n != want {
		// The go-aac stream decoder latches errors: start afresh on the next unit.
		d.needsRst = true
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
