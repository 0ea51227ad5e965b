package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testPub struct{ id, proto string }

func (p *testPub) Info() sfu.ClientInfo           { return sfu.ClientInfo{ID: p.id, Protocol: p.proto} }
func (p *testPub) Close() error                   { return nil }
func (p *testPub) RequestKeyframe(trackID string) {}

// countingWriter is a TrackWriter that reports what it got (as a DownTrack does), dropping every
// third packet as a slow viewer would.
type countingWriter struct{ pkts, bytes, dropped atomic.Uint64 }

func (w *countingWriter) WriteRTP(p *rtp.Packet) error {
	if (w.pkts.Load()+w.dropped.Load())%3 == 2 {
		w.dropped.Add(1)
		return nil
	}
	w.pkts.Add(1)
	w.bytes.Add(uint64(len(p.Payload)))
	return nil
}

func (w *countingWriter) Stats() sfu.WriterStats {
	return sfu.WriterStats{Packets: w.pkts.Load(), Bytes: w.bytes.Load(), Dropped: w.dropped.Load(),
		Retransmitted: w.pkts.Load() / 4, RetransmitMissed: w.dropped.Load() / 2}
}

type testSub struct {
	id, proto string
	w         countingWriter
}

func (s *testSub) Info() sfu.ClientInfo { return sfu.ClientInfo{ID: s.id, Protocol: s.proto} }
func (s *testSub) Close() error         { return nil }
func (s *testSub) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	if t.ID() != "audio" {
		return nil, sfu.ErrTrackSkipped
	}
	return &s.w, nil
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err, rec.Body.String())
	return fams
}

// value is the metric of fam whose labels include all of want (name=value pairs), or -1.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			ok := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

func TestNewNeedsHub(t *testing.T) {
	_, err := New(Config{}, Deps{})
	require.ErrorIs(t, err, ErrNoHub)
}

