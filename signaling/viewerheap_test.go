package signaling

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
)

// BenchmarkWHEPViewerHeap measures the heap in use per WHEP viewer: 50 pion viewers (in this
// process: their own memory is counted too, so compare runs rather than read the absolute figure)
// of a 1000-byte VP8 stream at 500 packets/s, after 3 s of flow, enough for any per-viewer
// retransmission buffer (pion's NACK responder keeps 1024 packets) to fill. heap-B/viewer is the
// growth of runtime.MemStats.HeapInuse over the publisher-only baseline, divided by the viewers.
//
//	go test -run '^$' -bench WHEPViewerHeap -benchtime 1x ./signaling
func BenchmarkWHEPViewerHeap(b *testing.B) {
	const viewers = 50
	for b.Loop() {
		e := newEnv(b, sfu.Config{})
		vp8Publisher(b, e, "/whip/live/heap", 1000, 2*time.Millisecond)
		for e.hub.Stream("live/heap") == nil {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		base := heapInuse()
		pcs := make([]*webrtc.PeerConnection, viewers)
		got := make([]atomic.Int64, viewers)
		for i := range pcs {
			pcs[i] = newDroppingViewerPC(b, nil)
			playVideo(b, e, "/whep/live/heap", pcs[i], &got[i])
		}
		deadline := time.Now().Add(20 * time.Second)
		for i := range got {
			for got[i].Load() < 100 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got[i].Load() < 100 {
				b.Fatalf("viewer %d got %d packets", i, got[i].Load())
			}
		}
		time.Sleep(3 * time.Second)
		after := heapInuse()
		goroutines := runtime.NumGoroutine()
		b.ReportMetric(float64(after-base)/viewers, "heap-B/viewer")
		b.ReportMetric(float64(goroutines)/viewers, "goroutines/viewer")
		b.Logf("heap in use %d MB before the viewers, %d MB with %d (%.0f KB per viewer), %d goroutines",
			base>>20, after>>20, viewers, float64(after-base)/viewers/1024, goroutines)
		for _, pc := range pcs {
			_ = pc.Close()
		}
	}
}

// heapInuse is the heap in use after two collections.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
