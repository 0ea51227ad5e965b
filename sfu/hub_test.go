package sfu

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// dtSub is a subscriber whose writers are DownTracks writing to recording sinks.
type dtSub struct {
	*fakeSub
	mu    sync.Mutex
	sinks map[string]*recSink
	dts   []*DownTrack
}

func newDTSub(id string, opts DownTrackOptions) *dtSub {
	s := &dtSub{fakeSub: &fakeSub{ID: id}, sinks: map[string]*recSink{}}
	s.AddTrackFunc = func(t *Track) (TrackWriter, error) {
		sink := &recSink{}
		dt := NewDownTrack(t, sink, opts)
		s.mu.Lock()
		s.sinks[t.ID()] = sink
		s.dts = append(s.dts, dt)
		s.mu.Unlock()
		return dt, nil
	}
	s.CloseFunc = func() error {
		s.closeDTs()
		return nil
	}
	return s
}

func (s *dtSub) sink(id string) *recSink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sinks[id]
}

func (s *dtSub) closeDTs() {
	s.mu.Lock()
	dts := s.dts
	s.mu.Unlock()
	for _, d := range dts {
		_ = d.Close()
	}
}

// requireContinuous checks that sequence numbers go up by exactly one.
func requireContinuous(t *testing.T, pkts []sent) {
	t.Helper()
	for i := 1; i < len(pkts); i++ {
		require.Equal(t, pkts[i-1].SN+1, pkts[i].SN, "sequence gap at %d", i)
	}
}

func newTestHub(t *testing.T, cfg Config, deps Deps) *Hub {
	h := NewHub(cfg, deps)
	t.Cleanup(h.Close)
	return h
}

func TestPublishSubscribeFanout(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	pub := &fakePub{ID: "pub"}
	p, err := h.Publish(context.Background(), "live/test", pub, []TrackInfo{videoInfo, audioInfo})
	require.NoError(t, err)
	require.Len(t, p.Tracks(), 2)
	require.Equal(t, "live/test", p.Track("video").StreamKey())
	require.Nil(t, p.Track("nope"))

	var subs []*dtSub
	for i := range 3 {
		s := newDTSub(NewClientID(), DownTrackOptions{})
		unsub, err := h.Subscribe(context.Background(), "live/test", s)
		require.NoError(t, err, "subscriber %d", i)
		t.Cleanup(func() { unsub(); s.closeDTs() })
		subs = append(subs, s)
	}
	require.Len(t, h.Stream("live/test").Subscribers(), 3)
	require.Equal(t, 3, p.Track("video").Writers())
	require.Positive(t, pub.keyframeCalls.Load(), "a joining video subscriber asks for a keyframe")

	g := &h264Gen{ssrc: 1, sn: 65530, ts: 1000} // wraps around
	var want int
	for i := range 10 {
		var pkts []*rtp.Packet
		if i%5 == 1 {
			pkts = g.keyframe()
		} else {
			pkts = g.delta()
		}
		writeAll(t, p.Track("video"), pkts)
		want += len(pkts)
	}
	a := &h264Gen{ssrc: 2, sn: 100, ts: 0}
	for range 20 {
		require.NoError(t, p.Track("audio").WriteRTP(a.pkt([]byte{0xfc, 1, 2}, false)))
	}
	want -= 1 // the delta before the first keyframe is skipped
	for _, s := range subs {
		require.Eventually(t, func() bool { return s.sink("video").count() == want && s.sink("audio").count() == 20 },
			2*time.Second, time.Millisecond)
		v := s.sink("video").get()
		require.True(t, IsKeyframe("video/H264", v[0].Payload), "first video packet is a keyframe")
		requireContinuous(t, v)
		requireContinuous(t, s.sink("audio").get())
	}
	require.Equal(t, TrackStats{Packets: uint64(want + 1), Bytes: p.Track("video").Stats().Bytes}, p.Track("video").Stats())
}

