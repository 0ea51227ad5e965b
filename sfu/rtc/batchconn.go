package rtc

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Batched UDP sends. Every PeerConnection sends through pion's ICE UDP mux, whose socket is a
// batchConn. A viewer's DownTrack writer brackets each batch of packets it drains (sfu.BatchSink,
// implemented by LocalTrack through the PeerConnection's Batch): while the viewer's destination is
// "corked", the datagrams pion writes to it (SRTP already applied) are gathered in its destQueue, and
// when the last bracket closes they leave together: runs of equal-sized datagrams (a video frame's
// packets) in one sendmsg with UDP GSO (UDP_SEGMENT, Linux 4.18+), the rest one by one. The kernel
// then routes, filters and queues a run once instead of once per datagram, which is most of a
// datagram's cost (see docs/benchmarks.md). Datagrams to a destination nobody corks (STUN, DTLS,
// RTCP, a publisher's feedback) go out at once, as before.

const (
	maxPending  = 1024  // datagrams a destQueue gathers before later ones go out unbatched
	maxSegments = 64    // datagrams per GSO send (the kernel takes up to 64 or 128)
	maxGSOBytes = 65000 // bytes per GSO send (one IP datagram's limit, less headers)
)

// batchConn is the ICE UDP mux's socket: a *net.UDPConn whose writes to a corked destination are
// gathered (see destQueue). It implements net.PacketConn and ice.AddrPortReaderWriter, so pion's
// UDPMuxDefault reads and writes through it without allocating.
type batchConn struct {
	conn *net.UDPConn
	out  *sender
	gso  atomic.Bool // UDP GSO works on this socket (probed at start, off after a failure)
}

func newBatchConn(conn *net.UDPConn, out *sender) *batchConn {
	c := &batchConn{conn: conn, out: out}
	c.gso.Store(out.gsoOK && gsoSupported(conn))
	return c
}

func (c *batchConn) ReadFrom(b []byte) (int, net.Addr, error) { return c.conn.ReadFrom(b) }

func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.conn.ReadFromUDPAddrPort(b)
}

func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, ua.AddrPort())
	}
	return c.conn.WriteTo(b, addr)
}

// WriteToAddrPort gathers b when its destination is corked, and sends it otherwise.
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if q := c.out.lookup(addr); q != nil && q.gather(c, b) {
		return len(b), nil
	}
	return c.conn.WriteToUDPAddrPort(b, addr)
}

