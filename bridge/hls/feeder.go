package hls

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/estuary-media/estuary/bridge/frames"
)

// muxer is one gohlslib muxer and the tracks it was made with.
type muxer struct {
	m       *gohlslib.Muxer
	variant gohlslib.MuxerVariant
	vtrack  *gohlslib.Track
	atrack  *gohlslib.Track
	vcfg    *frames.CodecConfig
	acfg    *frames.CodecConfig
	// ready is closed when the muxer has its first segment (its multivariant playlist answers).
	ready chan struct{}
	wg    sync.WaitGroup
}

// Handle serves one of the muxer's files.
func (m *muxer) Handle(w http.ResponseWriter, r *http.Request) { m.m.Handle(w, r) }

// close stops the muxer (waiting requests get 500) and its readiness probe.
func (m *muxer) close() {
	m.m.Close()
	m.wg.Wait()
}

// probe closes ready once the muxer has content: gohlslib's multivariant playlist handler blocks
// until then (or until Close).
func (m *muxer) probe() {
	defer m.wg.Done()
	r, err := http.NewRequest(http.MethodGet, "/index.m3u8", nil)
	if err != nil {
		return
	}
	w := &probeWriter{h: http.Header{}}
	m.m.Handle(w, r)
	if w.code == http.StatusOK {
		close(m.ready)
	}
}

type probeWriter struct {
	h    http.Header
	code int
}

