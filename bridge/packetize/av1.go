package packetize

import "fmt"

// AV1 OBU types used here.
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
	obuTileList          = 8
	obuPadding           = 15
)

// AV1 packetizes AV1 temporal units (low-overhead bitstream format, as in Enhanced RTMP av01 coded
// frames) per the AV1 RTP payload specification: temporal delimiters, tile lists and padding dropped,
// obu_has_size_field cleared, every OBU element preceded by its LEB128 length (W=0), OBUs fragmented
// over packets with the Z/Y bits, N set on the first packet of a new coded video sequence, marker on the
// temporal unit's last packet.
type AV1 struct {
	sender
	seqHdr []byte // sequence header OBU (with size field or not) inserted before keyframes that lack one
	used   int    // bytes used in buf (the packet being filled), 0 when none
	n      bool   // the packet being filled starts a coded video sequence
}

// NewAV1 makes an AV1 packetizer writing to w.
func NewAV1(w Writer, cfg Config) *AV1 {
	p := &AV1{}
	p.init(w, cfg)
	return p
}

// SetSequenceHeader sets the OBUs (the sequence header, from the AV1CodecConfigurationRecord) sent
// before a keyframe whose temporal unit has no sequence header.
func (p *AV1) SetSequenceHeader(obus []byte) { p.seqHdr = append(p.seqHdr[:0], obus...) }

// obu is one parsed OBU: its header bytes (size flag cleared) and payload.
type obu struct {
	typ     int
	hdr     [2]byte
	hdrLen  int
	payload []byte
}

// nextOBU splits the first OBU off tu.
func nextOBU(tu []byte) (o obu, rest []byte, err error) {
	if len(tu) < 1 || tu[0]&0x80 != 0 {
		return o, nil, fmt.Errorf("%w: header", ErrBadOBU)
	}
	o.typ = int(tu[0]>>3) & 0xf
	o.hdr[0] = tu[0] &^ 0x02
	o.hdrLen = 1
	i := 1
	if tu[0]&0x04 != 0 {
		if len(tu) < 2 {
			return o, nil, fmt.Errorf("%w: extension", ErrBadOBU)
		}
		o.hdr[1] = tu[1]
		o.hdrLen = 2
		i = 2
	}
	if tu[0]&0x02 == 0 {
		o.payload = tu[i:]
		return o, nil, nil
	}
	size, n := leb128(tu[i:])
	if n == 0 || size > uint64(len(tu)-i-n) {
		return o, nil, fmt.Errorf("%w: size", ErrBadOBU)
	}
	i += n
	o.payload = tu[i : i+int(size)]
	return o, tu[i+int(size):], nil
}

// leb128 reads an unsigned LEB128 value (at most 8 bytes); n is 0 on error.
func leb128(b []byte) (v uint64, n int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func lebLen(v int) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendLEB(b []byte, v int) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func av1Skip(t int) bool {
	return t == obuTemporalDelimiter || t == obuTileList || t == obuPadding
}

// WriteTemporalUnit sends one temporal unit with RTP timestamp ts (90 kHz). keyframe marks a random
// access point (the FLV frame type): a sequence header is sent first when the unit has none, and N is set.
func (p *AV1) WriteTemporalUnit(tu []byte, ts uint32, keyframe bool) error {
	hasSeq := false
	count := 0
	for rest := tu; len(rest) > 0; {
		o, r, err := nextOBU(rest)
		if err != nil {
			return err
		}
		rest = r
		if o.typ == obuSequenceHeader {
			hasSeq = true
		}
		if !av1Skip(o.typ) {
			count++
		}
	}
	if count == 0 {
		return nil
	}
	p.used = 0
	p.n = keyframe
	if keyframe && !hasSeq && len(p.seqHdr) > 0 {
		for rest := p.seqHdr; len(rest) > 0; {
			o, r, err := nextOBU(rest)
			if err != nil {
				break
			}
			rest = r
			if !av1Skip(o.typ) {
				if err := p.addOBU(&o, ts); err != nil {
					return err
				}
			}
		}
	}
	for rest := tu; len(rest) > 0; {
		o, r, _ := nextOBU(rest)
		rest = r
		if av1Skip(o.typ) {
			continue
		}
		if err := p.addOBU(&o, ts); err != nil {
			return err
		}
	}
	return p.flush(ts, false, true)
}

// addOBU appends one OBU element to the packet being filled, fragmenting it as needed.
func (p *AV1) addOBU(o *obu, ts uint32) error {
	total := o.hdrLen + len(o.payload)
	done := 0
	for done < total {
		if p.used == 0 {
			p.buf = append(p.buf[:0], 0) // aggregation header, filled in flush
			p.used = 1
		}
		room := p.max - p.used
		if room < 2 {
			if err := p.flush(ts, done > 0, false); err != nil {
				return err
			}
			continue
		}
		n := min(total-done, room-lebLen(room))
		if n <= 0 {
			if err := p.flush(ts, done > 0, false); err != nil {
				return err
			}
			continue
		}
		p.buf = appendLEB(p.buf, n)
		// Copy bytes [done, done+n) of header+payload.
		for i := done; i < done+n; {
			if i < o.hdrLen {
				p.buf = append(p.buf, o.hdr[i])
				i++
				continue
			}
			end := min(done+n, total)
			p.buf = append(p.buf, o.payload[i-o.hdrLen:end-o.hdrLen]...)
			i = end
		}
		done += n
		p.used = len(p.buf)
		if done < total {
			if err := p.flush(ts, true, false); err != nil {
				return err
			}
			p.buf = append(p.buf[:0], 0x80) // Z: continues a fragment
			p.used = 1
		}
	}
	return nil
}

// flush sends the packet being filled. y: its last element continues in the next packet.
func (p *AV1) flush(ts uint32, y, marker bool) error {
	if p.used <= 1 {
		p.used = 0
		return nil
	}
	h := p.buf[0] & 0x80 // keep Z
	if y {
		h |= 0x40
	}
	if p.n {
		h |= 0x08
		p.n = false
	}
	p.buf[0] = h
	p.used = 0
	return p.send(p.buf, ts, marker)
}
