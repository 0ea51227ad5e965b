package hls

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// testMedia is testdata/bf.flv (ffmpeg testsrc 320x180@25 + sine 48 kHz stereo, 2 s, libx264 High
// -bf 2 -g 25, AAC) as access units.
type testMedia struct {
	sps, pps [][]byte
	asc      []byte
	video    []testAU // ts = DTS ms, cts = PTS - DTS ms
	audio    []testAU
}

type testAU struct {
	ts, cts int64
	data    []byte
}

func loadTestMedia(t testing.TB) *testMedia {
	b, err := os.ReadFile("testdata/bf.flv")
	require.NoError(t, err)
	require.Equal(t, "FLV", string(b[:3]))
	b = b[13:]
	m := &testMedia{}
	for len(b) >= 11 {
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24
		typ, body := b[0], b[11:11+size]
		b = b[11+size+4:]
		switch {
		case typ == 9 && len(body) > 5 && body[0]&0x0f == 7: // AVC
			cts := int64(int32(uint32(body[2])<<24|uint32(body[3])<<16|uint32(body[4])<<8) >> 8)
			switch body[1] {
			case 0: // AVCDecoderConfigurationRecord: one SPS, one PPS here
				r := body[5:]
				n := int(r[6])<<8 | int(r[7])
				m.sps = [][]byte{r[8 : 8+n]}
				r = r[8+n:]
				k := int(r[1])<<8 | int(r[2])
				m.pps = [][]byte{r[3 : 3+k]}
			case 1:
				m.video = append(m.video, testAU{ts: ts, cts: cts, data: body[5:]})
			}
		case typ == 8 && len(body) > 2 && body[0]>>4 == 10: // AAC
			if body[1] == 0 {
				m.asc = body[2:]
			} else {
				m.audio = append(m.audio, testAU{ts: ts, data: body[2:]})
			}
		}
	}
	require.NotEmpty(t, m.sps)
	require.NotEmpty(t, m.video)
	require.NotEmpty(t, m.asc)
	return m
}

type testPub struct{ kf atomic.Int32 }

func (p *testPub) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: "pub", Protocol: "rtmp", Started: time.Now()}
}
func (p *testPub) Close() error           { return nil }
func (p *testPub) RequestKeyframe(string) { p.kf.Add(1) }

// pushLoop publishes m on key in real time, looping with continuous timestamps, until ctx ends.
func pushLoop(ctx context.Context, t testing.TB, hub *sfu.Hub, key string, m *testMedia, p *testPub) (done chan struct{}) {
	pub, err := hub.Publish(ctx, key, p, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}},
		{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 48000, Channels: 2, Fmtp: packetize.AACFmtp(m.asc)}},
	})
	require.NoError(t, err)
	h := packetize.NewH264(pub.Track("video"), packetize.Config{SSRC: 1, PayloadType: 96})
	h.SetParameterSets(m.sps, m.pps)
	a := packetize.NewAAC(pub.Track("aac"), packetize.Config{SSRC: 2, PayloadType: 97})
	done = make(chan struct{})
	go func() {
		defer close(done)
		defer pub.Close()
		start := time.Now()
		span := m.video[len(m.video)-1].ts + 40
		for loop := int64(0); ; loop++ {
			off := loop * span
			vi, ai := 0, 0
			for vi < len(m.video) || ai < len(m.audio) {
				var at int64
				if ai >= len(m.audio) || vi < len(m.video) && m.video[vi].ts <= m.audio[ai].ts {
					v := m.video[vi]
					at = v.ts + off
					_ = h.WriteAVCC(v.data, 4, uint32((v.ts+v.cts+off)*90))
					vi++
				} else {
					x := m.audio[ai]
					at = x.ts + off
					_ = a.WriteAU(x.data, uint32((x.ts+off)*48))
					ai++
				}
				if d := time.Until(start.Add(time.Duration(at) * time.Millisecond)); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
			}
		}
	}()
	return done
}

