package sfu

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// rtxGen makes an H.264 stream whose every packet has a payload of its own: keyframes as h264Gen's
// (their last FU-A carries the index), delta frames one single-NAL packet with the index.
type rtxGen struct {
	h264Gen
	n int
}

func (g *rtxGen) key() []*rtp.Packet {
	ps := g.keyframe()
	g.n++
	ps[3].Payload = append(ps[3].Payload, byte(g.n), byte(g.n>>8))
	return ps
}

// frames writes a keyframe and n delta frames to tr.
func (g *rtxGen) frames(t *testing.T, tr *Track, n int) {
	t.Helper()
	writeAll(t, tr, g.key())
	for range n {
		writeAll(t, tr, []*rtp.Packet{g.delta()})
	}
}

func (g *rtxGen) delta() *rtp.Packet {
	g.n++
	p := g.pkt([]byte{0x41, 0x9a, byte(g.n), byte(g.n >> 8), byte(g.n >> 16)}, true)
	g.ts += 3000
	return p
}

func (g *rtxGen) padding() *rtp.Packet {
	p := g.pkt(nil, false)
	p.Padding = true
	return p
}

// splitRTX sorts what a sink got: the first packet of each sequence number is the one sent live
// (or replayed); a later one is a retransmission, which must be byte-identical to the packet sent
// with that number (header fields the DownTrack sets, and payload). It returns the live packets by
// sequence number and the number of retransmissions.
func splitRTX(t *testing.T, got []sent) (map[uint16]sent, int) {
	t.Helper()
	live := map[uint16]sent{}
	rtx := 0
	for _, p := range got {
		first, ok := live[p.SN]
		if !ok {
			live[p.SN] = p
			continue
		}
		rtx++
		require.Equal(t, first.TS, p.TS, "retransmission of %d: timestamp", p.SN)
		require.Equal(t, first.Marker, p.Marker, "retransmission of %d: marker", p.SN)
		require.True(t, bytes.Equal(first.Payload, p.Payload), "retransmission of %d: payload %x, sent %x", p.SN, p.Payload, first.Payload)
	}
	return live, rtx
}

// settle waits until the DownTrack has sent everything queued.
func settle(t *testing.T, dt *DownTrack) {
	t.Helper()
	require.Eventually(t, dt.settled, 2*time.Second, time.Millisecond)
}

// retransmitAll asks dt for every sequence number in sns, 8 at a time (the smallest queue bound of
// the tests), and waits until what it queued is sent.
func retransmitAll(t *testing.T, dt *DownTrack, sink *recSink, sns []uint16) int {
	t.Helper()
	total := 0
	for len(sns) > 0 {
		k := min(len(sns), 8)
		before := sink.count()
		q := dt.Retransmit(sns[:k]...)
		require.Eventually(t, func() bool { return sink.count() == before+q }, 2*time.Second, time.Millisecond)
		settle(t, dt)
		total += q
		sns = sns[k:]
	}
	return total
}

func sortedSNs(live map[uint16]sent, got []sent) []uint16 {
	var out []uint16
	seen := map[uint16]bool{}
	for _, p := range got {
		if _, ok := live[p.SN]; ok && !seen[p.SN] {
			seen[p.SN] = true
			out = append(out, p.SN)
		}
	}
	return out
}

