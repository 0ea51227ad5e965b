package flv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// Config configures FLV egress. The zero value is valid.
type Config struct {
	// OpusPassthrough sends Opus as Enhanced FLV Opus (flv.opus: passthrough) instead of transcoding it
	// to AAC (default).
	OpusPassthrough bool
	// AACBitrate is the bitrate of AAC made from Opus (audio.aac_bitrate). Default 128000.
	AACBitrate int
	// KeyframeInterval is how often a keyframe is asked of the publisher while viewers exist
	// (webrtc.keyframe_interval). Default 2s; negative: never (except when a viewer joins).
	KeyframeInterval time.Duration
	// ViewerQueue bounds a viewer's backlog in tags. Default 1024.
	ViewerQueue int
	// MaxLag disconnects a viewer that stays behind (backlog never drained, or a write blocked) this
	// long. Default 10s.
	MaxLag time.Duration
	// GOPMaxDuration and GOPMaxBytes cap the tags kept for new viewers. Defaults 5s and 8 MiB.
	GOPMaxDuration time.Duration
	GOPMaxBytes    int
	// AudioFlush bounds how long audio tags of a stream with video wait for the next video frame before
	// viewers are woken for them alone. Viewers are woken (one write each) per video frame, with the
	// audio that came since; audio-only streams wake them per tag. Default 100ms.
	AudioFlush time.Duration
	// WriteInterval merges each viewer's writes over this long: viewers are woken at most this often,
	// with everything queued since (fewer, larger writes: less server CPU per viewer, up to this much
	// more latency; SRS calls it mw_latency and merges 350ms by default). A new viewer's start (the kept
	// GOP) is written at once. Default 100ms; negative: one write per video frame.
	WriteInterval time.Duration
	// ProbeInterval is how often idle HTTP-FLV connections are checked for a client that left (no
	// goroutine reads them). Default 2s.
	ProbeInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.AACBitrate <= 0 {
		c.AACBitrate = 128000
	}
	if c.KeyframeInterval == 0 {
		c.KeyframeInterval = 2 * time.Second
	}
	if c.ViewerQueue <= 0 {
		c.ViewerQueue = 1024
	}
	if c.MaxLag <= 0 {
		c.MaxLag = 10 * time.Second
	}
	if c.GOPMaxDuration <= 0 {
		c.GOPMaxDuration = 5 * time.Second
	}
	if c.GOPMaxBytes <= 0 {
		c.GOPMaxBytes = 8 << 20
	}
	if c.AudioFlush <= 0 {
		c.AudioFlush = 100 * time.Millisecond
	}
	if c.WriteInterval == 0 {
		c.WriteInterval = 100 * time.Millisecond
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 2 * time.Second
	}
	return c
}

// Deps are the FLV server's collaborators: the frames registry (shared with other frame outputs) is
// required; Hub is used to tell unknown streams; Logger is optional.
type Deps struct {
	Frames *frames.Registry
	Logger *slog.Logger
	// OpusToAAC makes the Opus to AAC transcoder of a stream (bridge/audio.NewOpusToAAC, wired by the
	// app; bridge/audio's tests import this package's users, so it is injected). Without it, Opus tracks
	// are left out unless Config.OpusPassthrough.
	OpusToAAC func(channels, bitrate int) (OpusTranscoder, error)
}

// OpusTranscoder turns Opus packets into AAC-LC access units (bridge/audio.OpusToAAC).
type OpusTranscoder interface {
	AudioSpecificConfig() []byte
	SampleRate() int
	Channels() int
	Transcode(pkt []byte, pts time.Duration, emit func(au []byte, pts time.Duration)) error
}

// Server muxes streams into FLV once per stream and serves them to viewers (HTTP-FLV; RTMP play can use
// Subscribe too).
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex
	streams map[string]*stream
	closed  bool
	wg      sync.WaitGroup // stream loops and viewer connections
}

// New makes an FLV server.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Frames == nil {
		return nil, errors.New("flv: Deps.Frames is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg.withDefaults(), deps: deps, log: log.With("component", "flv"), streams: make(map[string]*stream)}, nil
}

// stream is one stream's FLV muxer: it turns frames into tags once and fans them out to its viewers.
type stream struct {
	srv   *Server
	key   string
	refs  int // guarded by srv.mu
	ready chan struct{}
	err   error

	src      *frames.Source
	release  func()
	lis      *frames.Listener
	trans    OpusTranscoder
	stop     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}

	vcodec VideoCodec
	acodec AudioCodec

	mu       sync.Mutex // guards below
	viewers  []*Viewer
	gop      []*Tag
	gopBytes int
	vseq     *Tag
	aseq     *Tag
	meta     MetaData
	lastV    *frames.CodecConfig
	lastA    *frames.CodecConfig
	ended    bool

	lastFlush time.Time // when viewers were last woken (stream loop only)
	pending   bool      // tags were queued since the last WriteInterval flush (stream loop only)
}

