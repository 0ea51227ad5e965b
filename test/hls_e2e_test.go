//go:build e2e

package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// hlsResp is one answer of an HLS request (redirects followed).
type hlsResp struct {
	code   int
	body   string
	header http.Header
	url    string
}

func hlsGet(t testing.TB, url string) hlsResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return hlsResp{code: resp.StatusCode, body: string(b), header: resp.Header, url: resp.Request.URL.String()}
}

// hlsWaitPlaylist asks for /{key}.m3u8 until it answers 200 (the publisher may still be connecting),
// within timeout; it returns the answer and how long the first successful request took.
func hlsWaitPlaylist(t testing.TB, node *harness.Node, key string, timeout time.Duration) (hlsResp, time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		start := time.Now()
		r := hlsGet(t, node.HTTPURL+"/"+key+".m3u8")
		if r.code == http.StatusOK {
			return r, time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s.m3u8 not served within %v: %d %s\n%s", key, timeout, r.code, r.body, node.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// hlsURIs lists the URIs of a playlist (lines that are not tags).
func hlsURIs(pl string) []string {
	var out []string
	for _, l := range strings.Split(pl, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// hlsMediaPlaylist fetches the first media playlist of a stream's multivariant playlist.
func hlsMediaPlaylist(t testing.TB, node *harness.Node, key string) (base, body string) {
	t.Helper()
	r := hlsGet(t, node.HTTPURL+"/"+key+".m3u8")
	require.Equal(t, http.StatusOK, r.code, r.body)
	uris := hlsURIs(r.body)
	require.NotEmpty(t, uris, "multivariant playlist has a variant:\n%s", r.body)
	base = r.url[:strings.LastIndexByte(r.url, '/')+1]
	m := hlsGet(t, base+uris[0])
	require.Equal(t, http.StatusOK, m.code, m.body)
	return base, m.body
}

// TestHLSFromRTMP: ffmpeg pushes H.264 + AAC (GOP = segment = 1 s) on two keys. The first request's
// wait is printed; playlists are no-cache with one CORS header, segments max-age; ffprobe reads both
// streams for >= 5 s with monotonic DTS; a 10 s ffmpeg -c copy gives 10 s ± 5%; the two streams have
// their own files; bad and unknown keys get 400 and 404 while that copy plays on undisturbed; a GOP
// longer than the wait gives 503 with Retry-After.
func TestHLSFromRTMP(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"hls.segment": "1s"}})
	keyA, keyB, keyC := "live/hls-a", "live/hls-b", "live/hls-longgop"
	harness.FFmpegPush(t, node.RTMPURL(keyA), harness.FFmpegArgs{GOP: 25})
	harness.FFmpegPush(t, node.RTMPURL(keyB), harness.FFmpegArgs{GOP: 25, ToneHz: 880})
	harness.FFmpegPush(t, node.RTMPURL(keyC), harness.FFmpegArgs{GOP: 250, Extra: []string{"-sc_threshold", "0"}})
	flvWaitLive(t, node.HTTPURL+"/"+keyA+".flv", 10*time.Second)
	flvWaitLive(t, node.HTTPURL+"/"+keyB+".flv", 10*time.Second)
	flvWaitLive(t, node.HTTPURL+"/"+keyC+".flv", 10*time.Second)

	// First request: redirect, then the wait for the first segment (our own timer, <= 2 segments).
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(node.HTTPURL + "/" + keyA + ".m3u8")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.Equal(t, "/n/"+node.NodeID+"/hls/"+keyA+"/index.m3u8", loc)
	start := time.Now()
	first := hlsGet(t, node.HTTPURL+loc)
	wait := time.Since(start)
	require.Equal(t, http.StatusOK, first.code, first.body)
	t.Logf("first request: playlist after %v (bound: 2 segments = 2 s)", wait.Round(time.Millisecond))
	require.Less(t, wait, 2500*time.Millisecond)
	require.Contains(t, first.body, "#EXTM3U")
	require.Equal(t, "no-cache", first.header.Get("Cache-Control"))
	require.Len(t, first.header.Values("Access-Control-Allow-Origin"), 1, "exactly one CORS header")

	// The long-GOP stream: media flows, no segment within the wait: 503 + Retry-After.
	start = time.Now()
	lg := hlsGet(t, node.HTTPURL+"/"+keyC+".m3u8")
	t.Logf("long GOP: %d after %v, Retry-After %q: %s", lg.code, time.Since(start).Round(time.Millisecond), lg.header.Get("Retry-After"), strings.TrimSpace(lg.body))
	require.Equal(t, http.StatusServiceUnavailable, lg.code, lg.body)
	require.NotEmpty(t, lg.header.Get("Retry-After"))

	// A viewer plays 10 s of A (-c copy) while bad requests come in.
	out := t.TempDir() + "/a.ts"
	viewer := harness.FFmpegRun(t, "-i", node.HTTPURL+"/"+keyA+".m3u8", "-t", "10", "-c", "copy", "-f", "mpegts", "-y", out)

	// Two streams, two sets of files.
	baseA, plA := hlsMediaPlaylist(t, node, keyA)
	baseB, plB := hlsMediaPlaylist(t, node, keyB)
	segA, segB := hlsURIs(plA), hlsURIs(plB)
	require.NotEmpty(t, segA, plA)
	require.NotEmpty(t, segB, plB)
	for _, a := range segA {
		for _, b := range segB {
			require.NotEqual(t, a, b, "a file name shared by two streams")
		}
	}
	require.NotEqual(t, baseA, baseB)
	seg := hlsGet(t, baseA+segA[len(segA)-1])
	require.Equal(t, http.StatusOK, seg.code)
	require.Contains(t, seg.header.Get("Cache-Control"), "max-age=")
	require.Len(t, seg.header.Values("Access-Control-Allow-Origin"), 1)
	require.Greater(t, len(seg.body), 1000)
	cross := hlsGet(t, baseB+segA[len(segA)-1])
	require.Equal(t, http.StatusNotFound, cross.code, "A's segment must not be served under B")
	t.Logf("A: %d segments %v; B: %d segments; A's segment under B: %d", len(segA), segA, len(segB), cross.code)

	// Bad and unknown keys.
	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{name: "bad key", path: "/live/a..b.m3u8", code: http.StatusBadRequest},
		{name: "bad key muxer path", path: "/n/" + node.NodeID + "/hls/live/a%20b/index.m3u8", code: http.StatusBadRequest},
		{name: "bad file", path: "/n/" + node.NodeID + "/hls/live/hls-a/index.html", code: http.StatusBadRequest},
		{name: "unknown key", path: "/live/nobody.m3u8", code: http.StatusNotFound},
		{name: "unknown key muxer path", path: "/n/" + node.NodeID + "/hls/live/nobody/index.m3u8", code: http.StatusNotFound},
		{name: "unknown segment", path: "/n/" + node.NodeID + "/hls/live/hls-a/nope_seg1.ts", code: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hlsGet(t, node.HTTPURL+tc.path)
			require.Equal(t, tc.code, r.code, r.body)
			t.Logf("%s: %d %s", tc.path, r.code, strings.TrimSpace(r.body))
		})
	}

	// ffprobe: both streams, >= 5 s, DTS monotonic (runs while the viewer copies).
	flvProbeURL(t, node.HTTPURL+"/"+keyB+".m3u8", 7, 5, "h264", "aac")

	require.NoError(t, viewer.Wait(t, 30*time.Second), viewer.Stderr())
	dur := harness.FFprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", out)
	d, err := strconv.ParseFloat(strings.TrimSpace(dur), 64)
	require.NoError(t, err)
	t.Logf("ffmpeg -c copy -t 10 of HLS: %.3f s", d)
	require.InDelta(t, 10, d, 0.5, "10 s ± 5%%")
	flvProbeURL(t, out, 11, 9, "h264", "aac")
}

