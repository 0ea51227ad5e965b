package frames

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/estuary-media/estuary/sfu"
)

// Config configures sources. The zero value is valid.
type Config struct {
	// QueuePackets bounds the packets waiting for the depacketizer (per source). Default 4096.
	QueuePackets int
	// GOPMaxDuration caps the GOP kept for new listeners. Default 5s.
	GOPMaxDuration time.Duration
	// GOPMaxBytes caps the GOP's payload bytes. Default 8 MiB.
	GOPMaxBytes int
}

func (c Config) withDefaults() Config {
	if c.QueuePackets <= 0 {
		c.QueuePackets = 4096
	}
	if c.GOPMaxDuration <= 0 {
		c.GOPMaxDuration = 5 * time.Second
	}
	if c.GOPMaxBytes <= 0 {
		c.GOPMaxBytes = 8 << 20
	}
	return c
}

// Protocol is the ClientInfo.Protocol of a Source: an internal muxer input, not a viewer.
const Protocol = "mux"

// inPkt is a packet copied off the publisher's goroutine.
type inPkt struct {
	tr        *trackState
	buf       *[]byte
	n         int
	ts        uint32
	ssrc      uint32
	sn        uint16
	marker    bool
	replay    bool
	endReplay bool
	at        time.Duration // arrival, since the source started
}

func (p *inPkt) payload() []byte {
	if p.buf == nil {
		return nil
	}
	return (*p.buf)[:p.n]
}

// Source depacketizes one stream's tracks once for every frame-based output. Make it with NewSource
// (or through a Registry); add listeners; Close it when done.
type Source struct {
	key   string
	cfg   Config
	log   *slog.Logger
	hub   *sfu.Hub
	info  sfu.ClientInfo
	epoch time.Time

	tracks []*trackState // set while subscribing, then fixed
	in     chan inPkt
	bufs   sync.Pool

	mu        sync.Mutex // guards the fields below; held only for in-memory work
	listeners []*Listener
	gop       []*Frame
	gopBytes  int
	gopOK     bool
	closed    bool
	unsub     func()
	// shared time base (RTMP): the publication it was chosen for and its offset.
	sharedPub    *sfu.Publication
	sharedOffset time.Duration

	hasVideo, hasAudio bool
	queueDrops         atomic.Uint64
	done               chan struct{}
	wg                 sync.WaitGroup
	closeOnce          sync.Once
	onClose            func()
}

// NewSource subscribes to the stream key of hub. It fails with sfu.ErrStreamNotFound (wrapped) for a
// stream nobody publishes, and with ErrNoTracks when no track can be depacketized.
func NewSource(ctx context.Context, hub *sfu.Hub, key string, cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	s := &Source{
		key: key, cfg: cfg, hub: hub, epoch: time.Now(),
		log:  log.With("component", "frames", "stream", key),
		in:   make(chan inPkt, cfg.QueuePackets),
		done: make(chan struct{}),
	}
	s.info = sfu.ClientInfo{ID: sfu.NewClientID(), Protocol: Protocol, Started: s.epoch}
	s.bufs.New = func() any { b := make([]byte, 0, 1500); return &b }
	s.wg.Add(1)
	go s.loop()
	unsub, err := hub.Subscribe(ctx, key, s)
	if err == nil && len(s.tracks) == 0 {
		unsub()
		err = fmt.Errorf("%s: %w", key, ErrNoTracks)
	}
	if err != nil {
		close(s.done)
		s.wg.Wait()
		return nil, err
	}
	s.mu.Lock()
	if s.closed { // the stream ended while we joined
		s.mu.Unlock()
		unsub()
		s.wg.Wait()
		return nil, fmt.Errorf("%s: %w", key, ErrClosed)
	}
	s.unsub = unsub
	s.mu.Unlock()
	return s, nil
}

// Key is the stream key.
func (s *Source) Key() string { return s.key }

// Info implements sfu.Client.
func (s *Source) Info() sfu.ClientInfo { return s.info }

