package sfu

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakePub is a Publisher with func fields.
type fakePub struct {
	ID            string
	CloseFunc     func() error
	KeyframeFunc  func(trackID string)
	closes        atomic.Int32
	keyframeCalls atomic.Int32
}

func (p *fakePub) Info() ClientInfo { return ClientInfo{ID: p.ID, Protocol: "test"} }
func (p *fakePub) Close() error {
	p.closes.Add(1)
	if p.CloseFunc != nil {
		return p.CloseFunc()
	}
	return nil
}
func (p *fakePub) RequestKeyframe(trackID string) {
	p.keyframeCalls.Add(1)
	if p.KeyframeFunc != nil {
		p.KeyframeFunc(trackID)
	}
}

// fakeSub is a Subscriber with func fields.
type fakeSub struct {
	ID           string
	AddTrackFunc func(t *Track) (TrackWriter, error)
	CloseFunc    func() error
	closes       atomic.Int32
}

func (s *fakeSub) Info() ClientInfo { return ClientInfo{ID: s.ID, Protocol: "test"} }
func (s *fakeSub) Close() error {
	s.closes.Add(1)
	if s.CloseFunc != nil {
		return s.CloseFunc()
	}
	return nil
}
func (s *fakeSub) AddTrack(t *Track) (TrackWriter, error) { return s.AddTrackFunc(t) }

// sent is a packet as a sink or writer saw it.
type sent struct {
	SSRC    uint32
	SN      uint16
	TS      uint32
	Marker  bool
	Payload []byte
	At      time.Time
}

// recSink records what a DownTrack writes; with block set, WriteRTP waits until it is closed.
type recSink struct {
	mu    sync.Mutex
	pkts  []sent
	block chan struct{}
}

func (r *recSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	r.pkts = append(r.pkts, sent{SN: h.SequenceNumber, TS: h.Timestamp, Marker: h.Marker,
		Payload: append([]byte(nil), payload...), At: time.Now()})
	r.mu.Unlock()
	return len(payload), nil
}

func (r *recSink) get() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.pkts...)
}

func (r *recSink) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pkts)
}

// recWriter is a plain TrackWriter that records packets.
type recWriter struct {
	mu   sync.Mutex
	pkts []sent
}

func (w *recWriter) WriteRTP(p *rtp.Packet) error {
	w.mu.Lock()
	w.pkts = append(w.pkts, sent{SSRC: p.SSRC, SN: p.SequenceNumber, TS: p.Timestamp, Marker: p.Marker,
		Payload: append([]byte(nil), p.Payload...)})
	w.mu.Unlock()
	return nil
}

func (w *recWriter) get() []sent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sent(nil), w.pkts...)
}

// discardSink drops everything (benchmarks and allocation tests).
type discardSink struct{ n atomic.Uint64 }

func (d *discardSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	d.n.Add(1)
	return len(payload), nil
}

// h264Gen makes an H.264 RTP stream: keyframes are a STAP-A (SPS, PPS) then an IDR in three FU-As;
// delta frames are one single-NAL packet. Frames are 3000 ticks (30 fps) apart.
type h264Gen struct {
	ssrc uint32
	sn   uint16
	ts   uint32
}

var (
	stapSPSPPS = []byte{24, 0, 4, 0x67, 0x42, 0xc0, 0x1f, 0, 3, 0x68, 0xce, 0x3c}
	fuIDRStart = []byte{28, 0x85, 0xb8, 1, 2, 3}
	fuIDRMid   = []byte{28, 0x05, 4, 5, 6}
	fuIDREnd   = []byte{28, 0x45, 7, 8, 9}
	deltaNAL   = []byte{0x41, 0x9a, 1, 2, 3, 4}
)

func (g *h264Gen) pkt(payload []byte, marker bool) *rtp.Packet {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: g.sn, Timestamp: g.ts,
		SSRC: g.ssrc, Marker: marker}, Payload: append([]byte(nil), payload...)}
	g.sn++
	return p
}

func (g *h264Gen) keyframe() []*rtp.Packet {
	out := []*rtp.Packet{g.pkt(stapSPSPPS, false), g.pkt(fuIDRStart, false), g.pkt(fuIDRMid, false), g.pkt(fuIDREnd, true)}
	g.ts += 3000
	return out
}

func (g *h264Gen) delta() []*rtp.Packet {
	out := []*rtp.Packet{g.pkt(deltaNAL, true)}
	g.ts += 3000
	return out
}

func writeAll(t testing.TB, tr *Track, pkts []*rtp.Packet) {
	t.Helper()
	for _, p := range pkts {
		if err := tr.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
}

var videoInfo = TrackInfo{ID: "video", Kind: KindVideo, Codec: Codec{MimeType: "video/H264", ClockRate: 90000}}
var audioInfo = TrackInfo{ID: "audio", Kind: KindAudio, Codec: Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}}

// trackWithGOP publishes an H.264 track and writes a keyframe and deltas delta frames to it, so that
// its GOP cache holds 4+deltas packets; g goes on with the stream.
func trackWithGOP(t *testing.T, deltas int) (*Track, *h264Gen) {
	t.Helper()
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	g := &h264Gen{ssrc: 1}
	writeAll(t, tr, g.keyframe())
	for range deltas {
		writeAll(t, tr, g.delta())
	}
	return tr, g
}