func TestPublishErrors(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	ctx := context.Background()
	_, err := h.Publish(ctx, "live/../x", &fakePub{}, []TrackInfo{videoInfo})
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = h.Publish(ctx, "live/test", &fakePub{}, nil)
	require.ErrorIs(t, err, ErrNoTracks)
	_, err = h.Publish(ctx, "live/test", &fakePub{}, []TrackInfo{videoInfo, videoInfo})
	require.ErrorIs(t, err, ErrInvalidTrack)
	_, err = h.Publish(ctx, "live/test", &fakePub{}, []TrackInfo{{ID: "x"}})
	require.ErrorIs(t, err, ErrInvalidTrack)

	first := &fakePub{ID: "first"}
	p, err := h.Publish(ctx, "live/test", first, []TrackInfo{videoInfo})
	require.NoError(t, err)
	_, err = h.Publish(ctx, "live/test", &fakePub{ID: "second"}, []TrackInfo{videoInfo})
	require.ErrorIs(t, err, ErrPublisherExists)
	require.Zero(t, first.closes.Load())
	require.Same(t, first, h.Stream("live/test").Publisher().(*fakePub))
	p.Close()
	p.Close()
	require.Nil(t, h.Stream("live/test"), "no subscribers: the stream ends at once")

	_, err = h.Subscribe(ctx, "live/test", newDTSub("s", DownTrackOptions{}))
	require.ErrorIs(t, err, ErrStreamNotFound)
	_, err = h.Subscribe(ctx, "bad", newDTSub("s", DownTrackOptions{}))
	require.ErrorIs(t, err, ErrInvalidKey)
}

func TestTakeover(t *testing.T) {
	h := newTestHub(t, Config{Takeover: true}, Deps{})
	ctx := context.Background()
	old := &fakePub{ID: "old"}
	p1, err := h.Publish(ctx, "live/test", old, []TrackInfo{videoInfo})
	require.NoError(t, err)
	s := newDTSub("viewer", DownTrackOptions{ReplayRate: -1})
	unsub, err := h.Subscribe(ctx, "live/test", s)
	require.NoError(t, err)
	defer func() { unsub(); s.closeDTs() }()
	g := &h264Gen{ssrc: 10, sn: 500, ts: 9000}
	writeAll(t, p1.Track("video"), g.keyframe())
	writeAll(t, p1.Track("video"), g.delta())

	newer := &fakePub{ID: "new"}
	p2, err := h.Publish(ctx, "live/test", newer, []TrackInfo{videoInfo})
	require.NoError(t, err)
	require.Equal(t, int32(1), old.closes.Load(), "the old publisher is closed")
	require.True(t, p1.Closed())
	require.Same(t, p1.Track("video"), p2.Track("video"), "the track continues")
	p1.Close() // the old adapter's late Close changes nothing
	require.Same(t, newer, h.Stream("live/test").Publisher().(*fakePub))

	g2 := &h264Gen{ssrc: 20, sn: 7, ts: 123456}
	writeAll(t, p2.Track("video"), g2.delta()) // skipped: waits for the keyframe
	writeAll(t, p2.Track("video"), g2.keyframe())
	writeAll(t, p2.Track("video"), g2.delta())
	require.Eventually(t, func() bool { return s.sink("video").count() == 10 }, 2*time.Second, time.Millisecond)
	v := s.sink("video").get()
	requireContinuous(t, v)
	require.True(t, IsKeyframe("video/H264", v[5].Payload))
}