func TestScrape(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{Grace: 10 * time.Millisecond}, sfu.Deps{})
	defer hub.Close()
	relays := []Relay{{Stream: "live/a", Direction: "serve", Up: true, Sessions: 2}, {Stream: "live/b", Direction: "pull", Up: false}}
	var nacks, transcodeMS atomic.Uint64
	m, err := New(Config{NodeID: "n1", Role: "origin", Version: "v", HiddenProtocols: []string{"mux"}}, Deps{
		Hub:         hub,
		Viewers:     func() []Viewer { return []Viewer{{Protocol: "flv", Dropped: 4}, {Protocol: "flv"}} },
		Registry:    func() RegistryStats { return RegistryStats{Leases: 1, RefreshErrors: 3, Unreachable: true} },
		Relays:      func() []Relay { return relays },
		Connections: func() map[string]int { return map[string]int{"rtmp": 2} },
		Refused:     func() map[string]uint64 { return map[string]uint64{"rtmp": 5} },
		NACKs:       func() uint64 { return nacks.Load() },
		UDPBatches:  func() (uint64, uint64) { return 700, 100 },
		TranscodeSeconds: func() map[string]float64 {
			return map[string]float64{"aac_to_opus": float64(transcodeMS.Load()) / 1000, "opus_to_aac": 0.25}
		},
	})
	require.NoError(t, err)

	fams := scrape(t, m.Handler())
	require.NotNil(t, fams["go_goroutines"], "go runtime collector")
	require.NotNil(t, fams["process_start_time_seconds"], "process collector")
	require.Equal(t, 0.0, value(fams, "estuary_streams"))
	require.Equal(t, 1.0, value(fams, "estuary_build_info", "node_id", "n1", "role", "origin"))

	pub, err := hub.Publish(context.Background(), "live/a", &testPub{id: "p", proto: "rtmp"}, []sfu.TrackInfo{
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	viewer := &testSub{id: "v", proto: "webrtc"}
	unsub, err := hub.Subscribe(context.Background(), "live/a", viewer)
	require.NoError(t, err)
	hidden := &testSub{id: "m", proto: "mux"}
	unsubHidden, err := hub.Subscribe(context.Background(), "live/a", hidden)
	require.NoError(t, err)
	defer unsubHidden()

	tests := []struct {
		name    string
		packets int
	}{
		{name: "first", packets: 9},
		{name: "more", packets: 30},
	}
	var sentIn, sentBytes uint64
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: make([]byte, 100)}
			for range tc.packets {
				pkt.SequenceNumber++
				pkt.Timestamp += 960
				require.NoError(t, pub.Track("audio").WriteRTP(&pkt))
			}
			sentIn += uint64(tc.packets)
			sentBytes += uint64(tc.packets) * 100
			fams := scrape(t, m.Handler())
			require.Equal(t, 1.0, value(fams, "estuary_streams"))
			require.Equal(t, 1.0, value(fams, "estuary_publishers", "protocol", "rtmp"))
			require.Equal(t, 1.0, value(fams, "estuary_viewers", "protocol", "webrtc"))
			require.Equal(t, -1.0, value(fams, "estuary_viewers", "protocol", "mux"), "hidden protocol")
			require.Equal(t, 2.0, value(fams, "estuary_viewers", "protocol", "flv"))
			require.Equal(t, float64(sentIn), value(fams, "estuary_received_packets_total"))
			require.Equal(t, float64(sentBytes), value(fams, "estuary_received_bytes_total"))
			require.Equal(t, float64(sentBytes), value(fams, "estuary_stream_received_bytes_total", "stream", "live/a", "track", "audio"))
			st := viewer.w.Stats()
			require.Positive(t, st.Dropped)
			// Two subscribers share a writer type: the viewer and the hidden one each count.
			both := st.Packets + hidden.w.Stats().Packets
			require.Equal(t, float64(both), value(fams, "estuary_sent_packets_total"))
			require.Equal(t, float64(st.Dropped+hidden.w.Stats().Dropped), value(fams, "estuary_dropped_packets_total"))
			hs := hidden.w.Stats()
			require.Equal(t, float64(st.Retransmitted+hs.Retransmitted), value(fams, "estuary_retransmitted_packets_total"))
			require.Equal(t, float64(st.RetransmitMissed+hs.RetransmitMissed), value(fams, "estuary_retransmit_missed_packets_total"))
			require.Equal(t, 700.0, value(fams, "estuary_webrtc_batched_datagrams_total"))
			require.Equal(t, 100.0, value(fams, "estuary_webrtc_batch_syscalls_total"))
			require.Equal(t, 1.0, value(fams, "estuary_stream_viewers", "stream", "live/a"))
		})
	}
	pub.Track("audio").RequestKeyframe()
	fams = scrape(t, m.Handler())
	require.Equal(t, 1.0, value(fams, "estuary_keyframe_requests_total"))
	require.Equal(t, 1.0, value(fams, "estuary_stream_keyframe_requests_total", "stream", "live/a", "track", "audio"))
	require.Equal(t, 2.0, value(fams, "estuary_relays", "direction", "serve", "state", "up"))
	require.Equal(t, 1.0, value(fams, "estuary_relays", "direction", "pull", "state", "down"))
	require.Equal(t, 3.0, value(fams, "estuary_registry_refresh_errors_total"))
	require.Equal(t, 1.0, value(fams, "estuary_registry_unreachable"))
	require.Equal(t, 2.0, value(fams, "estuary_connections", "protocol", "rtmp"))
	require.Equal(t, 5.0, value(fams, "estuary_connections_refused_total", "protocol", "rtmp"))
	require.Equal(t, 4.0, value(fams, "estuary_frame_viewer_dropped_total"))
	require.Equal(t, 0.0, value(fams, "estuary_nacks_received_total"))
	nacks.Add(17)
	fams = scrape(t, m.Handler())
	require.Equal(t, 17.0, value(fams, "estuary_nacks_received_total"))
	require.Equal(t, 0.0, value(fams, "estuary_transcode_seconds_total", "direction", "aac_to_opus"))
	require.Equal(t, 0.25, value(fams, "estuary_transcode_seconds_total", "direction", "opus_to_aac"))
	transcodeMS.Add(1500)
	fams = scrape(t, m.Handler())
	require.Equal(t, 1.5, value(fams, "estuary_transcode_seconds_total", "direction", "aac_to_opus"))
	before := value(fams, "estuary_sent_bytes_total")

	// The viewer leaves and the stream ends: node totals never go down.
	unsub()
	unsubHidden()
	pub.Close()
	require.Eventually(t, func() bool { return hub.Stream("live/a") == nil }, 2*time.Second, 5*time.Millisecond)
	fams = scrape(t, m.Handler())
	require.Equal(t, 0.0, value(fams, "estuary_streams"))
	require.Equal(t, float64(sentBytes), value(fams, "estuary_received_bytes_total"))
	require.Equal(t, before, value(fams, "estuary_sent_bytes_total"))
	require.Equal(t, 1.0, value(fams, "estuary_keyframe_requests_total"), "totals keep gone tracks")
	require.Equal(t, -1.0, value(fams, "estuary_stream_received_bytes_total", "stream", "live/a"))
}
