package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// Track IDs and codecs (DESIGN.md).
const (
	trackVideo = "video"
	// trackVideoWebRTC is the H.264 variant for WebRTC viewers with webrtc.bframes drop: B slices
	// dropped, SPS rewritten to announce no reordering (sfu.TrackInfo.Variant "webrtc").
	trackVideoWebRTC = "video-webrtc"
	variantWebRTC    = "webrtc"
	trackAAC         = "aac"
	trackOpus        = "audio"

	mimeH264 = "video/H264"
	mimeH265 = "video/H265"
	mimeAV1  = "video/AV1"
	mimeOpus = "audio/opus"
	mimeAAC  = "audio/mpeg4-generic"

	// Bounds of what is held while waiting for the second sequence header.
	maxPendingTags  = 256
	maxPendingBytes = 8 << 20
)

// RTP timestamps: RTP time 0 is RTMP time 0 on every track (video 90 kHz, AAC at its sample rate, Opus
// 48 kHz), so the same RTMP instant maps to consistent RTP timestamps on all tracks.

type pendingTag struct {
	video bool
	ts    uint32
	body  []byte
}

// ingest turns one publisher's tags into RTP on its publication. All methods but close run on the
// connection goroutine; close may also run there (OnClose, deleteStream).
type ingest struct {
	ss       *session
	log      *slog.Logger
	key      string
	streamID uint32

	lastMedia atomic.Int64 // unix ns of the last media tag (read by the watchdog)

	// What onMetaData announced.
	metaSeen, metaVideo, metaAudio bool

	// Sequence headers.
	vcodec    flv.VideoCodec
	avc       *codec.AVCConfig
	hevc      *codec.HEVCConfig
	av1       *codec.AV1Config
	lengthLen int
	vraw      []byte // last video sequence header body, to spot repeats
	acodec    flv.AudioCodec
	asc       *codec.AudioSpecificConfig
	ascRaw    []byte
	opusHead  *codec.OpusHead
	firstHdr  time.Time

	pending      []pendingTag
	pendingBytes int

	pub       *sfu.Publication
	vtrack    *sfu.Track
	wtrack    *sfu.Track // the WebRTC variant (nil without one)
	aacTrack  *sfu.Track
	opusTrack *sfu.Track
	stopTrans func()
	h264      *packetize.H264
	h264w     *packetize.H264 // the WebRTC variant's packetizer (B-frames dropped)
	h265      *packetize.H265
	av1p      *packetize.AV1
	aacp      *packetize.AAC
	opusp     *packetize.Opus
	vdetails  sfu.Details

	aacNext    uint64 // next AAC RTP timestamp (samples)
	aacStarted bool

	warned map[string]bool
	closed bool

	vtag flv.VideoTag
	atag flv.AudioTag
}

func newIngest(ss *session, key string, streamID uint32) *ingest {
	in := &ingest{ss: ss, log: ss.log, key: key, streamID: streamID, warned: map[string]bool{}}
	in.lastMedia.Store(time.Now().UnixNano())
	return in
}

// warnOnce logs a problem once per publication.
func (in *ingest) warnOnce(what string, args ...any) {
	if in.warned[what] {
		return
	}
	in.warned[what] = true
	in.log.Warn(what, args...)
}

// metadata reads onMetaData's videocodecid / audiocodecid keys: only their presence matters.
func (in *ingest) metadata(amf []byte) {
	if !bytes.Contains(amf, []byte("onMetaData")) {
		return
	}
	in.metaSeen = true
	in.metaVideo = bytes.Contains(amf, []byte("\x00\x0cvideocodecid"))
	in.metaAudio = bytes.Contains(amf, []byte("\x00\x0caudiocodecid"))
	in.log.Debug("rtmp metadata", "video", in.metaVideo, "audio", in.metaAudio)
}

func (in *ingest) video(ts uint32, body []byte) error {
	if in.closed {
		return nil
	}
	in.lastMedia.Store(time.Now().UnixNano())
	t := &in.vtag
	if err := flv.ParseVideoTag(body, t); err != nil {
		if errors.Is(err, flv.ErrUnsupported) {
			in.warnOnce("rtmp video tag ignored", "err", err)
			return in.maybePublish()
		}
		return fmt.Errorf("%w: %w", ErrBadMedia, err)
	}
	if t.FrameType == flv.FrameCommand {
		return nil
	}
	switch t.PacketType {
	case flv.VideoSequenceStart:
		if err := in.videoHeader(t); err != nil {
			return err
		}
		return in.maybePublish()
	case flv.VideoCodedFrames, flv.VideoCodedFramesX:
		if in.vcodec == 0 || t.Codec != in.vcodec || len(t.Data) == 0 {
			return in.maybePublish()
		}
		if in.pub == nil {
			in.hold(true, ts, body)
			return in.maybePublish()
		}
		return in.writeVideo(t, ts)
	}
	return nil
}

