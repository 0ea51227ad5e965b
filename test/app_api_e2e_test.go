//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// apiStream is the part of /api/v1/streams these tests read (SRS's field names).
type apiStream struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	App       string `json:"app"`
	VHost     string `json:"vhost"`
	Clients   int    `json:"clients"`
	RecvBytes int64  `json:"recv_bytes"`
	Kbps      struct {
		Recv30s int64 `json:"recv_30s"`
		Send30s int64 `json:"send_30s"`
	} `json:"kbps"`
	Publish struct {
		Active bool   `json:"active"`
		CID    string `json:"cid"`
	} `json:"publish"`
	Video *struct {
		Codec   string `json:"codec"`
		Profile string `json:"profile"`
		Width   int    `json:"width"`
		Height  int    `json:"height"`
	} `json:"video"`
	Audio *struct {
		Codec      string `json:"codec"`
		SampleRate int    `json:"sample_rate"`
		Channel    int    `json:"channel"`
	} `json:"audio"`
	Protocol string `json:"protocol"`
}

func apiStreams(t *testing.T, n *harness.Node) map[string]apiStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/streams")
	require.NoError(t, err)
	require.Equal(t, 200, code, string(body))
	var got struct {
		Code    int         `json:"code"`
		Streams []apiStream `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(body, &got), string(body))
	out := map[string]apiStream{}
	for _, s := range got.Streams {
		out[s.App+"/"+s.Name] = s
	}
	return out
}

// ffmpegPushRTMP pushes H.264 (size, 25 fps) + AAC (44.1 kHz stereo) in real time; killed at cleanup.
func ffmpegPushRTMP(t *testing.T, url, size string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size="+size+":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "superfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-profile:v", "high", "-g", "25", "-b:v", "400k",
		"-c:a", "aac", "-ac", "2", "-b:a", "64k", "-t", "30", "-f", "flv", url)
	require.NoError(t, cmd.Start(), "ffmpeg must be installed (scripts/deps.sh)")
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return cmd
}

// TestAppRTMPStreamInAPI: streams pushed over RTMP show in /api/v1/streams with SRS's field names,
// the right codec, resolution and a bitrate; a kick through the API closes that publisher only.
func TestAppRTMPStreamInAPI(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	ffmpegPushRTMP(t, n.RTMPURL("live/one"), "320x240")
	ffmpegPushRTMP(t, n.RTMPURL("live/two"), "160x120")

	start := time.Now()
	var streams map[string]apiStream
	require.Eventually(t, func() bool {
		streams = apiStreams(t, n)
		one, two := streams["live/one"], streams["live/two"]
		return one.Video != nil && one.Video.Width > 0 && one.Audio != nil && two.Video != nil && two.Video.Width > 0 &&
			one.Kbps.Recv30s > 0
	}, 20*time.Second, 200*time.Millisecond, "streams: %+v", streams)
	t.Logf("both streams with details and a bitrate after %v", time.Since(start).Round(time.Millisecond))

	one := streams["live/one"]
	require.Equal(t, "__defaultVhost__", one.VHost)
	require.NotEmpty(t, one.ID)
	require.Equal(t, "rtmp", one.Protocol)
	require.True(t, one.Publish.Active)
	require.NotEmpty(t, one.Publish.CID)
	require.Equal(t, "H264", one.Video.Codec)
	require.Equal(t, "High", one.Video.Profile)
	require.Equal(t, 320, one.Video.Width)
	require.Equal(t, 240, one.Video.Height)
	require.Equal(t, "AAC", one.Audio.Codec)
	require.Equal(t, 44100, one.Audio.SampleRate)
	require.Equal(t, 2, one.Audio.Channel)
	require.Greater(t, one.RecvBytes, int64(0))
	t.Logf("live/one: recv_30s %d kbps, recv_bytes %d", one.Kbps.Recv30s, one.RecvBytes)
	require.Equal(t, 160, streams["live/two"].Video.Width)

	kickAt := time.Now()
	// Kick live/one's publisher: it goes (stream inactive or gone), live/two keeps its publisher.
	req, err := http.NewRequest(http.MethodDelete, n.HTTPURL+"/api/v1/clients/"+one.Publish.CID, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	twoCID := streams["live/two"].Publish.CID
	require.Eventually(t, func() bool {
		s := apiStreams(t, n)
		o, ok := s["live/one"]
		return (!ok || o.Publish.CID != one.Publish.CID) && s["live/two"].Publish.CID == twoCID
	}, 10*time.Second, 100*time.Millisecond)
	t.Logf("kicked publisher gone after %v", time.Since(kickAt).Round(time.Millisecond))
	s := apiStreams(t, n)
	require.True(t, s["live/two"].Publish.Active, "the other publisher stays")
	require.Equal(t, twoCID, s["live/two"].Publish.CID)

	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode, fmt.Sprintf("kicked client %s is gone", one.Publish.CID))
	stopAt := time.Now()
	require.NoError(t, n.Stop())
	t.Logf("node stopped (publisher live) in %v", time.Since(stopAt).Round(time.Millisecond))
}

// apiStreamsRaw returns /api/v1/streams entries as generic JSON by key.
func apiStreamsRaw(t *testing.T, n *harness.Node) map[string]map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/streams")
	require.NoError(t, err)
	require.Equal(t, 200, code, string(body))
	var got struct {
		Streams []map[string]any `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	out := map[string]map[string]any{}
	for _, s := range got.Streams {
		out[s["key"].(string)] = s
	}
	return out
}