// acquire returns the running muxer of key (starting it for the first viewer).
func (s *Server) acquire(ctx context.Context, key string) (*stream, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrServerClosed
		}
		st := s.streams[key]
		if st != nil {
			st.refs++
			s.mu.Unlock()
			select {
			case <-st.ready:
			case <-ctx.Done():
				s.releaseStream(st)
				return nil, ctx.Err()
			}
			if st.err != nil {
				s.releaseStream(st)
				return nil, st.err
			}
			select {
			case <-st.stopped:
				s.releaseStream(st)
				continue
			default:
			}
			return st, nil
		}
		st = &stream{srv: s, key: key, refs: 1, ready: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{})}
		s.streams[key] = st
		s.mu.Unlock()
		st.err = st.start(ctx)
		close(st.ready)
		if st.err != nil {
			close(st.stopped)
			s.releaseStream(st)
			return nil, st.err
		}
		return st, nil
	}
}

func (s *Server) releaseStream(st *stream) {
	s.mu.Lock()
	st.refs--
	last := st.refs == 0
	if last && s.streams[st.key] == st {
		delete(s.streams, st.key)
	}
	s.mu.Unlock()
	if last && st.err == nil {
		st.shutdown()
	}
}

// start acquires the frames source and starts the muxer loop.
func (st *stream) start(ctx context.Context) error {
	s := st.srv
	src, release, err := s.deps.Frames.Acquire(ctx, st.key)
	if err != nil {
		return err
	}
	vc, ac := src.Codecs()
	switch vc {
	case frames.CodecH264:
		st.vcodec = VideoAVC
	case frames.CodecH265:
		st.vcodec = VideoHEVC
	case frames.CodecAV1:
		st.vcodec = VideoAV1
	}
	switch ac {
	case frames.CodecAAC:
		st.acodec = AudioAAC
	case frames.CodecOpus:
		switch {
		case s.cfg.OpusPassthrough:
			st.acodec = AudioOpus
		case s.deps.OpusToAAC != nil:
			st.acodec = AudioAAC
		}
	}
	if st.vcodec == 0 && st.acodec == 0 {
		release()
		return fmt.Errorf("%s: %w", st.key, ErrNoMedia)
	}
	lis, err := src.Listen(4096)
	if err != nil {
		release()
		return err
	}
	st.src, st.release, st.lis = src, release, lis
	st.meta = MetaData{HasVideo: st.vcodec != 0, HasAudio: st.acodec != 0, VideoCodec: st.vcodec, AudioCodec: st.acodec}
	s.wg.Add(1)
	go st.loop()
	return nil
}

// shutdown stops the loop, ends the viewers and releases the source.
func (st *stream) shutdown() {
	st.halt()
	<-st.stopped
}

func (st *stream) halt() { st.stopOnce.Do(func() { close(st.stop) }) }

func (st *stream) loop() {
	s := st.srv
	defer s.wg.Done()
	defer close(st.stopped)
	defer func() {
		s.mu.Lock()
		if s.streams[st.key] == st {
			delete(s.streams, st.key) // a new viewer starts a new muxer
		}
		s.mu.Unlock()
		st.lis.Close()
		st.release()
		st.mu.Lock()
		st.ended = true
		vs := st.viewers
		st.viewers = nil
		st.mu.Unlock()
		for _, v := range vs {
			v.end(nil)
		}
	}()
	var tick <-chan time.Time
	if s.cfg.KeyframeInterval > 0 {
		t := time.NewTicker(s.cfg.KeyframeInterval)
		defer t.Stop()
		tick = t.C
	}
	probe := time.NewTicker(s.cfg.ProbeInterval)
	defer probe.Stop()
	var flushTick <-chan time.Time
	if s.cfg.WriteInterval > 0 {
		t := time.NewTicker(s.cfg.WriteInterval)
		defer t.Stop()
		flushTick = t.C
	}
	for {
		select {
		case <-st.stop:
			return
		case <-st.lis.Done():
			return
		case <-tick:
			st.src.RequestKeyframe()
		case <-probe.C:
			st.probe()
		case <-flushTick:
			if st.pending {
				st.pending = false
				st.flushAll()
			}
		case f := <-st.lis.Frames():
			st.frame(f)
		}
	}
}

