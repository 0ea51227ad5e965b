package rtc

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Batch lets the LocalTracks of one PeerConnection gather what they send between a DownTrack's
// BeginBatch and EndBatch and send it together (see batchconn.go). It follows the PeerConnection's
// selected ICE candidate pair: over UDP it batches to the remote address, over TCP it does nothing.
// Each LocalTrack given the Batch holds a reference; the last LocalTrack.Close releases it.
type Batch struct {
	out       *sender
	engine    *Engine
	pc        *webrtc.PeerConnection
	sr        *senderReports                 // the PeerConnection's (direct sends feed it); nil: no direct sends
	dst       atomic.Pointer[netip.AddrPort] // the selected pair's remote address (UDP), or nil
	localAddr atomic.Pointer[netip.AddrPort] // the selected pair's local address

	mu     sync.Mutex
	refs   int
	closed bool
	q      *destQueue // dst's queue, acquired on first use
}

// newBatch makes pc's Batch (nil when batching is off), before ICE connects: it takes the ICE
// transport's OnSelectedCandidatePairChange handler. sr, pc's sender-report interceptor, allows
// direct sends (direct.go).
func (e *Engine) newBatch(pc *webrtc.PeerConnection, sr *senderReports) *Batch {
	if e.cfg.NoBatch || pc == nil || pc.SCTP() == nil || pc.SCTP().Transport() == nil {
		return nil
	}
	b := &Batch{out: e.sender, engine: e, pc: pc}
	if !e.cfg.NoDirect {
		b.sr = sr
	}
	it := pc.SCTP().Transport().ICETransport()
	it.OnSelectedCandidatePairChange(b.selectPair)
	if p, err := it.GetSelectedCandidatePair(); err == nil && p != nil {
		b.selectPair(p)
	}
	return b
}

func (b *Batch) selectPair(p *webrtc.ICECandidatePair) {
	if p == nil || p.Remote == nil || p.Local == nil || p.Local.Protocol != webrtc.ICEProtocolUDP {
		b.dst.Store(nil)
		return
	}
	ip, err := netip.ParseAddr(p.Remote.Address)
	if err != nil {
		b.dst.Store(nil)
		return
	}
	if lip, err := netip.ParseAddr(p.Local.Address); err == nil {
		la := netip.AddrPortFrom(lip.Unmap(), p.Local.Port)
		b.localAddr.Store(&la)
	}
	ap := netip.AddrPortFrom(ip.Unmap(), p.Remote.Port)
	b.dst.Store(&ap)
}

func (b *Batch) retain() {
	b.mu.Lock()
	b.refs++
	b.mu.Unlock()
}

func (b *Batch) release() {
	b.mu.Lock()
	b.refs--
	var q *destQueue
	if b.refs <= 0 && !b.closed {
		b.closed, q, b.q = true, b.q, nil
	}
	b.mu.Unlock()
	if q != nil {
		b.out.release(q)
	}
}

// begin corks the selected destination and returns its queue (end uncorks it), or nil.
func (b *Batch) begin() *destQueue {
	d := b.dst.Load()
	if d == nil {
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	var old *destQueue
	if b.q == nil || b.q.dst != *d {
		old, b.q = b.q, b.out.acquire(*d)
	}
	q := b.q
	q.cork()
	b.mu.Unlock()
	if old != nil {
		b.out.release(old)
	}
	return q
}
