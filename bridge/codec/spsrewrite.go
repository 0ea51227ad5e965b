package codec

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// rbspReader reads bits from an RBSP (emulation prevention already removed).
type rbspReader struct {
	b   []byte
	pos int // bit position
	err bool
}

func (r *rbspReader) u(n int) uint32 {
	var v uint32
	for range n {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos>>3]>>(7-r.pos&7))&1
		r.pos++
	}
	return v
}

func (r *rbspReader) ue() uint32 {
	z := 0
	for r.u(1) == 0 {
		if r.err || z > 31 {
			r.err = true
			return 0
		}
		z++
	}
	return 1<<z - 1 + r.u(z)
}

func (r *rbspReader) se() { r.ue() }

// rbspWriter appends bits.
type rbspWriter struct {
	b []byte
	n int // bits written
}

func (w *rbspWriter) u(n int, v uint32) {
	for i := n - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.n%8)
		w.n++
	}
}

func (w *rbspWriter) ue(v uint32) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.u(n, 0)
	w.u(n+1, v)
}

func skipScalingList(r *rbspReader, size int) {
	last, next := int32(8), int32(8)
	for range size {
		if next != 0 {
			d := int32(r.ue())
			// se(v) from ue(v): positive for odd codes.
			if d%2 == 1 {
				d = (d + 1) / 2
			} else {
				d = -d / 2
			}
			next = (last + d + 256) % 256
		}
		if next != 0 {
			last = next
		}
		if r.err {
			return
		}
	}
}

func skipHRD(r *rbspReader) {
	cnt := r.ue() + 1
	if cnt > 32 {
		r.err = true
		return
	}
	r.u(8) // bit_rate_scale, cpb_size_scale
	for range cnt {
		r.ue()
		r.ue()
		r.u(1)
	}
	r.u(20) // four 5-bit lengths
}

// AVCSPSNoReorder returns a copy of an H.264 SPS NAL unit whose VUI says pictures are never reordered
// (max_num_reorder_frames 0), for a stream whose B pictures are all dropped: decoders such as
// Chromium's WebRTC H.264 decoder then output each picture at once instead of waiting for reordering.
// An SPS without VUI bitstream restriction is returned as it is (changed false).
func AVCSPSNoReorder(nalu []byte) (out []byte, changed bool, err error) {
	if len(nalu) < 4 || nalu[0]&0x1f != H264NALSPS {
		return nil, false, fmt.Errorf("%w: not an SPS", ErrSPS)
	}
	rbsp := h264.EmulationPreventionRemove(nalu[1:])
	r := &rbspReader{b: rbsp}
	profile := r.u(8)
	r.u(16) // constraint flags, level_idc
	r.ue()  // seq_parameter_set_id
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma := r.ue()
		if chroma == 3 {
			r.u(1)
		}
		r.ue()
		r.ue()
		r.u(1)
		if r.u(1) == 1 { // seq_scaling_matrix_present_flag
			n := 8
			if chroma == 3 {
				n = 12
			}
			for i := range n {
				if r.u(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(r, size)
				}
			}
		}
	}
	r.ue() // log2_max_frame_num_minus4
	switch r.ue() {
	case 0:
		r.ue()
	case 1:
		r.u(1)
		r.se()
		r.se()
		n := r.ue()
		if n > 255 {
			return nil, false, fmt.Errorf("%w: poc cycle", ErrSPS)
		}
		for range n {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	r.u(1) // gaps_in_frame_num_value_allowed_flag
	r.ue() // pic_width_in_mbs_minus1
	r.ue() // pic_height_in_map_units_minus1
	if r.u(1) == 0 {
		r.u(1) // mb_adaptive_frame_field_flag
	}
	r.u(1) // direct_8x8_inference_flag
	if r.u(1) == 1 {
		r.ue()
		r.ue()
		r.ue()
		r.ue()
	}
	if r.u(1) == 0 || r.err { // no VUI
		return nalu, false, nil
	}
	if r.u(1) == 1 && r.u(8) == 255 {
		r.u(32)
	}
	if r.u(1) == 1 {
		r.u(1)
	}
	if r.u(1) == 1 {
		r.u(4)
		if r.u(1) == 1 {
			r.u(24)
		}
	}
	if r.u(1) == 1 {
		r.ue()
		r.ue()
	}
	if r.u(1) == 1 {
		r.u(32)
		r.u(32)
		r.u(1)
	}
	nal := r.u(1) == 1
	if nal {
		skipHRD(r)
	}
	vcl := r.u(1) == 1
	if vcl {
		skipHRD(r)
	}
	if nal || vcl {
		r.u(1)
	}
	r.u(1) // pic_struct_present_flag
	if r.u(1) == 0 || r.err {
		return nalu, false, nil
	}
	r.u(1)
	r.ue()
	r.ue()
	r.ue()
	r.ue()
	at := r.pos
	reorder := r.ue()
	dpb := r.ue()
	if r.err {
		return nil, false, fmt.Errorf("%w: truncated VUI", ErrSPS)
	}
	if reorder == 0 {
		return nalu, false, nil
	}
	w := &rbspWriter{b: make([]byte, 0, len(rbsp)+2)}
	for i := 0; i < at; i++ {
		w.u(1, uint32(rbsp[i>>3]>>(7-i&7))&1)
	}
	w.ue(0)
	w.ue(dpb)
	w.u(1, 1) // rbsp_stop_one_bit, then zero bits to the byte boundary
	out = append([]byte{nalu[0]}, emulationPreventionAdd(w.b)...)
	return out, true, nil
}

// emulationPreventionAdd inserts 0x03 after two zero bytes followed by a byte <= 3.
func emulationPreventionAdd(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/64+2)
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
