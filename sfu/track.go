package sfu

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// Track is one RTP track of a stream. It outlives a publisher reconnect within the grace period.
type Track struct {
	key        string // the stream's key
	info       atomic.Pointer[TrackInfo]
	codec      codecID
	video      bool
	kfInterval int64 // ns between forwarded keyframe requests

	lastKF  atomic.Int64                // nanotime of the last forwarded keyframe request
	kfSent  atomic.Uint64               // keyframe requests forwarded to publishers (metrics)
	pub     atomic.Pointer[Publication] // the live publication, nil during grace
	gen     atomic.Uint32               // bumped when a new publication takes the track (a source change)
	packets atomic.Uint64
	bytes   atomic.Uint64
	details atomic.Pointer[Details]

	// writeMu serializes WriteRTP (GOP cache and fan-out) with changes of the writer list, so a new
	// writer gets the cached GOP and then every live packet, none missed or repeated, and a removed
	// writer gets nothing after its remove returns.
	writeMu   sync.Mutex
	gop       *gopCache  // guarded by writeMu; nil for audio or with Config.NoGOPCache
	replayPkt rtp.Packet // guarded by writeMu: reused to hand cached packets out

	writers atomic.Pointer[writerList] // copy-on-write; replaced under mu and writeMu
	bufs    bufList                    // payload buffers shared by the GOP cache and DownTracks
	rtx     *rtxHistory                // the last packets sent to DownTracks, for their retransmissions

	mu         sync.Mutex // guards the fields below; taken before writeMu
	nextID     uint64
	demand     []*demandFunc
	demandBusy bool // a goroutine is delivering OnDemand callbacks
}

type writerEntry struct {
	id uint64
	w  TrackWriter
	dt *DownTrack // w itself when it is a DownTrack: it shares the track's payload copy
}

// writerList is an immutable snapshot of a track's writers.
type writerList struct {
	entries    []writerEntry
	downTracks int // entries with dt set
}

func (l *writerList) with(e writerEntry) *writerList {
	n := &writerList{entries: make([]writerEntry, len(l.entries), len(l.entries)+1), downTracks: l.downTracks}
	copy(n.entries, l.entries)
	n.entries = append(n.entries, e)
	if e.dt != nil {
		n.downTracks++
	}
	return n
}

func (l *writerList) without(id uint64) *writerList {
	n := &writerList{entries: make([]writerEntry, 0, len(l.entries))}
	for _, e := range l.entries {
		if e.id == id {
			continue
		}
		n.entries = append(n.entries, e)
		if e.dt != nil {
			n.downTracks++
		}
	}
	return n
}

type demandFunc struct {
	f        func(active bool)
	owner    *Publication // the publication live at registration: the callback ends with it
	reported bool
}

// ReplayWriter is implemented by TrackWriters that want to know which packets come from the GOP cache
// (DownTrack does: it compresses their timestamps so the replay ends at live, and paces them). When a
// writer is added to a track with a cached GOP, the track calls BeginReplay, then WriteRTP for each
// cached packet (starting with a keyframe; possibly ending with an empty padding packet that carries
// the last sequence number seen), then EndReplay, then WriteRTP for each live packet. The
// calls are made with the track's lock held: they must not block nor call back into the track (except
// RequestKeyframe).
type ReplayWriter interface {
	TrackWriter
	BeginReplay()
	EndReplay()
}

func newTrack(key string, info TrackInfo, cfg *Config) *Track {
	t := &Track{key: key, codec: codecOf(info.Codec.MimeType), video: info.Kind == KindVideo,
		kfInterval: int64(cfg.KeyframeInterval)}
	t.info.Store(&info)
	t.writers.Store(&writerList{})
	if t.video {
		t.rtx = newRTXHistory(rtxVideoPackets)
	} else {
		t.rtx = newRTXHistory(rtxAudioPackets)
	}
	if t.video && !cfg.NoGOPCache {
		clock := info.Codec.ClockRate
		if clock == 0 {
			clock = 90000
		}
		t.gop = newGOPCache(t.codec, clock, cfg)
	}
	return t
}

// Info returns the track's ID, kind and codec.
func (t *Track) Info() TrackInfo { return *t.info.Load() }

// ID, Kind and Codec are shorthands for Info's fields.
func (t *Track) ID() string   { return t.info.Load().ID }
func (t *Track) Kind() Kind   { return t.info.Load().Kind }
func (t *Track) Codec() Codec { return t.info.Load().Codec }

