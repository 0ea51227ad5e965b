package flv_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/bridge/audio"
	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type tag struct {
	typ  uint8
	ts   uint32
	body []byte
}

// readTags reads an FLV stream: header, then tags until EOF or max tags.
func readTags(r io.Reader, max int) (hdr []byte, tags []tag, err error) {
	br := bufio.NewReader(r)
	hdr = make([]byte, 13)
	if _, err = io.ReadFull(br, hdr); err != nil {
		return nil, nil, err
	}
	for len(tags) < max {
		var h [11]byte
		if _, err = io.ReadFull(br, h[:]); err != nil {
			return hdr, tags, err
		}
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		body := make([]byte, size+4)
		if _, err = io.ReadFull(br, body); err != nil {
			return hdr, tags, err
		}
		if got := binary.BigEndian.Uint32(body[size:]); got != uint32(size+11) {
			return hdr, tags, fmt.Errorf("PreviousTagSize %d, want %d", got, size+11)
		}
		ts := uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]) | uint32(h[7])<<24
		tags = append(tags, tag{typ: h[0], ts: ts, body: body[:size]})
	}
	return hdr, tags, nil
}

// media is testdata (../frames/testdata/bf.flv) as access units.
type media struct {
	sps, pps [][]byte
	asc      []byte
	video    []struct {
		dts, pts int64
		avcc     []byte
	}
	audio []struct {
		ts int64
		au []byte
	}
}

func loadMedia(t testing.TB) *media {
	b, err := os.ReadFile("../frames/testdata/bf.flv")
	require.NoError(t, err)
	_, tags, _ := readTags(bytesReader(b), 1<<20)
	m := &media{}
	for _, tg := range tags {
		switch tg.typ {
		case flv.TagVideo:
			var v flv.VideoTag
			require.NoError(t, flv.ParseVideoTag(tg.body, &v))
			switch v.PacketType {
			case flv.VideoSequenceStart:
				c, err := codec.ParseAVCConfig(v.Data)
				require.NoError(t, err)
				m.sps, m.pps = c.SPS, c.PPS
			case flv.VideoCodedFrames:
				m.video = append(m.video, struct {
					dts, pts int64
					avcc     []byte
				}{int64(tg.ts), int64(tg.ts) + int64(v.CompositionTime), v.Data})
			}
		case flv.TagAudio:
			var a flv.AudioTag
			require.NoError(t, flv.ParseAudioTag(tg.body, &a))
			if a.PacketType == flv.AudioSequenceStart {
				m.asc = a.Data
			} else {
				m.audio = append(m.audio, struct {
					ts int64
					au []byte
				}{int64(tg.ts), a.Data})
			}
		}
	}
	return m
}

type fakePub struct{ proto string }

func (p *fakePub) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: "pub", Protocol: p.proto, Started: time.Now()}
}
func (p *fakePub) Close() error           { return nil }
func (p *fakePub) RequestKeyframe(string) {}