func TestRetransmitMapping(t *testing.T) {
	for _, c := range []struct {
		name string
		// run feeds the track (and may add the DownTrack later itself through add) and returns the
		// output numbers that must be resent and those that must not.
		run func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16)
	}{
		{"plain", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			dt, sink := add(tr)
			g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 1000}}
			g.frames(t, tr, 20)
			settle(t, dt)
			got := sink.get()
			last := got[len(got)-1].SN
			return dt, sink, snsOf(got), []uint16{last + 1, last + 2, last + 1000, got[0].SN - 1}
		}},
		{"upstream gap, then the late packet", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			dt, sink := add(tr)
			g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 50}}
			writeAll(t, tr, g.key())
			writeAll(t, tr, []*rtp.Packet{g.delta()})
			lost := g.delta() // lost upstream for now
			for range 5 {
				writeAll(t, tr, []*rtp.Packet{g.delta()})
			}
			settle(t, dt)
			require.Equal(t, 0, dt.Retransmit(lost.SequenceNumber), "not in the history: nothing to resend")
			require.Equal(t, uint64(1), dt.Stats().RetransmitMissed)
			writeAll(t, tr, []*rtp.Packet{lost}) // arrives late: forwarded in its epoch
			settle(t, dt)
			return dt, sink, snsOf(sink.get()), nil
		}},
		{"own drops and padding start epochs", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			block := &recSink{block: make(chan struct{})}
			dt := NewDownTrack(tr, block, DownTrackOptions{QueuePackets: 8})
			t.Cleanup(func() { _ = dt.Close() })
			t.Cleanup(tr.AddWriter(dt))
			g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 7000}}
			g.frames(t, tr, 3)
			writeAll(t, tr, []*rtp.Packet{g.padding(), g.padding()})
			for range 30 { // the queue (8) overflows: dropped until a keyframe
				writeAll(t, tr, []*rtp.Packet{g.delta()})
			}
			require.Positive(t, dt.Stats().Dropped)
			close(block.block)
			settle(t, dt)
			writeAll(t, tr, g.key())
			for range 4 {
				writeAll(t, tr, []*rtp.Packet{g.delta(), g.padding()})
			}
			settle(t, dt)
			got := block.get()
			requireContinuous(t, got)
			last := got[len(got)-1].SN
			return dt, block, snsOf(got), []uint16{last + 1}
		}},
		{"wraparound", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			dt, sink := add(tr)
			g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 65520, ts: 4294960000}}
			g.frames(t, tr, 30)
			settle(t, dt)
			got := sink.get()
			require.Less(t, got[len(got)-1].SN, uint16(100), "wrapped")
			return dt, sink, snsOf(got), []uint16{got[len(got)-1].SN + 1}
		}},
		{"history overrun", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			dt, sink := add(tr)
			g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 100}}
			g.frames(t, tr, rtxVideoPackets+100)
			settle(t, dt)
			all := snsOf(sink.get())
			n := len(all)
			return dt, sink, all[n-rtxVideoPackets:], all[:n-rtxVideoPackets]
		}},
		{"SSRC change within a publication", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			dt, sink := add(tr)
			a := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 100}}
			a.frames(t, tr, 5)
			b := &rtxGen{h264Gen: h264Gen{ssrc: 2, sn: 5000, ts: 5}, n: 1000}
			b.frames(t, tr, 5)
			c := &rtxGen{h264Gen: h264Gen{ssrc: 3, sn: 5002, ts: 5}, n: 2000} // takes 4 of b's slots
			writeAll(t, tr, c.key())
			settle(t, dt)
			got := sink.get()
			requireContinuous(t, got)
			// a's 9 and c's 4 packets and 5 of b's 9 are still certain; b's 5002-5005 have left
			// the history (c's took their slots, and the source is checked).
			sns := snsOf(got)
			require.Len(t, sns, 22)
			return dt, sink, append(sns[:11:11], sns[15:]...), sns[11:15]
		}},
		{"new publication", func(t *testing.T, h *Hub, tr *Track, add func(*Track) (*DownTrack, *recSink)) (*DownTrack, *recSink, []uint16, []uint16) {
			var dt *DownTrack
			sink := &recSink{}
			unsub, err := h.Subscribe(context.Background(), "live/test", &fakeSub{ID: "v", AddTrackFunc: func(tr *Track) (TrackWriter, error) {
				dt = NewDownTrack(tr, sink, DownTrackOptions{})
				return dt, nil
			}})
			require.NoError(t, err)
			t.Cleanup(func() { unsub(); _ = dt.Close() })
			a := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 100}}
			a.frames(t, tr, 5)
			settle(t, dt)
			old := snsOf(sink.get())
			require.NotNil(t, tr.pub.Load())
			tr.pub.Load().Close()
			p2, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "b"}, []TrackInfo{videoInfo})
			require.NoError(t, err)
			require.Same(t, tr, p2.Track("video"))
			b := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 106, ts: 99}, n: 1000} // same SSRC, numbers go on
			b.frames(t, tr, 5)
			settle(t, dt)
			got := sink.get()
			requireContinuous(t, got)
			return dt, sink, snsOf(got)[len(old):], old // the old source's history is gone
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newTestHub(t, Config{NoGOPCache: true}, Deps{})
			p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
			require.NoError(t, err)
			tr := p.Track("video")
			add := func(tr *Track) (*DownTrack, *recSink) {
				sink := &recSink{}
				dt := NewDownTrack(tr, sink, DownTrackOptions{})
				t.Cleanup(func() { _ = dt.Close() })
				t.Cleanup(tr.AddWriter(dt))
				return dt, sink
			}
			dt, sink, can, cannot := c.run(t, h, tr, add)
			require.NotEmpty(t, can)
			st0 := dt.Stats()
			q := retransmitAll(t, dt, sink, can)
			require.Equal(t, len(can), q, "every packet sent is resent")
			if len(cannot) > 0 {
				require.Zero(t, dt.Retransmit(cannot...), "numbers never sent, reused or too old")
			}
			_, rtx := splitRTX(t, sink.get())
			require.Equal(t, len(can), rtx)
			st := dt.Stats()
			require.Equal(t, st0.Retransmitted+uint64(len(can)), st.Retransmitted)
			require.Equal(t, st0.RetransmitMissed+uint64(len(cannot)), st.RetransmitMissed)
			require.Equal(t, st.Retransmitted, tr.WriterStats().Retransmitted, "the track sums them")
			t.Logf("resent %d, refused %d (stats %+v)", q, len(cannot), st)
		})
	}
}

