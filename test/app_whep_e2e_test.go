//go:build e2e

package test

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// whepPlay plays key from the node over WHEP with a pion client; it counts RTP bytes per kind.
func whepPlay(t *testing.T, n *harness.Node, key string) (video, audio *atomic.Int64) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	video, audio = new(atomic.Int64), new(atomic.Int64)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		ctr := audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			ctr = video
		}
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			ctr.Add(int64(n))
		}
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	resp, err := http.Post(n.HTTPURL+"/whep/"+key, "application/sdp", bytes.NewReader([]byte(pc.LocalDescription().SDP)))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	require.NotEmpty(t, resp.Header.Get("Location"))
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
	return video, audio
}

// TestAppRTMPToWHEP: through the binary, an RTMP stream (H.264 + AAC) plays over WHEP (H.264 + the Opus
// made from the AAC), and the API counts the viewer and the bytes sent to it.
func TestAppRTMPToWHEP(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	ffmpegPushRTMP(t, n.RTMPURL("live/w"), "320x240")
	require.Eventually(t, func() bool {
		s, ok := apiStreams(t, n)["live/w"]
		return ok && s.Video != nil && s.Video.Width > 0
	}, 20*time.Second, 100*time.Millisecond)

	start := time.Now()
	video, audio := whepPlay(t, n, "live/w")
	require.Eventually(t, func() bool { return video.Load() > 0 }, 15*time.Second, 50*time.Millisecond, "no video over WHEP")
	t.Logf("first video bytes over WHEP after %v", time.Since(start).Round(time.Millisecond))
	require.Eventually(t, func() bool { return audio.Load() > 0 }, 15*time.Second, 50*time.Millisecond, "no Opus over WHEP")
	t.Logf("first audio (Opus from AAC) after %v", time.Since(start).Round(time.Millisecond))

	require.Eventually(t, func() bool { return apiStreams(t, n)["live/w"].Clients == 2 }, 5*time.Second, 100*time.Millisecond)
	viewers := apiStreamsRaw(t, n)["live/w"]["viewers"].(map[string]any)
	require.Equal(t, 1.0, viewers["webrtc"])
	require.Eventually(t, func() bool {
		return apiStreamsRaw(t, n)["live/w"]["send_bytes"].(float64) > 0
	}, 5*time.Second, 100*time.Millisecond, "send_bytes counts the WHEP viewer")
	t.Logf("video %d B, audio %d B received; API send_bytes %.0f", video.Load(), audio.Load(), apiStreamsRaw(t, n)["live/w"]["send_bytes"])

	// SIGTERM with a live publisher and a live WHEP viewer: exit 0 well within shutdown_timeout (5s).
	stopAt := time.Now()
	require.NoError(t, n.Stop())
	took := time.Since(stopAt)
	t.Logf("stopped with a live viewer in %v", took.Round(time.Millisecond))
	require.Less(t, took, 5*time.Second)
	require.Equal(t, 0, n.ExitCode())
}
