//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

const clusterTestToken = "relay-secret"

// startRelayOrigin starts an origin whose cluster.advertise is its real HTTP URL (the default: its
// http.listen address), with the relay token. extra keys are set too.
func startRelayOrigin(t *testing.T, addr, id, redisURL string, extra ...string) *harness.Node {
	set := map[string]any{
		"role":             "origin",
		"cluster.redis":    redisURL,
		"cluster.node_ttl": "1s",
		"cluster.token":    clusterTestToken,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		set[extra[i]] = extra[i+1]
	}
	return harness.StartNode(t, harness.NodeOptions{Addr: addr, NodeID: id, Set: set})
}

// clusterRelays returns the relays n serves per stream key, from /api/v1/cluster.
func clusterRelays(t *testing.T, n *harness.Node) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/cluster")
	require.NoError(t, err)
	require.Equal(t, 200, code, string(body))
	var got struct {
		Cluster struct {
			Relays []struct {
				Key    string `json:"key"`
				Relays int    `json:"relays"`
			} `json:"relays"`
		} `json:"cluster"`
	}
	require.NoError(t, json.Unmarshal(body, &got), string(body))
	out := map[string]int{}
	for _, r := range got.Cluster.Relays {
		out[r.Key] = r.Relays
	}
	return out
}

func relayRequest(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestClusterRelayOriginToOrigin (issue 8): two origins and Redis. ffmpeg publishes to origin A; three
// WHEP viewers and an HTTP-FLV reader on origin B get the stream through exactly one relay from A
// (A's /api/v1/cluster); the relay wants the cluster token (401) and B serves no relay of a relayed
// stream (404); Redis stopped and restarted while the stream plays: no viewer disconnects.
func TestClusterRelayOriginToOrigin(t *testing.T) {
	redis := harness.StartRedis(t)
	// B-frames kept at ingest: the relay carries them as they are.
	a := startRelayOrigin(t, "127.0.0.11", "origin-a", redis.URL(), "webrtc.bframes", "keep")
	b := startRelayOrigin(t, "127.0.0.12", "origin-b", redis.URL(), "webrtc.bframes", "keep")
	const key = "live/test"

	ff := harness.FFmpegPush(t, a.RTMPURL(key), harness.FFmpegArgs{Profile: "main", BFrames: 2})
	defer ff.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for clusterLeaseHolder(t, b, key) != "origin-a" {
		require.True(t, time.Now().Before(deadline), "origin B never saw A's lease; A's log:\n%s", a.Logs())
		time.Sleep(100 * time.Millisecond)
	}

	// The relay endpoint: the token, and no relay of what is not published here.
	require.Equal(t, http.StatusUnauthorized, relayRequest(t, http.MethodPost, a.HTTPURL+"/relay/v1/"+key, ""))
	require.Equal(t, http.StatusUnauthorized, relayRequest(t, http.MethodGet, a.HTTPURL+"/relay/v1/"+key, "wrong"))
	require.Equal(t, http.StatusOK, relayRequest(t, http.MethodGet, a.HTTPURL+"/relay/v1/"+key, clusterTestToken))

	start := time.Now()
	viewers := []*rtmpViewer{rtmpWHEP(t, b, key)}
	require.Eventually(t, func() bool { return len(viewers[0].packets("video")) > 0 }, 10*time.Second, 10*time.Millisecond,
		"first video packet on B; B's log:\n%s", b.Logs())
	t.Logf("relay join: first video packet on B %s after the WHEP offer (stream already live on A)", time.Since(start).Round(time.Millisecond))
	viewers = append(viewers, rtmpWHEP(t, b, key), rtmpWHEP(t, b, key))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flv := &flvReader{}
	flvDone := make(chan struct{})
	go func() { defer close(flvDone); flv.run(ctx, b.HTTPURL+"/"+key+".flv") }()
	defer func() { cancel(); <-flvDone }()

	require.Eventually(t, func() bool {
		for _, v := range viewers {
			if len(v.packets("video")) == 0 || len(v.packets("audio")) == 0 {
				return false
			}
		}
		return atomic.LoadInt64(&flv.bytes) > 10000
	}, 10*time.Second, 20*time.Millisecond, "every viewer gets video and audio, the FLV reader gets tags")
	require.Equal(t, map[string]int{key: 1}, clusterRelays(t, a), "A serves exactly one relay to B")
	// B's HTTP-FLV has the B-frames (PTS != DTS) and the AAC of the source.
	out := harness.FFprobe(t, "-read_intervals", "%+2", "-select_streams", "v", "-show_entries", "packet=pts_time,dts_time",
		"-of", "csv=p=0", b.HTTPURL+"/"+key+".flv")
	reordered, lines := 0, strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if f := strings.Split(l, ","); len(f) == 2 && f[0] != f[1] {
			reordered++
		}
	}
	t.Logf("HTTP-FLV on B: %d of %d video packets with PTS != DTS (B-frames through the relay)", reordered, len(lines))
	require.Positive(t, reordered, "B-frames pass through the relay")
	require.Equal(t, http.StatusNotFound, relayRequest(t, http.MethodGet, b.HTTPURL+"/relay/v1/"+key, clusterTestToken),
		"B carries the stream through a relay and serves none")

	// Redis outage while the relay plays: nobody disconnects, media keeps flowing.
	counts := func() []int {
		out := []int{}
		for _, v := range viewers {
			out = append(out, len(v.packets("video")))
		}
		return out
	}
	before := counts()
	flvBefore := atomic.LoadInt64(&flv.bytes)
	redis.Stop()
	time.Sleep(3 * time.Second)
	during := counts()
	redis.Restart()
	back := time.Now()
	for clusterLeaseHolder(t, a, key) != "origin-a" {
		require.Less(t, time.Since(back), 5*time.Second, "lease not re-taken; A's log:\n%s", a.Logs())
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("lease back %s after Redis returned", time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second)
	after := counts()
	for i, v := range viewers {
		require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState(), "viewer %d", i)
		require.Greater(t, during[i], before[i]+30, "viewer %d got video during the outage", i)
		require.Greater(t, after[i], during[i]+10, "viewer %d got video after the outage", i)
	}
	require.Greater(t, atomic.LoadInt64(&flv.bytes), flvBefore+10000, "the FLV reader kept reading")
	require.NoError(t, flv.err)
	require.Equal(t, map[string]int{key: 1}, clusterRelays(t, a))
	select {
	case <-ff.Done():
		require.FailNow(t, "the publisher was disconnected", "A's log:\n%s", a.Logs())
	default:
	}
	t.Logf("video packets per viewer: before the outage %v, during %v, after %v", before, during, after)
}
