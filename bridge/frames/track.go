package frames

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// codecOf maps an sfu codec to a frame codec (0 if unsupported).
func codecOf(c sfu.Codec) Codec {
	switch strings.ToLower(c.MimeType) {
	case "video/h264":
		return CodecH264
	case "video/h265":
		return CodecH265
	case "video/av1":
		return CodecAV1
	case "audio/mpeg4-generic":
		return CodecAAC
	case "audio/opus":
		return CodecOpus
	}
	return 0
}

// trackState is one track's depacketizer and timeline. Only the source's loop goroutine touches it.
type trackState struct {
	src   *Source
	t     *sfu.Track
	id    string
	codec Codec
	clock int64
	dep   depacketizer
	cfg   *CodecConfig

	sps, pps, vps []byte
	dts264        h264.DTSExtractor
	dts265        h265.DTSExtractor
	needKey       bool

	// RTP continuity.
	seen   bool
	ssrc   uint32
	gen    uint32
	lastSN uint16

	// Timeline: ext is the unwrapped RTP timestamp; output time = dur(ext) + offset.
	tsInit   bool
	lastTS   uint32
	ext      int64
	anchored bool
	offset   time.Duration
	lastPTS  time.Duration
	lastDTS  time.Duration
	emitted  bool

	replay     []inPkt
	replaying  bool // the packets being processed are the hub's GOP replay
	squeeze    float64
	squeezeEnd time.Duration
	units      []unit
	nalus      [][]byte

	frames, dropped, malformed atomic.Uint64
}

func newTrackState(s *Source, t *sfu.Track, c Codec) (*trackState, error) {
	info := t.Info()
	tr := &trackState{src: s, t: t, id: info.ID, codec: c, clock: int64(info.Codec.ClockRate)}
	if tr.clock <= 0 {
		tr.clock = 90000
		if c == CodecOpus {
			tr.clock = 48000
		}
	}
	switch c {
	case CodecH264:
		tr.dep = newNALDepack(false)
		tr.dts264.Initialize()
	case CodecH265:
		tr.dep = newNALDepack(true)
		tr.dts265.Initialize()
	case CodecAV1:
		tr.dep = &av1Depack{}
	case CodecAAC:
		asc, err := packetize.ParseAACFmtp(info.Codec.Fmtp)
		if err != nil {
			return nil, err
		}
		conf, err := codec.ParseAudioSpecificConfig(asc)
		if err != nil {
			return nil, err
		}
		tr.cfg = &CodecConfig{Codec: c, Record: asc, SampleRate: conf.SampleRate, Channels: conf.Channels}
		tr.dep = newAACDepack()
	case CodecOpus:
		ch := int(info.Codec.Channels)
		if ch < 1 || ch > 2 {
			ch = 2
		}
		tr.cfg = &CodecConfig{Codec: c, Record: codec.BuildOpusHead(ch, 48000), SampleRate: 48000, Channels: ch}
		tr.dep = opusDepack{}
	default:
		return nil, ErrUnsupportedCodec
	}
	tr.needKey = c.Video()
	return tr, nil
}

// dur converts a tick count of the track's clock to a duration (without overflow).
func (tr *trackState) dur(ext int64) time.Duration {
	return time.Duration(ext/tr.clock)*time.Second + time.Duration(ext%tr.clock*int64(time.Second)/tr.clock)
}

func (tr *trackState) unwrap(ts uint32) int64 {
	if !tr.tsInit {
		tr.tsInit, tr.lastTS, tr.ext = true, ts, int64(ts)
		return tr.ext
	}
	tr.ext += int64(int32(ts - tr.lastTS))
	tr.lastTS = ts
	return tr.ext
}

// newSource forgets the RTP state: a new publisher (or relay) feeds the track.
func (tr *trackState) newSource() {
	tr.dep.reset()
	tr.tsInit, tr.anchored, tr.seen = false, false, false
	tr.needKey = tr.codec.Video()
	tr.dts264 = h264.DTSExtractor{}
	tr.dts264.Initialize()
	tr.dts265 = h265.DTSExtractor{}
	tr.dts265.Initialize()
	for _, p := range tr.replay {
		tr.src.putBuf(p.buf)
	}
	tr.replay = tr.replay[:0]
}

// anchor maps ext to the output time at (arrival time since the source started), or, for sources whose
// tracks share a time base (RTMP), to the offset the first anchored track of the publication chose.
func (tr *trackState) anchor(ext int64, at time.Duration) {
	tr.offset = tr.src.anchorOffset(tr, ext, at)
	if tr.emitted {
		if min := tr.lastDTS + time.Millisecond; tr.dur(ext)+tr.offset < min {
			tr.offset = min - tr.dur(ext)
		}
	}
	tr.anchored = true
}