func (w *probeWriter) Header() http.Header { return w.h }
func (w *probeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}
func (w *probeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// startOffset is added to every timestamp fed to gohlslib so that DTS before the first PTS (B-frames)
// and audio sampled just before the first keyframe stay positive.
const startOffset = time.Second

// maxPending bounds the frames kept while the codecs' configurations are not all known.
const maxPending = 2048

// feeder turns a stream's frames into gohlslib writes. Only the stream's loop goroutine uses it.
type feeder struct {
	st  *stream
	cur *muxer

	needVideo, needAudio bool
	pending              []*frames.Frame
	vcfg, acfg           *frames.CodecConfig
	firstPending         time.Time

	tl      timeline
	ntpBase time.Time
	based   bool

	// keyframe requests: the current segment's start (media time) and the last request.
	segStart   time.Duration
	segStarted bool
	lastKFReq  time.Time
	lastVideo  time.Duration
	nalus      [][]byte
	failedOnce bool
}

func newFeeder(st *stream) *feeder {
	vc, ac := st.src.Codecs()
	return &feeder{st: st, needVideo: vc != 0, needAudio: ac != 0}
}

// close stops the current muxer.
func (f *feeder) close() {
	if f.cur != nil {
		f.cur.close()
		f.cur = nil
	}
}

// tick runs on the loop's timer: a muxer still missing an audio configuration starts without audio.
func (f *feeder) tick() {
	if f.cur == nil && len(f.pending) > 0 && f.vcfg != nil && time.Since(f.firstPending) > time.Second {
		f.needAudio = false
		f.startMuxer()
	}
}

// frame takes one frame from the listener.
func (f *feeder) frame(fr *frames.Frame) {
	if f.cur != nil && !f.fits(fr) {
		// New codec or new decoder configuration the muxer cannot take in-band: a new muxer.
		f.st.log.Info("hls codec configuration changed: new muxer", "track_id", fr.TrackID)
		f.st.setMuxer(nil, false)
		f.close()
		f.vcfg, f.acfg, f.pending = nil, nil, f.pending[:0]
		f.segStarted = false
	}
	if f.cur == nil {
		f.collect(fr)
		return
	}
	f.write(fr)
}

// fits reports whether the current muxer can take fr.
func (f *feeder) fits(fr *frames.Frame) bool {
	c := f.cur
	if fr.Video() {
		if c.vtrack == nil {
			return !f.needVideo // video the muxer was started without stays out
		}
		if fr.Config == c.vcfg || fr.Config == nil {
			return true
		}
		if fr.Config.Codec != c.vcfg.Codec {
			return false
		}
		// MPEG-TS carries parameter sets in-band; fMP4's init segment is fixed.
		return c.variant == gohlslib.MuxerVariantMPEGTS || string(fr.Config.Record) == string(c.vcfg.Record)
	}
	if c.atrack == nil {
		return true // audio the muxer was started without stays out
	}
	if fr.Config == c.acfg || fr.Config == nil {
		return true
	}
	return fr.Config.Codec == c.acfg.Codec && string(fr.Config.Record) == string(c.acfg.Record)
}

// collect keeps frames until every track's configuration is known, then starts a muxer.
func (f *feeder) collect(fr *frames.Frame) {
	if fr.Config == nil {
		return
	}
	if fr.Video() {
		if f.vcfg == nil {
			if !fr.Key {
				return // a muxer starts at a keyframe
			}
			f.vcfg = fr.Config
		}
	} else if f.acfg == nil {
		f.acfg = fr.Config
	}
	if len(f.pending) == 0 {
		f.firstPending = time.Now()
	}
	if len(f.pending) >= maxPending {
		f.pending = f.pending[:0]
		f.vcfg, f.acfg = nil, nil
		return
	}
	f.pending = append(f.pending, fr)
	if (!f.needVideo || f.vcfg != nil) && (!f.needAudio || f.acfg != nil) {
		f.startMuxer()
	}
}

// chooseVariant picks the gohlslib variant for the configured one and the codecs: MPEG-TS takes only
// H.264 and AAC.
func chooseVariant(v Variant, video, audio frames.Codec) gohlslib.MuxerVariant {
	switch v {
	case VariantLowLatency:
		return gohlslib.MuxerVariantLowLatency
	case VariantFMP4:
		return gohlslib.MuxerVariantFMP4
	}
	if (video == 0 || video == frames.CodecH264) && (audio == 0 || audio == frames.CodecAAC) {
		return gohlslib.MuxerVariantMPEGTS
	}
	return gohlslib.MuxerVariantFMP4
}

// videoTrack makes the gohlslib track of a video configuration.
func videoTrack(c *frames.CodecConfig) (*gohlslib.Track, error) {
	first := func(b [][]byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b[0]
	}
	switch c.Codec {
	case frames.CodecH264:
		return &gohlslib.Track{Codec: &codecs.H264{SPS: first(c.SPS), PPS: first(c.PPS)}, ClockRate: 90000}, nil
	case frames.CodecH265:
		return &gohlslib.Track{Codec: &codecs.H265{VPS: first(c.VPS), SPS: first(c.SPS), PPS: first(c.PPS)}, ClockRate: 90000}, nil
	case frames.CodecAV1:
		if len(c.Record) < 4 {
			return nil, fmt.Errorf("%w: AV1 configuration record of %d bytes", ErrMalformed, len(c.Record))
		}
		var bs av1.Bitstream
		if err := bs.Unmarshal(c.Record[4:]); err != nil || len(bs) == 0 {
			return nil, fmt.Errorf("%w: AV1 sequence header: %v", ErrMalformed, err)
		}
		return &gohlslib.Track{Codec: &codecs.AV1{SequenceHeader: bs[0]}, ClockRate: 90000}, nil
	}
	return nil, fmt.Errorf("%w: video codec %v", ErrNoMedia, c.Codec)
}

// audioTrack makes the gohlslib track of an audio configuration.
func audioTrack(c *frames.CodecConfig) (*gohlslib.Track, error) {
	switch c.Codec {
	case frames.CodecAAC:
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(c.Record); err != nil {
			return nil, fmt.Errorf("%w: AudioSpecificConfig: %v", ErrMalformed, err)
		}
		return &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: asc}, ClockRate: asc.SampleRate}, nil
	case frames.CodecOpus:
		ch := c.Channels
		if ch <= 0 {
			ch = 2
		}
		return &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: ch}, ClockRate: 48000}, nil
	}
	return nil, fmt.Errorf("%w: audio codec %v", ErrNoMedia, c.Codec)
}

// startMuxer makes a muxer for the collected configurations and writes the pending frames.
func (f *feeder) startMuxer() {
	cfg := f.st.srv.cfg
	m := &muxer{ready: make(chan struct{})}
	var vc, ac frames.Codec
	var tracks []*gohlslib.Track
	if f.vcfg != nil {
		t, err := videoTrack(f.vcfg)
		if err != nil {
			f.fail(err)
			return
		}
		m.vtrack, m.vcfg, vc = t, f.vcfg, f.vcfg.Codec
		tracks = append(tracks, t)
	}
	if f.acfg != nil && (f.needAudio || f.vcfg == nil) {
		t, err := audioTrack(f.acfg)
		if err != nil {
			f.fail(err)
			return
		}
		m.atrack, m.acfg, ac = t, f.acfg, f.acfg.Codec
		tracks = append(tracks, t)
	}
	if len(tracks) == 0 {
		return
	}
	m.variant = chooseVariant(cfg.Variant, vc, ac)
	key := f.st.key
	log := f.st.log
	m.m = &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            m.variant,
		SegmentCount:       cfg.Window,
		SegmentMinDuration: cfg.Segment,
		PartMinDuration:    cfg.Part,
		OnEncodeError: func(err error) {
			log.Debug("hls encode", "err", err)
		},
	}
	if err := m.m.Start(); err != nil {
		f.fail(fmt.Errorf("hls %s: start muxer: %w", key, err))
		return
	}
	m.wg.Add(1)
	go m.probe()
	f.cur = m
	f.st.setMuxer(m, false)
	log.Info("hls muxer ready for frames", "variant", variantName(m.variant), "video", vc.String(), "audio", ac.String())
	pending := f.pending
	f.pending = nil
	for _, fr := range pending {
		f.write(fr)
	}
}

