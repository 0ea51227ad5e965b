// Package flvtag reads an FLV byte stream (HTTP-FLV) tag by tag without keeping tag bodies: a
// load generator needs each tag's type, size, timestamp and the first bytes of its body (codec,
// frame type, packet type), not the media.
package flvtag

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Errors of Reader.
var (
	// ErrNotFLV: the stream does not start with the "FLV" signature.
	ErrNotFLV = errors.New("flvtag: not an FLV stream")
	// ErrBadHeader: the FLV header's data offset is out of range.
	ErrBadHeader = errors.New("flvtag: bad FLV header")
	// ErrBadTag: a tag's PreviousTagSize does not match the tag, or the tag type is reserved bits.
	ErrBadTag = errors.New("flvtag: bad tag")
)

// Tag types.
const (
	TypeAudio  = 8
	TypeVideo  = 9
	TypeScript = 18
)

// HeaderSize is the size of a tag header; PrefixSize is how many body bytes a Tag keeps.
const (
	HeaderSize = 11
	PrefixSize = 5
)

// Tag is one tag's header and the first bytes of its body.
type Tag struct {
	Type      uint8  // 8 audio, 9 video, 18 script data
	DataSize  uint32 // body size
	Timestamp uint32 // milliseconds (24 bits + extended byte)
	StreamID  uint32
	Prefix    [PrefixSize]byte
	PrefixLen int // min(DataSize, PrefixSize)
}

// Keyframe reports whether a video tag carries a keyframe (frame type 1; legacy and Enhanced FLV
// keep the frame type in the same bits) that is media, not a sequence header.
func (t *Tag) Keyframe() bool {
	if t.Type != TypeVideo || t.PrefixLen < 1 || (t.Prefix[0]>>4)&0x7 != 1 {
		return false
	}
	return !t.SequenceHeader()
}

// SequenceHeader reports whether an audio or video tag is a decoder configuration (AVC/HEVC
// sequence header, Enhanced FLV SequenceStart, AAC AudioSpecificConfig).
func (t *Tag) SequenceHeader() bool {
	if t.PrefixLen < 1 {
		return false
	}
	b0 := t.Prefix[0]
	switch t.Type {
	case TypeVideo:
		if b0&0x80 != 0 { // Enhanced FLV: packet type in the low nibble, 0 = SequenceStart
			return b0&0x0f == 0
		}
		codec := b0 & 0x0f
		return (codec == 7 || codec == 12) && t.PrefixLen >= 2 && t.Prefix[1] == 0
	case TypeAudio:
		return b0>>4 == 10 && t.PrefixLen >= 2 && t.Prefix[1] == 0
	}
	return false
}

// Media reports whether the tag is audio or video.
func (t *Tag) Media() bool { return t.Type == TypeAudio || t.Type == TypeVideo }

// Reader reads tags from an FLV stream.
type Reader struct {
	br         *bufio.Reader
	headerRead bool
	n          int64 // bytes consumed
	hdr        [HeaderSize + 4]byte
	// HasAudio and HasVideo are the header's flags, valid after the first Next.
	HasAudio, HasVideo bool
}

// NewReader reads from r through a buffer of size bytes (at least 4096).
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, max(size, 4096))}
}

// Bytes is how many bytes the reader has consumed.
func (r *Reader) Bytes() int64 { return r.n }

func (r *Reader) readHeader() error {
	if _, err := io.ReadFull(r.br, r.hdr[:9]); err != nil {
		return fmt.Errorf("flv header: %w", noEOF(err))
	}
	r.n += 9
	h := r.hdr[:9]
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return ErrNotFLV
	}
	r.HasAudio = h[4]&0x04 != 0
	r.HasVideo = h[4]&0x01 != 0
	off := uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])
	if off < 9 || off > 1024 {
		return fmt.Errorf("%w: data offset %d", ErrBadHeader, off)
	}
	if _, err := r.br.Discard(int(off - 9)); err != nil {
		return fmt.Errorf("flv header: %w", noEOF(err))
	}
	r.n += int64(off - 9)
	// PreviousTagSize0
	if _, err := io.ReadFull(r.br, r.hdr[:4]); err != nil {
		return fmt.Errorf("flv header: %w", noEOF(err))
	}
	r.n += 4
	r.headerRead = true
	return nil
}

// Next reads the next tag into t (the FLV header first, on the first call). It returns io.EOF at
// a clean end between tags, io.ErrUnexpectedEOF inside one.
func (r *Reader) Next(t *Tag) error {
	if !r.headerRead {
		if err := r.readHeader(); err != nil {
			return err
		}
	}
	h := r.hdr[:HeaderSize]
	n, err := io.ReadFull(r.br, h)
	r.n += int64(n)
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("tag header: %w", noEOF(err))
	}
	if h[0]&0xc0 != 0 {
		return fmt.Errorf("%w: reserved bits in tag type byte 0x%02x", ErrBadTag, h[0])
	}
	t.Type = h[0] & 0x1f
	t.DataSize = uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	t.Timestamp = uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
	t.StreamID = uint32(h[8])<<16 | uint32(h[9])<<8 | uint32(h[10])
	t.PrefixLen = int(min(t.DataSize, PrefixSize))
	t.Prefix = [PrefixSize]byte{}
	n, err = io.ReadFull(r.br, t.Prefix[:t.PrefixLen])
	r.n += int64(n)
	if err != nil {
		return fmt.Errorf("tag body: %w", noEOF(err))
	}
	rest := int(t.DataSize) - t.PrefixLen
	n, err = r.br.Discard(rest)
	r.n += int64(n)
	if err != nil {
		return fmt.Errorf("tag body: %w", noEOF(err))
	}
	var pts [4]byte
	n, err = io.ReadFull(r.br, pts[:])
	r.n += int64(n)
	if err != nil {
		return fmt.Errorf("previous tag size: %w", noEOF(err))
	}
	prev := uint32(pts[0])<<24 | uint32(pts[1])<<16 | uint32(pts[2])<<8 | uint32(pts[3])
	if prev != t.DataSize+HeaderSize {
		return fmt.Errorf("%w: PreviousTagSize %d, tag is %d bytes", ErrBadTag, prev, t.DataSize+HeaderSize)
	}
	return nil
}

// noEOF turns io.EOF inside a structure into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