func TestGraceReturn(t *testing.T) {
	var events []Event
	var evMu sync.Mutex
	h := newTestHub(t, Config{Grace: 5 * time.Second}, Deps{OnEvent: func(e Event) {
		evMu.Lock()
		events = append(events, e)
		evMu.Unlock()
	}})
	ctx := context.Background()
	p1, err := h.Publish(ctx, "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo, audioInfo})
	require.NoError(t, err)
	g := &h264Gen{ssrc: 111, sn: 1000, ts: 50000}
	writeAll(t, p1.Track("video"), g.keyframe())

	var subs []*dtSub
	for range 3 {
		s := newDTSub(NewClientID(), DownTrackOptions{})
		unsub, err := h.Subscribe(ctx, "live/test", s)
		require.NoError(t, err)
		defer func() { unsub(); s.closeDTs() }()
		subs = append(subs, s)
	}
	for range 3 {
		writeAll(t, p1.Track("video"), g.delta())
	}
	videoTrack := p1.Track("video")
	p1.Close()
	st := h.Stream("live/test")
	require.NotNil(t, st)
	require.True(t, st.InGrace())
	require.Nil(t, st.Publisher())
	time.Sleep(100 * time.Millisecond) // the publisher is away for a while

	// A new publisher with a new SSRC and other sequence/timestamp bases; an extra track is new.
	p2pub := &fakePub{ID: "b"}
	extra := TrackInfo{ID: "aac", Kind: KindAudio, Codec: Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100}}
	p2, err := h.Publish(ctx, "live/test", p2pub, []TrackInfo{videoInfo, audioInfo, extra})
	require.NoError(t, err)
	require.False(t, st.InGrace())
	require.Same(t, videoTrack, p2.Track("video"))
	require.Len(t, st.Tracks(), 3)
	require.Equal(t, 0, p2.Track("aac").Writers(), "existing subscribers do not get new tracks")

	g2 := &h264Gen{ssrc: 222, sn: 40000, ts: 7}
	writeAll(t, p2.Track("video"), g2.delta()) // before any keyframe: hidden
	writeAll(t, p2.Track("video"), g2.keyframe())
	writeAll(t, p2.Track("video"), g2.delta())
	for _, s := range subs {
		require.Eventually(t, func() bool { return s.sink("video").count() == 4+3+4+1 }, 2*time.Second, time.Millisecond)
		v := s.sink("video").get()
		requireContinuous(t, v)
		before, after := v[6], v[7]
		require.True(t, IsKeyframe("video/H264", after.Payload), "first packet after the switch is a keyframe")
		gap := after.TS - before.TS // 90 kHz ticks for the ~100ms away
		require.Greater(t, gap, uint32(90*90), "timestamps continue with the time elapsed")
		require.Less(t, gap, uint32(90*2000))
		t.Logf("switch: SN %d -> %d, TS advanced %d ticks (%.0f ms)", before.SN, after.SN, gap, float64(gap)/90)
		require.Equal(t, v[8].TS, after.TS, "the keyframe's packets share a timestamp")
		require.Equal(t, after.TS+3000, v[11].TS)
	}
	evMu.Lock()
	defer evMu.Unlock()
	var types []EventType
	for _, e := range events {
		types = append(types, e.Type)
	}
	require.Equal(t, []EventType{EventPublish, EventSubscribe, EventSubscribe, EventSubscribe, EventUnpublish, EventPublish}, types)
}

