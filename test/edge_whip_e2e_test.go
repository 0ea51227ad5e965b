//go:build e2e

package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// whipOffer makes a real H.264 + Opus WHIP offer (pion, sendonly) and returns it with a cleanup.
func whipOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "whip")
	require.NoError(t, err)
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "whip")
	require.NoError(t, err)
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		_, err = pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	require.NoError(t, pc.SetLocalDescription(offer))

	return pc.LocalDescription().SDP
}

// TestEdgeRefusesWHIP: a WHIP publish to an edge is refused with 403 and a reason naming the origins
// (RTMP's refusal is checked in TestClusterEdgeFailover).
func TestEdgeRefusesWHIP(t *testing.T) {
	redis := harness.StartRedis(t)
	edge := harness.StartNode(t, harness.NodeOptions{Addr: "127.0.0.21", NodeID: "edge-w", Set: map[string]any{
		"role":            "edge",
		"cluster.redis":   redis.URL(),
		"cluster.token":   clusterTestToken,
		"cluster.origins": []any{"127.0.0.11:9090", "127.0.0.12:9090"},
	}})
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(edge.HTTPURL+"/whip/live/edgetest", "application/sdp", strings.NewReader(whipOffer(t)))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	t.Logf("edge WHIP answer: %d %q", resp.StatusCode, strings.TrimSpace(string(body)))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, string(body), "127.0.0.11:9090", "the reason names the origins")
}
