package sfu

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

func publishOne(t *testing.T, info TrackInfo) (*Track, *fakePub) {
	h := newTestHub(t, Config{NoGOPCache: true}, Deps{})
	pub := &fakePub{ID: "pub"}
	p, err := h.Publish(context.Background(), "live/test", pub, []TrackInfo{info})
	require.NoError(t, err)
	return p.Track(info.ID), pub
}

func TestDownTrackSlowVideo(t *testing.T) {
	tr, pub := publishOne(t, videoInfo)
	sink := &recSink{block: make(chan struct{})}
	dt := NewDownTrack(tr, sink, DownTrackOptions{QueuePackets: 64})
	defer dt.Close()
	remove := tr.AddWriter(dt)
	defer remove()

	g := &h264Gen{ssrc: 1, sn: 1000, ts: 0}
	start := time.Now()
	writeAll(t, tr, g.keyframe())
	for range 500 {
		writeAll(t, tr, g.delta())
	}
	took := time.Since(start)
	t.Logf("504 packets into a blocked subscriber took %v", took)
	require.Less(t, took, time.Second, "the publisher never waits for a slow subscriber")
	st := dt.Stats()
	require.Positive(t, st.Dropped)
	require.Positive(t, pub.keyframeCalls.Load(), "a drop asks for a keyframe")

	close(sink.block) // the subscriber catches up
	require.Eventually(t, func() bool { return dt.settled() && sink.count() > 0 }, 2*time.Second, time.Millisecond)
	prefix := sink.count()
	writeAll(t, tr, g.delta()) // still waiting for a keyframe: dropped
	writeAll(t, tr, g.keyframe())
	for range 3 {
		writeAll(t, tr, g.delta())
	}
	require.Eventually(t, func() bool { return sink.count() == prefix+7 }, 2*time.Second, time.Millisecond)
	v := sink.get()
	requireContinuous(t, v)
	require.Equal(t, stapSPSPPS, v[prefix].Payload, "video resumes on a keyframe")
	require.Equal(t, uint64(504+1-prefix), dt.Stats().Dropped, "every packet not sent is counted")
	require.Equal(t, uint64(prefix+7), dt.Stats().Packets)
	require.Equal(t, dt.Stats(), tr.WriterStats(), "the track sums its writers' counters")
	t.Logf("queued+in flight %d, dropped %d", prefix, dt.Stats().Dropped)
}

func TestDownTrackSlowAudio(t *testing.T) {
	tr, pub := publishOne(t, audioInfo)
	sink := &recSink{block: make(chan struct{})}
	dt := NewDownTrack(tr, sink, DownTrackOptions{QueuePackets: 16})
	defer dt.Close()
	defer tr.AddWriter(dt)()
	g := &h264Gen{ssrc: 9, sn: 10}
	for range 100 {
		require.NoError(t, tr.WriteRTP(g.pkt([]byte{1, 2, 3}, false)))
		g.ts += 960
	}
	close(sink.block)
	require.Eventually(t, func() bool { return dt.settled() && sink.count() > 0 }, 2*time.Second, time.Millisecond)
	prefix := sink.count()
	for range 10 {
		require.NoError(t, tr.WriteRTP(g.pkt([]byte{4, 5, 6}, false)))
		g.ts += 960
	}
	require.Eventually(t, func() bool { return sink.count() == prefix+10 }, 2*time.Second, time.Millisecond)
	v := sink.get()
	requireContinuous(t, v)
	require.Equal(t, []byte{4, 5, 6}, v[prefix].Payload, "audio just drops: the next packet goes out")
	require.Equal(t, uint64(100-prefix), dt.Stats().Dropped)
	require.Zero(t, pub.keyframeCalls.Load())
}

