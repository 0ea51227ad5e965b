//go:build e2e

package test

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// avsyncWall maps an RTP timestamp of a track to wall time through each of the track's sender
// reports, and returns the median of those estimates and their spread (max - min).
func avsyncWall(t *testing.T, srs []audioSR, ts uint32, clock float64) (time.Time, time.Duration) {
	t.Helper()
	require.NotEmpty(t, srs, "no RTCP sender report")
	est := make([]time.Time, len(srs))
	for i, s := range srs {
		secs := int64(s.sr.NTPTime >> 32)
		frac := float64(s.sr.NTPTime&0xffffffff) / (1 << 32)
		ntp := time.Unix(secs-2208988800, int64(frac*1e9))
		est[i] = ntp.Add(time.Duration(float64(int32(ts-s.sr.RTPTime)) / clock * float64(time.Second)))
	}
	slices.SortFunc(est, func(a, b time.Time) int { return a.Compare(b) })
	return est[len(est)/2], est[len(est)-1].Sub(est[0])
}

// TestAudioE2EAVSync is issue 5's A/V sync check: ffmpeg pushes black video with one white frame at
// each whole second and a 1 kHz beep (AAC 44.1 kHz mono) starting at the same instants; a pion WHEP
// viewer maps each track's RTP timestamps to wall time through the RTCP sender reports of that track,
// finds the flashes by decoding the depacketized H.264 with ffmpeg (signalstats YAVG) and the beeps
// by decoding the Opus with gopus (onsets), and requires every beep within ±40 ms of its flash (and,
// on the RTP clocks alone, within ±5 ms).
func TestAudioE2EAVSync(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/avsync"
	ff := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{
		Duration:      14 * time.Second,
		Preset:        "ultrafast",
		GOP:           25,
		VideoSource:   "color=c=black:size=320x240:rate=25,drawbox=c=white:t=fill:enable='lt(mod(t,1),0.04)'",
		AudioSource:   "aevalsrc='if(lt(mod(t,1),0.04),0.5*sin(2*PI*1000*t),0)':s=44100",
		AudioRate:     44100,
		AudioChannels: 1,
	})
	v := audioWHEP(t, node, key)
	time.Sleep(7 * time.Second)
	_ = v.pc.Close()
	select {
	case <-ff.Done():
		t.Fatalf("ffmpeg ended early: %s", ff.Stderr())
	default:
	}
	ff.Stop()

	// Sender reports from one second after connecting (the mapping is settled by then).
	var vSR, aSR []audioSR
	for _, s := range v.senderReports("video") {
		if s.at.Sub(v.connected) > time.Second {
			vSR = append(vSR, s)
		}
	}
	for _, s := range v.senderReports("audio") {
		if s.at.Sub(v.connected) > time.Second {
			aSR = append(aSR, s)
		}
	}
	t.Logf("sender reports after the first second: video %d, audio %d", len(vSR), len(aSR))
	require.GreaterOrEqual(t, len(vSR), 3)
	require.GreaterOrEqual(t, len(aSR), 3)

	// How each sender report maps the track's clock (relative to the first one): the spread is the
	// jitter of the sender's packet timing that pion's SR extrapolation carries.
	spread := func(srs []audioSR, clock float64) string {
		var ms []float64
		for _, s := range srs {
			w, _ := avsyncWall(t, srs[:1], s.sr.RTPTime, clock)
			secs := int64(s.sr.NTPTime >> 32)
			frac := float64(s.sr.NTPTime&0xffffffff) / (1 << 32)
			ms = append(ms, time.Unix(secs-2208988800, int64(frac*1e9)).Sub(w).Seconds()*1000)
		}
		return fmt.Sprintf("%.1f", ms)
	}
	t.Logf("SR mapping against the first SR (ms): video %s, audio %s", spread(vSR, 90000), spread(aSR, 48000))

	// Video: depacketize into Annex-B, one access unit per RTP timestamp, and get each picture's luma.
	var annexB []byte
	var frameTS []uint32
	var d codecs.H264Packet
	for i, p := range v.packets("video") {
		if i == 0 || p.pkt.Timestamp != frameTS[len(frameTS)-1] {
			frameTS = append(frameTS, p.pkt.Timestamp)
		}
		b, err := d.Unmarshal(p.pkt.Payload)
		require.NoError(t, err)
		annexB = append(annexB, b...)
	}
	file := t.TempDir() + "/avsync.h264"
	require.NoError(t, os.WriteFile(file, annexB, 0o644))
	out := harness.FFprobe(t, "-f", "lavfi", "-i", "movie=filename="+file+":f=h264,signalstats",
		"-show_entries", "frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0")
	var yavg []float64
	for _, f := range strings.Fields(out) {
		y, err := strconv.ParseFloat(strings.Trim(f, ","), 64)
		require.NoError(t, err, "ffprobe line %q", f)
		yavg = append(yavg, y)
	}
	require.Equal(t, len(frameTS), len(yavg), "decoded pictures vs access units received")
	var flashes []time.Time
	var flashTS, beepTS []uint32
	var srSpread time.Duration
	for i, y := range yavg {
		if y > 128 && (i == 0 || yavg[i-1] < 128) {
			w, spread := avsyncWall(t, vSR, frameTS[i], 90000)
			flashes = append(flashes, w)
			flashTS = append(flashTS, frameTS[i])
			srSpread = max(srSpread, spread)
		}
	}

	// Audio: decode the Opus, find the beep onsets (first sample above 0.1 after 200 ms of quiet).
	pkts := v.packets("audio")
	pcm, ts0 := audioDecodeOpus(t, pkts, 1)
	var beeps []time.Time
	quiet := 0
	for i, s := range pcm {
		a := math.Abs(float64(s))
		if a > 0.1 && quiet >= 9600 {
			w, spread := avsyncWall(t, aSR, ts0+uint32(i), 48000)
			beeps = append(beeps, w)
			beepTS = append(beepTS, ts0+uint32(i))
			srSpread = max(srSpread, spread)
		}
		if a < 0.05 {
			quiet++
		} else {
			quiet = 0
		}
	}
	t.Logf("%d pictures (%d flashes), %.2f s of audio (%d beeps); SR estimates spread at most %v",
		len(yavg), len(flashes), float64(len(pcm))/48000, len(beeps), srSpread.Round(100*time.Microsecond))

	// The same pairs on the RTP clocks alone: the server keeps the RTMP time base on both tracks
	// (video ts/90 and Opus ts/48 are RTMP milliseconds), so this is the offset the media timestamps
	// carry, before any SR mapping.
	var rtpOffsets []float64
	for _, f := range flashTS {
		for _, b := range beepTS {
			if o := float64(b)/48 - float64(f)/90; math.Abs(o) < 500 {
				rtpOffsets = append(rtpOffsets, o)
			}
		}
	}
	t.Logf("beep minus flash on the RTP clocks (ts/48 - ts/90): %.1f ms", rtpOffsets)
	require.GreaterOrEqual(t, len(rtpOffsets), 4)
	for _, o := range rtpOffsets {
		require.LessOrEqual(t, math.Abs(o), 5.0, "RTP-clock offset %+.1f ms", o)
	}

	var offsets []float64
	for _, f := range flashes {
		best := math.Inf(1)
		for _, b := range beeps {
			if o := b.Sub(f).Seconds() * 1000; math.Abs(o) < math.Abs(best) {
				best = o
			}
		}
		if math.Abs(best) < 500 {
			offsets = append(offsets, best)
		}
	}
	var parts []string
	for _, o := range offsets {
		parts = append(parts, fmt.Sprintf("%+.1f", o))
	}
	sorted := slices.Sorted(slices.Values(offsets))
	require.GreaterOrEqual(t, len(offsets), 4, "flash/beep pairs (flashes %d, beeps %d)", len(flashes), len(beeps))
	t.Logf("A/V offset (audio minus video, through RTCP SR): median %+.1f ms; each pair [%s] ms", sorted[len(sorted)/2], strings.Join(parts, " "))
	for _, o := range offsets {
		require.LessOrEqual(t, math.Abs(o), 40.0, "A/V offset %+.1f ms", o)
	}
}