// startPush publishes key and loops the media in real time (speed x) until stop is called.
func startPush(t testing.TB, hub *sfu.Hub, key string, m *media, speed float64) (stop func()) {
	pub, err := hub.Publish(context.Background(), key, &fakePub{proto: "rtmp"}, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}},
		{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 48000, Channels: 2, Fmtp: packetize.AACFmtp(m.asc)}},
	})
	require.NoError(t, err)
	h := packetize.NewH264(pub.Track("video"), packetize.Config{SSRC: 1, PayloadType: 96})
	h.SetParameterSets(m.sps, m.pps)
	a := packetize.NewAAC(pub.Track("aac"), packetize.Config{SSRC: 2, PayloadType: 97})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		for loop := int64(0); ; loop++ {
			off := loop * 2040
			vi, ai := 0, 0
			for vi < len(m.video) || ai < len(m.audio) {
				var at int64
				if ai >= len(m.audio) || vi < len(m.video) && m.video[vi].dts <= m.audio[ai].ts {
					v := m.video[vi]
					at = v.dts + off
					_ = h.WriteAVCC(v.avcc, 4, uint32((v.pts+off)*90))
					vi++
				} else {
					au := m.audio[ai]
					at = au.ts + off
					_ = a.WriteAU(au.au, uint32((au.ts+off)*48))
					ai++
				}
				if d := time.Duration(float64(at)*float64(time.Millisecond)/speed) - time.Since(start); d > 0 {
					select {
					case <-done:
						pub.Close()
						return
					case <-time.After(d):
					}
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func newServer(t testing.TB, hub *sfu.Hub, cfg flv.Config) (*flv.Server, *frames.Registry, *httptest.Server) {
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	srv, err := flv.New(cfg, flv.Deps{Frames: reg, OpusToAAC: func(ch, br int) (flv.OpusTranscoder, error) {
		return audio.NewOpusToAAC(ch, br)
	}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{app}/{file}", srv.ServeHTTP)
	hs := httptest.NewServer(mux)
	return srv, reg, hs
}

func TestHTTPFLV(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	stop := startPush(t, hub, "live/t", m, 2)
	defer stop()

	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{name: "unknown stream", path: "/live/none.flv", status: http.StatusNotFound},
		{name: "bad key", path: "/live/a..b.flv", status: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(hs.URL + tc.path)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			require.NotEmpty(t, body, "a reason")
		})
	}

	// Two viewers at once: header, metadata, sequence headers, then the same tags from a keyframe on.
	const n = 120
	type result struct {
		hdr  []byte
		tags []tag
		err  error
		resp *http.Response
	}
	res := make([]result, 2)
	var wg sync.WaitGroup
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(hs.URL + "/live/t.flv")
			if err != nil {
				res[i].err = err
				return
			}
			defer resp.Body.Close()
			res[i].resp = resp
			res[i].hdr, res[i].tags, res[i].err = readTags(resp.Body, n)
		}()
	}
	wg.Wait()
	var bodies [2][][]byte
	for i, r := range res {
		require.NoError(t, r.err)
		require.Equal(t, "video/x-flv", r.resp.Header.Get("Content-Type"))
		require.Equal(t, "no-cache", r.resp.Header.Get("Cache-Control"))
		require.Equal(t, []string{"chunked"}, r.resp.TransferEncoding)
		require.Equal(t, byte(5), r.hdr[4])
		require.Equal(t, uint8(flv.TagScript), r.tags[0].typ)
		var sawVSeq, sawASeq, sawKey bool
		lastTS := map[uint8]uint32{}
		for _, tg := range r.tags[1:] {
			switch tg.typ {
			case flv.TagVideo:
				var v flv.VideoTag
				require.NoError(t, flv.ParseVideoTag(tg.body, &v))
				if v.PacketType == flv.VideoSequenceStart {
					sawVSeq = true
					continue
				}
				if !sawKey {
					require.True(t, sawVSeq, "sequence header first")
					require.True(t, v.Keyframe(), "starts at a keyframe")
					sawKey = true
				}
			case flv.TagAudio:
				var a flv.AudioTag
				require.NoError(t, flv.ParseAudioTag(tg.body, &a))
				if a.PacketType == flv.AudioSequenceStart {
					sawASeq = true
					require.Equal(t, m.asc, a.Data)
					continue
				}
				require.True(t, sawASeq, "sequence header first")
			}
			require.GreaterOrEqual(t, tg.ts, lastTS[tg.typ], "timestamps monotonic per type")
			lastTS[tg.typ] = tg.ts
			if sawKey {
				bodies[i] = append(bodies[i], tg.body)
			}
		}
		require.True(t, sawKey)
	}
	// The same tag bodies, from the later starter's first keyframe on.
	a, b := bodies[0], bodies[1]
	for len(a) > 0 && len(b) > 0 && string(a[0]) != string(b[0]) {
		if len(a) > len(b) {
			a = a[1:]
		} else {
			b = b[1:]
		}
	}
	k := min(len(a), len(b))
	require.Greater(t, k, 40)
	for i := range k {
		require.Equal(t, a[i], b[i], "tag %d", i)
	}
}

// A viewer that does not read loses tags up to a keyframe; others are untouched.
func TestSlowViewer(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{ViewerQueue: 256, MaxLag: 300 * time.Millisecond})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	stop := startPush(t, hub, "live/s", m, 4)
	defer stop()
	ctx := context.Background()
	slow, err := srv.Subscribe(ctx, "live/s")
	require.NoError(t, err)
	defer slow.Close()
	fast, err := srv.Subscribe(ctx, "live/s")
	require.NoError(t, err)
	defer fast.Close()
	var got int
	var buf []*flv.Tag
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		c, cancel := context.WithDeadline(ctx, deadline)
		buf, err = fast.Next(c, buf)
		cancel()
		if err != nil {
			break
		}
		got += len(buf)
	}
	require.Greater(t, got, 100)
	require.Zero(t, fast.Dropped())
	require.Eventually(t, func() bool { return slow.Dropped() > 0 && slow.Lagging() }, 5*time.Second, 10*time.Millisecond,
		"the slow viewer drops and stays behind longer than MaxLag")
	buf, err = slow.Next(ctx, buf)
	require.NoError(t, err)
	// After a drop, the backlog restarts with the sequence headers and a keyframe.
	i := 0
	for i < len(buf) && buf[i].Seq {
		i++
	}
	require.Greater(t, i, 0)
	require.True(t, buf[i].Key)
}