func TestDownTrackRewrite(t *testing.T) {
	type in struct {
		ssrc    uint32
		sn      uint16
		ts      uint32
		payload []byte
		sleep   time.Duration
	}
	type out struct {
		sn uint16
		ts uint32
	}
	p := []byte{0xfc}
	for _, c := range []struct {
		name string
		in   []in
		want []out
	}{
		{"passthrough", []in{{1, 10, 100, p, 0}, {1, 11, 1060, p, 0}}, []out{{10, 100}, {11, 1060}}},
		{"upstream gap kept", []in{{1, 10, 100, p, 0}, {1, 13, 3000, p, 0}}, []out{{10, 100}, {13, 3000}}},
		{"padding hidden", []in{{1, 10, 100, p, 0}, {1, 11, 100, nil, 0}, {1, 12, 100, nil, 0}, {1, 13, 1060, p, 0}},
			[]out{{10, 100}, {11, 1060}}},
		{"duplicate dropped", []in{{1, 10, 100, p, 0}, {1, 10, 100, p, 0}, {1, 11, 1060, p, 0}}, []out{{10, 100}, {11, 1060}}},
		{"reordered within epoch", []in{{1, 10, 100, p, 0}, {1, 12, 2000, p, 0}, {1, 11, 1060, p, 0}},
			[]out{{10, 100}, {12, 2000}, {11, 1060}}},
		{"wrap", []in{{1, 65535, 4294967000, p, 0}, {1, 0, 400, p, 0}}, []out{{65535, 4294967000}, {0, 400}}},
		{"source change", []in{{1, 10, 100, p, 0}, {2, 5000, 777, p, 20 * time.Millisecond}, {2, 5001, 1737, p, 0}},
			[]out{{10, 100}, {11, 100 + 960}, {12, 100 + 960 + 960}}}, // 20ms at 48 kHz = 960 ticks
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &recSink{}
			dt := NewDownTrack(nil, sink, DownTrackOptions{})
			defer dt.Close()
			var prevStart time.Time
			var away time.Duration // bounds the time between two writes' clocks: previous start to this end
			for _, x := range c.in {
				time.Sleep(x.sleep)
				start := time.Now()
				require.NoError(t, dt.WriteRTP(&rtp.Packet{Header: rtp.Header{SSRC: x.ssrc, SequenceNumber: x.sn, Timestamp: x.ts}, Payload: x.payload}))
				if !prevStart.IsZero() {
					away = max(away, time.Since(prevStart))
				}
				prevStart = start
			}
			require.Eventually(t, func() bool { return sink.count() == len(c.want) }, time.Second, time.Millisecond)
			got := sink.get()
			for i, w := range c.want {
				require.Equal(t, w.sn, got[i].SN, "packet %d", i)
				if c.name == "source change" && i == 1 {
					// The timestamp advances by the wall time between the two sources: at least the
					// 20ms slept, at most what this goroutine measured around the two writes.
					adv := got[1].TS - got[0].TS
					t.Logf("away %v: timestamp advanced %d ticks at 48 kHz", away, adv)
					require.GreaterOrEqual(t, adv, uint32(960))
					require.LessOrEqual(t, adv, uint32(away.Seconds()*48000)+48)
					continue
				}
				if c.name == "source change" && i == 2 {
					require.Equal(t, got[1].TS+960, got[i].TS)
					continue
				}
				require.Equal(t, w.ts, got[i].TS, "packet %d", i)
			}
		})
	}
}

func TestDownTrackClose(t *testing.T) {
	dt := NewDownTrack(nil, &recSink{}, DownTrackOptions{})
	require.NoError(t, dt.Close())
	require.NoError(t, dt.Close())
	require.ErrorIs(t, dt.WriteRTP(&rtp.Packet{Payload: []byte{1}}), ErrClosed)

	// Close while the sink is blocked returns once the sink returns, and frees the queue.
	sink := &recSink{block: make(chan struct{})}
	dt = NewDownTrack(nil, sink, DownTrackOptions{})
	for i := range 50 {
		require.NoError(t, dt.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i)}, Payload: []byte{1}}))
	}
	time.AfterFunc(20*time.Millisecond, func() { close(sink.block) })
	require.NoError(t, dt.Close())
	require.Zero(t, dt.queued())
}

func TestDownTrackReplayPacing(t *testing.T) {
	tr, _ := trackWithGOP(t, 100) // 3.4 s: within the 5 s cap
	sink := &recSink{}
	dt := NewDownTrack(tr, sink, DownTrackOptions{ReplayRate: 500})
	defer dt.Close()
	start := time.Now()
	defer tr.AddWriter(dt)()
	require.Eventually(t, func() bool { return sink.count() == 104 }, 3*time.Second, time.Millisecond, "got %d", sink.count())
	took := time.Since(start)
	t.Logf("104 replayed packets at 500/s (burst %d) took %v", replayBurst, took)
	require.GreaterOrEqual(t, took, 100*time.Millisecond, "the replay is paced")
	v := sink.get()
	requireContinuous(t, v)
	for i := 4; i < len(v); i++ {
		require.Equal(t, v[i-1].TS+90, v[i].TS)
	}
}

// syncBuf is a goroutine-safe log destination.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDownTrackDropLog(t *testing.T) {
	tr, _ := publishOne(t, audioInfo)
	var logs syncBuf
	sink := &recSink{block: make(chan struct{})}
	dt := NewDownTrack(tr, sink, DownTrackOptions{QueuePackets: 4, DropLogInterval: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer dt.Close()
	defer tr.AddWriter(dt)()
	g := &h264Gen{ssrc: 9}
	for range 50 {
		require.NoError(t, tr.WriteRTP(g.pkt([]byte{1}, false)))
	}
	close(sink.block)
	require.NoError(t, tr.WriteRTP(g.pkt([]byte{1}, false))) // wakes the writer after its backlog
	defer func() { t.Logf("stats %+v sent %d log %q", dt.Stats(), sink.count(), logs.String()) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "packets dropped") }, 2*time.Second, time.Millisecond)
	out := logs.String()
	require.Contains(t, out, "stream=live/test")
	require.Contains(t, out, "track_id=audio")
	t.Logf("%s", out)
}

