package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// OpusHead is the Opus ID header (RFC 7845 5.1), as carried in an Enhanced RTMP Opus sequence start.
type OpusHead struct {
	Channels   int
	PreSkip    int
	InputRate  int
	Gain       int16
	MappingFam int
}

// ParseOpusHead parses an OpusHead.
func ParseOpusHead(b []byte) (*OpusHead, error) {
	if len(b) < 19 || !bytes.Equal(b[:8], []byte("OpusHead")) {
		return nil, fmt.Errorf("%w: %w", ErrOpusHead, ErrShort)
	}
	if b[8]>>4 != 0 {
		return nil, fmt.Errorf("%w: version %d", ErrOpusHead, b[8])
	}
	h := &OpusHead{
		Channels:   int(b[9]),
		PreSkip:    int(binary.LittleEndian.Uint16(b[10:])),
		InputRate:  int(binary.LittleEndian.Uint32(b[12:])),
		Gain:       int16(binary.LittleEndian.Uint16(b[16:])),
		MappingFam: int(b[18]),
	}
	if h.Channels == 0 {
		return nil, fmt.Errorf("%w: no channels", ErrOpusHead)
	}
	return h, nil
}

// BuildOpusHead makes an OpusHead for a stream of the given channels (mapping family 0).
func BuildOpusHead(channels int, inputRate int) []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1
	b[9] = byte(channels)
	binary.LittleEndian.PutUint16(b[10:], 312)
	binary.LittleEndian.PutUint32(b[12:], uint32(inputRate))
	return b
}
