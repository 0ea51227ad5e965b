//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

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
	t.Logf("keyframe requests forwarded: %.0f; slow-viewer drops: %.0f", opsValue(second, "estuary_keyframe_requests_total"), opsValue(second, "estuary_dropped_packets_total"))
	require.Positive(t, opsValue(second, "estuary_keyframe_requests_total"), "viewer joins ask the publisher for a keyframe")
	var tr float64
	require.Eventually(t, func() bool {
		tr = opsValue(opsScrape(t, n), "estuary_transcode_seconds_total", "direction", "aac_to_opus")
		return tr > 0
	}, 5*time.Second, 100*time.Millisecond, "the WHEP viewer's Opus is transcoded from the RTMP AAC")
	t.Logf("AAC->Opus transcoding: %.3f s so far", tr)
	require.GreaterOrEqual(t, opsValue(second, "estuary_nacks_received_total"), 0.0, "exported")
}

// opsClients lists /api/v1/clients as (id -> protocol/role) for subscribers of key.
func opsViewerIDs(t *testing.T, n *harness.Node, key string) []string {
	t.Helper()
	_, body, err := n.Get(context.Background(), "/api/v1/clients")
	require.NoError(t, err)
	var reply struct {
		Clients []struct {
			ID       string `json:"id"`
			Stream   string `json:"stream"`
			Protocol string `json:"protocol"`
			Publish  bool   `json:"publish"`
		} `json:"clients"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	var ids []string
	for _, c := range reply.Clients {
		if c.Stream == key && !c.Publish && c.Protocol == "webrtc" {
			ids = append(ids, c.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// TestOpsDashboard: /dashboard.html in Chromium lists a live RTMP stream with its two WHEP viewers
// and draws its bitrate sparkline; its kick button closes exactly that viewer (the other stays).
func TestOpsDashboard(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	ffmpegPushRTMP(t, n.RTMPURL("live/dash"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	v1, _ := whepPlay(t, n, "live/dash")
	v2, _ := whepPlay(t, n, "live/dash")
	require.Eventually(t, func() bool { return v1.Load() > 0 && v2.Load() > 0 }, 15*time.Second, 50*time.Millisecond)
	var ids []string
	require.Eventually(t, func() bool { ids = opsViewerIDs(t, n, "live/dash"); return len(ids) == 2 }, 5*time.Second, 100*time.Millisecond)

	b := harness.NewBrowser(t, harness.BrowserOptions{})
	page := b.NewPage()
	require.NoError(t, page.Open(n.HTTPURL+"/dashboard.html"))
	took, err := page.WaitFor(`!!document.querySelector('#stream-rows tr[data-key="live/dash"]') &&
		document.querySelectorAll('#client-rows button.kick').length === 3`, 10*time.Second)
	require.NoError(t, err)
	t.Logf("dashboard lists the stream and its 3 clients after %v", took.Round(time.Millisecond))
	// The sparkline needs two refreshes (2 s apart) for its first segment.
	_, err = page.WaitFor(`Number(document.querySelector('#stream-rows tr[data-key="live/dash"] canvas.spark').dataset.samples) >= 2`, 10*time.Second)
	require.NoError(t, err)
	var kbps string
	require.NoError(t, page.Eval(`document.querySelector('#stream-rows tr[data-key="live/dash"]').cells[5].textContent`, &kbps))
	t.Logf("dashboard bitrate in: %s", kbps)
	require.NotEqual(t, "0 kbit/s", kbps)
	shot, err := page.Screenshot("dashboard-live")
	require.NoError(t, err)
	t.Logf("screenshot %s", shot)

	kicked, kept := ids[0], ids[1]
	require.NoError(t, page.Eval(fmt.Sprintf(`document.querySelector('button.kick[data-id=%q]').click(), true`, kicked), nil))
	took, err = page.WaitFor(fmt.Sprintf(`window.estuary.kicked.includes(%q) && !document.querySelector('#client-rows tr[data-id=%q]') &&
		!!document.querySelector('#client-rows tr[data-id=%q]')`, kicked, kicked, kept), 10*time.Second)
	require.NoError(t, err)
	t.Logf("kicked client gone from the dashboard after %v", took.Round(time.Millisecond))
	require.Equal(t, []string{kept}, opsViewerIDs(t, n, "live/dash"), "the kick closes exactly that client")
	// Exactly one of the two WHEP viewers still receives media (which one was kicked is by ID order).
	time.Sleep(500 * time.Millisecond)
	b1, b2 := v1.Load(), v2.Load()
	time.Sleep(time.Second)
	grew1, grew2 := v1.Load() > b1, v2.Load() > b2
	t.Logf("after the kick: viewer 1 receiving %v, viewer 2 receiving %v", grew1, grew2)
	require.True(t, grew1 != grew2, "the kick stops exactly one viewer")
	shot, err = page.Screenshot("dashboard-after-kick")
	require.NoError(t, err)
	t.Logf("screenshot %s", shot)
}

// TestOpsSIGTERMDrain: an origin with a live RTMP publisher, a WHEP and an HTTP-FLV viewer gets
// SIGTERM: /readyz never says ready again, the process exits 0 within shutdown_timeout, the FLV
// viewer's response ends, ffmpeg's RTMP connection is closed, and the stream's lease and the node's
// record are gone from Redis at once (not after their TTLs).
func TestOpsSIGTERMDrain(t *testing.T) {
	rd := harness.StartRedis(t)
	const shutdownTimeout = 4 * time.Second
	n := harness.StartNode(t, harness.NodeOptions{NodeID: "drain-1", Set: map[string]any{
		"role":             "origin",
		"cluster.redis":    rd.URL(),
		"shutdown_timeout": shutdownTimeout.String(),
	}})
	opt, err := redis.ParseURL(rd.URL())
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	defer rc.Close()
	ctx := context.Background()

	ff := harness.FFmpegPush(t, n.RTMPURL("live/x"), harness.FFmpegArgs{})
	require.Eventually(t, func() bool { return rc.Exists(ctx, "estuary:stream:live/x").Val() == 1 }, 20*time.Second, 50*time.Millisecond, "lease taken")
	require.Equal(t, int64(1), rc.Exists(ctx, "estuary:node:drain-1").Val())
	states, video := opsWHEPState(t, n, "live/x")
	flvBytes, flvDone := opsFLVViewerDone(t, n, "live/x")
	require.Eventually(t, func() bool { return video.Load() > 0 && flvBytes.Load() > 0 }, 15*time.Second, 50*time.Millisecond)
	fams := opsScrape(t, n)
	require.Equal(t, 1.0, opsValue(fams, "estuary_registry_leases"), "the origin's lease in its metrics")
	require.Equal(t, 0.0, opsValue(fams, "estuary_registry_unreachable"))
	require.Equal(t, 1.0, opsValue(fams, "estuary_build_info", "node_id", "drain-1", "role", "origin"))

	start := time.Now()
	require.NoError(t, n.Signal(syscall.SIGTERM))
	// Readiness is false once the process has the signal (503 while the listener still answers, then
	// refused). Signal delivery is asynchronous: wait for the process to log it first.
	for !strings.Contains(n.Logs(), "signal received") && time.Since(start) < time.Second {
		time.Sleep(time.Millisecond)
	}
	ready := 0
	for time.Since(start) < 300*time.Millisecond {
		if code, _, err := n.Get(ctx, "/readyz"); err == nil && code == http.StatusOK {
			ready++
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-n.Done():
	case <-time.After(shutdownTimeout + 2*time.Second):
		t.Fatalf("still running %v after SIGTERM", time.Since(start))
	}
	took := time.Since(start)
	leaseLeft := rc.Exists(ctx, "estuary:stream:live/x").Val()
	nodeLeft := rc.Exists(ctx, "estuary:node:drain-1").Val()
	t.Logf("exit %d after %v (shutdown_timeout %v); lease left %d, node record left %d", n.ExitCode(), took.Round(time.Millisecond), shutdownTimeout, leaseLeft, nodeLeft)
	require.Zero(t, ready, "/readyz answered ready after SIGTERM")
	require.Less(t, took, shutdownTimeout)
	require.Equal(t, 0, n.ExitCode())
	require.Zero(t, leaseLeft, "the stream's lease must be released at exit, not left to its TTL")
	require.Zero(t, nodeLeft, "the node record must go at exit")
	select {
	case <-flvDone:
	case <-time.After(time.Second):
		t.Fatal("the HTTP-FLV viewer's response did not end")
	}
	// The WHEP viewer's PeerConnection learns of the close (DTLS close_notify) rather than timing out.
	for closed := false; !closed; {
		select {
		case st := <-states:
			if st == webrtc.PeerConnectionStateClosed {
				t.Logf("WHEP viewer: %s %v after SIGTERM", st, time.Since(start).Round(time.Millisecond))
				closed = true
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the WHEP viewer was not told of the close")
		}
	}
	select {
	case <-ff.Done():
		t.Logf("ffmpeg ended %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("ffmpeg's RTMP connection was not closed")
	}
}

// opsFLVViewerDone is opsFLVViewer with a channel closed when the response ends.
func opsFLVViewerDone(t *testing.T, n *harness.Node, key string) (*atomic.Int64, <-chan struct{}) {
	t.Helper()
	var got atomic.Int64
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL+"/"+key+".flv", nil)
	require.NoError(t, err)
	go func() {
		defer close(done)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		k, _ := io.Copy(io.Discard, io.TeeReader(resp.Body, countWriter{&got}))
		_ = k
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &got, done
}

type countWriter struct{ n *atomic.Int64 }

func (c countWriter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// opsPost posts body to path and returns the status and body.
func opsPost(t *testing.T, n *harness.Node, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(n.HTTPURL+path, "application/sdp", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// opsRewriteConfig sets keys (dotted paths) in the node's config file.
func opsRewriteConfig(t *testing.T, n *harness.Node, set map[string]any) {
	t.Helper()
	data, err := os.ReadFile(n.ConfigPath)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(data, &m))
	for k, v := range set {
		cur := m
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = v
	}
	out, err := yaml.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(n.ConfigPath, out, 0o644))
}

// TestOpsLimitsAndReload: limits.max_connections refuses a WHEP offer and an HTTP-FLV viewer over
// their limits with 503 and the reason; SIGHUP with higher limits lets them in while the stream and
// its viewer keep flowing; a SIGHUP with a broken file keeps the node and its limits.
func TestOpsLimitsAndReload(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{
		"limits.max_connections.webrtc": 1,
		"limits.max_connections.http":   1,
		"limits.max_connections.rtmp":   1,
	}})
	ffmpegPushRTMP(t, n.RTMPURL("live/l"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	video, _ := whepPlay(t, n, "live/l")
	flv1 := opsFLVViewer(t, n, "live/l")
	require.Eventually(t, func() bool { return video.Load() > 0 && flv1.Load() > 0 }, 15*time.Second, 50*time.Millisecond)

	tests := []struct {
		name, path, reason string
	}{
		{name: "webrtc", path: "/whep/live/l", reason: "limits.max_connections.webrtc reached"},
		{name: "http", path: "/live/l.flv", reason: "limits.max_connections.http reached"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" refused", func(t *testing.T) {
			var code int
			var body string
			if tc.name == "webrtc" {
				code, body = opsPost(t, n, tc.path, "v=0\r\n")
			} else {
				resp, err := http.Get(n.HTTPURL + tc.path)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, body = resp.StatusCode, string(b)
			}
			t.Logf("%s over the limit: %d %q", tc.name, code, strings.TrimSpace(body))
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.Contains(t, body, tc.reason)
		})
	}
	// A second RTMP publisher is over limits.max_connections.rtmp: after connect it gets an error
	// onStatus with the reason (ffmpeg prints it), then its connection is closed.
	second := harness.FFmpegPush(t, n.RTMPURL("live/l2"), harness.FFmpegArgs{NoAudio: true})
	select {
	case <-second.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an RTMP connection over the limit was not closed")
	}
	t.Logf("refused RTMP publisher: %s", strings.TrimSpace(second.Stderr()))
	require.Contains(t, second.Stderr(), "connection limit reached (1)")
	fams := opsScrape(t, n)
	require.Equal(t, 1.0, opsValue(fams, "estuary_connections_refused_total", "protocol", "rtmp"))
	require.Equal(t, 1.0, opsValue(fams, "estuary_connections", "protocol", "rtmp"))
	require.Contains(t, n.Logs(), "limits.max_connections.rtmp reached")
	require.Equal(t, 1.0, opsValue(fams, "estuary_connections_refused_total", "protocol", "webrtc"))
	require.Equal(t, 1.0, opsValue(fams, "estuary_connections_refused_total", "protocol", "http"))
	require.Equal(t, 1.0, opsValue(fams, "estuary_connections", "protocol", "webrtc"))

	// A broken file: the node keeps running with its limits.
	good, err := os.ReadFile(n.ConfigPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(n.ConfigPath, append(append([]byte{}, good...), "no_such_key: 1\n"...), 0o644))
	require.NoError(t, n.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(n.Logs(), "reload: config not applied") }, 5*time.Second, 50*time.Millisecond)
	code, _ := opsPost(t, n, "/whep/live/l", "v=0\r\n")
	require.Equal(t, http.StatusServiceUnavailable, code)

	// Raised limits: the same requests get in; the stream and its viewer flow on.
	require.NoError(t, os.WriteFile(n.ConfigPath, good, 0o644))
	opsRewriteConfig(t, n, map[string]any{"limits.max_connections.webrtc": 5, "limits.max_connections.http": 5, "limits.max_connections.rtmp": 5, "log.level": "warn"})
	require.NoError(t, n.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(n.Logs(), `"reloaded"`) || strings.Contains(n.Logs(), "msg=reloaded")
	}, 5*time.Second, 50*time.Millisecond)
	code, body := opsPost(t, n, "/whep/live/l", "v=0\r\n")
	t.Logf("after SIGHUP, a bad offer: %d %q", code, strings.TrimSpace(body))
	require.NotEqual(t, http.StatusServiceUnavailable, code, "the reloaded webrtc limit admits the offer (it then fails as malformed)")
	flv2 := opsFLVViewer(t, n, "live/l")
	before, flvBefore := video.Load(), flv1.Load()
	require.Eventually(t, func() bool { return flv2.Load() > 0 }, 10*time.Second, 50*time.Millisecond, "second FLV viewer after reload")
	require.Eventually(t, func() bool { return video.Load() > before && flv1.Load() > flvBefore }, 5*time.Second, 50*time.Millisecond, "live viewers keep flowing across the reload")
	require.Equal(t, 1.0, opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp"))
	// The raised RTMP limit admits a second publisher.
	harness.FFmpegPush(t, n.RTMPURL("live/l2"), harness.FFmpegArgs{NoAudio: true})
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 2
	}, 15*time.Second, 100*time.Millisecond, "second RTMP publisher after reload")
	// log.level warn (reloaded): the second publish's info lines are not written.
	require.NotContains(t, n.Logs(), "stream=live/l2", "log.level reloaded to warn")
}

// TestOpsJSONLogs: with log.format json every log line is one JSON object, and the lines about a
// stream's publisher and viewers (publish, play, kick, end) carry its stream key and client id.
func TestOpsJSONLogs(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"log.format": "json", "log.level": "info"}})
	ffmpegPushRTMP(t, n.RTMPURL("live/j"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	video, _ := whepPlay(t, n, "live/j")
	require.Eventually(t, func() bool { return video.Load() > 0 }, 15*time.Second, 50*time.Millisecond)
	var ids []string
	require.Eventually(t, func() bool { ids = opsViewerIDs(t, n, "live/j"); return len(ids) == 1 }, 5*time.Second, 100*time.Millisecond)
	req, err := http.NewRequest(http.MethodDelete, n.HTTPURL+"/api/v1/clients/"+ids[0], nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return len(opsViewerIDs(t, n, "live/j")) == 0 }, 5*time.Second, 50*time.Millisecond)
	require.NoError(t, n.Stop())

	lines := strings.Split(strings.TrimSpace(n.Logs()), "\n")
	aboutStream, withIDs := 0, 0
	for _, line := range lines {
		if strings.HasPrefix(line, "Estuary ") || strings.HasPrefix(line, "  ") {
			continue // the start banner on stdout (the harness logs both streams)
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not a JSON line: %q", line)
		require.Contains(t, rec, "msg")
		require.Contains(t, rec, "level")
		if rec["stream"] == "live/j" {
			aboutStream++
			if _, ok := rec["client_id"]; ok {
				withIDs++
			}
		}
		// A line about a client of the stream names the stream too (go-rtmp's own connection-level
		// lines come before the key is known).
		if _, ok := rec["client_id"]; ok && rec["component"] != "go-rtmp" {
			require.Equal(t, "live/j", rec["stream"], "a client line without its stream: %s", line)
		}
		if strings.Contains(fmt.Sprint(rec["msg"]), "kick") {
			require.Equal(t, "live/j", rec["stream"], line)
		}
		t.Log(line)
	}
	t.Logf("%d JSON lines; %d about live/j, %d of them with a client_id", len(lines), aboutStream, withIDs)
	require.Positive(t, aboutStream)
	require.Positive(t, withIDs)
}

// TestOpsDashboardCluster: two origins and Redis; a stream published on A and played on B (over a
// relay). B's dashboard shows both nodes, the stream's lease held by A and the relay it pulls (up);
// B's metrics count the pull and A's the relay it serves.
func TestOpsDashboardCluster(t *testing.T) {
	rd := harness.StartRedis(t)
	a := startRelayOrigin(t, "127.0.0.31", "dash-a", rd.URL())
	b := startRelayOrigin(t, "127.0.0.32", "dash-b", rd.URL())
	ffmpegPushRTMP(t, a.RTMPURL("live/c"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, a), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	video, _ := whepPlay(t, b, "live/c")
	require.Eventually(t, func() bool { return video.Load() > 0 }, 15*time.Second, 50*time.Millisecond, "WHEP on B through the relay")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, b), "estuary_relays", "direction", "pull", "state", "up") == 1 &&
			opsValue(opsScrape(t, a), "estuary_relays", "direction", "serve", "state", "up") == 1
	}, 5*time.Second, 100*time.Millisecond, "relay metrics on both sides")
	require.Equal(t, 1.0, opsValue(opsScrape(t, b), "estuary_publishers", "protocol", "relay"))

	br := harness.NewBrowser(t, harness.BrowserOptions{})
	page := br.NewPage()
	require.NoError(t, page.Open(b.HTTPURL+"/dashboard.html"))
	took, err := page.WaitFor(`(() => {
		const rows = (id) => [...document.querySelectorAll('#' + id + ' tr')].map((r) => r.textContent);
		return rows('node-rows').some((t) => t.includes('dash-a')) && rows('node-rows').some((t) => t.includes('dash-b (this node)')) &&
			rows('lease-rows').some((t) => t.includes('live/c') && t.includes('dash-a')) &&
			rows('relay-rows').some((t) => t.includes('live/c') && t.includes('pulled') && t.includes('up')) &&
			!!document.querySelector('#stream-rows tr[data-key="live/c"]');
	})()`, 10*time.Second)
	require.NoError(t, err)
	t.Logf("B's dashboard shows both nodes, A's lease and B's pull after %v", took.Round(time.Millisecond))
	shot, err := page.Screenshot("dashboard-cluster")
	require.NoError(t, err)
	t.Logf("screenshot %s", shot)
}

// opsWHEPState plays key over WHEP with a pion client and reports its connection state changes.
func opsWHEPState(t *testing.T, n *harness.Node, key string) (states chan webrtc.PeerConnectionState, rtp *atomic.Int64) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	states = make(chan webrtc.PeerConnectionState, 16)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case states <- s:
		default:
		}
	})
	rtp = new(atomic.Int64)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			k, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			rtp.Add(int64(k))
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	code, answer := opsPost(t, n, "/whep/"+key, pc.LocalDescription().SDP)
	require.Equal(t, http.StatusCreated, code, answer)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	return states, rtp
}

// TestOpsMaxStreams: limits.max_streams 1 refuses a second RTMP stream with the reason; SIGHUP with
// max_streams 2 admits it while the first keeps flowing.
func TestOpsMaxStreams(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"limits.max_streams": 1}})
	ffmpegPushRTMP(t, n.RTMPURL("live/s1"), "320x240")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 1
	}, 20*time.Second, 100*time.Millisecond)
	second := harness.FFmpegPush(t, n.RTMPURL("live/s2"), harness.FFmpegArgs{NoAudio: true})
	select {
	case <-second.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a publish over limits.max_streams was not refused")
	}
	require.Contains(t, n.Logs(), "limits.max_streams reached")
	t.Logf("ffmpeg over the limit: %s", strings.TrimSpace(second.Stderr()))
	require.Equal(t, 1.0, opsValue(opsScrape(t, n), "estuary_streams"))

	opsRewriteConfig(t, n, map[string]any{"limits.max_streams": 2})
	require.NoError(t, n.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(n.Logs(), "msg=reloaded") }, 5*time.Second, 50*time.Millisecond)
	harness.FFmpegPush(t, n.RTMPURL("live/s2"), harness.FFmpegArgs{NoAudio: true})
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_publishers", "protocol", "rtmp") == 2
	}, 15*time.Second, 100*time.Millisecond, "second stream after reload")
	before := opsValue(opsScrape(t, n), "estuary_stream_received_bytes_total", "stream", "live/s1", "track", "video")
	require.Eventually(t, func() bool {
		return opsValue(opsScrape(t, n), "estuary_stream_received_bytes_total", "stream", "live/s1", "track", "video") > before
	}, 5*time.Second, 100*time.Millisecond, "the first stream flows on")
}
