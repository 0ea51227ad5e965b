package sfu

import "time"

const (
	defaultVideoRetransmitRate = 1000 // packets per second
	defaultAudioRetransmitRate = 100
	rtxChunk                   = 32 // retransmissions gathered before they are queued
	rtxEpochs                  = 8  // numbering epochs a DownTrack remembers for Retransmit
	maxEpochSpan               = 1 << 15
)

// rtxEpoch is one numbering epoch of a DownTrack as Retransmit sees it: the output sequence numbers
// (end-span, end] were (or, for gaps upstream, stand for) the input packets out+snOffset of source
// (ssrc, gen), sent with timestamps in-tsOffset.
type rtxEpoch struct {
	end      uint16
	span     int // 0: nothing to map (a replayed packet ends the epoch so far)
	snOffset uint16
	tsOffset uint32
	ssrc     uint32
	gen      uint32
}

// initRetransmit sets up the retransmission rate bound (see DownTrackOptions.RetransmitRate).
func (d *DownTrack) initRetransmit(rate int) {
	if rate == 0 {
		rate = defaultAudioRetransmitRate
		if d.video {
			rate = defaultVideoRetransmitRate
		}
	}
	if rate > 0 {
		d.rtxInterval = max(int64(time.Second)/int64(rate), 1)
	}
	d.rtxBurst = rtxAudioPackets
	if d.track != nil {
		d.rtxBurst = int64(d.track.rtx.size())
	}
}

// noteSentLocked records, for Retransmit, that the in-order packet out was queued (before lastOutSN
// moves to it), newEpoch when it starts a numbering epoch. A replayed packet (the replay rewrites
// its timestamp) is never resent: the epoch's span restarts after it. d.mu must be held.
func (d *DownTrack) noteSentLocked(out uint16, newEpoch bool) {
	if newEpoch {
		d.rtxCur = (d.rtxCur + 1) % rtxEpochs
		d.rtxEpochs[d.rtxCur] = rtxEpoch{end: out, span: 1, snOffset: d.snOffset, tsOffset: d.tsOffset,
			ssrc: d.ssrc, gen: d.gen}
	} else {
		ep := &d.rtxEpochs[d.rtxCur]
		ep.span = min(ep.span+int(out-ep.end), maxEpochSpan)
		ep.end = out
	}
	if d.replaying {
		d.rtxEpochs[d.rtxCur].span = 0
	}
}

// mapOutLocked returns the epoch and input sequence number of the packet this DownTrack sent (or
// reserved, for a gap upstream) as output sequence number out, if that is certain: out is in one of
// the last numbering epochs, among its live packets (not replayed ones), and not older than the
// history. Packets the DownTrack dropped itself had their output numbers reused: they map to
// nothing. d.mu must be held.
func (d *DownTrack) mapOutLocked(out uint16, histSize int) (*rtxEpoch, uint16, bool) {
	if !d.haveOut || int(d.lastOutSN-out) >= histSize {
		return nil, 0, false // never sent, or older than the history
	}
	for k := 0; k < rtxEpochs; k++ {
		ep := &d.rtxEpochs[(d.rtxCur-k+rtxEpochs)%rtxEpochs]
		if ep.span == 0 {
			break // a replayed packet (or none): what precedes it was replayed too
		}
		if dist := int(ep.end - out); dist < ep.span {
			return ep, out + ep.snOffset, true
		}
		if int16(out-ep.end) > 0 {
			break // newer than this epoch: in no epoch (a number the DownTrack reused)
		}
	}
	return nil, 0, false
}

// rtxAllowLocked takes one retransmission's turn of the rate bound (a token bucket of rtxBurst
// packets at RetransmitRate); false when over it. d.mu must be held.
func (d *DownTrack) rtxAllowLocked(now int64) bool {
	if d.rtxInterval == 0 {
		return true
	}
	tat := max(d.rtxTAT, now)
	if tat-now > (d.rtxBurst-1)*d.rtxInterval {
		return false
	}
	d.rtxTAT = tat + d.rtxInterval
	return true
}

// Retransmit queues again the packets this DownTrack sent as the given output sequence numbers (a
// viewer's RTCP NACK), from its track's retransmission history, which all the track's DownTracks
// share: each goes out with the sequence number, timestamp and marker it had, ahead of the live
// packets queued, in the order asked. A sequence number is skipped (and counted in
// WriterStats.RetransmitMissed) unless the packet it stands for is certain (see mapOutLocked) and
// still in the history, the queue is under its bound and the rate bound allows. It returns the
// number of packets queued. Safe for concurrent use with the track's writer and other callers;
// never blocks on I/O.
func (d *DownTrack) Retransmit(sns ...uint16) (queued int) {
	if len(sns) == 0 || d.closed.Load() {
		return 0
	}
	var chunk [rtxChunk]dtSlot
	var missed int
	d.mu.Lock()
	if d.stopped || d.track == nil || d.replaying {
		d.mu.Unlock()
		d.rtxMiss.Add(uint64(len(sns)))
		return 0
	}
	h := d.track.rtx
	now := nanotime()
	k := 0
	for _, out := range sns {
		ep, in, ok := d.mapOutLocked(out, h.size())
		if !ok {
			missed++
			continue
		}
		e, ok := h.get(in, ep.ssrc, ep.gen)
		if !ok {
			missed++
			continue
		}
		if d.n+k >= d.limit+d.replayQueued || !d.rtxAllowLocked(now) {
			e.buf.release()
			missed++
			continue
		}
		chunk[k] = dtSlot{sn: out, ts: e.ts - ep.tsOffset, marker: e.marker, buf: e.buf}
		k++
		if k == len(chunk) {
			d.insertFrontLocked(queued, chunk[:k])
			queued += k
			k = 0
		}
	}
	if k > 0 {
		d.insertFrontLocked(queued, chunk[:k])
		queued += k
	}
	clear(chunk[:])
	var wake, pooled bool
	if queued > 0 && d.n > d.replayHold {
		wake, pooled = d.wakeLocked()
	}
	d.mu.Unlock()
	if queued > 0 {
		d.rtxSent.Add(uint64(queued))
	}
	if missed > 0 {
		d.rtxMiss.Add(uint64(missed))
	}
	if wake {
		d.kick(pooled)
	}
	return queued
}

// insertFrontLocked puts slots (whose buffer references it takes over) into the queue after its
// first `after` slots, ahead of everything else. d.mu must be held, with no replay under way.
func (d *DownTrack) insertFrontLocked(after int, slots []dtSlot) {
	for d.n+len(slots) > len(d.ring) {
		d.growLocked()
	}
	size := len(d.ring)
	head := d.head - len(slots)
	if head < 0 {
		head += size
	}
	for j := 0; j < after; j++ {
		d.ring[(head+j)%size] = d.ring[(d.head+j)%size]
	}
	for j := range slots {
		d.ring[(head+after+j)%size] = slots[j]
	}
	d.head = head
	d.n += len(slots)
}
