package packetize

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// RFC 3640 AAC-hbr: each AU header is a 13-bit AU-size and a 3-bit AU-index (-delta).
const (
	aacSizeLength  = 13
	aacIndexLength = 3
	aacMaxAU       = 1<<aacSizeLength - 1
)

// AACFmtp returns the a=fmtp parameters of an "audio/mpeg4-generic" AAC-hbr track carrying the given
// AudioSpecificConfig.
func AACFmtp(asc []byte) string {
	return "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=" +
		hex.EncodeToString(asc)
}

// ParseAACFmtp returns the AudioSpecificConfig of an RFC 3640 fmtp line ("config=" in hex). It checks that
// the line describes AAC-hbr (mode, sizelength, indexlength and indexdeltalength, where given).
func ParseAACFmtp(fmtp string) (asc []byte, err error) {
	for part := range strings.SplitSeq(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch k {
		case "mode":
			if !strings.EqualFold(v, "AAC-hbr") {
				return nil, fmt.Errorf("%w: mode %q", ErrAACFmtp, v)
			}
		case "sizelength", "indexlength", "indexdeltalength":
			want := aacSizeLength
			if k != "sizelength" {
				want = aacIndexLength
			}
			n, err := strconv.Atoi(v)
			if err != nil || n != want {
				return nil, fmt.Errorf("%w: %s=%s", ErrAACFmtp, k, v)
			}
		case "config":
			b, err := hex.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("%w: config: %w", ErrAACFmtp, err)
			}
			asc = b
		}
	}
	if len(asc) < 2 {
		return nil, fmt.Errorf("%w: no config", ErrAACFmtp)
	}
	return asc, nil
}

// aacHeaders validates the AU-headers section and returns the number of headers and the offset of
// the first AU's data.
func aacHeaders(payload []byte) (n, data int, err error) {
	if len(payload) < 2 {
		return 0, 0, fmt.Errorf("%w: payload of %d bytes", ErrAACHeader, len(payload))
	}
	bits := int(binary.BigEndian.Uint16(payload))
	if bits == 0 || bits%16 != 0 {
		return 0, 0, fmt.Errorf("%w: AU-headers-length %d bits", ErrAACHeader, bits)
	}
	data = 2 + bits/8
	if data > len(payload) {
		return 0, 0, fmt.Errorf("%w: %d header bytes in a %d-byte payload", ErrAACHeader, bits/8, len(payload))
	}
	return bits / 16, data, nil
}

// ParseAACPayload calls fn for each access unit of an RFC 3640 AAC-hbr payload. au is a slice of payload.
// A payload holding a fragment of a larger AU returns ErrAACFragment (see AACDepacketizer).
func ParseAACPayload(payload []byte, fn func(au []byte)) error {
	n, off, err := aacHeaders(payload)
	if err != nil {
		return err
	}
	// Validate every header before calling fn, so a bad packet yields no partial output.
	end := off
	for i := range n {
		size := int(binary.BigEndian.Uint16(payload[2+2*i:]) >> aacIndexLength)
		end += size
	}
	if end > len(payload) {
		if n == 1 {
			return ErrAACFragment
		}
		return fmt.Errorf("%w: AUs of %d bytes in %d", ErrAACTruncated, end-off, len(payload)-off)
	}
	for i := range n {
		size := int(binary.BigEndian.Uint16(payload[2+2*i:]) >> aacIndexLength)
		fn(payload[off : off+size])
		off += size
	}
	return nil
}

// AACDepacketizer reassembles AUs fragmented over several packets (RFC 3640 3.2.3) and otherwise
// behaves as ParseAACPayload. The zero value is ready.
type AACDepacketizer struct {
	frag []byte
	want int
}

// Push takes one packet's payload and marker bit and calls fn for each complete AU. au is valid only
// during the call.
func (d *AACDepacketizer) Push(payload []byte, marker bool, fn func(au []byte)) error {
	err := ParseAACPayload(payload, fn)
	if err == nil {
		d.frag = d.frag[:0]
		d.want = 0
		return nil
	}
	if err != ErrAACFragment {
		d.frag = d.frag[:0]
		return err
	}
	_, off, _ := aacHeaders(payload)
	size := int(binary.BigEndian.Uint16(payload[2:]) >> aacIndexLength)
	if len(d.frag) == 0 || d.want != size {
		d.frag = d.frag[:0]
		d.want = size
	}
	d.frag = append(d.frag, payload[off:]...)
	switch {
	case len(d.frag) > d.want:
		d.frag = d.frag[:0]
		return fmt.Errorf("%w: fragments exceed the AU size", ErrAACTruncated)
	case len(d.frag) == d.want:
		fn(d.frag)
		d.frag = d.frag[:0]
	case marker:
		d.frag = d.frag[:0]
		return fmt.Errorf("%w: last fragment short", ErrAACTruncated)
	}
	return nil
}

// AAC packetizes AAC access units (raw frames, as in FLV AACPacketType 1) as RFC 3640 AAC-hbr: one AU per
// packet, fragmented over several packets (same timestamp, marker on the last) when larger than MaxPayload.
type AAC struct {
	sender
}

// NewAAC makes an AAC packetizer writing to w.
func NewAAC(w Writer, cfg Config) *AAC {
	a := &AAC{}
	a.init(w, cfg)
	return a
}

// WriteAU sends one AU with RTP timestamp ts (in the sample-rate clock).
func (a *AAC) WriteAU(au []byte, ts uint32) error {
	if len(au) == 0 {
		return ErrEmptyAU
	}
	if len(au) > aacMaxAU {
		return fmt.Errorf("%w: %d bytes", ErrAUTooLarge, len(au))
	}
	hdr := [4]byte{0, 16, byte(len(au) >> 5), byte(len(au) << 3)}
	room := a.max - len(hdr)
	for len(au) > 0 {
		n := min(len(au), room)
		a.buf = append(append(a.buf[:0], hdr[:]...), au[:n]...)
		au = au[n:]
		if err := a.send(a.buf, ts, len(au) == 0); err != nil {
			return err
		}
	}
	return nil
}

// Seq is the sequence number of the next packet.
func (a *AAC) Seq() uint16 { return a.NextSeq() }
