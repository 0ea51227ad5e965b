// Package packetize turns access units (as carried in FLV tags) into RTP packets: H.264 (RFC 6184),
// H.265 (RFC 7798), AV1 (AV1 RTP spec), AAC (RFC 3640, AAC-hbr, both directions) and Opus (RFC 7587).
//
// Each packetizer owns one rtp.Packet and one payload buffer that it reuses for every packet, so the
// steady state allocates nothing; the Writer must not keep the packet after WriteRTP returns (as
// sfu.TrackWriter and sfu.Track promise).
package packetize

import "github.com/pion/rtp"

// DefaultMaxPayload is the largest RTP payload the packetizers make unless told otherwise.
const DefaultMaxPayload = 1200

// Writer receives packets; *sfu.Track and sfu.TrackWriter have this shape.
type Writer interface {
	WriteRTP(p *rtp.Packet) error
}

// Config is common to every packetizer. The zero value is valid.
type Config struct {
	SSRC        uint32
	PayloadType uint8
	// FirstSeq is the sequence number of the first packet.
	FirstSeq uint16
	// MaxPayload bounds each RTP payload in bytes. Default DefaultMaxPayload (1200).
	MaxPayload int
}

// sender holds the reused packet and buffer.
type sender struct {
	w   Writer
	pkt rtp.Packet
	buf []byte // scratch for payloads that must be assembled, cap >= max
	max int
}

func (s *sender) init(w Writer, cfg Config) {
	s.w = w
	s.max = cfg.MaxPayload
	if s.max <= 0 {
		s.max = DefaultMaxPayload
	}
	if s.max < 64 {
		s.max = 64
	}
	s.buf = make([]byte, 0, s.max)
	s.pkt.Version = 2
	s.pkt.SSRC = cfg.SSRC
	s.pkt.PayloadType = cfg.PayloadType
	s.pkt.SequenceNumber = cfg.FirstSeq
}

// send writes one packet and advances the sequence number (also when the writer fails).
func (s *sender) send(payload []byte, ts uint32, marker bool) error {
	s.pkt.Payload = payload
	s.pkt.Timestamp = ts
	s.pkt.Marker = marker
	err := s.w.WriteRTP(&s.pkt)
	s.pkt.SequenceNumber++
	s.pkt.Payload = nil
	return err
}

// NextSeq is the sequence number the next packet will carry.
func (s *sender) NextSeq() uint16 { return s.pkt.SequenceNumber }
