package sfu

import (
	"sync"
	"time"
)

// bufSize is the capacity of pooled payload buffers: an RTP payload on a 1500-byte MTU fits.
const bufSize = 1500

// bufPool holds *[]byte payload buffers shared by GOP caches and DownTrack queues.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bufSize)
	return &b
}}

// getBuf returns a pooled buffer holding a copy of payload.
func getBuf(payload []byte) *[]byte {
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < len(payload) {
		*bp = make([]byte, 0, len(payload))
	}
	*bp = append((*bp)[:0], payload...)
	return bp
}

// putBuf returns a buffer to the pool. Oversized buffers are left to the garbage collector.
func putBuf(bp *[]byte) {
	if bp == nil || cap(*bp) > 4*bufSize {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}

// epoch anchors nanotime: time.Since reads the monotonic clock without allocating.
var epoch = time.Now()

// nanotime is monotonic nanoseconds since process start (never 0 after start-up).
func nanotime() int64 { return int64(time.Since(epoch)) + 1 }