// TestHLSFromBrowserWHIP: Chromium publishes H.264 + Opus over WHIP: the stream's HLS comes as fMP4
// (MPEG-TS cannot carry Opus) and ffprobe shows h264 + opus.
func TestHLSFromBrowserWHIP(t *testing.T) {
	toneFile := harness.BrowserToneWAV(t, t.TempDir(), 440, 30)
	b := harness.NewBrowser(t, harness.BrowserOptions{FakeAudioFile: toneFile})
	node := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"hls.segment": "1s"}})
	key := "live/whip-hls"
	pub := browserPublish(t, b, node.HTTPURL, key, "H264")
	defer pub.Close()
	start := time.Now()
	first := hlsGet(t, node.HTTPURL+"/"+key+".m3u8")
	t.Logf("WHIP -> HLS (fMP4): first request answered %d after %v (bound: 3 segments = 3 s)", first.code, time.Since(start).Round(time.Millisecond))
	require.Equal(t, http.StatusOK, first.code, first.body)
	_, media := hlsMediaPlaylist(t, node, key)
	require.Contains(t, media, "#EXT-X-MAP", "fMP4 playlist:\n%s", media)
	require.Contains(t, media, ".mp4")
	require.NotContains(t, media, ".ts\n")
	flvProbeURL(t, node.HTTPURL+"/"+key+".m3u8", 6, 3, "h264", "opus")
}

