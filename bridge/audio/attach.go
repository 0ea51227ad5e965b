package audio

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// Track IDs and mime types AttachOpus works with.
const (
	AACTrackID    = "aac"
	OpusTrackID   = "audio"
	MimeTypeAAC   = "audio/mpeg4-generic"
	MimeTypeOpus  = "audio/opus"
	queuePackets  = 64 // AAC packets buffered between the publisher and the transcoder (~1.5 s)
	slotBytes     = 1500
	logEveryError = 500
)

// OpusCodec is the codec of the "audio" track a publisher declares next to an AAC track with the
// given channel count: Opus at 48 kHz (always Channels 2 in SDP terms), with stereo=1 where the
// source is stereo.
func OpusCodec(channels int) sfu.Codec {
	fmtp := "minptime=10;useinbandfec=1"
	if channels == 2 {
		fmtp += ";stereo=1;sprop-stereo=1"
	}
	return sfu.Codec{MimeType: MimeTypeOpus, ClockRate: OpusClockRate, Channels: 2, Fmtp: fmtp}
}

// AttachOpus makes Opus for pub's "audio" track from its "aac" track while the "audio" track has
// writers (sfu.Track.OnDemand): a TrackWriter on the "aac" track queues the AAC RTP packets (never
// blocking the publisher: a full queue drops and counts) and one goroutine depacketizes (RFC 3640),
// decodes, resamples, encodes and writes Opus RTP packets (PT 111, a random SSRC kept for the
// publication, continuous sequence numbers, 48 kHz timestamps derived from the AAC ones) to "audio".
//
// If pub lacks either track, it does nothing. If the AAC cannot be decoded (HE-AAC, more than two
// channels, a bad config) it logs one line and sets Details.Problem on both tracks. Call stop before
// the publication closes (it stops the transcoder and waits for it; idempotent).
func AttachOpus(pub *sfu.Publication, cfg Config, log *slog.Logger) (stop func()) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nop := func() {}
	if pub == nil {
		return nop
	}
	aac, opus := pub.Track(AACTrackID), pub.Track(OpusTrackID)
	if aac == nil || opus == nil ||
		!strings.EqualFold(aac.Codec().MimeType, MimeTypeAAC) || !strings.EqualFold(opus.Codec().MimeType, MimeTypeOpus) {
		return nop
	}
	log = log.With("component", "audio", "stream", aac.StreamKey(), "track_id", OpusTrackID)
	a := &attachment{pub: pub, aac: aac, opus: opus, cfg: cfg, log: log, ssrc: rand.Uint32(), seq: uint16(rand.Uint32())}
	asc, err := packetize.ParseAACFmtp(aac.Codec().Fmtp)
	if err == nil {
		// Validate now, so the API shows a problem before anyone asks for Opus.
		_, err = NewAACToOpus(asc, cfg)
	}
	if err != nil {
		a.fail(err)
		return nop
	}
	a.asc = asc
	opus.OnDemand(a.onDemand)
	return a.stop
}

type attachment struct {
	pub       *sfu.Publication
	aac, opus *sfu.Track
	cfg       Config
	log       *slog.Logger
	asc       []byte
	ssrc      uint32

	failed atomic.Bool // the AAC cannot be transcoded: never start again

	mu     sync.Mutex
	closed bool
	seq    uint16 // next sequence number (kept across runs)
	run    *run
}

// fail reports an AAC stream that cannot be transcoded (once): one log line, and the tracks' Problem.
func (a *attachment) fail(err error) {
	if a.failed.Swap(true) {
		return
	}
	problem := "AAC cannot be transcoded to Opus: " + err.Error()
	a.log.Warn("no Opus for this stream: AAC cannot be transcoded", "err", err)
	for _, t := range []*sfu.Track{a.aac, a.opus} {
		d := t.Details()
		d.Problem = problem
		t.SetDetails(d)
	}
}

func (a *attachment) onDemand(active bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case active && a.run == nil && !a.closed && !a.failed.Load():
		r, err := a.startLocked()
		if err != nil {
			a.fail(err)
			return
		}
		a.run = r
		a.log.Debug("AAC to Opus transcoder started")
	case !active && a.run != nil:
		a.stopRunLocked()
		a.log.Debug("AAC to Opus transcoder stopped")
	}
}

