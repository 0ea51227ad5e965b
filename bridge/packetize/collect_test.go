package packetize

import (
	"github.com/pion/rtp"
)

// collector keeps a deep copy of every packet written.
type collector struct {
	pkts []rtp.Packet
}

func (c *collector) WriteRTP(p *rtp.Packet) error {
	q := *p
	q.Payload = append([]byte(nil), p.Payload...)
	c.pkts = append(c.pkts, q)
	return nil
}

// discard counts packets and keeps nothing (benchmarks, alloc tests).
type discard struct{ n int }

func (d *discard) WriteRTP(p *rtp.Packet) error { d.n++; return nil }
