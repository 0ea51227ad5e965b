package sfu

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is the capacity of payload buffers: an RTP payload on a 1500-byte MTU fits.
	bufSize = 1500
	// maxFreeBufs bounds a free list; buffers beyond it go to the garbage collector.
	maxFreeBufs = 2048
)

// pktBuf is one packet's payload copy, shared by the GOP cache and every DownTrack that queues the
// packet: a track copies each payload once, whatever the number of subscribers. It is reference
// counted; the last release returns it to its free list.
type pktBuf struct {
	refs atomic.Int32
	b    []byte
	home *bufList
}

func (p *pktBuf) retain() { p.refs.Add(1) }

func (p *pktBuf) release() {
	if p.refs.Add(-1) == 0 {
		p.home.put(p)
	}
}

// bufList is a free list of pktBufs (one per track, so buffers stay with the goroutines that use them
// and, unlike a sync.Pool, survive garbage collections: the packet path never allocates once warm).
type bufList struct {
	mu   sync.Mutex
	free []*pktBuf
}

// get returns a buffer holding a copy of payload, with one reference.
func (l *bufList) get(payload []byte) *pktBuf {
	var b *pktBuf
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		b = l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
	}
	l.mu.Unlock()
	if b == nil {
		b = &pktBuf{home: l, b: make([]byte, 0, max(bufSize, len(payload)))}
	} else if cap(b.b) < len(payload) {
		b.b = make([]byte, 0, len(payload))
	}
	b.b = append(b.b[:0], payload...)
	b.refs.Store(1)
	return b
}

func (l *bufList) put(b *pktBuf) {
	if cap(b.b) > 4*bufSize {
		return // an oversized one-off: let it go
	}
	l.mu.Lock()
	if len(l.free) < maxFreeBufs {
		l.free = append(l.free, b)
	}
	l.mu.Unlock()
}

// looseBufs serves DownTracks that have no track (tests, adapters that feed one directly).
var looseBufs bufList

// epoch anchors nanotime: time.Since reads the monotonic clock without allocating.
var epoch = time.Now()

// nanotime is monotonic nanoseconds since process start (never 0 after start-up).
func nanotime() int64 { return int64(time.Since(epoch)) + 1 }