// flushAll wakes every viewer that has tags queued (Config.WriteInterval).
func (st *stream) flushAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, v := range st.viewers {
		v.wake()
	}
}

// probe ends the viewers whose client left while they had nothing to write (a write error finds the
// others). No lock is held across the probes.
func (st *stream) probe() {
	st.mu.Lock()
	var idle []*Viewer
	var fns []func() bool
	for _, v := range st.viewers {
		if v.probeFn != nil && v.idle() {
			idle = append(idle, v)
			fns = append(fns, v.probeFn)
		}
	}
	st.mu.Unlock()
	for i, v := range idle {
		if fns[i]() {
			v.end(ErrPeerGone)
		}
	}
}

// frame turns one frame into tags.
func (st *stream) frame(f *frames.Frame) {
	if f.Video() {
		if st.vcodec == 0 {
			return
		}
		if f.Config != st.lastV {
			st.lastV = f.Config
			st.mu.Lock()
			st.meta.Width, st.meta.Height = f.Config.Width, f.Config.Height
			st.mu.Unlock()
			st.publish(&Tag{Type: TagVideo, DTS: f.DTS, Seq: true, Body: VideoSequenceHeader(st.vcodec, f.Config.Record)})
		}
		st.publish(&Tag{Type: TagVideo, DTS: f.DTS, Key: f.Key, Body: VideoFrame(st.vcodec, f.Key, f.PTS-f.DTS, f.Data)})
		return
	}
	if st.acodec == 0 {
		return
	}
	if f.Codec == frames.CodecOpus && st.acodec == AudioAAC {
		st.transcode(f)
		return
	}
	if f.Config != st.lastA {
		st.lastA = f.Config
		st.mu.Lock()
		st.meta.SampleRate, st.meta.Channels = f.Config.SampleRate, f.Config.Channels
		st.mu.Unlock()
		st.publish(&Tag{Type: TagAudio, DTS: f.DTS, Seq: true, Body: AudioSequenceHeader(st.acodec, f.Config.Record)})
	}
	st.publish(&Tag{Type: TagAudio, DTS: f.DTS, Body: AudioFrame(st.acodec, f.Data)})
}

// transcode makes AAC of an Opus frame (one transcoder per stream, while it has viewers).
func (st *stream) transcode(f *frames.Frame) {
	if st.trans == nil || f.Config != st.lastA {
		t, err := st.srv.deps.OpusToAAC(f.Config.Channels, st.srv.cfg.AACBitrate)
		if err != nil {
			st.srv.log.Warn("opus to aac", "stream", st.key, "err", err)
			st.acodec = 0
			return
		}
		st.trans, st.lastA = t, f.Config
		st.mu.Lock()
		st.meta.SampleRate, st.meta.Channels = t.SampleRate(), t.Channels()
		st.mu.Unlock()
		st.publish(&Tag{Type: TagAudio, DTS: f.DTS, Seq: true, Body: AudioSequenceHeader(AudioAAC, t.AudioSpecificConfig())})
	}
	_ = st.trans.Transcode(f.Data, f.PTS, st.emitAAC)
}

func (st *stream) emitAAC(au []byte, pts time.Duration) {
	st.publish(&Tag{Type: TagAudio, DTS: pts, Body: AudioFrame(AudioAAC, au)})
}

// publish records t in the GOP and queues it to every viewer. Viewers are woken (flush) per video frame
// with the audio queued since, so a viewer writes once per frame rather than once per tag; audio alone
// wakes them in audio-only streams or when no video frame came for Config.AudioFlush.
func (st *stream) publish(t *Tag) {
	flush := false
	switch {
	case t.Type == TagVideo && !t.Seq, st.vcodec == 0:
		flush = true
	case !t.Seq:
		flush = time.Since(st.lastFlush) >= st.srv.cfg.AudioFlush
	}
	if st.srv.cfg.WriteInterval > 0 {
		flush, st.pending = false, true // the loop's flush tick wakes the viewers
	}
	if flush {
		st.lastFlush = time.Now()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case t.Seq:
		if t.Type == TagVideo {
			st.vseq = t
		} else {
			st.aseq = t
		}
		if len(st.gop) > 0 {
			st.gop = append(st.gop, t)
		}
	case t.Key:
		clear(st.gop)
		st.gop, st.gopBytes = st.gop[:0], 0
		st.gop = append(st.gop, t)
	case len(st.gop) > 0:
		st.gop = append(st.gop, t)
		st.gopBytes += len(t.Body)
		if st.gopBytes > st.srv.cfg.GOPMaxBytes || t.DTS-st.gop[0].DTS > st.srv.cfg.GOPMaxDuration {
			clear(st.gop)
			st.gop, st.gopBytes = st.gop[:0], 0
		}
	case st.vcodec == 0:
		// Audio only: viewers start anywhere.
	}
	for _, v := range st.viewers {
		v.push(t, st, flush)
	}
}