// Done is closed when the source closes (the stream ended, or Close).
func (s *Source) Done() <-chan struct{} { return s.done }

// HasVideo and HasAudio tell which kinds of tracks the source depacketizes.
func (s *Source) HasVideo() bool { return s.hasVideo }
func (s *Source) HasAudio() bool { return s.hasAudio }

// Codecs lists the codecs of the source's tracks (video first).
func (s *Source) Codecs() (video, audio Codec) {
	for _, tr := range s.tracks {
		if tr.codec.Video() && video == 0 {
			video = tr.codec
		} else if !tr.codec.Video() && audio == 0 {
			audio = tr.codec
		}
	}
	return video, audio
}

// AddTrack implements sfu.Subscriber: it takes the first video track and the first audio track it can
// depacketize (AAC before Opus: "aac" is the original of an RTMP stream whose "audio" is transcoded).
func (s *Source) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	if t.Info().Variant != "" {
		// A track derived for WebRTC viewers (H.264 without B-frames): frame outputs take the original.
		return nil, sfu.ErrTrackSkipped
	}
	c := codecOf(t.Codec())
	if c == 0 {
		return nil, sfu.ErrTrackSkipped
	}
	if c.Video() && s.hasVideo {
		return nil, sfu.ErrTrackSkipped
	}
	if !c.Video() && s.hasAudio {
		// Prefer AAC (the publisher's own) over Opus transcoded from it.
		if c != CodecAAC {
			return nil, sfu.ErrTrackSkipped
		}
		for i, tr := range s.tracks {
			if !tr.codec.Video() && tr.codec == CodecOpus && tr.t.ID() == "audio" {
				ntr, err := newTrackState(s, t, c)
				if err != nil {
					return nil, sfu.ErrTrackSkipped
				}
				s.tracks[i] = ntr
				// The Opus writer was already returned: its packets are ignored (see trackWriter).
				return &trackWriter{tr: ntr}, nil
			}
		}
		return nil, sfu.ErrTrackSkipped
	}
	tr, err := newTrackState(s, t, c)
	if err != nil {
		s.log.Warn("track skipped", "track_id", t.ID(), "err", err)
		return nil, sfu.ErrTrackSkipped
	}
	s.tracks = append(s.tracks, tr)
	if c.Video() {
		s.hasVideo = true
	} else {
		s.hasAudio = true
	}
	return &trackWriter{tr: tr}, nil
}

// Close implements sfu.Client: it unsubscribes, stops the loop and ends every listener. Idempotent.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		unsub := s.unsub
		ls := s.listeners
		s.listeners = nil
		s.gop = nil
		onClose := s.onClose
		s.mu.Unlock()
		close(s.done)
		if unsub != nil {
			unsub() // a no-op when the hub is the one closing us
		}
		for _, l := range ls {
			l.end()
		}
		if onClose != nil {
			onClose()
		}
	})
	return nil
}

// Wait waits for the source's loop to stop after Close.
func (s *Source) Wait() { s.wg.Wait() }

// RequestKeyframe asks the publisher for a keyframe on the video track (rate-limited by the hub).
func (s *Source) RequestKeyframe() {
	for _, tr := range s.tracks {
		if tr.codec.Video() {
			tr.t.RequestKeyframe()
		}
	}
}

func (s *Source) requestKeyframe(tr *trackState) { tr.t.RequestKeyframe() }

// PublisherProtocol is the live publisher's ClientInfo.Protocol ("" during grace).
func (s *Source) PublisherProtocol() string {
	if st := s.hub.Stream(s.key); st != nil {
		if p := st.Publisher(); p != nil {
			return p.Info().Protocol
		}
	}
	return ""
}

// Stats are a source's counters.
type Stats struct {
	Frames, Dropped, Malformed, QueueDrops uint64
}

// Stats returns the source's counters (approximate while it runs).
func (s *Source) Stats() Stats {
	var st Stats
	for _, tr := range s.tracks {
		st.Frames += tr.frames.Load()
		st.Dropped += tr.dropped.Load()
		st.Malformed += tr.malformed.Load()
	}
	st.QueueDrops = s.queueDrops.Load()
	return st
}