func snsOf(got []sent) []uint16 {
	out := make([]uint16, len(got))
	for i, p := range got {
		out[i] = p.SN
	}
	return out
}

// TestRetransmitReplay: packets replayed from the GOP cache (their timestamps compressed) are never
// resent; the live packets after them are.
func TestRetransmitReplay(t *testing.T) {
	h := newTestHub(t, Config{}, Deps{})
	p, err := h.Publish(context.Background(), "live/test", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
	require.NoError(t, err)
	tr := p.Track("video")
	g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 300}}
	g.frames(t, tr, 10)
	sink := &recSink{}
	dt := NewDownTrack(tr, sink, DownTrackOptions{ReplayRate: -1})
	defer dt.Close()
	defer tr.AddWriter(dt)()
	settle(t, dt)
	replayed := snsOf(sink.get())
	require.Len(t, replayed, 14)
	for range 10 {
		writeAll(t, tr, []*rtp.Packet{g.delta()})
	}
	settle(t, dt)
	live := snsOf(sink.get())[len(replayed):]
	require.Zero(t, dt.Retransmit(replayed...), "replayed packets are not resent")
	require.Equal(t, uint64(len(replayed)), dt.Stats().RetransmitMissed)
	require.Equal(t, len(live), retransmitAll(t, dt, sink, live))
	_, rtx := splitRTX(t, sink.get())
	require.Equal(t, len(live), rtx)
}

// TestRetransmitBounds: a NACK storm is bounded by the queue and by the rate.
func TestRetransmitBounds(t *testing.T) {
	t.Run("queue", func(t *testing.T) {
		tr, _ := publishOne(t, videoInfo)
		sink := &recSink{}
		dt := NewDownTrack(tr, sink, DownTrackOptions{QueuePackets: 16})
		defer dt.Close()
		defer tr.AddWriter(dt)()
		g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 1}}
		writeAll(t, tr, g.key())
		for range 100 {
			writeAll(t, tr, []*rtp.Packet{g.delta()})
			settle(t, dt)
		}
		sns := snsOf(sink.get())
		sink.mu.Lock() // the writer blocks on its next packet
		q := dt.Retransmit(sns...)
		queued := dt.queued()
		sink.mu.Unlock()
		t.Logf("storm of %d: %d queued (bound 16), %d refused", len(sns), q, dt.Stats().RetransmitMissed)
		require.LessOrEqual(t, queued, 16)
		require.LessOrEqual(t, q, 16)
		require.Equal(t, uint64(len(sns)-q), dt.Stats().RetransmitMissed)
		settle(t, dt)
		_, rtx := splitRTX(t, sink.get())
		require.Equal(t, q, rtx)
	})
	t.Run("rate", func(t *testing.T) {
		tr, _ := publishOne(t, audioInfo)
		sink := &recSink{}
		dt := NewDownTrack(tr, sink, DownTrackOptions{RetransmitRate: 1})
		defer dt.Close()
		defer tr.AddWriter(dt)()
		g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 1}}
		for range rtxAudioPackets {
			writeAll(t, tr, []*rtp.Packet{g.delta()})
		}
		settle(t, dt)
		sns := snsOf(sink.get())
		require.Equal(t, rtxAudioPackets, retransmitAll(t, dt, sink, sns), "a burst of the history's size")
		require.LessOrEqual(t, dt.Retransmit(sns...), 1, "then 1 per second")
		require.GreaterOrEqual(t, dt.Stats().RetransmitMissed, uint64(rtxAudioPackets-1))
	})
}

