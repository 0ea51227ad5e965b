package frames_test

import (
	"context"
	"testing"
	"time"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// BenchmarkSource: one pass of testdata/bf.flv (2 s: 51 H.264 High frames with B-frames, 95 AAC frames,
// about 200 RTP packets) through packetizers, the hub, the source's queue, depacketizers, DTS recovery
// and one listener. allocs/op are per pass (per frame: the shared Frame and its data).
func BenchmarkSource(b *testing.B) {
	m := loadMedia(b)
	hub := sfu.NewHub(sfu.Config{NoGOPCache: true}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(b, hub, "live/b", m, &fakePub{proto: "rtmp"}, 1000)
	src, err := frames.NewSource(context.Background(), hub, "live/b", frames.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = src.Close(); src.Wait() }()
	l, err := src.Listen(8192)
	if err != nil {
		b.Fatal(err)
	}
	n := len(m.video) + len(m.audio)
	var off int64
	b.ReportAllocs()
	for b.Loop() {
		ps.push(b, m, off, 0)
		off += 2040
		if got := collect(b, l, n, 5*time.Second); len(got) != n {
			b.Fatalf("got %d frames, want %d (%+v)", len(got), n, src.Stats())
		}
	}
	b.ReportMetric(float64(n), "frames/op")
}
