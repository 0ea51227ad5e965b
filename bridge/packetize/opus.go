package packetize

// Opus sends Opus packets (RFC 7587), one per RTP packet, at a 48 kHz clock.
type Opus struct {
	sender
}

// NewOpus makes an Opus packetizer writing to w.
func NewOpus(w Writer, cfg Config) *Opus {
	p := &Opus{}
	p.init(w, cfg)
	return p
}

// WriteFrame sends one Opus packet with RTP timestamp ts (48 kHz).
func (p *Opus) WriteFrame(frame []byte, ts uint32) error {
	if len(frame) == 0 {
		return ErrEmptyAU
	}
	return p.send(frame, ts, false)
}
