package packetize

import (
	"bytes"
	"fmt"

	"github.com/estuary-media/estuary/bridge/codec"
)

// H265 packetizes H.265 access units (RFC 7798, no DONL): AUD and filler dropped, VPS/SPS/PPS in an
// aggregation packet (AP) before every IRAP picture, fragmentation units (type 49) of equal size for NAL
// units larger than the payload limit, marker on the access unit's last packet.
type H265 struct {
	sender
	params [][]byte // VPS, SPS, PPS in that order
	ap     []byte   // AP payload of params, or nil when it does not fit
	// ParamsChanged is set when in-band parameter sets replaced the stored ones; the caller clears it.
	ParamsChanged bool
}

// NewH265 makes an H.265 packetizer writing to w.
func NewH265(w Writer, cfg Config) *H265 {
	p := &H265{}
	p.init(w, cfg)
	return p
}

// SetParameterSets sets the VPS, SPS and PPS sent before every IRAP picture (copied).
func (p *H265) SetParameterSets(vps, sps, pps [][]byte) {
	p.params = p.params[:0]
	for _, set := range [][][]byte{vps, sps, pps} {
		for _, n := range set {
			if len(n) >= 2 {
				p.params = append(p.params, append([]byte(nil), n...))
			}
		}
	}
	p.ap = nil
	size := 2
	for _, n := range p.params {
		size += 2 + len(n)
	}
	if len(p.params) < 2 || size > p.max {
		return
	}
	// PayloadHdr: F=0, type 48, the lowest LayerId and TID of the aggregated units (take the first's).
	first := p.params[0]
	p.ap = append(p.ap, first[0]&0x81|codec.H265NALAggregation<<1, first[1])
	for _, n := range p.params {
		p.ap = append(p.ap, byte(len(n)>>8), byte(len(n)))
		p.ap = append(p.ap, n...)
	}
}

func h265Skip(n []byte) bool {
	if len(n) < 2 {
		return true
	}
	switch codec.H265NALType(n) {
	case codec.H265NALAUD, codec.H265NALFiller, codec.H265NALVPS, codec.H265NALSPS, codec.H265NALPPS:
		return true
	}
	// Types 48-63 are RTP-only (AP, FU, PACI) or unspecified: not valid in a bitstream; a set
	// forbidden_zero_bit marks a damaged NAL unit.
	if codec.H265NALType(n) >= codec.H265NALAggregation || n[0]&0x80 != 0 {
		return true
	}
	return false
}

// WriteAVCC sends one access unit of length-prefixed NAL units with RTP timestamp ts (90 kHz).
func (p *H265) WriteAVCC(au []byte, lengthSize int, ts uint32) error {
	if !validLengthSize(lengthSize) {
		return fmt.Errorf("%w: length size %d", ErrBadNALU, lengthSize)
	}
	last := -1
	key := false
	var vps, sps, pps []byte
	for rest, off := au, 0; len(rest) > 0; {
		n, r, err := nextNALU(rest, lengthSize)
		if err != nil {
			return err
		}
		switch codec.H265NALType(n) {
		case codec.H265NALVPS:
			vps = n
		case codec.H265NALSPS:
			sps = n
		case codec.H265NALPPS:
			pps = n
		}
		if !h265Skip(n) {
			last = off
			if codec.HEVCIsIRAP(n) {
				key = true
			}
		}
		off += len(rest) - len(r)
		rest = r
	}
	if vps != nil && sps != nil && pps != nil && (len(p.params) != 3 ||
		!bytes.Equal(vps, p.params[0]) || !bytes.Equal(sps, p.params[1]) || !bytes.Equal(pps, p.params[2])) {
		p.SetParameterSets([][]byte{vps}, [][]byte{sps}, [][]byte{pps})
		p.ParamsChanged = true
	}
	if last < 0 {
		return nil
	}
	sent := false
	for rest, off := au, 0; len(rest) > 0; {
		n, r, _ := nextNALU(rest, lengthSize)
		isLast := off == last
		off += len(rest) - len(r)
		rest = r
		if h265Skip(n) {
			continue
		}
		if key && !sent {
			sent = true
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

func (p *H265) sendParams(ts uint32) error {
	if p.ap != nil {
		return p.send(p.ap, ts, false)
	}
	for _, n := range p.params {
		if err := p.sendNALU(n, ts, false); err != nil {
			return err
		}
	}
	return nil
}

func (p *H265) sendNALU(n []byte, ts uint32, marker bool) error {
	if len(n) <= p.max {
		return p.send(n, ts, marker)
	}
	h0, h1 := n[0], n[1]
	typ := codec.H265NALType(n)
	data := n[2:]
	room := p.max - 3
	k := (len(data) + room - 1) / room
	size, extra := len(data)/k, len(data)%k
	for i := range k {
		sz := size
		if i < extra {
			sz++
		}
		fu := byte(typ)
		if i == 0 {
			fu |= 0x80
		}
		if i == k-1 {
			fu |= 0x40
		}
		p.buf = append(append(p.buf[:0], h0&0x81|codec.H265NALFU<<1, h1, fu), data[:sz]...)
		data = data[sz:]
		if err := p.send(p.buf, ts, marker && i == k-1); err != nil {
			return err
		}
	}
	return nil
}