// videoHeader takes a video sequence header (first one, or a change mid-stream).
func (in *ingest) videoHeader(t *flv.VideoTag) error {
	if bytes.Equal(t.Data, in.vraw) && in.vcodec == t.Codec {
		return nil
	}
	if in.pub != nil && in.vcodec != 0 && t.Codec != in.vcodec {
		in.warnOnce("rtmp video codec change mid-stream is not supported: ignoring the new codec", "from", in.vcodec.String(), "to", t.Codec.String())
		return nil
	}
	var d sfu.Details
	switch t.Codec {
	case flv.VideoAVC:
		c, err := codec.ParseAVCConfig(t.Data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		info, err := codec.ParseAVCSPS(c.SPS[0])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		in.avc, in.lengthLen = c, c.NALLengthSize
		d = sfu.Details{Profile: info.Profile, Level: info.Level, Width: info.Width, Height: info.Height}
		if in.h264 != nil {
			in.h264.SetParameterSets(c.SPS, c.PPS)
		}
		if in.h264w != nil {
			in.h264w.SetParameterSets(c.SPS, c.PPS)
		}
	case flv.VideoHEVC:
		c, err := codec.ParseHEVCConfig(t.Data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		if info, err := codec.ParseHEVCSPS(c.SPS[0]); err == nil {
			d = sfu.Details{Profile: info.Profile, Level: info.Level, Width: info.Width, Height: info.Height}
		}
		in.hevc, in.lengthLen = c, c.NALLengthSize
		if in.h265 != nil {
			in.h265.SetParameterSets(c.VPS, c.SPS, c.PPS)
		}
	case flv.VideoAV1:
		c, err := codec.ParseAV1Config(t.Data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		in.av1 = c
		d = sfu.Details{Profile: c.ProfileName(), Level: c.LevelName()}
		if in.av1p != nil {
			in.av1p.SetSequenceHeader(c.ConfigOBUs)
		}
	default:
		in.warnOnce("rtmp video codec not supported: video ignored", "codec", t.Codec.String())
		return nil
	}
	changed := in.vraw != nil
	in.vcodec = t.Codec
	in.vraw = append(in.vraw[:0], t.Data...)
	if in.firstHdr.IsZero() {
		in.firstHdr = time.Now()
	}
	d.BFrames = in.vdetails.BFrames
	in.vdetails = d
	if in.vtrack != nil {
		in.vtrack.SetDetails(d)
	}
	if in.wtrack != nil {
		in.wtrack.SetDetails(variantDetails(d))
	}
	if changed {
		in.log.Info("rtmp video sequence header changed", "codec", t.Codec.String(), "width", d.Width, "height", d.Height, "profile", d.Profile)
	}
	return nil
}

func (in *ingest) audio(ts uint32, body []byte) error {
	if in.closed {
		return nil
	}
	in.lastMedia.Store(time.Now().UnixNano())
	t := &in.atag
	if err := flv.ParseAudioTag(body, t); err != nil {
		if errors.Is(err, flv.ErrUnsupported) {
			in.warnOnce("rtmp audio tag ignored", "err", err)
			return in.maybePublish()
		}
		return fmt.Errorf("%w: %w", ErrBadMedia, err)
	}
	switch t.PacketType {
	case flv.AudioSequenceStart:
		if err := in.audioHeader(t); err != nil {
			return err
		}
		return in.maybePublish()
	case flv.AudioCodedFrames:
		if t.Codec == flv.AudioOpus && in.acodec == 0 && in.pub == nil {
			// Opus without an OpusHead: assume stereo.
			in.acodec = flv.AudioOpus
			in.opusHead = &codec.OpusHead{Channels: 2, InputRate: 48000}
			in.markHeader()
		}
		if in.acodec == 0 || t.Codec != in.acodec || len(t.Data) == 0 {
			return in.maybePublish()
		}
		if in.pub == nil {
			in.hold(false, ts, body)
			return in.maybePublish()
		}
		return in.writeAudio(t, ts)
	}
	return nil
}

func (in *ingest) markHeader() {
	if in.firstHdr.IsZero() {
		in.firstHdr = time.Now()
	}
}

func (in *ingest) audioHeader(t *flv.AudioTag) error {
	if in.pub != nil {
		if t.Codec == flv.AudioAAC && !bytes.Equal(t.Data, in.ascRaw) {
			in.warnOnce("rtmp AAC configuration change mid-stream is not supported: ignored")
		}
		return nil
	}
	switch t.Codec {
	case flv.AudioAAC:
		asc, err := codec.ParseAudioSpecificConfig(t.Data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMedia, err)
		}
		in.asc, in.ascRaw = asc, append([]byte(nil), t.Data...)
	case flv.AudioOpus:
		h, err := codec.ParseOpusHead(t.Data)
		if err != nil {
			in.warnOnce("rtmp Opus sequence start without a usable OpusHead: assuming stereo", "err", err)
			h = &codec.OpusHead{Channels: 2, InputRate: 48000}
		}
		in.opusHead = h
	}
	in.acodec = t.Codec
	in.markHeader()
	return nil
}

// hold keeps a tag (copied) until the publication starts.
func (in *ingest) hold(video bool, ts uint32, body []byte) {
	if len(in.pending) >= maxPendingTags || in.pendingBytes+len(body) > maxPendingBytes {
		return
	}
	in.pending = append(in.pending, pendingTag{video: video, ts: ts, body: append([]byte(nil), body...)})
	in.pendingBytes += len(body)
}

// maybePublish starts the publication once the expected sequence headers arrived, or HeaderWait after
// the first one.
func (in *ingest) maybePublish() error {
	if in.pub != nil || in.closed {
		return nil
	}
	haveV, haveA := in.vcodec != 0, in.acodec != 0
	if !haveV && !haveA {
		return nil
	}
	wantV, wantA := true, true
	if in.metaSeen {
		wantV, wantA = in.metaVideo, in.metaAudio
	}
	if !((haveV || !wantV) && (haveA || !wantA)) && time.Since(in.firstHdr) < in.ss.srv.cfg.HeaderWait &&
		len(in.pending) < maxPendingTags {
		return nil
	}
	return in.publish()
}

func (in *ingest) tracks() []sfu.TrackInfo {
	var tracks []sfu.TrackInfo
	switch in.vcodec {
	case flv.VideoAVC:
		fmtp := "packetization-mode=1;profile-level-id=" + profileLevelID(in.avc.SPS[0])
		c := sfu.Codec{MimeType: mimeH264, ClockRate: 90000, Fmtp: fmtp}
		if in.ss.srv.cfg.BFrames == "drop" {
			// WebRTC viewers take the variant (declared first); FLV/HLS and relays the original.
			tracks = append(tracks, sfu.TrackInfo{ID: trackVideoWebRTC, Kind: sfu.KindVideo, Codec: c, Variant: variantWebRTC})
		}
		tracks = append(tracks, sfu.TrackInfo{ID: trackVideo, Kind: sfu.KindVideo, Codec: c})
	case flv.VideoHEVC:
		fmtp := fmt.Sprintf("profile-id=%d;tier-flag=%d;level-id=%d;tx-mode=SRST", in.hevc.Profile, in.hevc.Tier, in.hevc.Level)
		tracks = append(tracks, sfu.TrackInfo{ID: trackVideo, Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: mimeH265, ClockRate: 90000, Fmtp: fmtp}})
	case flv.VideoAV1:
		fmtp := fmt.Sprintf("level-idx=%d;profile=%d;tier=%d", in.av1.Level, in.av1.Profile, in.av1.Tier)
		tracks = append(tracks, sfu.TrackInfo{ID: trackVideo, Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: mimeAV1, ClockRate: 90000, Fmtp: fmtp}})
	}
	switch in.acodec {
	case flv.AudioAAC:
		tracks = append(tracks, sfu.TrackInfo{ID: trackAAC, Kind: sfu.KindAudio, Codec: sfu.Codec{
			MimeType: mimeAAC, ClockRate: uint32(in.asc.SampleRate), Channels: uint16(max(in.asc.Channels, 1)), Fmtp: packetize.AACFmtp(in.ascRaw)}})
		if in.ss.srv.deps.Transcode != nil {
			tracks = append(tracks, opusTrackInfo(in.asc.Channels >= 2))
		}
	case flv.AudioOpus:
		tracks = append(tracks, opusTrackInfo(in.opusHead.Channels >= 2))
	}
	return tracks
}

