//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// benchReport is the part of estuary-bench's JSON report the test checks.
type benchReport struct {
	WindowS float64 `json:"window_s"`
	Kinds   map[string]struct {
		URL            string         `json:"url"`
		Readers        int            `json:"readers"`
		Joined         int            `json:"joined"`
		JoinFailures   int            `json:"join_failures"`
		FailureReasons map[string]int `json:"failure_reasons"`
		Disconnects    int            `json:"disconnects"`
		Bytes          int64          `json:"bytes"`
		TotalBytes     int64          `json:"total_bytes"`
		Mbps           float64        `json:"mbps"`
		Units          int64          `json:"units"`
		Keyframes      int64          `json:"keyframes"`
		LossRatio      float64        `json:"loss_ratio"`
		TTFM           struct {
			Count int     `json:"count"`
			P50   float64 `json:"p50_ms"`
			P99   float64 `json:"p99_ms"`
			Max   float64 `json:"max_ms"`
		} `json:"ttfm"`
	} `json:"kinds"`
	Server *struct {
		PID          int     `json:"pid"`
		CPUS         float64 `json:"cpu_s"`
		Cores        float64 `json:"cores"`
		MbpsPerCore  float64 `json:"mbps_per_core"`
		RSSEnd       int64   `json:"rss_end_bytes"`
		RSSPerReader float64 `json:"rss_per_reader_bytes"`
	} `json:"server"`
}

// benchBuild builds cmd/estuary-bench into a temporary directory.
func benchBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "estuary-bench")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/estuary-bench")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/estuary-bench: %s", out)
	return bin
}

// benchRun runs estuary-bench with args plus -json FILE and returns the parsed report.
func benchRun(t *testing.T, bin string, timeout time.Duration, args ...string) benchReport {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "-q", "-json", path)...)
	out, err := cmd.CombinedOutput()
	t.Logf("estuary-bench %s\n%s", strings.Join(args, " "), out)
	require.NoError(t, err, "estuary-bench failed")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var r benchReport
	require.NoError(t, json.Unmarshal(data, &r), "report: %s", data)
	return r
}