// An Opus-only stream (as WHIP publishes) comes out as AAC, made once for the stream.
func TestOpusToAAC(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	pub, err := hub.Publish(context.Background(), "live/o", &fakePub{proto: "webrtc"}, []sfu.TrackInfo{
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: 48000, Channels: 2, Application: gopus.ApplicationAudio})
	require.NoError(t, err)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		op := packetize.NewOpus(pub.Track("audio"), packetize.Config{SSRC: 7, PayloadType: 111})
		pcm := make([]float32, 960*2)
		out := make([]byte, 1500)
		tick := time.NewTicker(5 * time.Millisecond) // 4x real time
		defer tick.Stop()
		for i := 0; ; i++ {
			for j := 0; j < 960; j++ {
				v := float32(0.5 * math.Sin(2*math.Pi*440*float64(i*960+j)/48000))
				pcm[2*j], pcm[2*j+1] = v, v
			}
			n, err := enc.Encode(pcm, out)
			if err == nil {
				_ = op.WriteFrame(out[:n], uint32(i*960))
			}
			select {
			case <-done:
				pub.Close()
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(done); wg.Wait() }()
	resp, err := http.Get(hs.URL + "/live/o.flv")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	hdr, tags, err := readTags(resp.Body, 40)
	require.NoError(t, err)
	require.Equal(t, byte(4), hdr[4], "audio only")
	var seq, frames int
	for _, tg := range tags[1:] {
		var a flv.AudioTag
		require.NoError(t, flv.ParseAudioTag(tg.body, &a))
		require.Equal(t, flv.AudioAAC, a.Codec)
		if a.PacketType == flv.AudioSequenceStart {
			seq++
			c, err := codec.ParseAudioSpecificConfig(a.Data)
			require.NoError(t, err)
			require.Equal(t, 48000, c.SampleRate)
			require.Equal(t, 2, c.Channels)
			continue
		}
		frames++
	}
	require.Equal(t, 1, seq)
	require.Greater(t, frames, 30)
}

type byteReader struct {
	b []byte
}

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }

type sinkTag struct {
	typ  uint8
	ts   uint32
	body []byte
}

type recSink struct{ tags []sinkTag }

func (s *recSink) WriteTag(typ uint8, ts uint32, body []byte) error {
	s.tags = append(s.tags, sinkTag{typ, ts, append([]byte(nil), body...)})
	if len(s.tags) >= 80 {
		return io.EOF
	}
	return nil
}

// Pump (RTMP play's side): metadata, sequence headers, a keyframe, then tags with rebased timestamps.
func TestPump(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	stop := startPush(t, hub, "live/p", m, 4)
	defer stop()
	v, err := srv.Subscribe(context.Background(), "live/p")
	require.NoError(t, err)
	defer v.Close()
	var sink recSink
	require.ErrorIs(t, v.Pump(context.Background(), &sink), io.EOF)
	require.Equal(t, uint8(flv.TagScript), sink.tags[0].typ)
	var vt flv.VideoTag
	require.NoError(t, flv.ParseVideoTag(sink.tags[1].body, &vt))
	require.Equal(t, flv.VideoSequenceStart, vt.PacketType)
	first := -1
	last := map[uint8]uint32{}
	for i, tg := range sink.tags[2:] {
		if tg.typ == flv.TagVideo {
			require.NoError(t, flv.ParseVideoTag(tg.body, &vt))
			if first < 0 && vt.PacketType == flv.VideoCodedFrames {
				require.True(t, vt.Keyframe())
				require.Zero(t, tg.ts, "rebased to the viewer's start")
				first = i
			}
		}
		require.GreaterOrEqual(t, tg.ts, last[tg.typ])
		last[tg.typ] = tg.ts
	}
	require.GreaterOrEqual(t, first, 0)
	require.Greater(t, last[flv.TagVideo], uint32(500))
}