// maxJump is the largest timestamp step taken as continuous; more is a new timeline.
const maxJump = 10 * time.Second

// process takes one live packet (in sequence-number order as sent).
func (tr *trackState) process(p *inPkt) {
	gen := tr.t.Generation()
	if tr.seen && (p.ssrc != tr.ssrc || gen != tr.gen) {
		tr.newSource()
	}
	lost := false
	if tr.seen {
		d := p.sn - tr.lastSN
		if d == 0 || d >= 0x8000 {
			return // duplicate or late
		}
		lost = d != 1
	}
	tr.seen, tr.ssrc, tr.gen, tr.lastSN = true, p.ssrc, gen, p.sn
	ext := tr.unwrap(p.ts)
	if !tr.anchored {
		tr.anchor(ext, p.at)
	} else if len(p.payload()) > 0 && tr.emitted {
		if d := tr.dur(ext) + tr.offset - tr.lastPTS; d > maxJump || d < -maxJump {
			tr.dep.reset()
			tr.needKey = tr.codec.Video()
			tr.anchor(ext, p.at)
		}
	}
	if lost && tr.codec.Video() {
		tr.needKey = true
		tr.src.requestKeyframe(tr)
	}
	tr.units = tr.dep.push(p.payload(), p.ts, p.marker, lost, tr.units[:0])
	for i := range tr.units {
		u := &tr.units[i]
		tr.emit(u, ext-int64(int32(p.ts-u.ts)))
	}
}

// emit turns a reassembled unit into a Frame and hands it to the source.
func (tr *trackState) emit(u *unit, ext int64) {
	pts := tr.dur(ext) + tr.offset
	f := &Frame{TrackID: tr.id, Codec: tr.codec, PTS: pts, DTS: pts, Key: !tr.codec.Video()}
	f.Data = append(make([]byte, 0, len(u.data)), u.data...)
	switch tr.codec {
	case CodecH264, CodecH265:
		if !tr.analyzeNAL(f) {
			tr.dropped.Add(1)
			return
		}
		dts, err := tr.extractDTS(ext)
		if err != nil {
			tr.malformed.Add(1)
			tr.needKey = true
			tr.dts264 = h264.DTSExtractor{}
			tr.dts264.Initialize()
			tr.dts265 = h265.DTSExtractor{}
			tr.dts265.Initialize()
			tr.src.requestKeyframe(tr)
			return
		}
		f.DTS = tr.dur(dts) + tr.offset
	case CodecAV1:
		if !tr.analyzeAV1(f, u.first) {
			tr.dropped.Add(1)
			return
		}
	}
	if tr.replaying && tr.squeeze < 1 {
		f.PTS = tr.squeezeEnd - time.Duration(float64(tr.squeezeEnd-f.PTS)*tr.squeeze)
		f.DTS = tr.squeezeEnd - time.Duration(float64(tr.squeezeEnd-f.DTS)*tr.squeeze)
	}
	if tr.emitted && f.DTS < tr.lastDTS {
		f.DTS = tr.lastDTS // never backwards (a re-anchored audio track)
		if f.PTS < f.DTS {
			f.PTS = f.DTS
		}
	}
	f.Config = tr.cfg
	if f.Config == nil {
		tr.dropped.Add(1)
		return
	}
	tr.emitted, tr.lastDTS, tr.lastPTS = true, f.DTS, f.PTS
	tr.frames.Add(1)
	tr.src.dispatch(tr, f)
}

// analyzeNAL finds parameter sets and random access in an H.264/H.265 unit; it reports whether the frame
// is to be emitted (false while waiting for a keyframe).
func (tr *trackState) analyzeNAL(f *Frame) bool {
	hevc := tr.codec == CodecH265
	changed := false
	tr.nalus = tr.nalus[:0]
	b := f.Data
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-4 || n == 0 {
			return false
		}
		nalu := b[4 : 4+n]
		b = b[4+n:]
		tr.nalus = append(tr.nalus, nalu)
		if hevc {
			switch t := codec.H265NALType(nalu); {
			case t == codec.H265NALVPS:
				changed = setParam(&tr.vps, nalu) || changed
			case t == codec.H265NALSPS:
				changed = setParam(&tr.sps, nalu) || changed
			case t == codec.H265NALPPS:
				changed = setParam(&tr.pps, nalu) || changed
			case codec.HEVCIsIRAP(nalu):
				f.Key = true
			}
			continue
		}
		switch nalu[0] & 0x1f {
		case 5:
			f.Key = true
		case 7:
			changed = setParam(&tr.sps, nalu) || changed
		case 8:
			changed = setParam(&tr.pps, nalu) || changed
		}
	}
	if changed {
		tr.buildNALConfig()
	}
	if tr.needKey {
		if !f.Key || tr.cfg == nil {
			return false
		}
		tr.needKey = false
	}
	return len(tr.nalus) > 0
}

