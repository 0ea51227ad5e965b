package packetize

import (
	"bytes"
	"fmt"

	"github.com/estuary-media/estuary/bridge/codec"
)

// H.264 NAL unit types used here.
const (
	h264IDR    = 5
	h264SPS    = 7
	h264PPS    = 8
	h264AUD    = 9
	h264Filler = 12
	h264STAPA  = 24
	h264FUA    = 28
)

// nextNALU splits the first length-prefixed NAL unit off au.
func nextNALU(au []byte, lengthSize int) (nalu, rest []byte, err error) {
	if len(au) < lengthSize {
		return nil, nil, fmt.Errorf("%w: %d bytes left", ErrBadNALU, len(au))
	}
	n := 0
	for i := range lengthSize {
		n = n<<8 | int(au[i])
	}
	au = au[lengthSize:]
	if n == 0 || n > len(au) {
		return nil, nil, fmt.Errorf("%w: length %d of %d", ErrBadNALU, n, len(au))
	}
	return au[:n], au[n:], nil
}

func validLengthSize(n int) bool { return n == 1 || n == 2 || n == 4 }

// H264 packetizes H.264 access units (RFC 6184, packetization-mode 1): AUD and filler NAL units are
// dropped, SPS and PPS go in a STAP-A before every IDR picture, NAL units larger than the payload limit
// are split in FU-A fragments of equal size, and the access unit's last packet carries the marker.
type H264 struct {
	sender
	sps, pps [][]byte
	stap     []byte // STAP-A payload of sps+pps, or nil when it does not fit one packet
	// DropDisposableB drops slices of non-reference B pictures (nal_ref_idc 0).
	DropDisposableB bool
	// DropBFrames drops every B slice, reference B pictures included (x264 and the encoders like it
	// never reference a B picture from a P or I picture), and rewrites the SPS to say pictures are not
	// reordered: decoders that cannot reorder (Chromium's WebRTC H.264 decoder) then play the stream at
	// the rate of its I and P pictures instead of stalling. Set it before SetParameterSets.
	DropBFrames bool
	origSPS     []byte // the SPS as received (before any rewrite), to spot in-band changes
	// ParamsChanged is set when in-band SPS/PPS replaced the parameter sets; the caller clears it.
	ParamsChanged bool
}

// NewH264 makes an H.264 packetizer writing to w.
func NewH264(w Writer, cfg Config) *H264 {
	p := &H264{}
	p.init(w, cfg)
	return p
}

// SetParameterSets sets the SPS and PPS sent before every IDR (copied).
func (p *H264) SetParameterSets(sps, pps [][]byte) {
	p.sps = cloneAll(sps)
	p.pps = cloneAll(pps)
	p.origSPS = nil
	if len(sps) > 0 {
		p.origSPS = append([]byte(nil), sps[0]...)
	}
	if p.DropBFrames {
		for i, s := range p.sps {
			if out, changed, err := codec.AVCSPSNoReorder(s); err == nil && changed {
				p.sps[i] = out
			}
		}
	}
	p.buildSTAP()
}

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

func (p *H264) buildSTAP() {
	p.stap = p.stap[:0]
	size := 1
	var nri byte
	for _, n := range append(append([][]byte{}, p.sps...), p.pps...) {
		size += 2 + len(n)
		nri = max(nri, n[0]&0x60)
	}
	if size > p.max || len(p.sps)+len(p.pps) < 2 {
		p.stap = nil
		return
	}
	p.stap = append(p.stap, nri|h264STAPA)
	for _, set := range [][][]byte{p.sps, p.pps} {
		for _, n := range set {
			p.stap = append(p.stap, byte(len(n)>>8), byte(len(n)))
			p.stap = append(p.stap, n...)
		}
	}
}

// skip reports whether a NAL unit is not sent as it is.
func (p *H264) skip(n []byte) bool {
	switch t := n[0] & 0x1f; {
	case t == h264AUD, t == h264Filler, t == h264SPS, t == h264PPS:
		return true
	case t == 0 || t >= h264STAPA || n[0]&0x80 != 0:
		// Unspecified and RTP-only types (24-31) are not valid in a bitstream; as single NAL unit
		// packets they would be misread as aggregation or fragmentation packets. A set
		// forbidden_zero_bit marks a damaged NAL unit.
		return true
	}
	if p.DropBFrames {
		st, ok := codec.AVCSliceType(n)
		return ok && st == codec.SliceB
	}
	return p.DropDisposableB && codec.AVCDisposableB(n)
}

// WriteAVCC sends one access unit of length-prefixed NAL units (lengthSize 1, 2 or 4) with RTP
// timestamp ts (90 kHz, presentation time).
func (p *H264) WriteAVCC(au []byte, lengthSize int, ts uint32) error {
	if !validLengthSize(lengthSize) {
		return fmt.Errorf("%w: length size %d", ErrBadNALU, lengthSize)
	}
	// First pass: validate, learn in-band parameter sets, find the last NAL unit sent.
	last := -1
	key := false
	var sps, pps []byte
	for rest, off := au, 0; len(rest) > 0; {
		n, r, err := nextNALU(rest, lengthSize)
		if err != nil {
			return err
		}
		switch n[0] & 0x1f {
		case h264SPS:
			sps = n
		case h264PPS:
			pps = n
		}
		if !p.skip(n) {
			last = off
			if n[0]&0x1f == h264IDR {
				key = true
			}
		}
		off += len(rest) - len(r)
		rest = r
	}
	if sps != nil && pps != nil && (len(p.sps) != 1 || len(p.pps) != 1 || !bytes.Equal(sps, p.origSPS) || !bytes.Equal(pps, p.pps[0])) {
		p.SetParameterSets([][]byte{sps}, [][]byte{pps})
		p.ParamsChanged = true
	}
	if last < 0 {
		return nil
	}
	sentParams := false
	for rest, off := au, 0; len(rest) > 0; {
		n, r, _ := nextNALU(rest, lengthSize)
		isLast := off == last
		off += len(rest) - len(r)
		rest = r
		if p.skip(n) {
			continue
		}
		if key && !sentParams {
			sentParams = true
			if err := p.sendParams(ts); err != nil {
				return err
			}
		}
		if err := p.sendNALU(n, ts, isLast); err != nil {
			return err
		}
	}
	return nil
}

func (p *H264) sendParams(ts uint32) error {
	if p.stap != nil {
		return p.send(p.stap, ts, false)
	}
	for _, set := range [][][]byte{p.sps, p.pps} {
		for _, n := range set {
			if err := p.sendNALU(n, ts, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendNALU sends one NAL unit as a single NAL unit packet or as FU-A fragments of equal size.
func (p *H264) sendNALU(n []byte, ts uint32, marker bool) error {
	if len(n) <= p.max {
		return p.send(n, ts, marker)
	}
	hdr := n[0]
	data := n[1:]
	room := p.max - 2
	k := (len(data) + room - 1) / room
	size, extra := len(data)/k, len(data)%k
	for i := range k {
		sz := size
		if i < extra {
			sz++
		}
		fu := hdr & 0x1f
		if i == 0 {
			fu |= 0x80
		}
		if i == k-1 {
			fu |= 0x40
		}
		p.buf = append(append(p.buf[:0], hdr&0xe0|h264FUA, fu), data[:sz]...)
		data = data[sz:]
		if err := p.send(p.buf, ts, marker && i == k-1); err != nil {
			return err
		}
	}
	return nil
}

// ParameterSets returns the SPS and PPS in use, as sent (not copies: do not modify).
func (p *H264) ParameterSets() (sps, pps [][]byte) { return p.sps, p.pps }
