package sfu

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// PacketSink is where a DownTrack writes: pion's webrtc.TrackLocalWriter has this shape. The sink sets
// SSRC and payload type; the DownTrack sets sequence number, timestamp and marker.
type PacketSink interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// BatchSink is a PacketSink that may gather the packets written between BeginBatch and EndBatch and
// send them together (rtc.LocalTrack: one system call per batch). A DownTrack's writer goroutine
// brackets each batch it drains; it never waits (pacing) inside a bracket.
type BatchSink interface {
	PacketSink
	BeginBatch()
	EndBatch()
}

// DownTrackOptions configures a DownTrack. The zero value is valid.
type DownTrackOptions struct {
	// QueuePackets bounds the queue (default 1024 for video, 128 for audio).
	QueuePackets int
	// ReplayRate paces the packets replayed from the GOP cache, in packets per second, so a viewer's
	// socket buffers take them (default 2000; negative: no pacing). Live packets queue behind the replay.
	ReplayRate int
	// Logger, when set, gets a periodic warning while the DownTrack drops packets (at most one per
	// DropLogInterval, from the writer goroutine, never from the packet path).
	Logger *slog.Logger
	// DropLogInterval spaces the drop warnings (default 10s).
	DropLogInterval time.Duration
	// Pool, when set, drains the DownTrack once its sink says it never blocks (NonBlockingSink):
	// until then, and without a pool, the DownTrack has its own writer goroutine.
	Pool *WriterPool
	// RetransmitRate bounds Retransmit, in packets per second with a burst of the track's history
	// size (default 1000 for video, 100 for audio; negative: no bound but the queue's).
	RetransmitRate int
}

const (
	defaultVideoQueue = 1024
	defaultAudioQueue = 128
	initialQueue      = 64  // the ring starts this small and grows up to the bound
	shrinkQueue       = 512 // a drained ring this large goes back to initialQueue
	defaultReplayRate = 2000
	replayBurst       = 32 // packets a paced replay may send back to back
	writeBatch        = 32 // packets the writer goroutine takes per lock
)

// dtSlot is one queued packet, already rewritten.
type dtSlot struct {
	sn     uint16
	ts     uint32
	marker bool
	replay bool
	buf    *pktBuf // one reference held by the slot
}

// DownTrack is a TrackWriter with its own bounded queue and writer goroutine, for subscribers with I/O
// behind them (WHEP, relay egress). It rewrites sequence numbers and timestamps so the output stays
// continuous across its own drops and across a change of source (publisher reconnect, relay failover:
// seen as a new SSRC), and it waits for a keyframe after a drop or a source change (video), asking the
// track for one. Slow: it drops its own packets (video: until the next keyframe; audio: plain drop).
//
// Output numbering: the first packet keeps its sequence number and timestamp; packets the DownTrack
// drops itself (slow sink, padding-only packets, waiting for a keyframe) leave no gap, gaps upstream
// pass through. After a source change the sequence numbers continue at the last one plus one and the
// timestamps advance by the wall time elapsed. Header extensions and CSRCs are not forwarded.
type DownTrack struct {
	track      *Track
	sink       PacketSink
	batch      BatchSink       // sink, when it batches
	nb         NonBlockingSink // sink, when it can say it never blocks
	pool       *WriterPool
	ws         *writerState // the writer's state (the goroutine's, then the pool worker's that serves it)
	paceT      *time.Timer  // pool: serves the DownTrack again after a pacing wait
	video      bool
	codec      codecID
	limit      int // queue bound
	replayRate int
	log        *slog.Logger
	logEvery   int64

	closed     atomic.Bool
	wake       chan struct{} // cap 1: the queue has packets
	wakeTS     uint32        // guarded by mu: the last pushed packet's timestamp (a new one ends a frame)
	wakeMarker bool          // guarded by mu: the last pushed packet had the marker (its frame woke the writer)
	done       chan struct{} // closed by Close
	wg         sync.WaitGroup
	packets    atomic.Uint64
	bytes      atomic.Uint64
	dropped    atomic.Uint64
	rtxSent    atomic.Uint64 // packets queued by Retransmit
	rtxMiss    atomic.Uint64 // packets Retransmit could not queue

	mu      sync.Mutex // guards the queue and the rewrite state below
	stopped bool
	idle    bool // no writer drains the queue: the next packet wakes one
	inPool  bool // the pool drains the queue (the goroutine handed it over)
	ring    []dtSlot
	head    int // index of the oldest slot
	n       int // slots queued

	replaying    bool // between BeginReplay and EndReplay: replay slots are held back
	replayStart  int  // ring position of the first slot of the replay under way
	replayHold   int  // slots pushed since BeginReplay
	replayQueued int  // replay slots still queued (they raise the bound)

	started      bool   // a packet has been seen
	ssrc         uint32 // the source's SSRC
	gen          uint32 // the track generation of the source
	waitKF       bool   // video: dropping until a keyframe
	overflowWait bool   // waitKF because we were slow (count the skipped packets as drops)
	haveIn       bool
	lastInSN     uint16 // newest input sequence number seen
	epochIn      uint16 // first input sequence number mapped with the current offset
	rebase       bool   // the next packet starts a new epoch at lastOutSN+1
	tsRebase     bool   // the next packet continues the timestamps from lastOutTS (source change)
	snOffset     uint16
	tsOffset     uint32
	haveOut      bool
	lastOutSN    uint16
	lastOutTS    uint32
	lastOutWall  int64 // nanotime of lastOutTS

	// Retransmission (retransmit.go), guarded by mu.
	rtxEpochs   [rtxEpochs]rtxEpoch // the last numbering epochs, a ring; rtxCur is the newest
	rtxCur      int
	rtxInterval int64 // ns per retransmitted packet (0: no rate bound)
	rtxBurst    int64 // packets a burst of retransmissions may have
	rtxTAT      int64 // the rate bound's theoretical arrival time (nanotime)
}

