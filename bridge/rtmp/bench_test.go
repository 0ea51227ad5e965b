package rtmp

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/sfu"
)

// flvTag is one audio (8) or video (9) tag of an FLV file.
type flvTag struct {
	typ  byte
	ts   uint32
	body []byte
}

// readFLV reads the audio and video tags of an FLV file.
func readFLV(tb testing.TB, path string) []flvTag {
	tb.Helper()
	b, err := os.ReadFile(path)
	require.NoError(tb, err)
	require.Equal(tb, "FLV", string(b[:3]))
	off := int(binary.BigEndian.Uint32(b[5:])) + 4
	var tags []flvTag
	for off+11 <= len(b) {
		typ := b[off] & 0x1f
		size := int(u24(b[off+1:]))
		ts := u24(b[off+4:]) | uint32(b[off+7])<<24
		if off+11+size > len(b) {
			break
		}
		if typ == 8 || typ == 9 {
			tags = append(tags, flvTag{typ: typ, ts: ts, body: b[off+11 : off+11+size]})
		}
		off += 11 + size + 4
	}
	return tags
}

type discardSub struct{ n int }

func (d *discardSub) Info() sfu.ClientInfo                         { return sfu.ClientInfo{ID: "bench", Protocol: "test"} }
func (d *discardSub) Close() error                                 { return nil }
func (d *discardSub) AddTrack(*sfu.Track) (sfu.TrackWriter, error) { return d, nil }
func (d *discardSub) WriteRTP(*rtp.Packet) error                   { d.n++; return nil }

// newBenchIngest makes an ingest for key on a real hub without a network connection.
func newBenchIngest(tb testing.TB, hub *sfu.Hub, key string, cfg Config) (*ingest, func()) {
	srv, err := New(cfg, Deps{Hub: hub})
	require.NoError(tb, err)
	c1, c2 := net.Pipe()
	ss := newSession(srv, &conn{Conn: c1, guard: newChunkGuard(8<<20, 32), onClose: func() {}})
	ss.ing = newIngest(ss, key, 1)
	return ss.ing, func() { ss.ing.close("bench"); c1.Close(); c2.Close() }
}

// BenchmarkIngestH264 feeds a recorded FLV (1280x720 30 fps H.264 High with B-frames ~3 Mb/s + AAC 128 kb/s, 2 s)
// through FLV parsing, packetizing and the hub to one subscriber. cpu-ms/s is CPU time per second of
// media (process CPU time, user+system): the ingest cost of one RTMP stream without go-rtmp's chunk
// parsing. "drop" is webrtc.bframes drop: the "video-webrtc" variant is packetized too.
func BenchmarkIngestH264(b *testing.B) {
	for _, mode := range []string{"keep", "drop"} {
		b.Run(mode, func(b *testing.B) { benchIngestH264(b, Config{BFrames: mode}) })
	}
}

func benchIngestH264(b *testing.B, cfg Config) {
	tags := readFLV(b, "testdata/h264_aac.flv")
	media := tags[len(tags)-1].ts - tags[0].ts
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	in, done := newBenchIngest(b, hub, "live/bench", cfg)
	defer done()
	// Publish with the first pass, then subscribe one writer.
	feed := func(base uint32) {
		for _, t := range tags {
			var err error
			if t.typ == 9 {
				err = in.video(base+t.ts, t.body)
			} else {
				err = in.audio(base+t.ts, t.body)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	feed(0)
	require.NotNil(b, in.pub)
	sub := &discardSub{}
	unsub, err := hub.Subscribe(context.Background(), "live/bench", sub)
	require.NoError(b, err)
	defer unsub()
	var bytes int64
	for _, t := range tags {
		bytes += int64(len(t.body))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	base := media + 40
	n0 := sub.n
	cpu0 := cpuTime()
	for b.Loop() {
		feed(base)
		base += media + 40
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e6/(float64(media)/1000), "cpu-ms/s")
	b.ReportMetric(float64(sub.n-n0)/float64(b.N), "pkts/op")
	require.Positive(b, sub.n-n0)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestRTMPLoopback sends the same recording through a real server over loopback TCP with a
// go-rtmp client (handshake, chunking, go-rtmp's parsing, our chunk guard, ingest, hub, one subscriber).
// cpu-ms/s is the process CPU time per second of media and includes the client's own cost.
func BenchmarkIngestRTMPLoopback(b *testing.B) {
	tags := readFLV(b, "testdata/h264_aac.flv")
	media := tags[len(tags)-1].ts - tags[0].ts
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	srv, err := New(Config{}, Deps{Hub: hub})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(context.Background()) }()
	base := "rtmp://" + ln.Addr().String()
	pub := dialPublisherB(b, base, "live", "loop")
	send := func(off uint32) {
		for _, tg := range tags {
			var err error
			if tg.typ == 9 {
				err = pub.stream.Write(6, off+tg.ts, &message.VideoMessage{Payload: bytesReader(tg.body)})
			} else {
				err = pub.stream.Write(4, off+tg.ts, &message.AudioMessage{Payload: bytesReader(tg.body)})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	send(0)
	var st *sfu.Stream
	require.Eventually(b, func() bool { st = hub.Stream("live/loop"); return st != nil && st.Track("video") != nil }, 5*time.Second, 10*time.Millisecond)
	sub := &countSub{}
	unsub, err := hub.Subscribe(context.Background(), "live/loop", sub)
	require.NoError(b, err)
	defer unsub()
	vt := st.Track("video")
	before := vt.Stats().Packets
	cpu0 := cpuTime()
	b.ResetTimer()
	off := media + 40
	for b.Loop() {
		send(off)
		off += media + 40
	}
	// Wait for the server to take everything sent.
	perPass := before // packets per pass, roughly (the first pass)
	require.Eventually(b, func() bool { return vt.Stats().Packets >= before+uint64(b.N)*perPass*9/10 }, 30*time.Second, 5*time.Millisecond)
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e6/(float64(media)/1000), "cpu-ms/s")
	require.Positive(b, sub.n.Load())
}

type countSub struct{ n atomic.Int64 }

func (d *countSub) Info() sfu.ClientInfo                         { return sfu.ClientInfo{ID: "bench2", Protocol: "test"} }
func (d *countSub) Close() error                                 { return nil }
func (d *countSub) AddTrack(*sfu.Track) (sfu.TrackWriter, error) { return d, nil }
func (d *countSub) WriteRTP(*rtp.Packet) error                   { d.n.Add(1); return nil }