func (s *Source) getBuf(n int) *[]byte {
	b := s.bufs.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

func (s *Source) putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		s.bufs.Put(b)
	}
}

// trackWriter is the sfu.TrackWriter of one track: it copies packets into the source's queue.
type trackWriter struct {
	tr        *trackState
	replaying bool
}

// WriteRTP implements sfu.TrackWriter: never blocks; a full queue drops the packet (the depacketizer
// sees the gap and waits for a keyframe).
func (w *trackWriter) WriteRTP(p *rtp.Packet) error {
	s := w.tr.src
	if s.trackOf(w.tr) {
		return nil
	}
	ip := inPkt{tr: w.tr, ts: p.Timestamp, ssrc: p.SSRC, sn: p.SequenceNumber, marker: p.Marker,
		replay: w.replaying, at: time.Since(s.epoch), n: len(p.Payload)}
	if len(p.Payload) > 0 {
		ip.buf = s.getBuf(len(p.Payload))
		copy(*ip.buf, p.Payload)
	}
	select {
	case s.in <- ip:
	default:
		s.putBuf(ip.buf)
		s.queueDrops.Add(1)
	}
	return nil
}

// trackOf reports whether tr was replaced (an Opus track superseded by AAC): its packets are ignored.
func (s *Source) trackOf(tr *trackState) bool {
	for _, t := range s.tracks {
		if t == tr {
			return false
		}
	}
	return true
}

// BeginReplay and EndReplay implement sfu.ReplayWriter: the cached GOP is anchored to the time it ends.
func (w *trackWriter) BeginReplay() { w.replaying = true }

func (w *trackWriter) EndReplay() {
	w.replaying = false
	s := w.tr.src
	select {
	case s.in <- inPkt{tr: w.tr, endReplay: true, at: time.Since(s.epoch)}:
	default:
		s.queueDrops.Add(1)
	}
}

// loop depacketizes queued packets until the source closes.
func (s *Source) loop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			s.drain()
			return
		case p := <-s.in:
			s.handle(&p)
		}
	}
}

func (s *Source) drain() {
	for {
		select {
		case p := <-s.in:
			s.putBuf(p.buf)
		default:
			return
		}
	}
}

func (s *Source) handle(p *inPkt) {
	tr := p.tr
	switch {
	case p.endReplay:
		if len(tr.replay) > 0 {
			rp := tr.replay
			tr.replay = nil
			first, last := rp[0], rp[len(rp)-1]
			if !tr.anchored {
				tr.newSource()
				tr.tsInit, tr.lastTS, tr.ext = true, first.ts, int64(first.ts)
				end := int64(first.ts) + int64(int32(last.ts-first.ts))
				tr.anchor(end, p.at)
				// The replayed GOP is compressed into replaySpan before its end (the hub keeps no
				// audio: played at its own pace, the GOP would start a GOP ahead of the audio). As
				// the WebRTC DownTrack does, playback then starts at once and at live.
				tr.squeezeEnd = tr.dur(end) + tr.offset
				tr.squeeze = 1
				if span := tr.dur(int64(int32(last.ts - first.ts))); span > replaySpan && s.hasAudio {
					tr.squeeze = float64(replaySpan) / float64(span)
				}
			}
			tr.replaying = true
			for i := range rp {
				tr.process(&rp[i])
				s.putBuf(rp[i].buf)
			}
			tr.replaying = false
			tr.replay = rp[:0]
		}
	case p.replay:
		tr.replay = append(tr.replay, *p)
		return // the buffer is kept until the replay ends
	default:
		tr.process(p)
	}
	s.putBuf(p.buf)
}

// replaySpan is the time a GOP replayed by the hub is compressed into (streams with audio).
const replaySpan = 80 * time.Millisecond

