//go:build e2e

package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// flvWaitLive polls url until it answers 200 (the stream is published), within timeout.
func flvWaitLive(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			code := resp.StatusCode
			resp.Body.Close()
			cancel()
			if code == http.StatusOK {
				return
			}
		} else {
			cancel()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not live within %v (last: %v)", url, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// flvProbe is what ffprobe says of a few seconds of a live FLV URL.
type flvProbe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
	} `json:"streams"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		DTS         string `json:"dts_time"`
		PTS         string `json:"pts_time"`
	} `json:"packets"`
}

// flvProbeURL runs ffprobe on url for seconds of media and checks: the wanted codecs, >= minSeconds of
// video, DTS monotonic per stream; it returns the first DTS of video and audio.
func flvProbeURL(t *testing.T, url string, seconds int, minSeconds float64, video, audio string) (v0, a0 float64) {
	t.Helper()
	out := harness.FFprobe(t, "-read_intervals", fmt.Sprintf("%%+%d", seconds), "-show_entries",
		"stream=index,codec_name,codec_type:packet=stream_index,dts_time,pts_time", "-of", "json", url)
	var p flvProbe
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	kinds := map[int]string{}
	codecs := map[string]string{}
	for _, s := range p.Streams {
		kinds[s.Index] = s.CodecType
		codecs[s.CodecType] = s.CodecName
	}
	require.Equal(t, video, codecs["video"], "video codec")
	require.Equal(t, audio, codecs["audio"], "audio codec")
	first := map[string]float64{}
	last := map[string]float64{}
	count := map[string]int{}
	for _, pk := range p.Packets {
		k := kinds[pk.StreamIndex]
		dts, err := strconv.ParseFloat(pk.DTS, 64)
		require.NoError(t, err, "packet without DTS")
		if c := count[k]; c > 0 {
			require.GreaterOrEqual(t, dts, last[k], "%s DTS monotonic (packet %d)", k, c)
		} else {
			first[k] = dts
		}
		last[k] = dts
		count[k]++
	}
	t.Logf("ffprobe %s: video %s %d packets %.3f..%.3f s, audio %s %d packets %.3f..%.3f s",
		url, video, count["video"], first["video"], last["video"], audio, count["audio"], first["audio"], last["audio"])
	require.GreaterOrEqual(t, last["video"]-first["video"], minSeconds, "seconds of video")
	require.GreaterOrEqual(t, last["audio"]-first["audio"], minSeconds, "seconds of audio")
	return first["video"], first["audio"]
}

// flvReader is a Go HTTP-FLV client: it reads tags and keeps a checksum of each tag body from its
// first video keyframe on.
type flvReader struct {
	sums  []uint32
	bytes int64
	err   error
}

func (r *flvReader) run(ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.err = err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.err = fmt.Errorf("status %d", resp.StatusCode)
		return
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(br, hdr); err != nil {
		r.err = err
		return
	}
	r.bytes += 13
	keyed := false
	var h [11]byte
	body := make([]byte, 0, 64<<10)
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if ctx.Err() == nil {
				r.err = err
			}
			return
		}
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if cap(body) < size+4 {
			body = make([]byte, size+4)
		}
		body = body[:size+4]
		if _, err := io.ReadFull(br, body); err != nil {
			if ctx.Err() == nil {
				r.err = err
			}
			return
		}
		atomicAdd(&r.bytes, int64(11+size+4))
		if binary.BigEndian.Uint32(body[size:]) != uint32(size+11) {
			r.err = fmt.Errorf("bad PreviousTagSize")
			return
		}
		// A video keyframe (not a sequence header): frame type 1, AVC packet type 1.
		if !keyed && h[0] == 9 && size > 1 && body[0]>>4 == 1 && body[1] == 1 {
			keyed = true
		}
		if keyed {
			r.sums = append(r.sums, crc32.ChecksumIEEE(body[:size]))
		}
	}
}

// procStatus reads a field (kB) of /proc/PID/status.
func procStatus(t testing.TB, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			v, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// procCPU is the process's user+system CPU time.
func procCPU(t testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// TestFLVFromRTMP: ffmpeg pushes H.264 (High, B-frames) + AAC over RTMP; HTTP-FLV is read by ffprobe,
// ffmpeg -c copy, a first-frame timer and 200 Go readers. With the default webrtc.bframes (drop) only
// the WebRTC variant track loses the B-frames: FLV reads the original track, keeps them and must
// recover their DTS.
func TestFLVFromRTMP(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/flv"
	harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Profile: "high", BFrames: 2})
	url := node.HTTPURL + "/" + key + ".flv"
	flvWaitLive(t, url, 15*time.Second)

	t.Run("headers and errors", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "video/x-flv", resp.Header.Get("Content-Type"))
		require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
		require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		require.Len(t, resp.Header.Values("Access-Control-Allow-Origin"), 1, "exactly one CORS origin")
		for path, code := range map[string]int{"/live/nobody.flv": http.StatusNotFound, "/live/a..b.flv": http.StatusBadRequest} {
			status, body, err := node.Get(ctx, path)
			require.NoError(t, err)
			require.Equal(t, code, status, string(body))
			require.NotEmpty(t, strings.TrimSpace(string(body)), "a reason")
		}
	})

	t.Run("ffprobe", func(t *testing.T) {
		v0, a0 := flvProbeURL(t, url, 6, 5, "h264", "aac")
		t.Logf("first video DTS %.3f s, first audio DTS %.3f s", v0, a0)
		require.InDelta(t, v0, a0, 0.1, "audio and video start together")
	})

	ttff := func(t *testing.T) time.Duration {
		path, err := exec.LookPath("ffmpeg")
		require.NoError(t, err)
		start := time.Now()
		cmd := exec.Command(path, "-v", "error", "-probesize", "32", "-analyzeduration", "0", "-i", url, "-frames:v", "1", "-f", "null", "-")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return time.Since(start)
	}
	t.Run("time to first frame, first viewer", func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // the previous viewers' muxer has stopped
		took := ttff(t)
		t.Logf("time to first frame as the stream's only viewer (its muxer starts from the hub's cached GOP): %v", took.Round(time.Millisecond))
		require.Less(t, took, 3*time.Second)
	})

	// A background reader keeps the stream's muxer running, as any viewer would.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var warm flvReader
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); warm.run(ctx, url) }()
	defer wg.Wait()
	defer cancel()
	time.Sleep(500 * time.Millisecond)

	t.Run("copy 10s", func(t *testing.T) {
		file := t.TempDir() + "/copy.flv"
		p := harness.FFmpegRun(t, "-i", url, "-t", "10", "-c", "copy", "-y", file)
		require.NoError(t, p.Wait(t, 25*time.Second), p.Stderr())
		out := harness.FFprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", file)
		d, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		require.NoError(t, err)
		t.Logf("ffmpeg -c copy -t 10: %.3f s", d)
		require.InDelta(t, 10, d, 0.5)
		types := rtmpPictTypes(t, file)
		t.Logf("HTTP-FLV pictures over 10 s: %v", types)
		require.Positive(t, types["B"], "HTTP-FLV keeps the publisher's B-frames (webrtc.bframes drop is for WebRTC only)")
	})

	t.Run("time to first frame", func(t *testing.T) {
		var best, worst time.Duration
		for i := range 3 {
			took := ttff(t)
			if i == 0 || took < best {
				best = took
			}
			worst = max(worst, took)
		}
		t.Logf("time to first frame with the muxer running (ffmpeg -probesize 32 -analyzeduration 0 -frames:v 1, process start to exit): best %v, worst %v",
			best.Round(time.Millisecond), worst.Round(time.Millisecond))
		require.Less(t, best, 3*time.Second)
	})

	t.Run("200 readers", func(t *testing.T) {
		const n = 200
		rss0 := procStatus(t, node.PID, "VmRSS")
		cpu0 := procCPU(t, node.PID)
		rctx, rcancel := context.WithCancel(context.Background())
		readers := make([]*flvReader, n)
		var rwg sync.WaitGroup
		start := time.Now()
		for i := range readers {
			readers[i] = &flvReader{}
			rwg.Add(1)
			go func() { defer rwg.Done(); readers[i].run(rctx, url) }()
		}
		time.Sleep(4 * time.Second)
		rss1 := procStatus(t, node.PID, "VmRSS")
		time.Sleep(2 * time.Second)
		rcancel()
		rwg.Wait()
		wall := time.Since(start)
		cpu := procCPU(t, node.PID) - cpu0
		var total int64
		ref := readers[0]
		for _, r := range readers {
			require.NoError(t, r.err)
			total += r.bytes
			if len(r.sums) > len(ref.sums) {
				ref = r
			}
		}
		pos := map[uint32][]int{}
		for i, s := range ref.sums {
			pos[s] = append(pos[s], i)
		}
		for i, r := range readers {
			require.Greater(t, len(r.sums), 100, "reader %d got tags", i)
			// r's tags are a run of ref's from r's first keyframe on.
			matched := false
			for _, at := range pos[r.sums[0]] {
				k := min(len(r.sums), len(ref.sums)-at)
				if k >= 100 && equalSums(r.sums[:k-1], ref.sums[at:at+k-1]) {
					matched = true
					break
				}
			}
			require.True(t, matched, "reader %d: same tags as the others from its first keyframe", i)
		}
		mbps := float64(total*8) / wall.Seconds() / 1e6
		t.Logf("%d readers, %.1f s: %.1f Mbit/s delivered, server CPU %.2f s (%.0f%% of a core), %.1f Mbit/s per core; VmRSS %d kB -> %d kB: %.1f kB per reader",
			n, wall.Seconds(), mbps, cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds(), mbps/(cpu.Seconds()/wall.Seconds()),
			rss0, rss1, float64(rss1-rss0)/n)
	})
}

func atomicAdd(p *int64, v int64) { atomic.AddInt64(p, v) }

func atomicLoad(p *int64) int64 { return atomic.LoadInt64(p) }

func equalSums(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFLVFromBrowserWHIP: Chromium publishes H.264 + Opus over WHIP (/publish.html); ffprobe of the
// stream's HTTP-FLV shows h264 + aac (Opus transcoded once for the stream).
func TestFLVFromBrowserWHIP(t *testing.T) {
	toneFile := harness.BrowserToneWAV(t, t.TempDir(), 440, 30)
	b := harness.NewBrowser(t, harness.BrowserOptions{FakeAudioFile: toneFile})
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/whip-flv"
	pub := browserPublish(t, b, node.HTTPURL, key, "H264")
	defer pub.Close()
	url := node.HTTPURL + "/" + key + ".flv"
	flvWaitLive(t, url, 10*time.Second)
	v0, a0 := flvProbeURL(t, url, 5, 3, "h264", "aac")
	t.Logf("WHIP -> HTTP-FLV: first video DTS %.3f s, first audio DTS %.3f s", v0, a0)
}

// BenchmarkHTTPFLVReaders measures delivered HTTP-FLV Mbit/s per server core: ffmpeg pushes a
// pre-encoded 1280x720 stream (about 2.5 Mbit/s, -c copy, looped) over RTMP and ESTUARY_BENCH_READERS
// (default 200) Go readers read it for 8 s; the server's CPU time comes from /proc/PID/stat.
// Run: go test -tags e2e -run '^$' -bench HTTPFLVReaders -benchtime 1x ./test/
func BenchmarkHTTPFLVReaders(b *testing.B) {
	readers := 200
	if v, err := strconv.Atoi(os.Getenv("ESTUARY_BENCH_READERS")); err == nil && v > 0 {
		readers = v
	}
	dir := b.TempDir()
	src := dir + "/src.flv"
	gen := harness.FFmpegRun(b, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "10", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k",
		"-g", "60", "-c:a", "aac", "-b:a", "128k", "-f", "flv", "-y", src)
	require.NoError(b, gen.Wait(b, 60*time.Second), gen.Stderr())
	node := harness.StartNode(b, harness.NodeOptions{})
	key := "live/bench"
	harness.FFmpegRun(b, "-re", "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv", node.RTMPURL(key))
	url := node.HTTPURL + "/" + key + ".flv"
	flvWaitLive(b, url, 15*time.Second)
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		rs := make([]*flvReader, readers)
		var wg sync.WaitGroup
		for i := range rs {
			rs[i] = &flvReader{}
			wg.Add(1)
			go func() { defer wg.Done(); rs[i].run(ctx, url) }()
		}
		time.Sleep(2 * time.Second) // everyone connected and past the GOP burst
		var bytes0 int64
		for _, r := range rs {
			bytes0 += atomicLoad(&r.bytes)
		}
		cpu0 := procCPU(b, node.PID)
		start := time.Now()
		time.Sleep(8 * time.Second)
		var bytes1 int64
		for _, r := range rs {
			bytes1 += atomicLoad(&r.bytes)
		}
		cpu := procCPU(b, node.PID) - cpu0
		wall := time.Since(start)
		rss := procStatus(b, node.PID, "VmRSS")
		cancel()
		wg.Wait()
		mbps := float64(bytes1-bytes0) * 8 / wall.Seconds() / 1e6
		cores := cpu.Seconds() / wall.Seconds()
		b.ReportMetric(mbps, "Mbit/s")
		b.ReportMetric(cores, "cores")
		b.ReportMetric(mbps/cores, "Mbit/s/core")
		b.Logf("%d readers: %.1f Mbit/s delivered, server %.2f cores, %.0f Mbit/s per core, VmRSS %d kB", readers, mbps, cores, mbps/cores, rss)
	}
}