// TestBenchTiny runs estuary-bench in its tiny configuration against a node: 5 readers of every
// kind the node plays (probed first; WHEP and HTTP-FLV must play), 3 s, and checks the report.
func TestBenchTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e")
	}
	bin := benchBuild(t)
	node := harness.StartNode(t, harness.NodeOptions{})
	const key = "live/bench"
	// 640x360 at 1.5 Mbit/s: frames of several packets, so batches of several datagrams.
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{GOP: 25, Size: "640x360", Extra: []string{"-b:v", "1500k"}})
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, err := node.Get(context.Background(), "/api/v1/streams/"+key)
		if err == nil && code == 200 {
			break
		}
		require.True(t, time.Now().Before(deadline), "stream %s not published within 15 s (last status %d, %v)", key, code, err)
		time.Sleep(100 * time.Millisecond)
	}
	urls := map[string]string{
		"whep": node.HTTPURL,
		"flv":  node.HTTPURL,
		"rtmp": "rtmp://" + node.RTMPAddr,
		"hls":  node.HTTPURL,
	}
	order := []string{"whep", "flv", "rtmp", "hls"}
	var probeArgs []string
	for _, k := range order {
		probeArgs = append(probeArgs, "-"+k, urls[k])
	}
	probe := benchRun(t, bin, 30*time.Second, append(probeArgs, "-stream", key, "-probe", "-join-timeout", "8s")...)

	// Kinds the node has must play; a kind it lacks is skipped only when the node says so
	// (404 for an HTTP route, an RTMP play refusal saying "not supported").
	required := map[string]bool{"whep": true, "flv": true}
	var args, kinds, skipped []string
	for _, k := range order {
		p, ok := probe.Kinds[k]
		require.True(t, ok, "probe report has no %s", k)
		if p.Joined == 1 {
			kinds = append(kinds, k)
			args = append(args, "-"+k, urls[k])
			continue
		}
		why := strings.Join(keys(p.FailureReasons), "; ")
		require.False(t, required[k], "%s must play: %s", k, why)
		unsupported := strings.Contains(why, "404") || strings.Contains(strings.ToLower(why), "not supported")
		require.True(t, unsupported, "%s failed for another reason than being unsupported: %s", k, why)
		skipped = append(skipped, k+" ("+why+")")
	}
	t.Logf("kinds tested: %v; skipped (the node does not serve them yet): %v", kinds, skipped)

	const n = 5
	start := time.Now()
	r := benchRun(t, bin, 60*time.Second, append(args, "-stream", key, "-n", strconv.Itoa(n), "-ramp", "0",
		"-warmup", "500ms", "-duration", "3s", "-join-timeout", "8s", "-pid", strconv.Itoa(node.PID))...)
	t.Logf("run took %v", time.Since(start).Round(time.Millisecond))
	require.InDelta(t, 3.0, r.WindowS, 0.5)
	for _, k := range kinds {
		kr, ok := r.Kinds[k]
		require.True(t, ok, "report has no %s", k)
		t.Logf("%s: %d/%d joined, %.2f Mbit/s, %d units, %d keyframes, loss %.4f, ttfm p50 %.0f ms max %.0f ms",
			k, kr.Joined, kr.Readers, kr.Mbps, kr.Units, kr.Keyframes, kr.LossRatio, kr.TTFM.P50, kr.TTFM.Max)
		require.Equal(t, n, kr.Readers, k)
		require.Equal(t, n, kr.Joined, "%s joined (failures: %v)", k, kr.FailureReasons)
		require.Zero(t, kr.JoinFailures, "%s join failures: %v", k, kr.FailureReasons)
		require.Zero(t, kr.Disconnects, k)
		require.Positive(t, kr.TotalBytes, k)
		if k != "hls" { // an HLS reader may see no new segment complete within 3 s
			require.Positive(t, kr.Bytes, k)
			require.Positive(t, kr.Units, k)
			require.Positive(t, kr.Mbps, k)
		}
		require.Equal(t, n, kr.TTFM.Count, "%s time to first media for every reader", k)
		require.Positive(t, kr.TTFM.Max, k)
		require.LessOrEqual(t, kr.TTFM.P50, kr.TTFM.Max, k)
	}
	require.NotNil(t, r.Server, "-pid gives a server section")
	require.Equal(t, node.PID, r.Server.PID)
	require.Positive(t, r.Server.RSSEnd)
	require.GreaterOrEqual(t, r.Server.CPUS, 0.0)
	t.Logf("server: %.3f CPU s (%.2f cores), %.0f Mbit/s per core, %.0f KB RSS per reader",
		r.Server.CPUS, r.Server.Cores, r.Server.MbpsPerCore, r.Server.RSSPerReader/1024)

	// The WHEP viewers' packets left in batches, several datagrams per system call (UDP GSO).
	fams := opsScrape(t, node)
	dg := opsValue(fams, "estuary_webrtc_batched_datagrams_total")
	calls := opsValue(fams, "estuary_webrtc_batch_syscalls_total")
	t.Logf("batched sends: %.0f datagrams in %.0f system calls (%.2f per call)", dg, calls, dg/max(calls, 1))
	require.Positive(t, dg, "WHEP viewers' packets go through the batched path")
	require.Less(t, calls, dg*0.8, "UDP GSO sends several datagrams per call")

	// A stream nobody publishes: every WHEP viewer is a join failure with the server's reason.
	bad := benchRun(t, bin, 30*time.Second, "-whep", node.HTTPURL, "-stream", "live/nobody", "-n", "2",
		"-ramp", "0", "-warmup", "0s", "-duration", "200ms", "-join-timeout", "3s")
	w := bad.Kinds["whep"]
	require.Zero(t, w.Joined)
	require.Equal(t, 2, w.JoinFailures)
	require.Len(t, w.FailureReasons, 1)
	for why := range w.FailureReasons {
		require.Contains(t, why, "404")
	}
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
