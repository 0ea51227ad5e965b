package frames

import (
	"encoding/binary"

	"github.com/estuary-media/estuary/bridge/packetize"
)

// depacketizer reassembles one track's access units from RTP payloads. push is called for each packet
// in sequence order (lost says packets went missing before this one); completed units are appended to
// out (data owned by the depacketizer until the next push: copy it).
type depacketizer interface {
	push(payload []byte, ts uint32, marker, lost bool, out []unit) []unit
	reset()
}

// unit is one access unit as reassembled: data is valid until the next push.
type unit struct {
	data  []byte
	ts    uint32
	first bool // AV1: the N bit (new coded video sequence) was set
}

// nalDepack reassembles H.264 (RFC 6184: single NAL, STAP-A, FU-A) or H.265 (RFC 7798: single NAL, AP,
// FU; no DONL) into AVCC (4-byte lengths).
type nalDepack struct {
	hevc   bool
	buf    []byte // AVCC of the unit being assembled
	ts     uint32
	have   bool // buf belongs to ts (even when empty: a fragment started)
	fuAt   int  // index of the length field of the fragmented NAL unit in progress, or -1
	broken bool // a packet of this unit was lost or malformed: drop it
}

func newNALDepack(hevc bool) *nalDepack { return &nalDepack{hevc: hevc, fuAt: -1} }

func (d *nalDepack) reset() {
	d.buf, d.have, d.fuAt, d.broken = d.buf[:0], false, -1, false
}

func (d *nalDepack) finish(out []unit) []unit {
	if d.have && !d.broken && d.fuAt < 0 && len(d.buf) > 0 {
		out = append(out, unit{data: d.buf, ts: d.ts})
	}
	d.buf, d.have, d.fuAt, d.broken = d.buf[:0:cap(d.buf)], false, -1, false
	return out
}

// maxUnit bounds an access unit's size (a corrupt stream must not grow a buffer without end).
const maxUnit = 16 << 20

func (d *nalDepack) appendNAL(n []byte) {
	if len(n) == 0 || len(d.buf)+len(n) > maxUnit {
		d.broken = true
		return
	}
	d.buf = binary.BigEndian.AppendUint32(d.buf, uint32(len(n)))
	d.buf = append(d.buf, n...)
}

func (d *nalDepack) push(p []byte, ts uint32, marker, lost bool, out []unit) []unit {
	if d.have && ts != d.ts {
		out = d.finish(out)
	}
	if lost {
		// Whatever was being assembled misses packets; a new unit may start with this one.
		if d.have {
			d.broken = true
		}
	}
	if !d.have {
		d.have, d.ts = true, ts
		if lost {
			d.broken = false
		}
	}
	if len(p) == 0 {
		return out
	}
	if d.hevc {
		d.pushH265(p)
	} else {
		d.pushH264(p)
	}
	if marker {
		out = d.finish(out)
	}
	return out
}

func (d *nalDepack) pushH264(p []byte) {
	typ := p[0] & 0x1f
	if typ != 28 && d.fuAt >= 0 { // a fragment never ended
		d.broken, d.fuAt = true, -1
	}
	switch {
	case typ >= 1 && typ <= 23:
		d.appendNAL(p)
	case typ == 24: // STAP-A
		b := p[1:]
		for len(b) > 0 {
			if len(b) < 2 {
				d.broken = true
				return
			}
			n := int(binary.BigEndian.Uint16(b))
			if n == 0 || n > len(b)-2 {
				d.broken = true
				return
			}
			d.appendNAL(b[2 : 2+n])
			b = b[2+n:]
		}
	case typ == 28: // FU-A
		if len(p) < 3 {
			d.broken = true
			return
		}
		d.fragment(p[1]&0x80 != 0, p[1]&0x40 != 0, p[2:], p[0]&0xe0|p[1]&0x1f)
	default: // STAP-B, MTAP, FU-B and reserved types are not used by WebRTC nor our packetizer
		d.broken = true
	}
}