// NewDownTrack makes a DownTrack writing t's packets to sink. Call Close when done.
//
// The caller attaches it (Subscriber.AddTrack returns it, or Track.AddWriter) and detaches it before
// or after Close; a closed DownTrack's WriteRTP returns ErrClosed.
func NewDownTrack(t *Track, sink PacketSink, opts DownTrackOptions) *DownTrack {
	d := &DownTrack{track: t, sink: sink, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.batch, _ = sink.(BatchSink)
	d.nb, _ = sink.(NonBlockingSink)
	d.pool = opts.Pool
	if t != nil {
		d.video = t.video
		d.codec = t.codec
	}
	d.limit = opts.QueuePackets
	if d.limit <= 0 {
		d.limit = defaultAudioQueue
		if d.video {
			d.limit = defaultVideoQueue
		}
	}
	d.replayRate = opts.ReplayRate
	if d.replayRate == 0 {
		d.replayRate = defaultReplayRate
	}
	d.log, d.logEvery = opts.Logger, int64(opts.DropLogInterval)
	if d.logEvery <= 0 {
		d.logEvery = int64(10 * time.Second)
	}
	d.initRetransmit(opts.RetransmitRate)
	d.ring = make([]dtSlot, min(initialQueue, d.limit))
	d.waitKF = d.video
	d.ws = &writerState{hdr: rtp.Header{Version: 2}, lastLog: nanotime() - d.logEvery}
	if d.replayRate > 0 {
		d.ws.interval = int64(time.Second) / int64(d.replayRate)
	}
	d.wg.Add(1)
	go d.run()
	return d
}

// WriteRTP enqueues p (copying what it keeps). Never blocks.
func (d *DownTrack) WriteRTP(p *rtp.Packet) error {
	if d.closed.Load() {
		return ErrClosed
	}
	return d.writeShared(p, nil, nanotime())
}

// writeShared is WriteRTP with the payload already copied into pb (nil: copy it if kept) and the
// packet's arrival time (nanotime) taken once by the track for all its writers.
func (d *DownTrack) writeShared(p *rtp.Packet, pb *pktBuf, now int64) error {
	if d.closed.Load() {
		return ErrClosed
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return ErrClosed
	}
	wantKF := d.pushLocked(p, pb, now)
	// Video wakes the writer once a frame is complete (its marker, or the next frame's first packet
	// when a marker is missing) or a batch is queued, so that a frame leaves in one batch (one
	// system call with UDP GSO); audio packets are frames.
	frameEnd := !d.video || p.Marker || p.Timestamp != d.wakeTS && !d.wakeMarker ||
		d.n-d.replayHold >= writeBatch
	d.wakeTS, d.wakeMarker = p.Timestamp, p.Marker
	var wake, pooled bool
	if d.n > d.replayHold && frameEnd {
		wake, pooled = d.wakeLocked()
	}
	d.mu.Unlock()
	if wantKF && d.track != nil {
		d.track.RequestKeyframe()
	}
	if wake {
		d.kick(pooled)
	}
	return nil
}

// pushLocked applies the drop and rewrite rules to p and queues it. It reports whether a keyframe
// should be requested. d.mu must be held.
func (d *DownTrack) pushLocked(p *rtp.Packet, pb *pktBuf, now int64) (wantKF bool) {
	var gen uint32
	if d.track != nil {
		gen = d.track.gen.Load()
	}
	if !d.started {
		d.started, d.ssrc, d.gen = true, p.SSRC, gen
	} else if p.SSRC != d.ssrc || (gen != d.gen && !d.replaying) {
		// A new source: continue numbering from what we sent, wait for its keyframe.
		d.ssrc, d.gen = p.SSRC, gen
		d.haveIn = false
		d.rebase, d.tsRebase = true, true
		if d.video {
			d.waitKF, d.overflowWait = true, false
			wantKF = true
		}
	}
	sn := p.SequenceNumber
	if d.haveIn {
		if diff := int16(sn - d.lastInSN); diff <= 0 {
			// Late or repeated. Forward it only within the current epoch, where its number is free.
			if diff == 0 || d.rebase || d.waitKF || int16(sn-d.epochIn) < 0 || len(p.Payload) == 0 {
				return wantKF
			}
			if d.full() {
				d.dropped.Add(1)
				return wantKF
			}
			d.enqueueLocked(sn-d.snOffset, p.Timestamp-d.tsOffset, p.Marker, p.Payload, pb)
			return wantKF
		}
	}
	d.lastInSN, d.haveIn = sn, true
	if d.replaying {
		// The cache keeps no padding, and what it lacks nobody can resend: replayed packets are
		// numbered without gaps.
		d.rebase = true
	}
	if len(p.Payload) == 0 { // padding only: dropped and hidden
		d.rebase = true
		return wantKF
	}
	if d.waitKF {
		if !isKeyframe(d.codec, p.Payload) {
			if d.overflowWait {
				d.dropped.Add(1)
			}
			d.rebase = true
			return true // keep asking (the track forwards one request per KeyframeInterval)
		}
		d.waitKF, d.overflowWait = false, false
	}
	if d.full() {
		d.dropped.Add(1)
		d.rebase = true
		if d.video {
			d.waitKF, d.overflowWait = true, true
			wantKF = true
		}
		return wantKF
	}
	newEpoch := d.rebaseLocked(sn, p.Timestamp, now)
	out, ots := sn-d.snOffset, p.Timestamp-d.tsOffset
	d.enqueueLocked(out, ots, p.Marker, p.Payload, pb)
	d.noteSentLocked(out, newEpoch)
	d.lastOutSN, d.lastOutTS, d.lastOutWall, d.haveOut = out, ots, now, true
	return wantKF
}

// rebaseLocked starts a new numbering epoch if one is due: the packet (sn, ts) goes out as the one
// after the last sent and, after a source change, its timestamp continues from the last sent plus the
// wall time elapsed. It reports whether a new epoch started. d.mu must be held.
func (d *DownTrack) rebaseLocked(sn uint16, ts uint32, now int64) (newEpoch bool) {
	if d.rebase || !d.haveOut {
		if d.haveOut {
			d.snOffset = sn - (d.lastOutSN + 1)
		}
		d.epochIn, d.rebase = sn, false
		newEpoch = true
	}
	if d.tsRebase {
		if d.haveOut {
			elapsed := max(now-d.lastOutWall, 0)
			ticks := uint32(uint64(elapsed) * uint64(d.clockRate()) / uint64(time.Second))
			d.tsOffset = ts - (d.lastOutTS + max(ticks, 1))
		}
		d.tsRebase = false
	}
	return newEpoch
}

func (d *DownTrack) clockRate() uint32 {
	if d.track != nil {
		if c := d.track.Codec().ClockRate; c != 0 {
			return c
		}
	}
	if d.video {
		return 90000
	}
	return 48000
}

// full reports whether the queue is at its bound (replayed packets raise the bound while queued).
func (d *DownTrack) full() bool {
	return d.n >= d.limit+d.replayQueued
}

// enqueueLocked appends a slot, growing the ring if needed. It takes a reference to pb, or copies
// payload when pb is nil. d.mu must be held.
func (d *DownTrack) enqueueLocked(sn uint16, ts uint32, marker bool, payload []byte, pb *pktBuf) {
	if d.n == len(d.ring) {
		d.growLocked()
	}
	i := d.head + d.n
	if i >= len(d.ring) {
		i -= len(d.ring)
	}
	if pb != nil {
		pb.retain()
	} else if d.track != nil {
		pb = d.track.bufs.get(payload)
	} else {
		pb = looseBufs.get(payload)
	}
	d.ring[i] = dtSlot{sn: sn, ts: ts, marker: marker, replay: d.replaying, buf: pb}
	d.n++
	if d.replaying {
		d.replayHold++
		d.replayQueued++
	}
}

func (d *DownTrack) growLocked() {
	size := 2 * len(d.ring)
	if size < initialQueue {
		size = initialQueue
	}
	ring := make([]dtSlot, size)
	for k := 0; k < d.n; k++ {
		ring[k] = d.ring[(d.head+k)%len(d.ring)]
	}
	if d.replaying {
		d.replayStart = (d.replayStart - d.head + len(d.ring)) % len(d.ring)
	}
	d.ring, d.head = ring, 0
}

// BeginReplay marks the packets that follow, up to EndReplay, as the cached GOP (see ReplayWriter).
// They start with a keyframe, so a video DownTrack stops waiting for one.
func (d *DownTrack) BeginReplay() {
	d.mu.Lock()
	if !d.stopped && !d.replaying {
		d.replaying = true
		d.replayStart = (d.head + d.n) % len(d.ring)
		d.replayHold = 0
		d.waitKF, d.overflowWait = false, false
	}
	d.mu.Unlock()
}

// EndReplay ends the replay: the replayed frames get timestamps one millisecond apart ending at the last
// replayed frame's (which keeps its own), so a player decodes the GOP at once and is at live; then the
// writer goroutine sends them, paced.
func (d *DownTrack) EndReplay() {
	d.mu.Lock()
	if !d.replaying {
		d.mu.Unlock()
		return
	}
	d.compressReplayLocked()
	d.replaying = false
	d.replayHold = 0
	var wake, pooled bool
	if d.n > 0 {
		wake, pooled = d.wakeLocked()
	}
	d.mu.Unlock()
	if wake {
		d.kick(pooled)
	}
}

// wakeLocked makes a writer the owner of the queue if none is (idle): the caller then calls
// kick(pooled) after unlocking. A pool owner counts in d.wg until it finds the queue empty. d.mu
// must be held.
func (d *DownTrack) wakeLocked() (wake, pooled bool) {
	if !d.idle || d.stopped {
		return false, false
	}
	d.idle = false
	if d.inPool {
		d.wg.Add(1)
		return true, true
	}
	return true, false
}

// kick hands the queue to its new owner (see wakeLocked).
func (d *DownTrack) kick(pooled bool) {
	if pooled {
		d.pool.push(d)
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// compressReplayLocked rewrites the held replay slots' timestamps. d.mu must be held.
func (d *DownTrack) compressReplayLocked() {
	k := d.replayHold
	if k == 0 {
		return
	}
	size := len(d.ring)
	slot := func(j int) *dtSlot { return &d.ring[(d.replayStart+j)%size] }
	frames := 1
	for j := 1; j < k; j++ {
		if slot(j).ts != slot(j-1).ts {
			frames++
		}
	}
	tick := d.clockRate() / 1000
	if tick == 0 {
		tick = 1
	}
	last := slot(k - 1).ts
	f := 0
	prev := slot(0).ts
	for j := 0; j < k; j++ {
		s := slot(j)
		if j > 0 && s.ts != prev {
			f++
		}
		prev = s.ts
		s.ts = last - uint32(frames-1-f)*tick
	}
	d.lastOutTS = last
}

// writerState is the writer goroutine's own state (no lock: one goroutine).
type writerState struct {
	batch       [writeBatch]dtSlot
	pos, k      int  // batch[pos:k] are still to send
	paced       bool // batch[pos] already took its pacing turn
	hdr         rtp.Header
	pace        *time.Timer
	paceNext    int64 // nanotime the next replayed packet may go
	interval    int64 // ns between replayed packets; 0: no pacing
	lastLog     int64
	loggedDrops uint64
}

// run is the writer goroutine: it drains the queue into the sink until Close, or until the sink
// says it never blocks and the DownTrack moves to its pool.
func (d *DownTrack) run() {
	defer d.wg.Done()
	w := d.ws
	for !d.closed.Load() { // Close frees what is still queued
		if d.pool != nil && d.nb != nil && d.nb.NonBlocking() {
			d.handOff()
			return
		}
		d.logDropsDue(w)
		if w.pos == w.k && d.take(w) == 0 {
			select {
			case <-d.wake:
				continue
			case <-d.done:
				d.finish(w)
				return
			}
		}
		wait := d.send(w)
		if wait < 0 || wait > 0 && !d.sleep(w, wait) {
			break
		}
	}
	d.finish(w)
}

// serveRounds is how many batches a pool worker sends for one DownTrack before it serves others.
const serveRounds = 4

// serve is a pool worker draining the DownTrack, whose owner it is (see wakeLocked).
func (d *DownTrack) serve() {
	w := d.ws
	for range serveRounds {
		if d.closed.Load() {
			d.finish(w)
			d.wg.Done()
			return
		}
		d.logDropsDue(w)
		if w.pos == w.k && d.take(w) == 0 {
			d.wg.Done() // idle now: w is the next owner's
			return
		}
		switch wait := d.send(w); {
		case wait < 0:
			d.finish(w)
			d.wg.Done()
			return
		case wait > 0: // a paced replay: served again when its turn comes
			if d.paceT == nil {
				d.paceT = time.AfterFunc(wait, func() { d.pool.push(d) })
			} else {
				d.paceT.Reset(wait)
			}
			return
		}
	}
	d.pool.push(d) // more to send: after the others
}

// handOff moves the DownTrack from its goroutine (which then ends) to the pool.
func (d *DownTrack) handOff() {
	w := d.ws
	if w.pace != nil {
		w.pace.Stop()
	}
	d.mu.Lock()
	d.inPool = true
	pending := w.pos < w.k || d.n > d.replayHold
	if pending {
		d.wg.Add(1) // the pool owns it now
	} else {
		d.idle = true
	}
	d.mu.Unlock()
	if pending {
		d.pool.push(d)
	}
}

// abandon gives the queue up (the pool closed): its owner frees its batch and lets Close go on.
func (d *DownTrack) abandon() {
	d.finish(d.ws)
	d.wg.Done()
}

// finish frees what the writer holds (the DownTrack is closing) and logs the last drops.
func (d *DownTrack) finish(w *writerState) {
	for j := w.pos; j < w.k; j++ {
		w.batch[j].buf.release()
		w.batch[j] = dtSlot{}
	}
	w.pos, w.k = 0, 0
	if w.pace != nil {
		w.pace.Stop()
	}
	if dropped := d.dropped.Load(); d.log != nil && dropped != w.loggedDrops {
		d.logDrops(dropped - w.loggedDrops)
		w.loggedDrops = dropped
	}
}

// logDropsDue logs the drops since the last warning, at most once per DropLogInterval.
func (d *DownTrack) logDropsDue(w *writerState) {
	if d.log == nil {
		return
	}
	if now := nanotime(); now-w.lastLog >= d.logEvery {
		if dropped := d.dropped.Load(); dropped != w.loggedDrops {
			d.logDrops(dropped - w.loggedDrops)
			w.loggedDrops, w.lastLog = dropped, now
		}
	}
}

// take moves up to a batch of sendable slots out of the ring into w.batch[0:k]; with none, it marks
// the queue idle (ownerless).
func (d *DownTrack) take(w *writerState) (k int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	avail := d.n - d.replayHold
	for k < len(w.batch) && k < avail {
		w.batch[k] = d.ring[d.head]
		d.ring[d.head] = dtSlot{}
		d.head++
		if d.head == len(d.ring) {
			d.head = 0
		}
		d.n--
		if w.batch[k].replay {
			d.replayQueued--
		}
		k++
	}
	w.pos, w.k, w.paced = 0, k, false
	if k == 0 {
		d.idle = true // the next packet wakes a writer
	} else if d.n == 0 && len(d.ring) >= shrinkQueue && !d.replaying {
		// Drained after a burst (the GOP replay grows the ring to the GOP's size): back to the
		// initial size, so an idle viewer does not keep the burst's ring.
		d.ring, d.head = make([]dtSlot, initialQueue), 0
	}
	return k
}

// send writes w.batch[w.pos:w.k] to the sink, pacing replayed packets. It returns 0 when all went,
// how long to wait before the next one may go (w.pos at it), or -1 when the DownTrack closes
// meanwhile (the rest freed).
func (d *DownTrack) send(w *writerState) time.Duration {
	var sentPkts, sentBytes uint64
	var ret time.Duration
	open := false
	for ; w.pos < w.k; w.pos++ {
		s := &w.batch[w.pos]
		if s.replay && w.interval > 0 && !w.paced {
			if wait := d.paceWait(w); wait > 0 {
				w.paced = true // its turn is taken: it goes after the wait
				ret = wait
				break
			}
		}
		w.paced = false
		if d.closed.Load() {
			ret = -1
			break
		}
		if !open && d.batch != nil {
			d.batch.BeginBatch()
			open = true
		}
		// Reset what a sink's interceptors may have set on the reused header (keeping capacity).
		w.hdr = rtp.Header{Version: 2, Marker: s.marker, SequenceNumber: s.sn, Timestamp: s.ts,
			CSRC: w.hdr.CSRC[:0], Extensions: w.hdr.Extensions[:0]}
		payload := s.buf.b
		if _, err := d.sink.WriteRTP(&w.hdr, payload); err == nil {
			sentPkts++
			sentBytes += uint64(len(payload))
		}
		s.buf.release()
		*s = dtSlot{}
	}
	if open { // what is gathered goes before any wait
		d.batch.EndBatch()
	}
	if sentPkts > 0 { // counted per batch: fewer atomic operations
		d.packets.Add(sentPkts)
		d.bytes.Add(sentBytes)
	}
	if ret < 0 {
		d.finish(w)
	}
	return ret
}

// paceWait takes the next replayed packet's turn (a token bucket of replayBurst packets at
// ReplayRate) and returns how long to wait for it (0: it may go now).
func (d *DownTrack) paceWait(w *writerState) time.Duration {
	now := nanotime()
	if floor := now - replayBurst*w.interval; w.paceNext < floor {
		w.paceNext = floor
	}
	w.paceNext += w.interval
	return time.Duration(max(w.paceNext-w.interval-now, 0))
}

// sleep waits wait; it returns false if the DownTrack closes meanwhile.
func (d *DownTrack) sleep(w *writerState, wait time.Duration) bool {
	if w.pace == nil {
		w.pace = time.NewTimer(wait)
	} else {
		w.pace.Reset(wait)
	}
	select {
	case <-w.pace.C:
		return true
	case <-d.done:
		return false
	}
}

// logDrops warns about packets dropped since the last warning (writer goroutine, rate-limited).
func (d *DownTrack) logDrops(n uint64) {
	var stream, track string
	if d.track != nil {
		stream, track = d.track.key, d.track.ID()
	}
	d.log.LogAttrs(context.Background(), slog.LevelWarn, "subscriber too slow: packets dropped",
		slog.String("stream", stream), slog.String("track_id", track), slog.Uint64("dropped", n),
		slog.Uint64("dropped_total", d.dropped.Load()))
}

// Stats returns the DownTrack's counters.
func (d *DownTrack) Stats() WriterStats {
	return WriterStats{Packets: d.packets.Load(), Bytes: d.bytes.Load(), Dropped: d.dropped.Load(),
		Retransmitted: d.rtxSent.Load(), RetransmitMissed: d.rtxMiss.Load()}
}

// Close stops the writer goroutine and waits for it. Idempotent.
func (d *DownTrack) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.mu.Lock()
	d.stopped = true // no writer is woken any more (wakeLocked)
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
	d.mu.Lock()
	for i := range d.ring {
		if d.ring[i].buf != nil {
			d.ring[i].buf.release()
		}
		d.ring[i] = dtSlot{}
	}
	d.n, d.replayHold, d.replayQueued = 0, 0, 0
	d.mu.Unlock()
	return nil
}

// settled reports whether the queue is empty and the writer goroutine waits for packets (all sent).
func (d *DownTrack) settled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n == 0 && d.idle
}

// queued is the number of packets waiting in the queue.
func (d *DownTrack) queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}
