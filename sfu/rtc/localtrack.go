package rtc

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// LocalTrackOptions configures a LocalTrack. The zero value is valid.
type LocalTrackOptions struct {
	// StreamID is the track's msid stream id. Default "estuary".
	StreamID string
	// BindWait is how long WriteRTP, before the track is first bound (DTLS not yet up), waits for the
	// binding instead of dropping, so that what a DownTrack sends first (the cached GOP, starting with
	// its keyframe) reaches the viewer. It blocks the caller, so only a per-subscriber writer (an
	// sfu.DownTrack's goroutine) may use it; Close releases a waiting writer. Default 0: drop.
	BindWait time.Duration
	// Batch, the PeerConnection's (Engine.NewViewerPeerConnection), makes the packets a DownTrack
	// writes between BeginBatch and EndBatch leave in one system call, and, once DTLS is up, lets the
	// track send directly (direct.go). The track holds a reference until Close. Default nil: every
	// packet goes through pion on its own.
	Batch *Batch
}

// LocalTrack is a webrtc.TrackLocal carrying one sfu track to one PeerConnection, and the
// sfu.PacketSink an sfu.DownTrack writes to. Bind picks the negotiated codec matching the sfu track's
// (see MatchCodec); WriteRTP sets SSRC and payload type from the binding and writes to pion. Before
// the binding (after BindWait) and after Unbind or Close it drops.
type LocalTrack struct {
	info     sfu.TrackInfo
	streamID string
	kind     webrtc.RTPCodecType
	bindWait time.Duration
	batch    *Batch
	open     *destQueue // corked by BeginBatch (the DownTrack writer's only)

	binding atomic.Pointer[localBinding]
	gaveUp  atomic.Bool // BindWait expired once: never wait again

	bound     chan struct{}
	boundOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
}

type localBinding struct {
	ready atomic.Bool // pion accepted a write, or the direct path is up (see WriteRTP)
	// Set by the writer (writeFirst) before ready: the direct path (direct.go), or pionOnly when the
	// track stays on pion's write path.
	direct   *directPath
	pionOnly bool
	id       string
	ssrc     uint32
	pt       uint8
	codec    webrtc.RTPCodecParameters
	w        webrtc.TrackLocalWriter
}

var (
	_ webrtc.TrackLocal   = (*LocalTrack)(nil)
	_ sfu.BatchSink       = (*LocalTrack)(nil)
	_ sfu.NonBlockingSink = (*LocalTrack)(nil)
)

// NewLocalTrack makes the WebRTC side of an sfu track described by info.
func NewLocalTrack(info sfu.TrackInfo, opts LocalTrackOptions) *LocalTrack {
	kind := webrtc.RTPCodecTypeVideo
	if info.Kind == sfu.KindAudio {
		kind = webrtc.RTPCodecTypeAudio
	}
	if opts.StreamID == "" {
		opts.StreamID = "estuary"
	}

	if opts.Batch != nil {
		opts.Batch.retain()
	}

	return &LocalTrack{
		info: info, streamID: opts.StreamID, kind: kind, bindWait: opts.BindWait, batch: opts.Batch,
		bound: make(chan struct{}), closed: make(chan struct{}),
	}
}

// Bind is called by pion when the RTPSender starts: it picks the codec the track is sent as.
func (l *LocalTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := MatchCodec(ctx.CodecParameters(), l.info.Codec)
	if !ok {
		return webrtc.RTPCodecParameters{}, ErrNoMatchingCodec
	}
	l.binding.Store(&localBinding{
		id: ctx.ID(), ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), codec: c, w: ctx.WriteStream(),
	})
	l.boundOnce.Do(func() { close(l.bound) })

	return c, nil
}

// Unbind is called by pion when the RTPSender stops; later writes are dropped.
func (l *LocalTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := l.binding.Load(); b != nil && b.id == ctx.ID() {
		l.binding.CompareAndSwap(b, nil)
	}

	return nil
}

// ID is the sfu track's ID ("video", "audio").
func (l *LocalTrack) ID() string { return l.info.ID }

// RID is empty: no simulcast.
func (l *LocalTrack) RID() string { return "" }

// StreamID is the msid stream id.
func (l *LocalTrack) StreamID() string { return l.streamID }

// Kind is audio or video.
func (l *LocalTrack) Kind() webrtc.RTPCodecType { return l.kind }

// Info is the sfu track this LocalTrack carries.
func (l *LocalTrack) Info() sfu.TrackInfo { return l.info }

// Codec returns the negotiated codec once bound.
func (l *LocalTrack) Codec() (webrtc.RTPCodecParameters, bool) {
	if b := l.binding.Load(); b != nil {
		return b.codec, true
	}

	return webrtc.RTPCodecParameters{}, false
}