func (d *nalDepack) pushH265(p []byte) {
	if len(p) < 2 {
		d.broken = true
		return
	}
	typ := p[0] >> 1 & 0x3f
	if typ != 49 && d.fuAt >= 0 {
		d.broken, d.fuAt = true, -1
	}
	switch {
	case typ < 48:
		d.appendNAL(p)
	case typ == 48: // AP
		b := p[2:]
		for len(b) > 0 {
			if len(b) < 2 {
				d.broken = true
				return
			}
			n := int(binary.BigEndian.Uint16(b))
			if n < 2 || n > len(b)-2 {
				d.broken = true
				return
			}
			d.appendNAL(b[2 : 2+n])
			b = b[2+n:]
		}
	case typ == 49: // FU
		if len(p) < 4 {
			d.broken = true
			return
		}
		fu := p[2]
		d.fragment2(fu&0x80 != 0, fu&0x40 != 0, p[3:], p[0]&0x81|(fu&0x3f)<<1, p[1])
	default:
		d.broken = true
	}
}

// fragment handles an H.264 FU-A fragment (hdr is the reconstructed NAL header).
func (d *nalDepack) fragment(start, end bool, data []byte, hdr byte) {
	if start {
		if d.fuAt >= 0 {
			d.broken = true
		}
		d.fuAt = len(d.buf)
		d.buf = append(d.buf, 0, 0, 0, 0, hdr)
	} else if d.fuAt < 0 {
		d.broken = true // a fragment without its start
		return
	}
	d.fragData(end, data)
}

// fragment2 handles an H.265 FU (two-byte reconstructed header).
func (d *nalDepack) fragment2(start, end bool, data []byte, h0, h1 byte) {
	if start {
		if d.fuAt >= 0 {
			d.broken = true
		}
		d.fuAt = len(d.buf)
		d.buf = append(d.buf, 0, 0, 0, 0, h0, h1)
	} else if d.fuAt < 0 {
		d.broken = true
		return
	}
	d.fragData(end, data)
}

func (d *nalDepack) fragData(end bool, data []byte) {
	if len(d.buf)+len(data) > maxUnit {
		d.broken = true
		d.buf, d.fuAt = d.buf[:d.fuAt], -1
		return
	}
	d.buf = append(d.buf, data...)
	if end {
		binary.BigEndian.PutUint32(d.buf[d.fuAt:], uint32(len(d.buf)-d.fuAt-4))
		d.fuAt = -1
	}
}

// av1Depack reassembles AV1 temporal units (RTP payload format for AV1) into the low-overhead bitstream
// format: every OBU with obu_has_size_field set; temporal delimiters and tile lists dropped.
type av1Depack struct {
	buf    []byte // the temporal unit being assembled
	frag   []byte // an OBU element continued in the next packet
	inFrag bool
	ts     uint32
	have   bool
	first  bool
	broken bool
}

func (d *av1Depack) reset() {
	d.buf, d.frag, d.inFrag, d.have, d.first, d.broken = d.buf[:0], d.frag[:0], false, false, false, false
}

func (d *av1Depack) finish(out []unit) []unit {
	if d.have && !d.broken && !d.inFrag && len(d.buf) > 0 {
		out = append(out, unit{data: d.buf, ts: d.ts, first: d.first})
	}
	d.buf, d.frag, d.inFrag, d.have, d.first, d.broken = d.buf[:0], d.frag[:0], false, false, false, false
	return out
}

