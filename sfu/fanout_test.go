package sfu

import (
	"context"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// fanout is a video track with n DownTrack subscribers whose sinks discard, fed a looping 30-packet
// GOP (a 4-packet keyframe, 26 one-packet deltas) of 1,000-byte payloads.
type fanout struct {
	hub   *Hub
	track *Track
	dts   []*DownTrack
	sinks []*discardSink
	gop   []rtp.Packet
	frame []uint32 // frame index of each GOP packet
	pkt   rtp.Packet
	i     int
}

func newFanout(tb testing.TB, n int) *fanout {
	f := &fanout{hub: NewHub(Config{}, Deps{})}
	p, err := f.hub.Publish(context.Background(), "live/bench", &fakePub{ID: "pub"}, []TrackInfo{videoInfo})
	require.NoError(tb, err)
	f.track = p.Track("video")
	for range n {
		s := &discardSink{}
		dt := NewDownTrack(f.track, s, DownTrackOptions{})
		f.track.AddWriter(dt)
		f.dts = append(f.dts, dt)
		f.sinks = append(f.sinks, s)
	}
	body := make([]byte, 1000)
	g := &h264Gen{ssrc: 42}
	var frames uint32
	add := func(pkts []*rtp.Packet) {
		for _, p := range pkts {
			pay := append([]byte(nil), p.Payload...)
			if len(pay) < 1000 {
				pay = append(pay, body[:1000-len(pay)]...)
			}
			p.Payload = pay
			f.gop = append(f.gop, *p)
			f.frame = append(f.frame, frames)
		}
		frames++
	}
	add(g.keyframe())
	for range 26 {
		add(g.delta())
	}
	return f
}

// write sends the next packet of the looping GOP, reusing one rtp.Packet as an adapter does.
func (f *fanout) write() {
	k := f.i % len(f.gop)
	loop := uint32(f.i / len(f.gop))
	src := &f.gop[k]
	f.pkt.Header = src.Header
	f.pkt.SequenceNumber = uint16(f.i)
	f.pkt.Timestamp = (loop*27 + f.frame[k]) * 3000
	f.pkt.Payload = src.Payload
	_ = f.track.WriteRTP(&f.pkt)
	f.i++
}

// drain waits until every DownTrack has sent what it queued.
func (f *fanout) drain() {
	for i := 0; i < len(f.dts); {
		if f.dts[i].queued() == 0 {
			i++
			continue
		}
		time.Sleep(20 * time.Microsecond) // leave the CPUs to the writer goroutines
	}
}

func (f *fanout) close() {
	for _, d := range f.dts {
		_ = d.Close()
	}
	f.hub.Close()
}

func (f *fanout) stats() (sent, dropped uint64) {
	for _, d := range f.dts {
		st := d.Stats()
		sent += st.Packets
		dropped += st.Dropped
	}
	return sent, dropped
}

func TestWriteRTPAllocs(t *testing.T) {
	f := newFanout(t, 10)
	defer f.close()
	write := func() {
		f.write()
		runtime.Gosched() // let the writer goroutines drain (AllocsPerRun runs with GOMAXPROCS 1)
	}
	for range 3000 { // warm-up: GOP cache, pools and queues reach their steady size
		write()
	}
	allocs := testing.AllocsPerRun(3000, write)
	sent, dropped := f.stats()
	t.Logf("allocs per packet to 10 DownTracks: %v (sent %d, dropped %d)", allocs, sent, dropped)
	require.Positive(t, sent)
	require.Zero(t, allocs)
}

// BenchmarkFanout measures the cost of delivering one packet (1,000-byte payload) from a publisher to
// n DownTrack subscribers: Track.WriteRTP plus every writer goroutine's work. It waits for the queues
// to drain every 512 packets so no subscriber drops (drop% shows it stays 0). ns/op is wall time, which
// includes those waits; cpu-ns/op is the process's CPU time (user+system, every goroutine) per packet.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 500} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			f := newFanout(b, n)
			defer f.close()
			for range 1000 {
				f.write()
			}
			s0, d0 := f.stats()
			cpu0 := cpuTime()
			b.ReportAllocs()
			for b.Loop() {
				f.write()
				if f.i%512 == 0 {
					f.drain()
				}
			}
			f.drain()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			s1, d1 := f.stats()
			if total := float64(s1 - s0 + d1 - d0); total > 0 {
				b.ReportMetric(100*float64(d1-d0)/total, "drop%")
			}
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanoutPaced is BenchmarkFanout with packets 200µs apart (5,000 packets/s: a few busy
// streams' worth), so writer goroutines go idle between packets and pay a wake-up each time: closer to
// a live server than back-to-back packets. cpu-ns/op is the figure to read; ns/op is mostly the pacing.
func BenchmarkFanoutPaced(b *testing.B) {
	for _, n := range []int{1, 10, 100, 500} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			f := newFanout(b, n)
			defer f.close()
			for range 300 {
				f.write()
			}
			f.drain()
			cpu0 := cpuTime()
			b.ReportAllocs()
			next := time.Now()
			for b.Loop() {
				f.write()
				next = next.Add(200 * time.Microsecond)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
			}
			f.drain()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