// Bound is closed when the track is first bound.
func (l *LocalTrack) Bound() <-chan struct{} { return l.bound }

// Close makes every later write drop and releases a writer waiting for the binding. Idempotent.
func (l *LocalTrack) Close() {
	l.closeOnce.Do(func() {
		close(l.closed)
		if l.batch != nil {
			l.batch.release()
		}
	})
	l.binding.Store(nil)
}

// NonBlocking reports that writes never wait any more (sfu.NonBlockingSink): the direct path is up
// (UDP datagrams to the ICE socket). pion's path does not qualify: over ICE-TCP a slow viewer's
// writes block. The DownTrack may then leave its goroutine for a writer pool. Only the DownTrack's
// writer calls it.
func (l *LocalTrack) NonBlocking() bool {
	b := l.binding.Load()
	return b != nil && b.ready.Load() && b.direct != nil
}

// BeginBatch starts gathering what the track sends (sfu.BatchSink), once pion takes writes and ICE
// has selected a UDP pair. Only the DownTrack's writer goroutine calls it.
func (l *LocalTrack) BeginBatch() {
	if l.batch == nil || l.open != nil {
		return
	}
	if b := l.binding.Load(); b != nil && b.ready.Load() {
		l.open = l.batch.begin()
	}
}

// EndBatch sends what was gathered since BeginBatch (with what other tracks of the PeerConnection
// gathered meanwhile, when they end theirs first).
func (l *LocalTrack) EndBatch() {
	if l.open != nil {
		l.open.uncork()
		l.open = nil
	}
}

// WriteRTP sends one packet: SSRC and payload type come from the binding; header extensions and
// padding of the source are removed (their IDs belong to the publisher's session). h is modified.
func (l *LocalTrack) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	b := l.binding.Load()
	if b == nil {
		if !l.waitBound() {
			return 0, nil
		}
		if b = l.binding.Load(); b == nil {
			return 0, nil
		}
	}
	h.SSRC = b.ssrc
	h.PayloadType = b.pt
	h.Extension = false
	h.Extensions = nil
	h.Padding = false
	h.PaddingSize = 0
	if b.ready.Load() {
		if b.direct != nil {
			return b.direct.write(h, payload)
		}
		return b.w.WriteRTP(h, payload)
	}

	return l.writeFirst(b, h, payload)
}

// writeFirst covers a gap in pion: Bind is called before the RTPSender's interceptor chain is in
// place, and until it is, writes are silently swallowed (0 bytes, no error). The first writes retry
// for a short while, so the first packets a viewer gets (the keyframe) are not lost. With a Batch it
// first sets up the direct path (direct.go) once DTLS is up; pion then never sends this track's RTP.
func (l *LocalTrack) writeFirst(b *localBinding, h *rtp.Header, payload []byte) (int, error) {
	for range 200 {
		if l.batch != nil && !b.pionOnly {
			d, err := l.batch.newDirectPath(b.ssrc)
			switch {
			case err == nil:
				b.direct = d
				b.ready.Store(true)
				return d.write(h, payload)
			case !errors.Is(err, errDirectNotYet):
				b.pionOnly = true
				l.batch.engine.log.Debug("track stays on pion's write path", "track_id", l.info.ID, "err", err)
			}
		}
		if l.batch == nil || b.pionOnly {
			n, err := b.w.WriteRTP(h, payload)
			if n > 0 || err != nil {
				b.ready.Store(true)

				return n, err
			}
		}
		select {
		case <-l.closed:
			return 0, nil
		case <-time.After(time.Millisecond):
		}
	}

	return 0, nil
}

// waitBound waits (once, at most BindWait) for the first binding; false if it did not come.
func (l *LocalTrack) waitBound() bool {
	select {
	case <-l.bound:
		return true
	case <-l.closed:
		return false
	default:
	}
	if l.bindWait <= 0 || l.gaveUp.Load() {
		return false
	}
	t := time.NewTimer(l.bindWait)
	defer t.Stop()
	select {
	case <-l.bound:
		return true
	case <-l.closed:
		return false
	case <-t.C:
		l.gaveUp.Store(true)

		return false
	}
}

// mimeIsAAC reports the internal AAC format, which WebRTC peers cannot take.
func mimeIsAAC(m string) bool { return strings.EqualFold(m, "audio/mpeg4-generic") }

// WebRTCCapable reports whether a WebRTC peer can receive an sfu track of this codec (AAC cannot).
func WebRTCCapable(c sfu.Codec) bool {
	return !mimeIsAAC(c.MimeType) && Supported(webrtc.RTPCodecCapability{
		MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, SDPFmtpLine: c.Fmtp,
	})
}