// Viewer is one FLV viewer of a stream: a bounded backlog of shared tags, written by its own goroutine.
type Viewer struct {
	st   *stream
	max  int
	info sfu.ClientInfo
	sent atomic.Uint64 // FLV bytes handed out by Next (tag headers, bodies, previous-tag sizes)

	// probeFn, when set (guarded by st.mu), reports whether the viewer's client left; the stream's loop
	// calls it for idle viewers every Config.ProbeInterval.
	probeFn func() bool

	mu       sync.Mutex
	q        []*Tag
	started  bool // tags were handed out (Next)
	waitKey  bool
	lagSince time.Time // when the viewer first dropped since its backlog was last empty
	dropped  uint64
	err      error
	done     bool
	notify   chan struct{}
	endCh    chan struct{}
}

// Subscribe adds a viewer to stream key: it starts with the FLV header, onMetaData, the sequence headers
// and the kept GOP. Close it when done.
func (s *Server) Subscribe(ctx context.Context, key string) (*Viewer, error) {
	return s.subscribe(ctx, key, nil)
}

// subscribe is Subscribe with the viewer's client probe.
func (s *Server) subscribe(ctx context.Context, key string, probe func() bool) (*Viewer, error) {
	st, err := s.acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	v := &Viewer{st: st, max: s.cfg.ViewerQueue, notify: make(chan struct{}, 1), endCh: make(chan struct{}), waitKey: true,
		probeFn: probe, info: sfu.ClientInfo{ID: sfu.NewClientID(), Protocol: "flv", Started: time.Now()}}
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		s.releaseStream(st)
		return nil, fmt.Errorf("%s: %w", key, sfu.ErrStreamNotFound)
	}
	if (len(st.gop) > 0 || st.vcodec == 0) && len(st.gop)+2 < v.max/2 {
		// Start with the kept GOP (when it leaves room in the backlog; else at the next keyframe).
		v.waitKey = false
		v.q = append(v.q, st.headerTags()...)
		v.q = append(v.q, st.gop...)
	}
	st.viewers = append(st.viewers, v)
	st.mu.Unlock()
	st.src.RequestKeyframe()
	return v, nil
}

// headerTags are the sequence headers a viewer needs before its first frames. st.mu is held.
func (st *stream) headerTags() []*Tag {
	var out []*Tag
	if st.vseq != nil && (len(st.gop) == 0 || st.gop[0] != st.vseq) {
		out = append(out, st.vseq)
	}
	if st.aseq != nil {
		out = append(out, st.aseq)
	}
	return out
}

// Info describes the viewer for the API (Protocol "flv"; RemoteAddr as set by SetRemoteAddr).
func (v *Viewer) Info() sfu.ClientInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.info
}

// SetRemoteAddr records the viewer's address (and protocol, e.g. "rtmp" for RTMP play) for Info.
func (v *Viewer) SetRemoteAddr(addr, protocol string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.info.RemoteAddr = addr
	if protocol != "" {
		v.info.Protocol = protocol
	}
}

// StreamKey is the key of the viewer's stream.
func (v *Viewer) StreamKey() string { return v.st.key }

// tagOverhead is an FLV tag's header (11 bytes) and trailing previous-tag size (4 bytes).
const tagOverhead = 15

// Bytes is what the viewer was handed so far (FLV tags with headers; for the API).
func (v *Viewer) Bytes() uint64 { return v.sent.Load() }

// Kick ends the viewer (API kick): its connection closes.
func (v *Viewer) Kick() { v.end(nil) }

// Viewers returns every viewer of every stream (for the API: clients list, viewer counts, kick).
func (s *Server) Viewers() []*Viewer {
	s.mu.Lock()
	sts := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		sts = append(sts, st)
	}
	s.mu.Unlock()
	var out []*Viewer
	for _, st := range sts {
		st.mu.Lock()
		out = append(out, st.viewers...)
		st.mu.Unlock()
	}
	return out
}

// Meta returns the stream's current onMetaData values.
func (v *Viewer) Meta() MetaData {
	v.st.mu.Lock()
	defer v.st.mu.Unlock()
	return v.st.meta
}

// Done is closed when the viewer ends (stream end, slow, Close).
func (v *Viewer) Done() <-chan struct{} { return v.endCh }

// Err is why the viewer ended (nil: the stream ended or Close).
func (v *Viewer) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Dropped is the number of tags the viewer lost by being slow.
func (v *Viewer) Dropped() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.dropped
}