func (f *feeder) fail(err error) {
	if !f.failedOnce {
		f.st.log.Warn("hls muxer not started", "err", err)
		f.failedOnce = true
	}
	f.pending = f.pending[:0]
	f.vcfg, f.acfg = nil, nil
}

func variantName(v gohlslib.MuxerVariant) string {
	switch v {
	case gohlslib.MuxerVariantMPEGTS:
		return "mpegts"
	case gohlslib.MuxerVariantFMP4:
		return "fmp4"
	case gohlslib.MuxerVariantLowLatency:
		return "lowlatency"
	}
	return "unknown"
}

// ticks converts d to a clock of rate Hz.
func ticks(d time.Duration, rate int) int64 {
	sec := int64(d / time.Second)
	rem := int64(d % time.Second)
	return sec*int64(rate) + rem*int64(rate)/int64(time.Second)
}

// write feeds one frame to the current muxer.
func (f *feeder) write(fr *frames.Frame) {
	m := f.cur
	video := fr.Video()
	if video && m.vtrack == nil || !video && m.atrack == nil {
		return
	}
	t, ok := f.tl.place(fr.TrackID, video, fr.DTS, fr.PTS)
	if !ok {
		return
	}
	if !f.based {
		f.based = true
		f.ntpBase = time.Now().Add(-t)
	}
	ts := t + startOffset
	ntp := f.ntpBase.Add(t)
	var err error
	switch fr.Codec {
	case frames.CodecH264, frames.CodecH265:
		f.nalus = f.nalus[:0]
		fr.NALUs(func(n []byte) {
			if len(n) > 0 {
				f.nalus = append(f.nalus, n)
			}
		})
		if len(f.nalus) == 0 {
			return
		}
		au := make([][]byte, len(f.nalus)) // gohlslib may keep the slice
		copy(au, f.nalus)
		if fr.Codec == frames.CodecH264 {
			err = m.m.WriteH264(m.vtrack, ntp, ticks(ts, 90000), au)
		} else {
			err = m.m.WriteH265(m.vtrack, ntp, ticks(ts, 90000), au)
		}
	case frames.CodecAV1:
		var bs av1.Bitstream
		if err = bs.Unmarshal(fr.Data); err == nil {
			err = m.m.WriteAV1(m.vtrack, ntp, ticks(ts, 90000), bs)
		}
	case frames.CodecAAC:
		err = m.m.WriteMPEG4Audio(m.atrack, ntp, ticks(ts, m.atrack.ClockRate), [][]byte{fr.Data})
	case frames.CodecOpus:
		err = m.m.WriteOpus(m.atrack, ntp, ticks(ts, 48000), [][]byte{fr.Data})
	}
	if err != nil {
		f.st.log.Debug("hls write", "track_id", fr.TrackID, "err", err)
	}
	if video {
		f.keyframes(fr.Key, t)
	}
}

// keyframes asks the publisher for a keyframe once the current segment is long enough to be cut, so
// segments keep their length with publishers that send keyframes only when asked (WebRTC); the hub
// forwards at most one request per 500 ms.
func (f *feeder) keyframes(key bool, dts time.Duration) {
	seg := f.st.srv.cfg.KeyframeInterval
	if !f.segStarted || key && dts-f.segStart >= f.st.srv.cfg.Segment {
		f.segStart, f.segStarted = dts, true
		return
	}
	if dts-f.segStart >= seg && time.Since(f.lastKFReq) >= 500*time.Millisecond {
		f.lastKFReq = time.Now()
		f.st.src.RequestKeyframe()
	}
}