type countingPub struct {
	fakePub
	kf atomic.Int32
}

func (p *countingPub) RequestKeyframe(string) { p.kf.Add(1) }

// While viewers exist the publisher is asked for keyframes (on join and every KeyframeInterval); with
// flv.opus: passthrough, Opus stays Opus (Enhanced FLV).
func TestKeyframeRequestsAndOpusPassthrough(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{KeyframeInterval: time.Millisecond}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{OpusPassthrough: true, KeyframeInterval: 50 * time.Millisecond})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	p := &countingPub{fakePub: fakePub{proto: "webrtc"}}
	pub, err := hub.Publish(context.Background(), "live/k", p, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000}},
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	defer pub.Close()
	op := packetize.NewOpus(pub.Track("audio"), packetize.Config{SSRC: 7})
	v, err := srv.Subscribe(context.Background(), "live/k")
	require.NoError(t, err)
	before := p.kf.Load()
	require.Eventually(t, func() bool { return p.kf.Load()-before >= 3 }, 5*time.Second, 10*time.Millisecond,
		"periodic keyframe requests")
	for i := range 5 {
		require.NoError(t, op.WriteFrame([]byte{0xfc, 0xff, 0xfe}, uint32(i*960)))
	}
	// Audio waits for video's first keyframe (the stream has video): send one.
	h := packetize.NewH264(pub.Track("video"), packetize.Config{SSRC: 8})
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x10}
	au := binary.BigEndian.AppendUint32(nil, uint32(len(sps)))
	au = append(au, sps...)
	au = binary.BigEndian.AppendUint32(au, uint32(len(pps)))
	au = append(au, pps...)
	au = binary.BigEndian.AppendUint32(au, uint32(len(idr)))
	au = append(au, idr...)
	require.NoError(t, h.WriteAVCC(au, 4, 9000))
	for i := 5; i < 10; i++ {
		require.NoError(t, op.WriteFrame([]byte{0xfc, 0xff, 0xfe}, uint32(i*960)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var opus int
	var buf []*flv.Tag
	for opus < 3 {
		buf, err = v.Next(ctx, buf)
		require.NoError(t, err)
		for _, tg := range buf {
			if tg.Type != flv.TagAudio {
				continue
			}
			var a flv.AudioTag
			require.NoError(t, flv.ParseAudioTag(tg.Body, &a))
			require.Equal(t, flv.AudioOpus, a.Codec)
			if a.PacketType == flv.AudioCodedFrames {
				opus++
			}
		}
	}
	v.Close()
}

// Viewers are listed (for the API) and can be kicked.
func TestViewersListAndKick(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, reg, hs := newServer(t, hub, flv.Config{})
	defer reg.Close()
	defer srv.Close()
	defer hs.Close()
	stop := startPush(t, hub, "live/v", m, 2)
	defer stop()
	resp, err := http.Get(hs.URL + "/live/v.flv")
	require.NoError(t, err)
	defer resp.Body.Close()
	var vs []*flv.Viewer
	require.Eventually(t, func() bool { vs = srv.Viewers(); return len(vs) == 1 }, 3*time.Second, 10*time.Millisecond)
	info := vs[0].Info()
	require.Equal(t, "flv", info.Protocol)
	require.NotEmpty(t, info.ID)
	require.NotEmpty(t, info.RemoteAddr)
	require.Equal(t, "live/v", vs[0].StreamKey())
	require.Eventually(t, func() bool { return vs[0].Bytes() > 1000 }, 3*time.Second, 10*time.Millisecond, "bytes sent are counted")
	t.Logf("viewer sent %d bytes", vs[0].Bytes())
	vs[0].Kick()
	_, err = io.Copy(io.Discard, resp.Body) // the server ends the response
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(srv.Viewers()) == 0 }, 3*time.Second, 10*time.Millisecond)
}
