package codec

// bitReader reads an RBSP bit by bit, skipping emulation prevention bytes (0x000003) as it goes, so a
// slice header can be read without copying the NAL unit.
type bitReader struct {
	b     []byte
	pos   int // byte position of the next byte to load
	cur   byte
	n     int // bits left in cur
	zeros int // consecutive zero bytes loaded
	err   bool
}

func (r *bitReader) load() bool {
	if r.pos >= len(r.b) {
		r.err = true
		return false
	}
	c := r.b[r.pos]
	r.pos++
	if r.zeros >= 2 && c == 3 {
		r.zeros = 0
		if r.pos >= len(r.b) {
			r.err = true
			return false
		}
		c = r.b[r.pos]
		r.pos++
	}
	if c == 0 {
		r.zeros++
	} else {
		r.zeros = 0
	}
	r.cur, r.n = c, 8
	return true
}

func (r *bitReader) bit() uint32 {
	if r.n == 0 && !r.load() {
		return 0
	}
	r.n--
	return uint32(r.cur>>r.n) & 1
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}

// ue reads an unsigned Exp-Golomb code (at most 31 leading zeros).
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.err || zeros >= 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}