func (a *attachment) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.run != nil {
		a.stopRunLocked()
	}
}

func (a *attachment) stopRunLocked() {
	r := a.run
	a.run = nil
	r.remove()
	close(r.done)
	r.wg.Wait()
	a.seq = r.pkt.SequenceNumber
	if d := r.dropped.Load(); d > 0 {
		a.log.Warn("AAC packets dropped: transcoder too slow", "dropped", d)
	}
}

// run is one activation of the transcoder: a TrackWriter on the AAC track and its goroutine.
type run struct {
	a      *attachment
	tr     *AACToOpus
	remove func()
	done   chan struct{}
	wg     sync.WaitGroup

	slots   [queuePackets]slot
	free    chan int
	full    chan int
	dropped atomic.Uint64

	// Owned by the goroutine.
	depack      packetize.AACDepacketizer
	pkt         rtp.Packet
	auTS        uint32 // timestamp of the next AU of the packet being depacketized
	onAU        func(au []byte)
	emit        EmitFunc
	corrupt     uint64
	unsupported error
}

type slot struct {
	buf    []byte
	ts     uint32
	marker bool
}

func (a *attachment) startLocked() (*run, error) {
	tr, err := NewAACToOpus(a.asc, a.cfg)
	if err != nil {
		return nil, err
	}
	r := &run{
		a:    a,
		tr:   tr,
		done: make(chan struct{}),
		free: make(chan int, queuePackets),
		full: make(chan int, queuePackets),
	}
	for i := range r.slots {
		r.slots[i].buf = make([]byte, 0, slotBytes)
		r.free <- i
	}
	r.pkt.Version = 2
	r.pkt.PayloadType = OpusPayloadType
	r.pkt.SSRC = a.ssrc
	r.pkt.SequenceNumber = a.seq
	r.onAU = r.handleAU
	r.emit = r.writeOpus
	r.wg.Add(1)
	go r.loop()
	r.remove = a.aac.AddWriter(r)
	return r, nil
}

// WriteRTP queues an AAC packet for the transcoder goroutine. It never blocks: with the queue full
// the packet is dropped and counted.
func (r *run) WriteRTP(p *rtp.Packet) error {
	select {
	case i := <-r.free:
		s := &r.slots[i]
		s.buf = append(s.buf[:0], p.Payload...)
		s.ts = p.Timestamp
		s.marker = p.Marker
		r.full <- i // never blocks: there are only queuePackets slots
	default:
		r.dropped.Add(1)
	}
	return nil
}

// Stats reports the packets dropped because the transcoder fell behind (sfu.StatsReporter).
func (r *run) Stats() sfu.WriterStats { return sfu.WriterStats{Dropped: r.dropped.Load()} }

func (r *run) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case i := <-r.full:
			s := &r.slots[i]
			if r.unsupported == nil {
				r.auTS = s.ts
				if err := r.depack.Push(s.buf, s.marker, r.onAU); err != nil {
					r.countCorrupt(err)
				}
			}
			r.free <- i
		}
	}
}

func (r *run) handleAU(au []byte) {
	ts := r.auTS
	r.auTS += AACFrameSamples
	if r.unsupported != nil {
		return
	}
	err := r.tr.Transcode(au, ts, r.emit)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnsupported):
		r.unsupported = err
		r.a.fail(err)
	default:
		r.countCorrupt(err)
	}
}

func (r *run) countCorrupt(err error) {
	r.corrupt++
	if r.corrupt%logEveryError == 1 {
		r.a.log.Warn("bad AAC packet skipped", "err", err, "count", r.corrupt)
	}
}

func (r *run) writeOpus(frame []byte, ts uint32) {
	if r.a.pub.Closed() {
		return
	}
	r.pkt.Timestamp = ts
	r.pkt.Payload = frame
	_ = r.a.opus.WriteRTP(&r.pkt)
	r.pkt.SequenceNumber++
	r.pkt.Payload = nil
}
