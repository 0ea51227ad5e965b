package sfu

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// TestDownTrackContinuityRandom feeds a video DownTrack a gap-free stream with padding, source
// changes and a sink that stalls at random: whatever it drops, the output sequence numbers go up by
// exactly one and the first packet starts a keyframe.
func TestDownTrackContinuityRandom(t *testing.T) {
	for seed := range uint64(5) {
		t.Run("", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			h := newTestHub(t, Config{NoGOPCache: true}, Deps{})
			p, err := h.Publish(context.Background(), "live/rand", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
			require.NoError(t, err)
			tr := p.Track("video")
			sink := &recSink{}
			stall := make(chan struct{})
			close(stall) // start open
			gate := &stallSink{rec: sink, gate: stall}
			dt := NewDownTrack(tr, gate, DownTrackOptions{QueuePackets: 32})
			defer dt.Close()
			defer tr.AddWriter(dt)()

			g := &h264Gen{ssrc: 1, sn: uint16(rng.Uint32()), ts: rng.Uint32()}
			var written int
			for frame := range 600 {
				switch r := rng.IntN(100); {
				case r < 2: // a new source
					g = &h264Gen{ssrc: g.ssrc + 1, sn: uint16(rng.Uint32()), ts: rng.Uint32()}
				case r < 6: // the sink stalls for a while
					gate.set(false)
				case r < 20:
					gate.set(true)
				}
				var pkts []*rtp.Packet
				if frame%30 == 0 || rng.IntN(50) == 0 {
					pkts = g.keyframe()
				} else {
					pkts = g.delta()
				}
				if rng.IntN(10) == 0 { // padding (consumes a sequence number)
					pkts = append(pkts, g.pkt(nil, false))
				}
				for _, pk := range pkts {
					require.NoError(t, tr.WriteRTP(pk))
					written++
				}
			}
			gate.set(true)
			require.Eventually(t, func() bool { return dt.queued() == 0 }, 2*time.Second, time.Millisecond)
			time.Sleep(5 * time.Millisecond)
			v := sink.get()
			require.NotEmpty(t, v)
			requireContinuous(t, v)
			require.True(t, IsKeyframe("video/H264", v[0].Payload))
			st := dt.Stats()
			t.Logf("seed %d: written %d, sent %d, dropped (slow) %d", seed, written, len(v), st.Dropped)
		})
	}
}

// stallSink passes packets to rec, waiting while its gate is closed (a subscriber that stalls).
type stallSink struct {
	rec  *recSink
	mu   sync.Mutex
	gate chan struct{} // closed: open
}

func (s *stallSink) set(open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	isOpen := false
	select {
	case <-s.gate:
		isOpen = true
	default:
	}
	switch {
	case open && !isOpen:
		close(s.gate)
	case !open && isOpen:
		s.gate = make(chan struct{})
	}
}

func (s *stallSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	<-g
	return s.rec.WriteRTP(h, payload)
}