func TestDownTrackCloseDoesNotDrain(t *testing.T) {
	slow := &slowSink{delay: 20 * time.Millisecond}
	dt := NewDownTrack(nil, slow, DownTrackOptions{})
	for i := range 100 {
		require.NoError(t, dt.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i)}, Payload: []byte{1}}))
	}
	time.Sleep(30 * time.Millisecond)
	start := time.Now()
	require.NoError(t, dt.Close())
	took := time.Since(start)
	t.Logf("Close with ~100 packets queued behind a 20ms sink took %v (sent %d)", took, slow.n.Load())
	require.Less(t, took, time.Second, "Close does not drain the queue (that takes 2s)")
	require.Less(t, slow.n.Load(), int32(100))
}

type slowSink struct {
	delay time.Duration
	n     atomic.Int32
}

func (s *slowSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	time.Sleep(s.delay)
	s.n.Add(1)
	return len(payload), nil
}

// batchSink records, per packet, whether it was written inside a BeginBatch/EndBatch bracket, and
// when each bracket closed.
type batchSink struct {
	recSink
	mu      sync.Mutex
	open    bool
	nested  bool
	outside int
	batches []int // packets per bracket
	ends    []time.Time
}

func (s *batchSink) BeginBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		s.nested = true
	}
	s.open = true
	s.batches = append(s.batches, 0)
}

func (s *batchSink) EndBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = false
	s.ends = append(s.ends, time.Now())
}

func (s *batchSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	s.mu.Lock()
	if s.open {
		s.batches[len(s.batches)-1]++
	} else {
		s.outside++
	}
	s.mu.Unlock()
	return s.recSink.WriteRTP(h, payload)
}

func TestDownTrackBatches(t *testing.T) {
	tr, g := trackWithGOP(t, 100) // 3.4 s: within the 5 s cap
	sink := &batchSink{}
	dt := NewDownTrack(tr, sink, DownTrackOptions{ReplayRate: 500})
	defer dt.Close()
	defer tr.AddWriter(dt)()
	require.Eventually(t, func() bool { return sink.count() == 104 }, 3*time.Second, time.Millisecond)
	for range 10 { // live packets after the replay
		writeAll(t, tr, g.delta())
	}
	require.Eventually(t, func() bool { return sink.count() == 114 }, 3*time.Second, time.Millisecond)
	requireContinuous(t, sink.get())

	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("%d packets in %d brackets: %v", sink.count(), len(sink.batches), sink.batches)
	require.Zero(t, sink.outside, "every packet is written inside a bracket")
	require.False(t, sink.nested)
	require.False(t, sink.open, "every bracket is closed")
	sum, most := 0, 0
	for _, n := range sink.batches {
		sum += n
		most = max(most, n)
	}
	require.Equal(t, 114, sum)
	require.Greater(t, most, 1, "the burst of the paced replay goes in one bracket")
	require.LessOrEqual(t, most, writeBatch)
	// Pacing waits happen between brackets: 104 packets at 500/s after a burst of 32 take >= 100 ms,
	// spread over several brackets.
	require.Greater(t, len(sink.batches), 3)
	require.GreaterOrEqual(t, sink.ends[len(sink.ends)-1].Sub(sink.ends[0]), 100*time.Millisecond)
}

func TestDownTrackRingShrinksAfterBurst(t *testing.T) {
	tr, _ := publishOne(t, videoInfo)
	sink := &recSink{block: make(chan struct{})}
	dt := NewDownTrack(tr, sink, DownTrackOptions{})
	defer dt.Close()
	g := &h264Gen{ssrc: 3}
	for _, p := range g.keyframe() {
		require.NoError(t, dt.WriteRTP(p))
	}
	for range 700 { // a burst the blocked sink cannot take: the ring grows
		for _, p := range g.delta() {
			require.NoError(t, dt.WriteRTP(p))
		}
	}
	dt.mu.Lock()
	grown := len(dt.ring)
	dt.mu.Unlock()
	close(sink.block)
	require.Eventually(t, dt.settled, 3*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return sink.count() == 704 }, 3*time.Second, time.Millisecond)
	dt.mu.Lock()
	shrunk := len(dt.ring)
	dt.mu.Unlock()
	t.Logf("ring %d slots during the burst, %d once drained", grown, shrunk)
	require.GreaterOrEqual(t, grown, shrinkQueue)
	require.Equal(t, initialQueue, shrunk)
	requireContinuous(t, sink.get())
}