// StreamKey is the key of the track's stream.
func (t *Track) StreamKey() string { return t.key }

// WriteRTP is called by the publisher's adapter, from one goroutine, for each packet. It updates the
// GOP cache and fans the packet out to every writer. It allocates nothing and never blocks; p is not
// kept after it returns.
//
// Writer errors are ignored (a closed writer is removed by its owner). While the track has no live
// publication (its publication closed, the stream is in its grace period) WriteRTP drops p and returns
// ErrClosed. After Publication.Close the adapter must stop writing: the track may already belong to a
// new publication.
func (t *Track) WriteRTP(p *rtp.Packet) error {
	if t.pub.Load() == nil {
		return ErrClosed
	}
	t.packets.Add(1)
	t.bytes.Add(uint64(len(p.Payload)))
	t.writeMu.Lock()
	now := nanotime()
	ws := t.writers.Load()
	var pb *pktBuf // one copy of the payload, shared by the GOP cache and the DownTracks
	if len(p.Payload) > 0 && (t.gop != nil || ws.downTracks > 0) {
		pb = t.bufs.get(p.Payload)
	}
	if t.gop != nil {
		t.gop.push(p, pb)
	}
	if pb != nil && ws.downTracks > 0 {
		t.rtx.push(p, pb, t.gen.Load())
	}
	for i := range ws.entries {
		if dt := ws.entries[i].dt; dt != nil {
			_ = dt.writeShared(p, pb, now)
		} else {
			_ = ws.entries[i].w.WriteRTP(p)
		}
	}
	if pb != nil {
		pb.release()
	}
	t.writeMu.Unlock()
	return nil
}

// RequestKeyframe forwards a keyframe request to the publisher, rate-limited by Config.KeyframeInterval.
func (t *Track) RequestKeyframe() {
	now := nanotime()
	last := t.lastKF.Load()
	if last != 0 && now-last < t.kfInterval {
		return
	}
	if !t.lastKF.CompareAndSwap(last, now) {
		return // another caller just forwarded one
	}
	if p := t.pub.Load(); p != nil && !p.closed.Load() {
		t.kfSent.Add(1)
		p.pub.RequestKeyframe(t.ID())
	}
}

// KeyframeRequests counts the keyframe requests the track forwarded to its publishers (PLIs for
// WebRTC publishers), for metrics.
func (t *Track) KeyframeRequests() uint64 { return t.kfSent.Load() }

// AddWriter attaches a writer directly (Stream.Subscribe does this for each track a subscriber takes).
// The writer first gets the cached GOP, then live packets. remove is idempotent; once it returns, the
// writer gets no more packets. Neither may be called from within a writer's WriteRTP.
func (t *Track) AddWriter(w TrackWriter) (remove func()) {
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	e := writerEntry{id: id, w: w}
	e.dt, _ = w.(*DownTrack)
	t.writeMu.Lock()
	t.replayLocked(e)
	t.writers.Store(t.writers.Load().with(e))
	t.writeMu.Unlock()
	t.mu.Unlock()
	t.notifyDemand()

	var removed atomic.Bool
	return func() {
		if removed.Swap(true) {
			return
		}
		t.removeWriter(id)
	}
}

// replayLocked hands the cached GOP to a new writer. t.writeMu must be held.
func (t *Track) replayLocked(e writerEntry) {
	g := t.gop
	if g == nil || !g.active || len(g.pkts) == 0 {
		return
	}
	rw, _ := e.w.(ReplayWriter)
	if rw != nil {
		rw.BeginReplay()
	}
	p := &t.replayPkt
	now := nanotime()
	for i := range g.pkts {
		c := &g.pkts[i]
		p.Header = rtp.Header{Version: 2, Marker: c.marker, SequenceNumber: c.sn, Timestamp: c.ts, SSRC: g.ssrc}
		p.Payload = c.buf.b
		if e.dt != nil {
			_ = e.dt.writeShared(p, c.buf, now)
		} else {
			_ = e.w.WriteRTP(p)
		}
	}
	if last := &g.pkts[len(g.pkts)-1]; g.lastSN != last.sn {
		// Padding came after the last cached packet: say where the numbering stands with an empty
		// (padding) packet, so the first live packet does not look like a loss.
		p.Header = rtp.Header{Version: 2, SequenceNumber: g.lastSN, Timestamp: g.lastTS, SSRC: g.ssrc}
		p.Payload = nil
		if e.dt != nil {
			_ = e.dt.writeShared(p, nil, now)
		} else {
			_ = e.w.WriteRTP(p)
		}
	}
	p.Payload = nil
	if rw != nil {
		rw.EndReplay()
	}
}

