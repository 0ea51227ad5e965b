package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/estuary-media/estuary/sfu"
)

// BenchmarkScrape: one /metrics scrape of a node with 100 streams of two tracks and 10 viewers each.
func BenchmarkScrape(b *testing.B) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	var unsubs []func()
	for i := range 100 {
		key := fmt.Sprintf("live/s%d", i)
		_, err := hub.Publish(context.Background(), key, &testPub{id: key, proto: "rtmp"}, []sfu.TrackInfo{
			{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
			{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100, Channels: 2}},
		})
		if err != nil {
			b.Fatal(err)
		}
		for j := range 10 {
			u, err := hub.Subscribe(context.Background(), key, &testSub{id: fmt.Sprintf("%s-%d", key, j), proto: "webrtc"})
			if err != nil {
				b.Fatal(err)
			}
			unsubs = append(unsubs, u)
		}
	}
	defer func() {
		for _, u := range unsubs {
			u()
		}
	}()
	m, err := New(Config{NoRuntime: true}, Deps{Hub: hub})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