// profileLevelID is the SDP profile-level-id of an SPS: the level from the SPS, the profile_idc and
// constraint flags normalized to the forms WebRTC stacks list (42e0 Constrained Baseline, 4200 Baseline,
// 4d00 Main, 6400 High...), since some (pion) match the profile bytes exactly.
func profileLevelID(sps []byte) string {
	profile, iop, level := sps[1], sps[2], sps[3]
	switch {
	case profile == 66 && iop&0x40 != 0:
		iop = 0xe0
	case profile == 100 && iop&0x0c == 0x0c:
		iop = 0x0c // Constrained High
	default:
		iop = 0
	}
	return fmt.Sprintf("%02x%02x%02x", profile, iop, level)
}

func opusTrackInfo(stereo bool) sfu.TrackInfo {
	fmtp := "minptime=10;useinbandfec=1"
	if stereo {
		fmtp += ";stereo=1"
	}
	return sfu.TrackInfo{ID: trackOpus, Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: mimeOpus, ClockRate: 48000, Channels: 2, Fmtp: fmtp}}
}

func packetizerConfig(pt uint8) packetize.Config {
	return packetize.Config{SSRC: rand.Uint32(), PayloadType: pt, FirstSeq: uint16(rand.Uint32())}
}

func (in *ingest) publish() error {
	tracks := in.tracks()
	if len(tracks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(in.ss.srv.ctx, 5*time.Second)
	pub, err := in.ss.srv.deps.Hub.Publish(ctx, in.key, in.ss, tracks)
	cancel()
	if err != nil {
		reason := "publish failed: " + err.Error()
		if errors.Is(err, sfu.ErrPublisherExists) {
			reason = "stream " + in.key + " is already being published"
		}
		in.pending = nil
		in.closed = true
		_ = in.ss.refuse(in.streamID, 0, reason, err)
		return fmt.Errorf("rtmp publish %s: %w", in.key, err)
	}
	in.pub = pub
	for _, ti := range tracks {
		tr := pub.Track(ti.ID)
		switch ti.ID {
		case trackVideo:
			in.vtrack = tr
			switch in.vcodec {
			case flv.VideoAVC:
				in.h264 = packetize.NewH264(tr, packetizerConfig(96))
				in.h264.SetParameterSets(in.avc.SPS, in.avc.PPS)
			case flv.VideoHEVC:
				in.h265 = packetize.NewH265(tr, packetizerConfig(98))
				in.h265.SetParameterSets(in.hevc.VPS, in.hevc.SPS, in.hevc.PPS)
			case flv.VideoAV1:
				in.av1p = packetize.NewAV1(tr, packetizerConfig(99))
				in.av1p.SetSequenceHeader(in.av1.ConfigOBUs)
			}
			tr.SetDetails(in.vdetails)
		case trackVideoWebRTC:
			// Packetized with every frame, like the original, so its GOP cache lets a first WebRTC
			// viewer start at once (an RTMP source cannot be asked for a keyframe).
			in.wtrack = tr
			in.h264w = packetize.NewH264(tr, packetizerConfig(96))
			in.h264w.DropBFrames = true
			in.h264w.SetParameterSets(in.avc.SPS, in.avc.PPS)
			tr.SetDetails(variantDetails(in.vdetails))
		case trackAAC:
			in.aacTrack = tr
			in.aacp = packetize.NewAAC(tr, packetizerConfig(97))
			tr.SetDetails(sfu.Details{Profile: in.asc.Profile(), SampleRate: in.asc.SampleRate, Channels: in.asc.Channels})
		case trackOpus:
			in.opusTrack = tr
			if in.acodec == flv.AudioOpus {
				in.opusp = packetize.NewOpus(tr, packetizerConfig(111))
				tr.SetDetails(sfu.Details{Profile: "Opus", SampleRate: 48000, Channels: in.opusHead.Channels})
			}
		}
	}
	attrs := []any{"tracks", len(tracks)}
	for _, ti := range tracks {
		attrs = append(attrs, ti.ID, ti.Codec.MimeType)
	}
	if in.vtrack != nil {
		attrs = append(attrs, "width", in.vdetails.Width, "height", in.vdetails.Height, "profile", in.vdetails.Profile)
	}
	in.log.Info("rtmp publication started", attrs...)
	if in.aacTrack != nil && in.opusTrack != nil && in.ss.srv.deps.Transcode != nil {
		in.stopTrans = in.ss.srv.deps.Transcode(pub)
	}
	pending := in.pending
	in.pending, in.pendingBytes = nil, 0
	for _, p := range pending {
		var err error
		if p.video {
			err = in.video(p.ts, p.body)
		} else {
			err = in.audio(p.ts, p.body)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeVideo packetizes one coded frame: RTP time = (DTS + composition time) x 90.
func (in *ingest) writeVideo(t *flv.VideoTag, ts uint32) error {
	rtpTS := uint32(int64(ts)+int64(t.CompositionTime)) * 90
	var err error
	switch in.vcodec {
	case flv.VideoAVC:
		if !in.vdetails.BFrames {
			in.detectBFrames(t)
		}
		err = in.h264.WriteAVCC(t.Data, in.lengthLen, rtpTS)
		if in.h264w != nil && err == nil {
			err = in.h264w.WriteAVCC(t.Data, in.lengthLen, rtpTS)
			in.h264w.ParamsChanged = false
		}
		if in.h264.ParamsChanged {
			in.h264.ParamsChanged = false
			in.inbandParams(in.h264)
		}
	case flv.VideoHEVC:
		if !in.vdetails.BFrames && t.CompositionTime != 0 {
			in.reportBFrames("composition time")
		}
		err = in.h265.WriteAVCC(t.Data, in.lengthLen, rtpTS)
	case flv.VideoAV1:
		err = in.av1p.WriteTemporalUnit(t.Data, rtpTS, t.Keyframe())
	}
	if err != nil {
		if errors.Is(err, sfu.ErrClosed) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrBadMedia, err)
	}
	return nil
}

// inbandParams updates the details after in-band SPS/PPS replaced the sequence header's.
func (in *ingest) inbandParams(p *packetize.H264) {
	sps, _ := p.ParameterSets()
	info, err := codec.ParseAVCSPS(sps[0])
	if err != nil {
		return
	}
	d := in.vdetails
	d.Profile, d.Level, d.Width, d.Height = info.Profile, info.Level, info.Width, info.Height
	if d != in.vdetails {
		in.vdetails = d
		in.vtrack.SetDetails(d)
		if in.wtrack != nil {
			in.wtrack.SetDetails(variantDetails(d))
		}
		in.log.Info("rtmp in-band SPS changed", "width", d.Width, "height", d.Height, "profile", d.Profile)
	}
}

// variantDetails are the details of the WebRTC variant of a track with details d: no B-frames.
func variantDetails(d sfu.Details) sfu.Details {
	d.BFrames = false
	return d
}

// detectBFrames looks at the first slice of an H.264 access unit.
func (in *ingest) detectBFrames(t *flv.VideoTag) {
	b := t.Data
	for len(b) > in.lengthLen {
		n := 0
		for i := range in.lengthLen {
			n = n<<8 | int(b[i])
		}
		b = b[in.lengthLen:]
		if n <= 0 || n > len(b) {
			return
		}
		if st, ok := codec.AVCSliceType(b[:n]); ok {
			if st == codec.SliceB {
				in.reportBFrames("slice_type B")
			}
			return
		}
		b = b[n:]
	}
}

func (in *ingest) reportBFrames(how string) {
	in.vdetails.BFrames = true
	if in.vtrack != nil {
		in.vtrack.SetDetails(in.vdetails)
	}
	in.log.Info("rtmp stream has B-frames", "detected_by", how, "bframes", in.ss.srv.cfg.BFrames)
}

// writeAudio packetizes one audio frame. AAC timestamps stay continuous (1024 samples per frame) and
// re-sync to the RTMP time only on a gap of more than one frame.
func (in *ingest) writeAudio(t *flv.AudioTag, ts uint32) error {
	var err error
	switch in.acodec {
	case flv.AudioAAC:
		rate := uint64(in.asc.SampleRate)
		want := uint64(ts) * rate / 1000
		if !in.aacStarted || absDiff(want, in.aacNext) > 1024 {
			in.aacNext = want
			in.aacStarted = true
		}
		err = in.aacp.WriteAU(t.Data, uint32(in.aacNext))
		in.aacNext += 1024
	case flv.AudioOpus:
		err = in.opusp.WriteFrame(t.Data, ts*48)
	}
	if err != nil && !errors.Is(err, sfu.ErrClosed) {
		// A bad audio frame is dropped (it cannot desync anything).
		in.warnOnce("rtmp audio frame dropped", "err", err)
		return nil
	}
	return err
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// close ends the publication.
func (in *ingest) close(why string) {
	if in.closed && in.pub == nil {
		return
	}
	in.closed = true
	if in.stopTrans != nil {
		in.stopTrans()
		in.stopTrans = nil
	}
	if in.pub != nil {
		in.pub.Close()
		in.pub = nil
		in.log.Info("rtmp publication ended", "why", why)
	}
}
