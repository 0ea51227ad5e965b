package sfu

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGOPCacheLateSubscriber(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	g := &h264Gen{ssrc: 5, sn: 100, ts: 0}
	writeAll(t, tr, g.delta()) // before any keyframe: not cached
	writeAll(t, tr, g.keyframe())
	writeAll(t, tr, g.delta())
	writeAll(t, tr, g.keyframe()) // a new GOP replaces the first
	for range 5 {
		writeAll(t, tr, g.delta())
	}

	// A plain writer gets the cached packets as they were, then live ones.
	w := &recWriter{}
	remove := tr.AddWriter(w)
	writeAll(t, tr, g.delta())
	remove()
	writeAll(t, tr, g.delta()) // not delivered after remove
	got := w.get()
	require.Len(t, got, 4+5+1)
	require.Equal(t, stapSPSPPS, got[0].Payload, "the replay starts with the SPS/PPS STAP-A")
	require.Equal(t, uint16(106), got[0].SN)
	require.Equal(t, uint32(5), got[0].SSRC)
	requireContinuous(t, got)

	// A DownTrack subscriber: same packets, timestamps compressed to end at live, then live.
	s := newDTSub("late", DownTrackOptions{})
	unsub, err := h.Subscribe(context.Background(), "live/test", s)
	require.NoError(t, err)
	defer func() { unsub(); s.closeDTs() }()
	for range 3 {
		writeAll(t, tr, g.delta())
	}
	require.Eventually(t, func() bool { return s.sink("video").count() == 4+7+3 }, 2*time.Second, time.Millisecond)
	v := s.sink("video").get()
	requireContinuous(t, v)
	require.True(t, IsKeyframe("video/H264", v[0].Payload))
	require.Equal(t, stapSPSPPS, v[0].Payload)
	// Replayed frames: keyframe (4 packets, at 9000) + 7 deltas = 8 frames; the last keeps its
	// timestamp, earlier ones are 90 ticks apart before it.
	lastReplayTS := uint32(9000 + 7*3000)
	require.Equal(t, lastReplayTS, v[10].TS)
	require.Equal(t, lastReplayTS-7*90, v[0].TS)
	require.Equal(t, v[0].TS, v[3].TS)
	for i := 4; i <= 10; i++ {
		require.Equal(t, v[i-1].TS+90, v[i].TS, "replay frame %d", i)
	}
	require.Equal(t, lastReplayTS+3000, v[11].TS, "live continues with its own timestamps")
}

func TestGOPCacheCaps(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"bytes", Config{GOPCacheMaxBytes: 200}},
		{"duration", Config{GOPCacheMaxDuration: 100 * time.Millisecond}}, // 9000 ticks: 3 frames
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newTestHub(t, c.cfg, Deps{})
			p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
			require.NoError(t, err)
			tr := p.Track("video")
			g := &h264Gen{ssrc: 5}
			writeAll(t, tr, g.keyframe())
			writeAll(t, tr, g.delta())
			writeAll(t, tr, g.delta())
			w := &recWriter{}
			tr.AddWriter(w)()
			require.Len(t, w.get(), 6, "within the caps the GOP is cached")
			for range 40 {
				writeAll(t, tr, g.delta())
			}
			require.LessOrEqual(t, tr.gop.bytes, 200)
			w = &recWriter{}
			tr.AddWriter(w)()
			require.Empty(t, w.get(), "over a cap the GOP is dropped")
			require.Positive(t, tr.gop.overflows)
			writeAll(t, tr, g.keyframe())
			w = &recWriter{}
			tr.AddWriter(w)()
			require.Len(t, w.get(), 4, "caching resumes at the next keyframe")
		})
	}
}

func TestGOPCacheOffAndSourceChange(t *testing.T) {
	h := newTestHub(t, Config{NoGOPCache: true}, Deps{})
	p, err := h.Publish(context.Background(), "live/off", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	g := &h264Gen{ssrc: 5}
	writeAll(t, p.Track("video"), g.keyframe())
	w := &recWriter{}
	p.Track("video").AddWriter(w)()
	require.Empty(t, w.get())

	h2 := newTestHub(t, Config{}, Deps{})
	p2, err := h2.Publish(context.Background(), "live/on", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	writeAll(t, p2.Track("video"), g.keyframe())
	g.ssrc = 6
	writeAll(t, p2.Track("video"), g.delta()) // a new source without a keyframe yet
	w = &recWriter{}
	p2.Track("video").AddWriter(w)()
	require.Empty(t, w.get(), "a new SSRC resets the cache")
}

func TestGOPCacheCodecs(t *testing.T) {
	for _, c := range []struct {
		name      string
		mime      string
		key, next []byte // a keyframe's first packet, and a later packet of the same frame
		delta     []byte
	}{
		{"h265", "video/H265", []byte{32 << 1, 1, 0x0c}, []byte{49 << 1, 1, 0x40 | 19, 1}, []byte{1 << 1, 1, 0xd0}},
		{"vp8", "video/VP8", []byte{0x10, 0x00, 0x9d}, []byte{0x00, 0x00}, []byte{0x10, 0x01}},
		{"vp9", "video/VP9", []byte{0x88, 0x01}, []byte{0x84, 0x01}, []byte{0xc8, 0x01}},
		{"av1", "video/AV1", []byte{0x18, 0x0a}, []byte{0x50, 0x32}, []byte{0x10, 0x32}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newTestHub(t, Config{}, Deps{})
			info := TrackInfo{ID: "video", Kind: KindVideo, Codec: Codec{MimeType: c.mime, ClockRate: 90000}}
			p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{info})
			require.NoError(t, err)
			tr := p.Track("video")
			g := &h264Gen{ssrc: 3}
			require.NoError(t, tr.WriteRTP(g.pkt(c.delta, true))) // not cached: no keyframe yet
			g.ts += 3000
			require.NoError(t, tr.WriteRTP(g.pkt(c.key, false)))
			require.NoError(t, tr.WriteRTP(g.pkt(c.next, true)))
			g.ts += 3000
			require.NoError(t, tr.WriteRTP(g.pkt(c.delta, true)))
			w := &recWriter{}
			tr.AddWriter(w)()
			got := w.get()
			require.Len(t, got, 3)
			require.Equal(t, c.key, got[0].Payload)
			requireContinuous(t, got)
		})
	}
}
