package sfu

import (
	"sync"

	"github.com/pion/rtp"
)

// Retransmission history sizes (packets; powers of two): about 2 s of 2 Mbit/s video, 1.3 s of Opus.
const (
	rtxVideoPackets = 512
	rtxAudioPackets = 64
)

// rtxEntry is one packet of a track's retransmission history: the input header fields a
// retransmission needs, the source it came from and a reference to its shared payload copy.
type rtxEntry struct {
	buf    *pktBuf // one reference held by the history (nil: empty)
	sn     uint16
	ts     uint32
	marker bool
	ssrc   uint32
	gen    uint32 // the track generation (publication) of the packet
}

// rtxHistory is a track's retransmission buffer: the last packets fanned out to its DownTracks,
// indexed by input sequence number (sn modulo the size), shared by every DownTrack of the track
// instead of one copy per viewer. The track's writer pushes (one reference taken per packet, the
// displaced entry's released); DownTracks look packets up from their NACK readers.
type rtxHistory struct {
	mu   sync.Mutex
	ents []rtxEntry
	mask uint16
}

// newRTXHistory makes a history of size packets (a power of two, at most 32768).
func newRTXHistory(size int) *rtxHistory {
	return &rtxHistory{ents: make([]rtxEntry, size), mask: uint16(size - 1)}
}

// size is the number of packets the history holds.
func (h *rtxHistory) size() int { return len(h.ents) }

// push records p, whose payload is in pb (non-nil; the history takes its own reference), from
// the source (p.SSRC, gen). The packet that had the same slot is let go. No allocation.
func (h *rtxHistory) push(p *rtp.Packet, pb *pktBuf, gen uint32) {
	pb.retain()
	e := &h.ents[p.SequenceNumber&h.mask]
	h.mu.Lock()
	old := e.buf
	*e = rtxEntry{buf: pb, sn: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker, ssrc: p.SSRC, gen: gen}
	h.mu.Unlock()
	if old != nil {
		old.release()
	}
}

// get returns the packet of input sequence number sn from source (ssrc, gen) if the history still
// holds it, with a reference to its payload that the caller must release.
func (h *rtxHistory) get(sn uint16, ssrc, gen uint32) (rtxEntry, bool) {
	h.mu.Lock()
	e := h.ents[sn&h.mask]
	if e.buf == nil || e.sn != sn || e.ssrc != ssrc || e.gen != gen {
		h.mu.Unlock()
		return rtxEntry{}, false
	}
	e.buf.retain()
	h.mu.Unlock()
	return e, true
}

// reset lets every packet go (a new source: nothing of the old one can be asked for again).
func (h *rtxHistory) reset() {
	h.mu.Lock()
	for i := range h.ents {
		if b := h.ents[i].buf; b != nil {
			b.release()
		}
		h.ents[i] = rtxEntry{}
	}
	h.mu.Unlock()
}
