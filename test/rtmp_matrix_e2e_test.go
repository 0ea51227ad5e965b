//go:build e2e

package test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// rtmpMatrixDecode depacketizes the H.264 packets into Annex B, has ffprobe decode it (an error fails
// the test) and returns each decoded frame's width and the picture type counts.
func rtmpMatrixDecode(t *testing.T, pkts []rtmpRecv) (widths []int, types map[string]int) {
	t.Helper()
	var d codecs.H264Packet
	var annexB []byte
	for _, p := range pkts {
		b, err := d.Unmarshal(p.pkt.Payload)
		require.NoError(t, err)
		annexB = append(annexB, b...)
	}
	widths = harness.FFprobeVideoFrames(t, "h264", annexB)
	file := t.TempDir() + "/whep.h264"
	require.NoError(t, os.WriteFile(file, annexB, 0o644))
	return widths, rtmpPictTypes(t, "-f", "h264", file)
}

// rtmpMatrixFrames keeps the last packet of each frame (marker) that arrived in [from, to).
func rtmpMatrixFrames(pkts []rtmpRecv, from, to time.Time) []rtmpRecv {
	var out []rtmpRecv
	for _, p := range pkts {
		if p.pkt.Marker && !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// rtmpMatrixWidths counts decoded frames by width.
func rtmpMatrixWidths(widths []int) map[int]int {
	n := map[int]int{}
	for _, w := range widths {
		n[w]++
	}
	return n
}

// rtmpMatrixWaitLive waits until the API lists key.
func rtmpMatrixWaitLive(t *testing.T, node *harness.Node, key string, ff *harness.Proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := node.Get(context.Background(), "/api/v1/streams/"+key)
		require.NoError(t, err)
		if code == http.StatusOK {
			return
		}
		require.True(t, time.Now().Before(deadline), "stream %s not live: %s", key, ff.Stderr())
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRTMPMatrixE2E covers issue 4's matrix through the binary with a pion WHEP viewer: H.264 High with
// B-frames (the default webrtc.bframes gives WebRTC the variant without them) and a video-only push.
// Each: ffprobe decodes the depacketized frames without error, 90 kHz timestamps advance at wall-clock
// rate.
func TestRTMPMatrixE2E(t *testing.T) {
	cases := []struct {
		name    string
		args    harness.FFmpegArgs
		bframes bool
		// minFrames bounds the decoded frames: 6 s at 25 fps, about 9 fps once B-frames are dropped.
		minFrames int
	}{
		{name: "high bf2", args: harness.FFmpegArgs{Duration: 6 * time.Second, Profile: "high", BFrames: 2}, bframes: true, minFrames: 35},
		{name: "video only", args: harness.FFmpegArgs{Duration: 6 * time.Second, NoAudio: true}, minFrames: 120},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := harness.StartNode(t, harness.NodeOptions{})
			key := "live/matrix"
			ff := harness.FFmpegPush(t, node.RTMPURL(key), c.args)
			v := rtmpWHEP(t, node, key)
			require.NoError(t, ff.Wait(t, 20*time.Second), ff.Stderr())
			tracks := rtmpStreamTracks(t, node, key) // in its grace period
			ids := map[string]map[string]any{}
			for _, tr := range tracks {
				ids[tr["id"].(string)] = tr
			}
			require.Contains(t, ids, "video", "API tracks: %v", tracks)
			require.Equal(t, "video/H264", ids["video"]["mime_type"])
			require.Equal(t, c.bframes, ids["video"]["bframes"] == true, "API video track: %v", ids["video"])

			pkts := v.packets("video")
			require.NotEmpty(t, pkts)
			widths, types := rtmpMatrixDecode(t, pkts)
			require.Greater(t, len(widths), c.minFrames)
			require.Zero(t, types["B"], "no B pictures for WebRTC viewers")
			require.Positive(t, types["P"])

			// Past the GOP replay; leave out the last fifth (x264 flushes its lookahead in a burst when ffmpeg ends).
			frames := rtmpMatrixFrames(pkts, v.connected.Add(time.Second), time.Now())
			require.Greater(t, len(frames), c.minFrames/2)
			fit := frames[:len(frames)-len(frames)/5]
			slope := rtmpSlope(fit)
			t.Logf("%s: %d video packets, %d frames decoded (sizes by width %v, pictures %v), RTP clock over %.2f s of wall time: slope %.3f",
				c.name, len(pkts), len(widths), rtmpMatrixWidths(widths), types, fit[len(fit)-1].at.Sub(fit[0].at).Seconds(), slope)
			require.InDelta(t, 1.0, slope, 0.10)

			audio := v.packets("audio")
			v.mu.Lock()
			audioMime := v.mime["audio"]
			v.mu.Unlock()
			t.Logf("%s: %d audio packets, audio track %q", c.name, len(audio), audioMime)
			if c.args.NoAudio {
				require.NotContains(t, ids, "aac")
				require.NotContains(t, ids, "audio")
				require.Empty(t, audio, "video-only stream sent audio")
				require.Empty(t, audioMime, "video-only stream gave the viewer an audio track")
				// The answer may keep the offered audio m-line (sendonly, so a republish can add audio),
				// but announces no audio source in it.
				answer := v.pc.RemoteDescription().SDP
				for _, m := range strings.Split(answer, "\nm=")[1:] {
					if strings.HasPrefix(m, "audio") {
						require.NotContains(t, m, "a=ssrc:", "video-only answer announces an audio source: m=%s", m)
						require.NotContains(t, m, "a=msid:", "video-only answer announces an audio track: m=%s", m)
					}
				}
			} else {
				require.NotEmpty(t, audio, "no Opus from the AAC track")
			}
		})
	}
}

// TestRTMPMatrixE2EResolutionChange: two ffmpeg pushes of different sizes (320x240, then 640x360)
// under one key, the second within sfu.grace of the first's end. The WHEP viewer that joined during
// the first keeps its session, receives both with continuous sequence numbers, and ffprobe decodes
// both sizes without error.
func TestRTMPMatrixE2EResolutionChange(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/resize"
	ff1 := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Duration: 4 * time.Second, Size: "320x240"})
	v := rtmpWHEP(t, node, key)
	var states []webrtc.PeerConnectionState
	stateCh := make(chan webrtc.PeerConnectionState, 16)
	v.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { stateCh <- s })
	require.NoError(t, ff1.Wait(t, 20*time.Second), ff1.Stderr())
	firstEnd := time.Now()
	n1 := len(v.packets("video"))

	ff2 := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Duration: 4 * time.Second, Size: "640x360"})
	require.NoError(t, ff2.Wait(t, 20*time.Second), ff2.Stderr())
	time.Sleep(300 * time.Millisecond)
	for len(stateCh) > 0 {
		states = append(states, <-stateCh)
	}
	require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState(), "state changes: %v", states)
	require.Empty(t, states, "the viewer's session changed state across the republish")

	pkts := v.packets("video")
	require.Greater(t, len(pkts), n1, "nothing received from the second push")
	gaps := 0
	for i := 1; i < len(pkts); i++ {
		if pkts[i].pkt.SequenceNumber != pkts[i-1].pkt.SequenceNumber+1 {
			gaps++
			t.Logf("SN gap at packet %d: %d -> %d", i, pkts[i-1].pkt.SequenceNumber, pkts[i].pkt.SequenceNumber)
		}
	}
	widths, types := rtmpMatrixDecode(t, pkts)
	byWidth := rtmpMatrixWidths(widths)
	// Each push's own rate, from the viewer's arrivals (the first 1 s after connecting is GOP replay,
	// the last 15 frames of each push are x264's lookahead flush).
	f1 := rtmpMatrixFrames(pkts[:n1], v.connected.Add(time.Second), firstEnd)
	f2 := rtmpMatrixFrames(pkts[n1:], firstEnd, time.Now())
	require.Greater(t, len(f1), 25)
	require.Greater(t, len(f2), 50)
	s1, s2 := rtmpSlope(f1[:len(f1)-15]), rtmpSlope(f2[5:len(f2)-15])
	t.Logf("resolution change: %d video packets (%d from the 320x240 push), the 640x360 push's first packet %v after the first push ended (sfu.grace 10 s), SN gaps %d, %d frames decoded, by width %v, pictures %v, RTP clock slope %.3f then %.3f",
		len(pkts), n1, pkts[n1].at.Sub(firstEnd).Round(time.Millisecond), gaps, len(widths), byWidth, types, s1, s2)
	require.Zero(t, gaps, "sequence numbers are continuous across the republish")
	require.Greater(t, byWidth[320], 25)
	require.Greater(t, byWidth[640], 50)
	require.InDelta(t, 1.0, s1, 0.15)
	require.InDelta(t, 1.0, s2, 0.15)
	// The 640x360 frames follow the 320x240 ones.
	last320 := 0
	for i, w := range widths {
		if w == 320 {
			last320 = i
		}
	}
	for _, w := range widths[last320+1:] {
		require.Equal(t, 640, w)
	}
}

