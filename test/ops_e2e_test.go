//go:build e2e

package test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// opsScrape fetches /metrics and parses it with the Prometheus text parser.
func opsScrape(t *testing.T, n *harness.Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(n.HTTPURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// opsValue is the value of the first metric of name whose labels include want (name, value pairs);
// -1 when there is none.
func opsValue(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			ok := false
			for _, l := range m.GetLabel() {
				ok = ok || l.GetName() == want[i] && l.GetValue() == want[i+1]
			}
			if !ok {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}

// opsFLVViewer reads GET /{key}.flv until the test ends; it counts the bytes.
func opsFLVViewer(t *testing.T, n *harness.Node, key string) *atomic.Int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL+"/"+key+".flv", nil)
	require.NoError(t, err)
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 32<<10)
		for {
			k, err := resp.Body.Read(buf)
			got.Add(int64(k))
			if err != nil {
				if err != io.EOF {
					return
				}
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &got
}

// TestOpsMetrics: /metrics parses with the Prometheus text parser, and while an RTMP stream plays to
// a WHEP and an HTTP-FLV viewer its viewer gauges show them and its byte counters move.
func TestOpsMetrics(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	fams := opsScrape(t, n)
	require.NotNil(t, fams["go_goroutines"])
	require.NotNil(t, fams["process_resident_memory_bytes"])
	require.Equal(t, 0.0, opsValue(fams, "estuary_streams"))

	ffmpegPushRTMP(t, n.RTMPURL("live/m"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	video, _ := whepPlay(t, n, "live/m")
	flvBytes := opsFLVViewer(t, n, "live/m")
	require.Eventually(t, func() bool { return video.Load() > 0 && flvBytes.Load() > 0 }, 15*time.Second, 50*time.Millisecond)

	var first map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		first = opsScrape(t, n)
		return opsValue(first, "estuary_viewers", "protocol", "webrtc") == 1 &&
			opsValue(first, "estuary_viewers", "protocol", "flv") == 1
	}, 5*time.Second, 100*time.Millisecond)
	require.Equal(t, -1.0, opsValue(first, "estuary_viewers", "protocol", "mux"), "the frames source is not a viewer")
	require.Equal(t, 1.0, opsValue(first, "estuary_streams"))
	time.Sleep(time.Second)
	second := opsScrape(t, n)
	names := []string{"estuary_received_bytes_total", "estuary_received_packets_total", "estuary_sent_bytes_total", "estuary_sent_packets_total"}
	for _, name := range names {
		a, b := opsValue(first, name), opsValue(second, name)
		t.Logf("%s: %.0f -> %.0f in 1 s", name, a, b)
		require.Greater(t, a, 0.0, name)
		require.Greater(t, b, a, name+" must move while the stream plays")
	}
	in := opsValue(second, "estuary_stream_received_bytes_total", "stream", "live/m", "track", "video") -
		opsValue(first, "estuary_stream_received_bytes_total", "stream", "live/m", "track", "video")
	t.Logf("video ingest %.0f kbit/s by the per-stream counter", in*8/1000)
	require.Greater(t, in, 0.0)
	require.Equal(t, 1.0, opsValue(second, "estuary_registry_leases"))
}