func (d *av1Depack) push(p []byte, ts uint32, marker, lost bool, out []unit) []unit {
	if d.have && ts != d.ts {
		out = d.finish(out)
	}
	if lost && d.have {
		d.broken = true
	}
	if !d.have {
		d.have, d.ts = true, ts
		if lost {
			d.broken = false
		}
	}
	if len(p) == 0 {
		return out
	}
	agg := p[0]
	z, y, w, n := agg&0x80 != 0, agg&0x40 != 0, int(agg>>4&3), agg&0x08 != 0
	if n {
		d.first = true
	}
	if z != d.inFrag { // a continuation without its start, or a start while one is pending
		d.broken = true
		d.frag, d.inFrag = d.frag[:0], false
	}
	b := p[1:]
	for i := 0; len(b) > 0; i++ {
		var elem []byte
		if w != 0 && i == w-1 {
			elem, b = b, nil
		} else {
			size, k := leb128(b)
			if k == 0 || size > uint64(len(b)-k) {
				d.broken = true
				return d.markerEnd(marker, out)
			}
			elem, b = b[k:k+int(size)], b[k+int(size):]
		}
		last := len(b) == 0
		if i == 0 && z {
			d.frag = append(d.frag, elem...)
			if last && y {
				break
			}
			d.addOBU(d.frag)
			d.frag, d.inFrag = d.frag[:0], false
			continue
		}
		if last && y {
			d.frag, d.inFrag = append(d.frag[:0], elem...), true
			break
		}
		d.addOBU(elem)
	}
	if !y {
		d.inFrag = false
	} else {
		d.inFrag = true
	}
	return d.markerEnd(marker, out)
}

func (d *av1Depack) markerEnd(marker bool, out []unit) []unit {
	if marker {
		return d.finish(out)
	}
	return out
}

// addOBU appends one complete OBU, rewritten with a size field.
func (d *av1Depack) addOBU(o []byte) {
	if len(o) == 0 {
		return
	}
	h := o[0]
	if h&0x80 != 0 {
		d.broken = true // forbidden bit
		return
	}
	typ := h >> 3 & 0xf
	hl := 1
	if h&0x04 != 0 {
		hl = 2
	}
	if len(o) < hl {
		d.broken = true
		return
	}
	payload := o[hl:]
	if h&0x02 != 0 {
		size, k := leb128(payload)
		if k == 0 || size > uint64(len(payload)-k) {
			d.broken = true
			return
		}
		payload = payload[k : k+int(size)]
	}
	if typ == 2 || typ == 8 { // temporal delimiter, tile list
		return
	}
	if len(d.buf)+len(o)+8 > maxUnit {
		d.broken = true
		return
	}
	d.buf = append(d.buf, h|0x02)
	if hl == 2 {
		d.buf = append(d.buf, o[1])
	}
	d.buf = appendLEB128(d.buf, uint64(len(payload)))
	d.buf = append(d.buf, payload...)
}

func leb128(b []byte) (v uint64, n int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func appendLEB128(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// aacDepack splits RFC 3640 AAC-hbr payloads into access units (ts advances 1024 per extra unit).
type aacDepack struct {
	d       packetize.AACDepacketizer
	out     []unit
	ts      uint32
	onAU    func(au []byte)
	scratch [][]byte
	broken  bool
}

func newAACDepack() *aacDepack {
	a := &aacDepack{}
	a.onAU = a.au // bound once: no closure per packet
	return a
}

func (a *aacDepack) au(au []byte) {
	a.out = append(a.out, unit{data: au, ts: a.ts})
	a.ts += 1024
}

func (a *aacDepack) reset() { a.d = packetize.AACDepacketizer{} }

func (a *aacDepack) push(p []byte, ts uint32, marker, lost bool, out []unit) []unit {
	if lost {
		a.d = packetize.AACDepacketizer{}
	}
	if len(p) == 0 {
		return out
	}
	a.out, a.ts = out, ts
	if err := a.d.Push(p, marker, a.onAU); err != nil {
		a.broken = true
	}
	out = a.out
	a.out = nil
	return out
}

// opusDepack passes Opus packets through (one packet, one frame).
type opusDepack struct{}

func (opusDepack) reset() {}

func (opusDepack) push(p []byte, ts uint32, _, _ bool, out []unit) []unit {
	if len(p) == 0 {
		return out
	}
	return append(out, unit{data: p, ts: ts})
}
