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

// TestConcurrentChurn runs publishers (taking each other over), subscribers and API readers at once
// on one key; run it with -race. In the end the hub is empty and every goroutine is gone (goleak).
func TestConcurrentChurn(t *testing.T) {
	h := NewHub(Config{Grace: 20 * time.Millisecond, Takeover: true}, Deps{})
	ctx := context.Background()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var published, subscribed atomic.Int64
	for i := range 2 {
		wg.Go(func() {
			for !stop.Load() {
				p, err := h.Publish(ctx, "live/churn", &fakePub{ID: NewClientID()}, []TrackInfo{videoInfo, audioInfo})
				if errors.Is(err, ErrPublisherExists) {
					continue // the other one is claiming
				}
				if err != nil {
					t.Error(err)
					return
				}
				published.Add(1)
				g := &h264Gen{ssrc: uint32(i + 1)}
				write := func(pkts []*rtp.Packet) { // taken over: ErrClosed is fine
					for _, pk := range pkts {
						_ = p.Track("video").WriteRTP(pk)
					}
				}
				for range 5 {
					write(g.keyframe())
					for range 5 {
						write(g.delta())
						_ = p.Track("audio").WriteRTP(g.pkt([]byte{1, 2}, false))
					}
				}
				p.Close()
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				s := newDTSub(NewClientID(), DownTrackOptions{QueuePackets: 16})
				unsub, err := h.Subscribe(ctx, "live/churn", s)
				if err != nil {
					if !errors.Is(err, ErrStreamNotFound) {
						t.Error(err)
					}
					s.closeDTs()
					time.Sleep(time.Millisecond)
					continue
				}
				subscribed.Add(1)
				time.Sleep(2 * time.Millisecond)
				unsub()
				s.closeDTs()
			}
		})
	}
	wg.Go(func() {
		for !stop.Load() {
			for _, s := range h.Streams() {
				_ = s.Tracks()
				_ = s.Subscribers()
				_ = s.Publisher()
				for _, tr := range s.Tracks() {
					_ = tr.Stats()
					_ = tr.Writers()
				}
			}
			_ = h.Client("nobody")
			time.Sleep(100 * time.Microsecond)
		}
	})
	// Run for 300ms, and longer (up to 10s) on a slow machine until both sides had their turns.
	deadline := time.Now().Add(10 * time.Second)
	time.Sleep(300 * time.Millisecond)
	for (published.Load() < 20 || subscribed.Load() < 20) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("publications %d, subscriptions %d", published.Load(), subscribed.Load())
	require.Positive(t, published.Load())
	require.Positive(t, subscribed.Load())
	require.Eventually(t, func() bool { return len(h.Streams()) == 0 }, time.Second, time.Millisecond,
		"no publisher and no subscriber: the stream ends")
	h.Close()
}