// Close removes the viewer; the stream's muxer stops after its last viewer.
func (v *Viewer) Close() {
	st := v.st
	st.mu.Lock()
	for i, x := range st.viewers {
		if x == v {
			st.viewers = append(st.viewers[:i:i], st.viewers[i+1:]...)
			break
		}
	}
	st.mu.Unlock()
	if v.end(nil) {
		st.srv.releaseStream(st)
	}
}

// end marks the viewer done (once); it reports whether this call ended it.
func (v *Viewer) end(err error) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.done {
		return false
	}
	v.done, v.err = true, err
	close(v.endCh)
	return true
}

// setProbe sets the viewer's client probe (once, before it can be idle for a ProbeInterval).
func (v *Viewer) setProbe(fn func() bool) {
	v.st.mu.Lock()
	v.probeFn = fn
	v.st.mu.Unlock()
}

// idle reports whether the viewer has nothing queued.
func (v *Viewer) idle() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.q) == 0 && !v.done
}

// push queues t (st.mu held) and, with flush, wakes the viewer. A full backlog is dropped; the viewer
// resumes at the next keyframe. It does not allocate once the backlog has grown to its working size.
func (v *Viewer) push(t *Tag, st *stream, flush bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.done {
		return
	}
	if v.waitKey {
		if !t.Key {
			return
		}
		v.waitKey = false
		v.q = append(v.q, st.headerTags()...)
	}
	if len(v.q) >= v.max {
		v.dropped += uint64(len(v.q))
		clear(v.q)
		v.q = v.q[:0]
		if v.lagSince.IsZero() {
			v.lagSince = time.Now()
		}
		if !t.Key {
			v.waitKey = true
			return
		}
		v.q = append(v.q, st.headerTags()...)
	}
	v.q = append(v.q, t)
	if flush || !v.started {
		v.signal() // a viewer's first tags go at once, without waiting for a flush
	}
}

// signal wakes the viewer's writer (v.mu held).
func (v *Viewer) signal() {
	select {
	case v.notify <- struct{}{}:
	default:
	}
}

// wake signals the viewer if it has tags queued.
func (v *Viewer) wake() {
	v.mu.Lock()
	if len(v.q) > 0 {
		v.signal()
	}
	v.mu.Unlock()
}

// keepQueue is the backlog capacity (tags) a viewer keeps between batches; a larger one (the kept GOP
// at the start, a burst) is let go after use.
const keepQueue = 64

// Next waits for queued tags and returns them; buf (the previous call's result, which the caller no
// longer uses) becomes the viewer's next backlog, so the two swap without copying or allocating. It
// returns an error when the viewer ended (nil error and no tags never happens) or ctx is done.
func (v *Viewer) Next(ctx context.Context, buf []*Tag) ([]*Tag, error) {
	clear(buf)
	if cap(buf) > keepQueue {
		buf = nil
	}
	for {
		v.mu.Lock()
		if len(v.q) > 0 {
			out := v.q
			v.q = buf[:0]
			buf = out
			v.started = true
			select { // a wake-up for what is taken now would only wake the writer for nothing
			case <-v.notify:
			default:
			}
			v.mu.Unlock()
			n := 0
			for _, t := range buf {
				n += tagOverhead + len(t.Body)
			}
			v.sent.Add(uint64(n))
			return buf, nil
		}
		if !v.lagSince.IsZero() {
			v.lagSince = time.Time{} // caught up
		}
		done := v.done
		v.mu.Unlock()
		if done {
			return buf[:0], v.endErr()
		}
		select {
		case <-v.notify:
		case <-v.endCh:
		case <-ctx.Done():
			return buf[:0], ctx.Err()
		}
	}
}

func (v *Viewer) endErr() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		return v.err
	}
	return frames.ErrClosed
}

// Lagging reports whether the viewer has stayed behind for longer than the configured MaxLag.
func (v *Viewer) Lagging() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !v.lagSince.IsZero() && time.Since(v.lagSince) > v.st.srv.cfg.MaxLag
}

// MaxLag is the configured MaxLag (write deadlines use it).
func (v *Viewer) MaxLag() time.Duration { return v.st.srv.cfg.MaxLag }

// Close stops every stream and viewer. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	var sts []*stream
	for k, st := range s.streams {
		sts = append(sts, st)
		delete(s.streams, k)
	}
	s.mu.Unlock()
	for _, st := range sts {
		select {
		case <-st.ready:
		default:
			continue
		}
		if st.err == nil {
			st.halt()
		}
	}
	s.wg.Wait()
}