// anchorOffset chooses a track's timeline offset: RTMP tracks share their publication's time base
// (FLV milliseconds), so the first anchored track of a publication decides for all; other sources
// (WebRTC, relays: independent random bases) map each track's first packet to its arrival time.
func (s *Source) anchorOffset(tr *trackState, ext int64, at time.Duration) time.Duration {
	own := at - tr.dur(ext)
	st := s.hub.Stream(s.key)
	if st == nil {
		return own
	}
	pub := st.Publication()
	if pub == nil || pub.Publisher().Info().Protocol != "rtmp" {
		return own
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sharedPub != pub {
		s.sharedPub, s.sharedOffset = pub, own
	}
	return s.sharedOffset
}

// dispatch records f in the GOP and offers it to every listener.
func (s *Source) dispatch(tr *trackState, f *Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if f.Video() && f.Key {
		clear(s.gop)
		s.gop, s.gopBytes = s.gop[:0], 0
		// A GOP replayed by the hub comes compressed in time (see handle), so it starts together
		// with the (live) audio.
		s.gopOK = true
	}
	if s.gopOK || !s.hasVideo {
		if !s.hasVideo {
			// Audio only: keep a short history from the last second.
			for len(s.gop) > 0 && f.DTS-s.gop[0].DTS > time.Second {
				s.gopBytes -= len(s.gop[0].Data)
				s.gop = s.gop[1:]
			}
		}
		s.gop = append(s.gop, f)
		s.gopBytes += len(f.Data)
		if s.hasVideo && (s.gopBytes > s.cfg.GOPMaxBytes || f.DTS-s.gop[0].DTS > s.cfg.GOPMaxDuration) {
			clear(s.gop)
			s.gop, s.gopBytes, s.gopOK = s.gop[:0], 0, false
		}
	}
	for _, l := range s.listeners {
		l.offer(f, s)
	}
}

// startable reports whether a waiting listener may start at f.
func (s *Source) startable(f *Frame) bool {
	if !s.hasVideo {
		return true
	}
	return f.Video() && f.Key && s.gopOK
}

// Listener receives a source's frames through its own bounded queue. A listener that falls behind
// loses frames up to the next keyframe (counted in Dropped); it never slows the source.
type Listener struct {
	ch      chan *Frame
	done    chan struct{}
	once    sync.Once
	waitKey bool          // guarded by Source.mu
	dropped atomic.Uint64 // frames lost
	src     *Source
}

// Listen adds a listener with a queue of capacity frames (default 1024). It starts with the GOP kept
// by the source when that GOP is complete (audio included) and fits, else at the next complete keyframe.
func (s *Source) Listen(capacity int) (*Listener, error) {
	if capacity <= 0 {
		capacity = 1024
	}
	l := &Listener{ch: make(chan *Frame, capacity), done: make(chan struct{}), src: s, waitKey: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if len(s.gop) > 0 && (s.gopOK || !s.hasVideo) && len(s.gop) <= capacity/2 {
		for _, f := range s.gop {
			l.ch <- f
		}
		l.waitKey = false
	}
	s.listeners = append(s.listeners, l)
	return l, nil
}

// Frames is the listener's queue.
func (l *Listener) Frames() <-chan *Frame { return l.ch }

// Done is closed when the source ends (or the listener is removed).
func (l *Listener) Done() <-chan struct{} { return l.done }

// Dropped is the number of frames this listener lost by being slow.
func (l *Listener) Dropped() uint64 { return l.dropped.Load() }

// Close removes the listener from its source.
func (l *Listener) Close() {
	s := l.src
	s.mu.Lock()
	for i, x := range s.listeners {
		if x == l {
			s.listeners = append(s.listeners[:i:i], s.listeners[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	l.end()
}

func (l *Listener) end() { l.once.Do(func() { close(l.done) }) }

// offer queues f without blocking. Source.mu is held.
func (l *Listener) offer(f *Frame, s *Source) {
	if l.waitKey {
		if !s.startable(f) {
			return
		}
		l.waitKey = false
	}
	select {
	case l.ch <- f:
	default:
		l.dropped.Add(1)
		l.waitKey = true
	}
}