// TestRetransmitConcurrent: NACK readers of several DownTracks ask while the track's writer fans
// packets out (run with -race); every retransmission is the packet sent with its number.
func TestRetransmitConcurrent(t *testing.T) {
	tr, _ := publishOne(t, videoInfo)
	const viewers = 4
	type view struct {
		dt   *DownTrack
		sink *recSink
	}
	var vs []view
	for range viewers {
		sink := &recSink{}
		dt := NewDownTrack(tr, sink, DownTrackOptions{QueuePackets: 4096, RetransmitRate: -1})
		defer dt.Close()
		defer tr.AddWriter(dt)()
		vs = append(vs, view{dt, sink})
	}
	g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 65000}}
	writeAll(t, tr, g.key())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, v := range vs {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), uint64(j)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					v.sink.mu.Lock()
					var last uint16
					if n := len(v.sink.pkts); n > 0 {
						last = v.sink.pkts[n-1].SN
					}
					v.sink.mu.Unlock()
					var sns [17]uint16
					for k := range sns {
						sns[k] = last - uint16(r.IntN(700))
					}
					v.dt.Retransmit(sns[:]...)
					time.Sleep(50 * time.Microsecond)
				}
			}()
		}
	}
	for i := range 3000 {
		if i%300 == 0 {
			writeAll(t, tr, g.key())
		}
		writeAll(t, tr, []*rtp.Packet{g.delta()})
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	var total uint64
	for _, v := range vs {
		settle(t, v.dt)
		live, rtx := splitRTX(t, v.sink.get())
		st := v.dt.Stats()
		require.Equal(t, 3000+11*4, len(live)+int(st.Dropped), "every packet sent or counted dropped")
		require.Equal(t, uint64(rtx), st.Retransmitted)
		total += st.Retransmitted
		t.Logf("viewer: %d live, %d dropped, %d retransmitted, %d refused", len(live), st.Dropped, rtx, st.RetransmitMissed)
	}
	require.Positive(t, total)
}

// TestRetransmitAllocs: answering a NACK allocates nothing (the history and the queue are reused).
func TestRetransmitAllocs(t *testing.T) {
	tr, _ := publishOne(t, videoInfo)
	sink := &discardSink{}
	dt := NewDownTrack(tr, sink, DownTrackOptions{RetransmitRate: -1})
	defer dt.Close()
	defer tr.AddWriter(dt)()
	g := &rtxGen{h264Gen: h264Gen{ssrc: 1, sn: 1}}
	g.frames(t, tr, 100)
	settle(t, dt)
	var sns [17]uint16
	for i := range sns {
		sns[i] = g.sn - 1 - uint16(2*i)
	}
	ask := func() {
		if dt.Retransmit(sns[:]...) != len(sns) {
			t.Fatal("not resent")
		}
		for !dt.settled() {
			runtime.Gosched()
		}
	}
	for range 100 { // warm-up: the free lists and the queue reach their size
		ask()
	}
	allocs := testing.AllocsPerRun(500, ask)
	t.Logf("allocs per NACK of 17 packets: %v", allocs)
	require.Zero(t, allocs)
}