// TestRTMPMatrixE2ECatchUp measures instant start's catch-up: ffmpeg pushes with a 4 s GOP, a pion WHEP
// viewer joins 2 s into it and gets the cached GOP at once. A receiver that plays each frame at its
// RTP time, anchored on the first packet's arrival, is behind live by
//
//	lag = (ts_newest - ts_first)/90 kHz - (arrival_newest - arrival_first)
//
// for the newest frame 5 s after joining (newest frames are live ones, forwarded as they come). If the
// replayed GOP kept its original timestamps the lag would stay at the 2 s the viewer joined late; the
// replay compresses them, so it should be about 0. Target 500 ms; fails above 1 s (load margin).
func TestRTMPMatrixE2ECatchUp(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/catchup"
	ff := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Duration: 14 * time.Second, GOP: 100, NoAudio: true,
		Extra: []string{"-x264-params", "rc-lookahead=5"}})
	rtmpMatrixWaitLive(t, node, key, ff)
	time.Sleep(2 * time.Second) // live from the first keyframe: join mid-GOP
	v := rtmpWHEP(t, node, key)
	time.Sleep(5*time.Second + 200*time.Millisecond)
	pkts := v.packets("video")
	require.NotEmpty(t, pkts)
	first := pkts[0]
	at5 := v.connected.Add(5 * time.Second)
	frames := rtmpMatrixFrames(pkts, first.at, at5.Add(time.Millisecond))
	require.NotEmpty(t, frames)
	newest := frames[len(frames)-1]
	lag := float64(int32(newest.pkt.Timestamp-first.pkt.Timestamp))/90000 - newest.at.Sub(first.at).Seconds()
	// The same with the anchor a never-late jitter buffer would pick (the latest any frame arrived
	// relative to its timestamp), for information.
	worst := 0.0
	for _, f := range frames {
		late := f.at.Sub(first.at).Seconds() - float64(int32(f.pkt.Timestamp-first.pkt.Timestamp))/90000
		worst = max(worst, late)
	}
	// How much was replayed: the frames that arrived in the first 300 ms.
	burst := len(rtmpMatrixFrames(pkts, first.at, first.at.Add(300*time.Millisecond)))
	widths, _ := rtmpMatrixDecode(t, pkts)
	t.Logf("catch-up: first packet %v after connected, %d frames in its first 300 ms (GOP replay), %d frames decoded; 5 s after joining the newest frame (%.2f s of RTP time after the first) is %.0f ms behind live with a first-packet anchor (limit 1000 ms, target 500 ms), %.0f ms with a never-late jitter buffer anchor",
		first.at.Sub(v.connected).Round(time.Millisecond), burst, len(widths),
		float64(int32(newest.pkt.Timestamp-first.pkt.Timestamp))/90000, lag*1000, (lag+worst)*1000)
	require.Greater(t, burst, 10, "the viewer got no GOP replay")
	require.Less(t, lag, 1.0, "behind live 5 s after joining")
	ff.Stop()
}