func TestGraceExpiry(t *testing.T) {
	ended := make(chan Event, 1)
	h := newTestHub(t, Config{Grace: 50 * time.Millisecond}, Deps{OnEvent: func(e Event) {
		if e.Type == EventStreamEnd {
			ended <- e
		}
	}})
	ctx := context.Background()
	p, err := h.Publish(ctx, "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	s := newDTSub("v", DownTrackOptions{})
	unsub, err := h.Subscribe(ctx, "live/test", s)
	require.NoError(t, err)
	tr := p.Track("video")
	start := time.Now()
	p.Close()
	select {
	case e := <-ended:
		require.Equal(t, "live/test", e.Key)
	case <-time.After(2 * time.Second):
		t.Fatal("grace did not end")
	}
	t.Logf("stream ended %v after the publisher left (grace 50ms)", time.Since(start))
	require.Equal(t, int32(1), s.closes.Load(), "subscriber closed")
	require.Nil(t, h.Stream("live/test"))
	require.Zero(t, tr.Writers(), "writers detached")
	unsub() // idempotent after the hub closed it
	unsub()
	require.Equal(t, int32(1), s.closes.Load())
	_, err = h.Subscribe(ctx, "live/test", s)
	require.ErrorIs(t, err, ErrStreamNotFound)
}

func TestLastSubscriberLeavesDuringGrace(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	ctx := context.Background()
	p, err := h.Publish(ctx, "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	s := newDTSub("v", DownTrackOptions{})
	unsub, err := h.Subscribe(ctx, "live/test", s)
	require.NoError(t, err)
	p.Close()
	require.NotNil(t, h.Stream("live/test"))
	unsub()
	s.closeDTs()
	require.Nil(t, h.Stream("live/test"), "no publisher and no subscribers: gone")
}

type pullerFunc func(ctx context.Context, key string) error

func (f pullerFunc) Pull(ctx context.Context, key string) error { return f(ctx, key) }

func TestPuller(t *testing.T) {
	var h *Hub
	var calls atomic.Int32
	var pub *Publication
	h = newTestHub(t, Config{}, Deps{Puller: pullerFunc(func(ctx context.Context, key string) error {
		calls.Add(1)
		if key == "live/missing" {
			return ErrStreamNotFound
		}
		var err error
		pub, err = h.Publish(ctx, key, &fakePub{ID: "relay"}, []TrackInfo{audioInfo})
		return err
	})})
	s := newDTSub("v", DownTrackOptions{})
	unsub, err := h.Subscribe(context.Background(), "live/pulled", s)
	require.NoError(t, err)
	require.Equal(t, int32(1), calls.Load())
	require.Equal(t, 1, pub.Track("audio").Writers())
	unsub()
	s.closeDTs()

	_, err = h.Subscribe(context.Background(), "live/missing", s)
	require.ErrorIs(t, err, ErrStreamNotFound)
	require.Equal(t, int32(2), calls.Load())
}

type registryFake struct {
	mu       sync.Mutex
	claims   []string
	releases []string
	refuse   error
}

func (r *registryFake) Claim(ctx context.Context, key string, pub Publisher) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.claims = append(r.claims, key+"="+pub.Info().ID)
	return r.refuse
}

func (r *registryFake) Release(ctx context.Context, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releases = append(r.releases, key)
}

func TestRegistry(t *testing.T) {
	reg := &registryFake{}
	h := newTestHub(t, Config{}, Deps{Registry: reg})
	ctx := context.Background()
	p, err := h.Publish(ctx, "live/a", &fakePub{ID: "p1"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	p.Close()
	reg.refuse = errors.Join(ErrPublisherExists, errors.New("held by node x"))
	_, err = h.Publish(ctx, "live/a", &fakePub{ID: "p2"}, []TrackInfo{videoInfo})
	require.ErrorIs(t, err, ErrPublisherExists)
	require.Nil(t, h.Stream("live/a"))
	require.Equal(t, []string{"live/a=p1", "live/a=p2"}, reg.claims)
	require.Equal(t, []string{"live/a"}, reg.releases)
}

func TestSubscribeTrackErrors(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	ctx := context.Background()
	p, err := h.Publish(ctx, "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo, audioInfo})
	require.NoError(t, err)

	// Skipping a track is fine.
	w := &recWriter{}
	s := &fakeSub{ID: "audio-only", AddTrackFunc: func(t *Track) (TrackWriter, error) {
		if t.Kind() == KindVideo {
			return nil, ErrTrackSkipped
		}
		return w, nil
	}}
	unsub, err := h.Subscribe(ctx, "live/test", s)
	require.NoError(t, err)
	require.Equal(t, 0, p.Track("video").Writers())
	require.Equal(t, 1, p.Track("audio").Writers())
	unsub()
	require.Equal(t, 0, p.Track("audio").Writers())

	// Any other error undoes the subscription.
	boom := errors.New("boom")
	s2 := &fakeSub{ID: "bad", AddTrackFunc: func(t *Track) (TrackWriter, error) {
		if t.Kind() == KindAudio {
			return nil, boom
		}
		return &recWriter{}, nil
	}}
	_, err = h.Subscribe(ctx, "live/test", s2)
	require.ErrorIs(t, err, boom)
	require.Zero(t, p.Track("video").Writers())
	require.Empty(t, h.Stream("live/test").Subscribers())
}

func TestClientStreamsClose(t *testing.T) {
	h := NewHub(Config{}, Deps{})
	ctx := context.Background()
	pubs := map[string]*fakePub{}
	for _, k := range []string{"live/b", "live/a", "app/z"} {
		pubs[k] = &fakePub{ID: "pub-" + k}
		_, err := h.Publish(ctx, k, pubs[k], []TrackInfo{audioInfo})
		require.NoError(t, err)
	}
	s := newDTSub("viewer-1", DownTrackOptions{})
	_, err := h.Subscribe(ctx, "live/a", s)
	require.NoError(t, err)

	var keys []string
	for _, st := range h.Streams() {
		keys = append(keys, st.Key())
	}
	require.Equal(t, []string{"app/z", "live/a", "live/b"}, keys)
	require.Same(t, s.fakeSub, h.Client("viewer-1").(*dtSub).fakeSub)
	require.Same(t, pubs["live/b"], h.Client("pub-live/b"))
	require.Nil(t, h.Client("nobody"))
	require.False(t, h.Stream("live/a").Created().IsZero())

	h.Close()
	h.Close()
	for _, p := range pubs {
		require.Equal(t, int32(1), p.closes.Load())
	}
	require.Equal(t, int32(1), s.closes.Load())
	require.Empty(t, h.Streams())
	_, err = h.Publish(ctx, "live/a", &fakePub{}, []TrackInfo{audioInfo})
	require.ErrorIs(t, err, ErrClosed)
}

func TestOnDemand(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{audioInfo})
	require.NoError(t, err)
	tr := p.Track("audio")
	var got []bool
	tr.OnDemand(func(active bool) { got = append(got, active) })
	r1 := tr.AddWriter(&recWriter{})
	r2 := tr.AddWriter(&recWriter{})
	r1()
	r1()
	r2()
	r3 := tr.AddWriter(&recWriter{})
	require.Equal(t, []bool{true, false, true}, got)

	// A late registration learns that the track is active.
	var late []bool
	tr.OnDemand(func(active bool) { late = append(late, active) })
	require.Equal(t, []bool{true}, late)
	r3()
	require.Equal(t, []bool{true, false}, late)

	// Concurrent adds and removes: calls alternate and end inactive.
	var mu sync.Mutex
	var seq []bool
	tr.OnDemand(func(active bool) { mu.Lock(); seq = append(seq, active); mu.Unlock() })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				tr.AddWriter(&recWriter{})()
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seq); i++ {
		require.NotEqual(t, seq[i-1], seq[i], "calls alternate")
	}
	if len(seq) > 0 {
		require.False(t, seq[len(seq)-1])
	}

	// Callbacks end with their publication.
	n := len(late)
	p.Close()
	tr.AddWriter(&recWriter{})()
	require.Len(t, late, n)
}

func TestRequestKeyframeRateLimit(t *testing.T) {
	h := newTestHub(t, Config{KeyframeInterval: 300 * time.Millisecond}, Deps{})
	var ids []string
	pub := &fakePub{ID: "a", KeyframeFunc: func(id string) { ids = append(ids, id) }}
	p, err := h.Publish(context.Background(), "live/test", pub, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	for range 100 {
		tr.RequestKeyframe()
	}
	require.Equal(t, []string{"video"}, ids)
	time.Sleep(350 * time.Millisecond)
	tr.RequestKeyframe()
	tr.RequestKeyframe()
	require.Len(t, ids, 2)
	p.Close()
	time.Sleep(350 * time.Millisecond)
	tr.RequestKeyframe() // no publisher: nothing to ask
	require.Len(t, ids, 2)
}

func TestDetails(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	require.Equal(t, Details{}, tr.Details())
	tr.SetDetails(Details{Profile: "High", Width: 1280, Height: 720})
	require.Equal(t, Details{Profile: "High", Width: 1280, Height: 720}, tr.Details())
	require.Equal(t, videoInfo, tr.Info())
	require.Equal(t, KindVideo, tr.Kind())
	require.Equal(t, "video/H264", tr.Codec().MimeType)
}

func TestWriteAfterClose(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{audioInfo})
	require.NoError(t, err)
	w := &recWriter{}
	defer p.Track("audio").AddWriter(w)()
	g := &h264Gen{ssrc: 1}
	require.NoError(t, p.Track("audio").WriteRTP(g.pkt([]byte{1}, false)))
	s := newDTSub("v", DownTrackOptions{})
	unsub, err := h.Subscribe(context.Background(), "live/test", s) // keeps the stream in grace
	require.NoError(t, err)
	defer func() { unsub(); s.closeDTs() }()
	p.Close()
	require.ErrorIs(t, p.Track("audio").WriteRTP(g.pkt([]byte{2}, false)), ErrClosed, "a stale publisher's packets are dropped")
	require.Len(t, w.get(), 1)
	require.Equal(t, uint64(1), p.Track("audio").Stats().Packets)
}