func (c *batchConn) Close() error                       { return c.conn.Close() }
func (c *batchConn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *batchConn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *batchConn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *batchConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// sendRun sends the datagrams of one run (all of size seg but the last, which may be shorter, laid
// end to end in data) to dst: one GSO send when it can, else one by one. It returns the number of
// system calls made.
func (c *batchConn) sendRun(data []byte, seg int, dst netip.AddrPort, oob []byte) int {
	if len(data) > seg && c.gso.Load() {
		_, _, err := c.conn.WriteMsgUDPAddrPort(data, gsoControl(oob, seg), dst)
		if err == nil || !gsoRefused(err) {
			return 1 // sent, or lost like any datagram whose send fails
		}
		c.gso.Store(false) // this socket or path cannot do GSO: never again
		c.out.gsoFailures.Add(1)
	}
	calls := 0
	for off := 0; off < len(data); off += seg {
		_, _ = c.conn.WriteToUDPAddrPort(data[off:min(off+seg, len(data))], dst)
		calls++
	}
	return calls
}

// SendStats counts the batched sends of an Engine since it started.
type SendStats struct {
	Datagrams   uint64 // datagrams that left in batches
	Syscalls    uint64 // system calls that sent them (fewer: UDP GSO at work)
	GSOFailures uint64 // sockets that turned GSO off after the kernel refused it
}

// SendStats returns the engine's batched-send counters.
func (e *Engine) SendStats() SendStats {
	return SendStats{
		Datagrams: e.sender.datagrams.Load(), Syscalls: e.sender.syscalls.Load(),
		GSOFailures: e.sender.gsoFailures.Load(),
	}
}

// sender holds the destQueues of the destinations that batch, shared by an engine's sockets.
type sender struct {
	gsoOK       bool // GSO allowed (Config.NoGSO off)
	n           atomic.Int32
	mu          sync.RWMutex
	queues      map[netip.AddrPort]*destQueue
	datagrams   atomic.Uint64 // datagrams sent from destQueues
	syscalls    atomic.Uint64 // system calls that sent them
	gsoFailures atomic.Uint64 // sockets that turned GSO off after a failure
}

func newSender(gso bool) *sender {
	return &sender{gsoOK: gso, queues: map[netip.AddrPort]*destQueue{}}
}

func normAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// lookup returns the destination's queue, or nil when nobody batches to it.
func (s *sender) lookup(a netip.AddrPort) *destQueue {
	if s.n.Load() == 0 {
		return nil
	}
	a = normAddrPort(a)
	s.mu.RLock()
	q := s.queues[a]
	s.mu.RUnlock()
	return q
}

// acquire returns dst's queue, made on first use; release it when done.
func (s *sender) acquire(dst netip.AddrPort) *destQueue {
	dst = normAddrPort(dst)
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[dst]
	if q == nil {
		q = &destQueue{dst: dst, out: s}
		s.queues[dst] = q
		s.n.Add(1)
	}
	q.refs++
	return q
}

func (s *sender) release(q *destQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q.refs--
	if q.refs == 0 && s.queues[q.dst] == q {
		delete(s.queues, q.dst)
		s.n.Add(-1)
	}
}

// destQueue gathers the datagrams to one destination while it is corked. Any number of writers may
// cork it at once (a viewer's audio and video); the last to uncork sends what was gathered, without
// holding the lock while it sends, and while it sends later datagrams queue behind (order kept).
type destQueue struct {
	dst  netip.AddrPort
	out  *sender
	refs int // guarded by out.mu

	mu       sync.Mutex
	corks    int
	flushing bool
	pend     pending
	spare    pending // the flusher's, outside the lock
	oob      []byte  // the flusher's control message buffer
}

type pending struct {
	data []byte  // *box's, while in use
	box  *[]byte // from batchBufs
	pkts []pendPkt
}

// batchBufs holds the byte buffers of pending batches: a destination holds one only while it gathers
// or sends, so idle viewers cost no buffer.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}

type pendPkt struct {
	conn *batchConn
	n    int
}

func (p *pending) reset() {
	p.data = p.data[:0]
	clear(p.pkts) // drop the conn pointers
	p.pkts = p.pkts[:0]
}

// gather appends b when the destination is corked or a send is under way; false: send it yourself.
func (q *destQueue) gather(c *batchConn, b []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.corks == 0 && !q.flushing || len(q.pend.pkts) >= maxPending {
		return false
	}
	if q.pend.box == nil {
		q.pend.box = batchBufs.Get().(*[]byte)
		q.pend.data = (*q.pend.box)[:0]
	}
	q.pend.data = append(q.pend.data, b...)
	q.pend.pkts = append(q.pend.pkts, pendPkt{conn: c, n: len(b)})
	return true
}

func (q *destQueue) cork() {
	q.mu.Lock()
	q.corks++
	q.mu.Unlock()
}

// uncork ends one bracket; the last one sends what was gathered.
func (q *destQueue) uncork() {
	q.mu.Lock()
	q.corks--
	if q.corks > 0 || q.flushing || len(q.pend.pkts) == 0 {
		q.mu.Unlock()
		return
	}
	q.flushing = true
	for {
		q.pend, q.spare = q.spare, q.pend
		q.mu.Unlock()
		q.send(&q.spare)
		q.spare.reset()
		*q.spare.box = q.spare.data[:0] // keep what append grew
		batchBufs.Put(q.spare.box)
		q.spare.box, q.spare.data = nil, nil
		q.mu.Lock()
		if len(q.pend.pkts) == 0 || q.corks > 0 {
			break
		}
	}
	q.flushing = false
	q.mu.Unlock()
}

// send writes p's datagrams in runs: consecutive datagrams through one socket, all of one size but
// the last, at most maxSegments and maxGSOBytes.
func (q *destQueue) send(p *pending) {
	off, calls := 0, 0
	for i := 0; i < len(p.pkts); {
		c, seg := p.pkts[i].conn, p.pkts[i].n
		start, size := off, seg
		j := i + 1
		off += seg
		for j < len(p.pkts) && j-i < maxSegments && p.pkts[j].conn == c && p.pkts[j].n <= seg &&
			size+p.pkts[j].n <= maxGSOBytes {
			n := p.pkts[j].n
			size += n
			off += n
			j++
			if n < seg { // a shorter one ends the run
				break
			}
		}
		if q.oob == nil {
			q.oob = make([]byte, gsoControlSpace)
		}
		calls += c.sendRun(p.data[start:start+size], seg, q.dst, q.oob)
		i = j
	}
	q.out.datagrams.Add(uint64(len(p.pkts)))
	q.out.syscalls.Add(uint64(calls))
}