func (t *Track) removeWriter(id uint64) {
	t.mu.Lock()
	ws := t.writers.Load().without(id)
	t.writeMu.Lock()
	t.writers.Store(ws)
	t.writeMu.Unlock()
	t.mu.Unlock()
	t.notifyDemand()
}

// OnDemand registers f, called with true when the track gets its first writer and false when its last
// writer leaves (lazy transcoders and depacketizers start and stop on it). Never called with a lock held.
//
// If the track already has writers, f is called with true at once. Calls are made in order, one at a
// time per track. Callbacks belong to the publication live when they are registered: they are dropped
// when it ends (a returning publisher registers its own).
func (t *Track) OnDemand(f func(active bool)) {
	if f == nil {
		return
	}
	t.mu.Lock()
	t.demand = append(t.demand, &demandFunc{f: f, owner: t.pub.Load()})
	t.mu.Unlock()
	t.notifyDemand()
}

// clearDemand drops the OnDemand callbacks registered during p (which ended).
func (t *Track) clearDemand(p *Publication) {
	t.mu.Lock()
	kept := t.demand[:0:0]
	for _, d := range t.demand {
		if d.owner != p {
			kept = append(kept, d)
		}
	}
	t.demand = kept
	t.mu.Unlock()
}

// notifyDemand brings every callback up to date with the writer count, outside the lock. One caller at a
// time delivers; a caller that finds delivery under way leaves the change to it.
func (t *Track) notifyDemand() {
	t.mu.Lock()
	if t.demandBusy {
		t.mu.Unlock()
		return
	}
	t.demandBusy = true
	for {
		active := len(t.writers.Load().entries) > 0
		var next *demandFunc
		for _, d := range t.demand {
			if d.reported != active {
				next = d
				break
			}
		}
		if next == nil {
			t.demandBusy = false
			t.mu.Unlock()
			return
		}
		next.reported = active
		t.mu.Unlock()
		next.f(active)
		t.mu.Lock()
	}
}

// Writers is the number of writers attached.
func (t *Track) Writers() int { return len(t.writers.Load().entries) }

// SetDetails records what the adapter learned of the track (profile, size, sample rate...).
func (t *Track) SetDetails(d Details) { t.details.Store(&d) }

// Details returns the last SetDetails value.
func (t *Track) Details() Details {
	if d := t.details.Load(); d != nil {
		return *d
	}
	return Details{}
}

// TrackStats are a track's ingest counters.
type TrackStats struct {
	Packets uint64
	Bytes   uint64
}

// Stats returns the track's ingest counters.
func (t *Track) Stats() TrackStats {
	return TrackStats{Packets: t.packets.Load(), Bytes: t.bytes.Load()}
}

// WriterStats sums the counters of the track's writers that report them (StatsReporter, as DownTrack
// does): what the track sent to its subscribers, for the API's send rates.
func (t *Track) WriterStats() WriterStats {
	var sum WriterStats
	for _, e := range t.writers.Load().entries {
		if r, ok := e.w.(StatsReporter); ok {
			st := r.Stats()
			sum.Packets += st.Packets
			sum.Bytes += st.Bytes
			sum.Dropped += st.Dropped
			sum.Retransmitted += st.Retransmitted
			sum.RetransmitMissed += st.RetransmitMissed
		}
	}
	return sum
}

// Generation counts the publications that have fed the track (it changes when a new publisher takes
// the track over after a grace period or a takeover).
func (t *Track) Generation() uint32 { return t.gen.Load() }

// attach makes p the track's publication (a new source: the GOP cache restarts).
func (t *Track) attach(p *Publication, info TrackInfo) {
	t.info.Store(&info)
	t.writeMu.Lock()
	t.gen.Add(1)
	if t.gop != nil {
		t.gop.forget()
	}
	t.rtx.reset()
	t.writeMu.Unlock()
	t.lastKF.Store(0)
	t.pub.Store(p)
}

// detach clears the track's publication if it is p.
func (t *Track) detach(p *Publication) {
	t.pub.CompareAndSwap(p, nil)
	t.clearDemand(p)
}