// hlsPlayerGrows checks a /play.html player (FLV or HLS tab) for d: decoded frames grow at every
// 2 s sample and no fatal player error; it returns the last stats.
func hlsPlayerGrows(t *testing.T, page *harness.BrowserPage, d time.Duration) map[string]any {
	t.Helper()
	var last float64 = -1
	var st map[string]any
	for end := time.Now().Add(d); ; {
		time.Sleep(2 * time.Second)
		var fatal any
		require.NoError(t, page.Eval(`window.estuary.fatal`, &fatal))
		require.Nil(t, fatal, "fatal player error")
		require.NoError(t, page.Eval(`window.estuary.stats`, &st))
		require.NotNil(t, st)
		n, _ := st["framesDecoded"].(float64)
		require.Greater(t, n, last, "decoded frames grow (stats %v)", st)
		last = n
		if time.Now().After(end) {
			break
		}
	}
	return st
}

// TestHLSPlayPage: Chromium plays the default HLS (MPEG-TS) through /play.html (hls.js): decoded
// frames grow for 10 s with no fatal error.
func TestHLSPlayPage(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	node := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"hls.segment": "1s"}})
	key := "live/hls-page"
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{GOP: 25})
	flvWaitLive(t, node.HTTPURL+"/"+key+".flv", 10*time.Second)
	page := b.NewPage()
	require.NoError(t, page.Open(fmt.Sprintf("%s/play.html?mode=hls&stream=%s&autoplay=1", node.HTTPURL, key)))
	took, err := page.WaitFor(`window.estuary.state === 'live' && window.estuary.stats && window.estuary.stats.framesDecoded > 10`, 15*time.Second)
	require.NoError(t, err)
	var ttff float64
	require.NoError(t, page.Eval(`window.estuary.firstFrameMs`, &ttff))
	t.Logf("HLS tab: playing after %v, first frame %.0f ms after Play", took.Round(time.Millisecond), ttff)
	st := hlsPlayerGrows(t, page, 10*time.Second)
	t.Logf("HLS tab after 10 s: %.0f frames decoded, %.0f dropped, %v fps, %vx%v, %v ms behind live", st["framesDecoded"], st["framesDropped"], st["fps"], st["width"], st["height"], st["latencyMs"])
}

// TestHLSLowLatencyBrowser: with hls.variant lowlatency, hls.js in Chromium plays with lowLatencyMode;
// the latency behind live (wall clock minus the program date-time of the frame on screen, stamped by
// the server as frames arrive) is printed; target <= 3 s, failure above 5 s.
func TestHLSLowLatencyBrowser(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	node := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{"hls.segment": "1s", "hls.variant": "lowlatency"}})
	key := "live/llhls"
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{GOP: 25})
	flvWaitLive(t, node.HTTPURL+"/"+key+".flv", 10*time.Second)
	_, media := hlsMediaPlaylist(t, node, key)
	require.Contains(t, media, "#EXT-X-PART:", "LL-HLS parts:\n%s", media)
	require.Contains(t, media, "#EXT-X-PRELOAD-HINT")
	require.Contains(t, media, "CAN-BLOCK-RELOAD=YES")
	page := b.NewPage()
	require.NoError(t, page.Open(fmt.Sprintf("%s/play.html?mode=hls&lowlatency=1&stream=%s&autoplay=1", node.HTTPURL, key)))
	took, err := page.WaitFor(`window.estuary.state === 'live' && window.estuary.stats && window.estuary.stats.framesDecoded > 10`, 15*time.Second)
	require.NoError(t, err)
	var ll bool
	require.NoError(t, page.Eval(`window.estuary.player.player.lowLatencyMode`, &ll))
	require.True(t, ll, "hls.js lowLatencyMode")
	t.Logf("LL-HLS: playing after %v", took.Round(time.Millisecond))
	// Let the player settle on its live edge, then sample.
	time.Sleep(3 * time.Second)
	var worst, sum float64
	n := 0
	for i := 0; i < 5; i++ {
		var st map[string]any
		require.NoError(t, page.Eval(`window.estuary.stats`, &st))
		lat, ok := st["pdtLatencyMs"].(float64)
		require.True(t, ok, "program date-time latency (stats %v)", st)
		t.Logf("LL-HLS sample %d: %.0f ms behind live (hls.js estimate %v ms), %.0f frames, %v fps", i, lat, st["hlsLatencyMs"], st["framesDecoded"], st["fps"])
		sum += lat
		worst = max(worst, lat)
		n++
		time.Sleep(time.Second)
	}
	var fatal any
	require.NoError(t, page.Eval(`window.estuary.fatal`, &fatal))
	require.Nil(t, fatal)
	t.Logf("LL-HLS latency behind live: mean %.0f ms, worst %.0f ms (target <= 3000 ms)", sum/float64(n), worst)
	require.LessOrEqual(t, worst, 5000.0, "LL-HLS latency above 5 s")
}
