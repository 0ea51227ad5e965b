package sfu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nbSink is a batchSink that says, once nonBlocking is set, that it never blocks.
type nbSink struct {
	batchSink
	nonBlocking atomic.Bool
}

func (s *nbSink) NonBlocking() bool { return s.nonBlocking.Load() }

func newNBSink(nonBlocking bool) *nbSink {
	s := &nbSink{}
	s.nonBlocking.Store(nonBlocking)
	return s
}

func TestWriterPoolDrainsManyDownTracks(t *testing.T) {
	pool := NewWriterPool(2)
	defer pool.Close()
	tr, _ := publishOne(t, videoInfo)
	base := runtime.NumGoroutine()
	const viewers = 50
	sinks := make([]*nbSink, viewers)
	dts := make([]*DownTrack, viewers)
	for i := range viewers {
		sinks[i] = newNBSink(true)
		dts[i] = NewDownTrack(tr, sinks[i], DownTrackOptions{Pool: pool})
		defer dts[i].Close()
		defer tr.AddWriter(dts[i])()
	}
	g := &h264Gen{ssrc: 7}
	writeAll(t, tr, g.keyframe())
	for range 60 {
		writeAll(t, tr, g.delta())
	}
	want := 4 + 60
	for i, s := range sinks {
		require.Eventually(t, func() bool { return s.count() == want }, 3*time.Second, time.Millisecond,
			"viewer %d got %d of %d", i, s.count(), want)
		requireContinuous(t, s.get())
		s.mu.Lock()
		require.Zero(t, s.outside, "written inside batches")
		s.mu.Unlock()
	}
	// The DownTracks' own goroutines ended: the two workers drain them all.
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base+2 }, 2*time.Second, 5*time.Millisecond,
		"goroutines: %d, %d before the DownTracks", runtime.NumGoroutine(), base)
	t.Logf("%d DownTracks drained by 2 workers; goroutines %d (before the DownTracks: %d)", viewers,
		runtime.NumGoroutine(), base)
	for _, d := range dts {
		require.True(t, d.settled())
	}
}

func TestWriterPoolHandOffMidStream(t *testing.T) {
	// The sink blocks (a WebRTC track before DTLS) until it says otherwise: the DownTrack's own
	// goroutine writes until then, the pool after, with no gap or repeat.
	pool := NewWriterPool(1)
	defer pool.Close()
	tr, _ := publishOne(t, videoInfo)
	s := newNBSink(false)
	d := NewDownTrack(tr, s, DownTrackOptions{Pool: pool})
	defer d.Close()
	defer tr.AddWriter(d)()
	g := &h264Gen{ssrc: 7}
	writeAll(t, tr, g.keyframe())
	for range 20 {
		writeAll(t, tr, g.delta())
	}
	require.Eventually(t, func() bool { return s.count() == 24 }, 3*time.Second, time.Millisecond)
	s.nonBlocking.Store(true)
	for range 40 {
		writeAll(t, tr, g.delta())
		time.Sleep(time.Millisecond)
	}
	require.Eventually(t, func() bool { return s.count() == 64 }, 3*time.Second, time.Millisecond)
	requireContinuous(t, s.get())
	d.mu.Lock()
	require.True(t, d.inPool, "the pool drains it now")
	d.mu.Unlock()
}

func TestWriterPoolReplayPacing(t *testing.T) {
	// A paced GOP replay in the pool: the worker never sleeps; the DownTrack comes back when its
	// turn does, and the other DownTracks are served meanwhile.
	pool := NewWriterPool(1)
	defer pool.Close()
	tr, _ := trackWithGOP(t, 100) // 3.4 s: within the 5 s cap
	s := newNBSink(true)
	d := NewDownTrack(tr, s, DownTrackOptions{ReplayRate: 500, Pool: pool})
	defer d.Close()
	other := newNBSink(true)
	od := NewDownTrack(tr, other, DownTrackOptions{ReplayRate: -1, Pool: pool})
	defer od.Close()
	start := time.Now()
	defer tr.AddWriter(d)()
	defer tr.AddWriter(od)()
	require.Eventually(t, func() bool { return other.count() == 104 }, 3*time.Second, time.Millisecond)
	otherTook := time.Since(start)
	require.Eventually(t, func() bool { return s.count() == 104 }, 3*time.Second, time.Millisecond)
	took := time.Since(start)
	t.Logf("paced replay of 104 packets at 500/s took %v; an unpaced one on the same worker %v", took, otherTook)
	require.GreaterOrEqual(t, took, 100*time.Millisecond, "paced")
	require.Less(t, otherTook, took/2, "the worker serves others during the pacing waits")
	requireContinuous(t, s.get())
}

func TestWriterPoolCloseAndConcurrency(t *testing.T) {
	// Tracks written, NACKed and closed concurrently (run with -race); Close returns while the
	// DownTrack sits in the pool's queue, and after the pool itself closed.
	pool := NewWriterPool(2)
	tr, _ := publishOne(t, videoInfo)
	var wg sync.WaitGroup
	dts := make([]*DownTrack, 20)
	for i := range dts {
		dts[i] = NewDownTrack(tr, newNBSink(true), DownTrackOptions{Pool: pool})
		remove := tr.AddWriter(dts[i])
		defer remove()
	}
	g := &h264Gen{ssrc: 9}
	writeAll(t, tr, g.keyframe())
	stop := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range g.delta() {
				_ = tr.WriteRTP(p)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			dts[k%len(dts)].Retransmit(uint16(k))
		}
	}()
	time.Sleep(50 * time.Millisecond)
	for _, d := range dts[:10] {
		require.NoError(t, d.Close())
	}
	pool.Close()
	time.Sleep(20 * time.Millisecond)
	for _, d := range dts[10:] {
		require.NoError(t, d.Close())
	}
	close(stop)
	wg.Wait()
}
