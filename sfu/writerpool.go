package sfu

import (
	"runtime"
	"sync"
)

// WriterPool drains DownTracks from a few goroutines instead of one goroutine per DownTrack. A
// DownTrack given a pool (DownTrackOptions.Pool) starts on its own goroutine, which waits for the
// sink as long as it may block (a WebRTC track before DTLS is up); once the sink says it never
// blocks (NonBlockingSink), the DownTrack moves to the pool and its goroutine ends. A frame for a
// thousand viewers then wakes a worker or two instead of a thousand goroutines, and a viewer costs
// no goroutine stack for its writers.
type WriterPool struct {
	mu     sync.Mutex
	cond   sync.Cond
	ring   []*DownTrack // queued DownTracks, each at most once (it is queued only by its owner)
	head   int
	n      int
	closed bool
	wg     sync.WaitGroup
}

// NonBlockingSink is a PacketSink that may say its writes never block (no waiting for a binding,
// a connection or a lock held across I/O): a DownTrack can then be drained by a WriterPool.
type NonBlockingSink interface {
	PacketSink
	NonBlocking() bool
}

// NewWriterPool starts a pool of workers goroutines (0: GOMAXPROCS). Close stops them.
func NewWriterPool(workers int) *WriterPool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &WriterPool{ring: make([]*DownTrack, 64)}
	p.cond.L = &p.mu
	p.wg.Add(workers)
	for range workers {
		go p.worker()
	}
	return p
}

// push queues d, whose owner the caller is (see DownTrack.kick); after Close it gives d up.
func (p *WriterPool) push(d *DownTrack) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		d.abandon()
		return
	}
	if p.n == len(p.ring) {
		ring := make([]*DownTrack, 2*len(p.ring))
		for k := range p.n {
			ring[k] = p.ring[(p.head+k)%len(p.ring)]
		}
		p.ring, p.head = ring, 0
	}
	p.ring[(p.head+p.n)%len(p.ring)] = d
	p.n++
	p.mu.Unlock()
	p.cond.Signal()
}

func (p *WriterPool) worker() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.n == 0 && !p.closed {
			p.cond.Wait()
		}
		if p.n == 0 {
			p.mu.Unlock()
			return
		}
		d := p.ring[p.head]
		p.ring[p.head] = nil
		p.head = (p.head + 1) % len(p.ring)
		p.n--
		p.mu.Unlock()
		d.serve()
	}
}

// Close stops the workers once the queued DownTracks are served; DownTracks pushed later are given
// up (their packets dropped). Idempotent.
func (p *WriterPool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}