func setParam(dst *[]byte, nalu []byte) bool {
	if bytes.Equal(*dst, nalu) {
		return false
	}
	*dst = append([]byte(nil), nalu...)
	return true
}

func (tr *trackState) buildNALConfig() {
	if tr.sps == nil || tr.pps == nil || tr.codec == CodecH265 && tr.vps == nil {
		return
	}
	c := &CodecConfig{Codec: tr.codec, SPS: [][]byte{tr.sps}, PPS: [][]byte{tr.pps}}
	if tr.codec == CodecH264 {
		if info, err := codec.ParseAVCSPS(tr.sps); err == nil {
			c.Width, c.Height = info.Width, info.Height
		}
		c.Record = codec.NewAVCConfig(c.SPS, c.PPS).Marshal()
	} else {
		c.VPS = [][]byte{tr.vps}
		hc := &codec.HEVCConfig{NALLengthSize: 4, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
		var sps h265.SPS
		if err := sps.Unmarshal(tr.sps); err == nil {
			hc.ProfileSpace = sps.ProfileTierLevel.GeneralProfileSpace
			hc.Tier = sps.ProfileTierLevel.GeneralTierFlag
			hc.Profile = sps.ProfileTierLevel.GeneralProfileIdc
			hc.Level = sps.ProfileTierLevel.GeneralLevelIdc
			c.Width, c.Height = sps.Width(), sps.Height()
		}
		c.Record = hc.Marshal()
	}
	tr.cfg = c
}

func (tr *trackState) extractDTS(pts int64) (int64, error) {
	if tr.codec == CodecH265 {
		return tr.dts265.Extract(tr.nalus, pts)
	}
	return tr.dts264.Extract(tr.nalus, pts)
}

// analyzeAV1 finds the sequence header (config) and keyframes of an AV1 temporal unit.
func (tr *trackState) analyzeAV1(f *Frame, first bool) bool {
	key := first
	b := f.Data
	for len(b) > 0 {
		h := b[0]
		hl := 1
		if h&0x04 != 0 {
			hl = 2
		}
		if len(b) < hl {
			return false
		}
		size, k := leb128(b[hl:])
		if k == 0 || size > uint64(len(b)-hl-k) {
			return false
		}
		end := hl + k + int(size)
		if h>>3&0xf == 1 { // sequence header
			key = true
			obu := b[:end]
			if tr.cfg == nil || !bytes.Equal(tr.cfg.Record[4:], obu) {
				tr.cfg = &CodecConfig{Codec: CodecAV1, Record: av1Record(obu[hl+k:], obu)}
			}
		}
		b = b[end:]
	}
	f.Key = key
	if tr.needKey {
		if !key || tr.cfg == nil {
			return false
		}
		tr.needKey = false
	}
	return true
}

// av1Record builds an AV1CodecConfigurationRecord from a sequence header (payload) and its OBU.
func av1Record(payload, obu []byte) []byte {
	var profile, level, tier byte
	if len(payload) > 0 {
		profile = payload[0] >> 5
		reduced := payload[0]&0x08 != 0
		if reduced {
			level = payload[0] & 0x07 << 2
			if len(payload) > 1 {
				level |= payload[1] >> 6
			}
		} else if payload[0]&0x04 == 0 && len(payload) > 3 { // no timing info
			// initial_display_delay_present(1) operating_points_cnt_minus_1(5) operating_point_idc(12)
			// seq_level_idx(5) [seq_tier(1)]; bit offset 6 from payload[0]'s bit 2.
			var v uint32 = uint32(payload[0])<<24 | uint32(payload[1])<<16 | uint32(payload[2])<<8 | uint32(payload[3])
			level = byte(v >> (32 - 6 - 1 - 5 - 12 - 5) & 0x1f)
			if level > 7 {
				tier = byte(v >> (32 - 6 - 1 - 5 - 12 - 5 - 1) & 1)
			}
		}
	}
	r := []byte{0x81, profile<<5 | level&0x1f, tier << 7, 0}
	return append(r, obu...)
}