func getBody(t testing.TB, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestServerServesAndStops: a published stream's muxer starts on the first request, serves playlists
// (no-cache) and MPEG-TS segments (max-age), asks for keyframes, stops after the idle timeout, and a
// stream that ends stops its muxer.
func TestServerServesAndStops(t *testing.T) {
	m := loadTestMedia(t)
	hub := sfu.NewHub(sfu.Config{Grace: 100 * time.Millisecond}, sfu.Deps{})
	defer hub.Close()
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	defer reg.Close()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{NodeID: "n1", Segment: time.Second, IdleTimeout: 2 * time.Second}, Deps{Frames: reg, Logger: log})
	require.NoError(t, err)
	defer srv.Close()
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /{app}/{file}", srv.ServeHTTP)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	ctx, cancel := context.WithCancel(context.Background())
	pub := &testPub{}
	done := pushLoop(ctx, t, hub, "live/x", m, pub)
	var stopOnce sync.Once
	stopPush := func() { stopOnce.Do(func() { cancel(); <-done }) }
	defer stopPush()
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	code, h, body := getBody(t, ts.Client(), ts.URL+"/live/x.m3u8")
	wait := time.Since(start)
	require.Equal(t, http.StatusOK, code, body)
	t.Logf("first playlist after %v", wait.Round(time.Millisecond))
	require.Less(t, wait, 2500*time.Millisecond)
	require.Equal(t, "no-cache", h.Get("Cache-Control"))
	require.Contains(t, body, `CODECS="avc1.`)
	require.Contains(t, body, "mp4a.40.2")
	require.Contains(t, body, "main_stream.m3u8")

	// The query (a token) travels through the redirect and into the playlist's URIs.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(ts.URL + "/live/x.m3u8?token=abc")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/n/n1/hls/live/x/index.m3u8?token=abc", resp.Header.Get("Location"))
	_, _, body = getBody(t, ts.Client(), ts.URL+"/n/n1/hls/live/x/index.m3u8?token=abc")
	require.Contains(t, body, "main_stream.m3u8?token=abc")

	base := ts.URL + "/n/n1/hls/live/x/"
	code, h, body = getBody(t, ts.Client(), base+"main_stream.m3u8")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "no-cache", h.Get("Cache-Control"))
	var segs []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasSuffix(l, ".ts") {
			segs = append(segs, l)
		}
	}
	require.NotEmpty(t, segs, body)
	code, h, seg := getBody(t, ts.Client(), base+segs[0])
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Cache-Control"), "max-age=")
	require.Equal(t, byte(0x47), seg[0], "MPEG-TS sync byte")
	require.Zero(t, len(seg)%188, "whole TS packets")
	require.Equal(t, []string{"live/x"}, srv.Streams())

	// Keyframe requests follow the segment length while the muxer runs.
	time.Sleep(2500 * time.Millisecond)
	require.Positive(t, pub.kf.Load(), "keyframe requests")
	t.Logf("keyframe requests after ~5 s: %d", pub.kf.Load())

	// No request for the idle timeout: the muxer stops.
	require.Eventually(t, func() bool { return len(srv.Streams()) == 0 }, 5*time.Second, 50*time.Millisecond, "idle muxer stops")

	// A new request starts a new muxer; the stream ending stops it.
	code, _, body = getBody(t, ts.Client(), ts.URL+"/live/x.m3u8")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{"live/x"}, srv.Streams())
	stopPush()
	ended := time.Now()
	require.Eventually(t, func() bool { return len(srv.Streams()) == 0 }, 1500*time.Millisecond, 20*time.Millisecond, "muxer stops with its stream (before the idle timeout)")
	t.Logf("muxer stopped %v after the stream ended", time.Since(ended).Round(time.Millisecond))
	code, _, _ = getBody(t, ts.Client(), ts.URL+"/live/x.m3u8")
	require.Equal(t, http.StatusNotFound, code)
}
