//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// apiClient is the part of /api/v1/clients this test reads.
type apiClient struct {
	ID         string `json:"id"`
	Stream     string `json:"stream"`
	Protocol   string `json:"protocol"`
	RemoteAddr string `json:"remote_addr"`
	SendBytes  uint64 `json:"send_bytes"`
	Start      string `json:"start"`
	Publish    bool   `json:"publish"`
}

func apiClientsOf(t *testing.T, n *harness.Node, key, protocol string) []apiClient {
	t.Helper()
	code, body, err := n.Get(context.Background(), "/api/v1/clients")
	require.NoError(t, err)
	require.Equal(t, 200, code, string(body))
	var reply struct {
		Clients []apiClient `json:"clients"`
	}
	require.NoError(t, json.Unmarshal(body, &reply), string(body))
	var out []apiClient
	for _, c := range reply.Clients {
		require.NotEqual(t, "mux", c.Protocol, "the shared muxer source is not a client")
		if c.Stream == key && c.Protocol == protocol && !c.Publish {
			out = append(out, c)
		}
	}
	return out
}

// TestAPIClientsFLV: HTTP-FLV viewers of an RTMP push are listed by /api/v1/clients (protocol flv,
// address, bytes, start), count in /api/v1/streams, and a kick ends exactly that viewer's response
// while the other keeps reading; an RTMP play viewer shows as protocol rtmp and a kick ends its connection.
func TestAPIClientsFLV(t *testing.T) {
	n := harness.StartNode(t, harness.NodeOptions{})
	ffmpegPushRTMP(t, n.RTMPURL("live/k"), "320x240")
	require.Eventually(t, func() bool { return apiStreams(t, n)["live/k"].Publish.Active }, 20*time.Second, 100*time.Millisecond)

	firstBytes, firstDone := opsFLVViewerDone(t, n, "live/k")
	var first []apiClient
	require.Eventually(t, func() bool {
		first = apiClientsOf(t, n, "live/k", "flv")
		return len(first) == 1 && firstBytes.Load() > 0
	}, 15*time.Second, 50*time.Millisecond)
	secondBytes, secondDone := opsFLVViewerDone(t, n, "live/k")
	var both []apiClient
	require.Eventually(t, func() bool {
		both = apiClientsOf(t, n, "live/k", "flv")
		return len(both) == 2 && secondBytes.Load() > 0
	}, 15*time.Second, 50*time.Millisecond)
	kicked := first[0]
	require.NotEmpty(t, kicked.RemoteAddr)
	require.NotEmpty(t, kicked.Start)
	for _, c := range both {
		if c.ID == kicked.ID {
			require.Positive(t, c.SendBytes, "bytes sent are reported")
			t.Logf("flv viewer %s from %s: %d bytes sent", c.ID, c.RemoteAddr, c.SendBytes)
		}
	}
	var raw map[string]map[string]any
	require.Eventually(t, func() bool {
		raw = apiStreamsRaw(t, n)
		v, _ := raw["live/k"]["viewers"].(map[string]any)
		return v["flv"] == 2.0
	}, 5*time.Second, 100*time.Millisecond)
	require.Equal(t, 3.0, raw["live/k"]["clients"], "publisher + two FLV viewers (the muxer source is not counted)")

	req, err := http.NewRequest(http.MethodDelete, n.HTTPURL+"/api/v1/clients/"+kicked.ID, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	start := time.Now()
	select {
	case <-firstDone:
		t.Logf("kicked viewer's response ended %v after the kick", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked FLV viewer's response did not end")
	}
	before := secondBytes.Load()
	time.Sleep(time.Second)
	select {
	case <-secondDone:
		t.Fatal("the other FLV viewer ended too")
	default:
	}
	require.Greater(t, secondBytes.Load(), before, "the other viewer keeps receiving")
	left := apiClientsOf(t, n, "live/k", "flv")
	require.Len(t, left, 1)
	require.NotEqual(t, kicked.ID, left[0].ID)

	// An RTMP play viewer shows as protocol rtmp and counts in the stream's viewers.
	play := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", n.RTMPURL("live/k"), "-t", "20", "-f", "null", "-")
	require.NoError(t, play.Start())
	playDone := make(chan struct{})
	go func() { _ = play.Wait(); close(playDone) }()
	t.Cleanup(func() { _ = play.Process.Kill(); <-playDone })
	require.Eventually(t, func() bool { return len(apiClientsOf(t, n, "live/k", "rtmp")) == 1 }, 10*time.Second, 50*time.Millisecond)
	rc := apiClientsOf(t, n, "live/k", "rtmp")[0]
	t.Logf("rtmp play viewer %s from %s", rc.ID, rc.RemoteAddr)
	require.NotEmpty(t, rc.RemoteAddr)
	raw = apiStreamsRaw(t, n)
	v, _ := raw["live/k"]["viewers"].(map[string]any)
	require.Equal(t, 1.0, v["rtmp"])
	require.Equal(t, 1.0, v["flv"])
	// Kicking it ends that RTMP connection (ffmpeg exits); the FLV viewer goes on.
	req, err = http.NewRequest(http.MethodDelete, n.HTTPURL+"/api/v1/clients/"+rc.ID, nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	select {
	case <-playDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked RTMP player's connection did not end")
	}
	before = secondBytes.Load()
	require.Eventually(t, func() bool { return secondBytes.Load() > before }, 5*time.Second, 50*time.Millisecond)
}
